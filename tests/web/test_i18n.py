"""The page catalogues: German and English complete and alike, every used key present, and
numbers and times formatted the way the browser's Intl formats them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ortspuls.web import i18n
from ortspuls.web.i18n import Translator, catalogue, negotiate

WEB = Path(i18n.__file__).parent
FRONTEND = Path(__file__).resolve().parents[2] / "frontend" / "src"
BERLIN = ZoneInfo("Europe/Berlin")


def placeholders(text: object) -> set[str]:
    if isinstance(text, dict):
        return set().union(*(placeholders(v) for v in text.values()))
    if isinstance(text, list):
        return set().union(set(), *(placeholders(v) for v in text))
    return set(re.findall(r"\{(\w+)\}", str(text)))


def test_catalogues_have_the_same_keys_and_placeholders():
    de, en = catalogue("de"), catalogue("en")
    assert set(de) == set(en), f"only in de: {set(de) - set(en)}; only in en: {set(en) - set(de)}"
    for key in de:
        assert placeholders(de[key]) == placeholders(en[key]), key


def _dynamic_keys() -> set[str]:
    """Keys the templates and handlers build from parts, spelled out."""
    keys = {f"status.level.{lvl}" for lvl in ("ok", "warn", "alert", "unknown")}
    keys |= {f"trend.{d}" for d in ("rising", "falling", "steady", "none")}
    keys |= {f"chart.{group}.{r}" for group in ("range", "range_long")
             for r in ("24h", "48h", "7d", "30d", "1y")}
    keys |= {f"chart.per.{i}" for i in ("PT10M", "PT1H", "P1D", "P1M")}
    keys |= {f"chart.col.{s}" for s in ("start", "mean", "min", "max", "sum", "count")}
    keys |= {"chart.caption_mean", "chart.caption_sum", "nav.switch_to_de", "nav.switch_to_en"}
    keys |= {f"nav.{p}" for p in ("overview", "map", "easy", "a11y")}
    for prefix in ("a11y", "easy"):
        keys |= {f"{prefix}.{k}" for k in ("title", "heading", "sections_html",
                                           "other_language_de", "other_language_en")}
    keys.add("error.title_404")
    return keys


def test_every_key_used_by_templates_and_handlers_exists():
    used = set()
    for path in (WEB / "templates").glob("*.html"):
        used |= set(re.findall(r"\bt\(\s*'([a-z0-9_.]+)'", path.read_text()))
    for path in WEB.glob("*.py"):
        used |= set(re.findall(r"\bt\(\s*f?\"([a-z0-9_.]+)\"", path.read_text()))
    # "chart.col." ~ stat and f"chart.per.{…}" are prefixes of built keys, spelled out below.
    used = {k for k in used if not k.endswith((".", "_"))} | _dynamic_keys()
    assert len(used) > 60  # the scan found the keys
    for lang in ("de", "en"):
        missing = sorted(k for k in used if k not in catalogue(lang))
        assert not missing, f"{lang}: {missing}"


def test_every_text_the_browser_code_uses_is_sent_to_it():
    de = catalogue("de")
    sources = {p.name: p.read_text() for p in FRONTEND.rglob("*.js")}
    prefixes = {"text": "js.", "ct": "chart.", "mt": "map."}
    checked = 0
    for name, source in sources.items():
        for func, prefix in prefixes.items():
            for key in re.findall(rf"\b{func}\(\s*\"([a-z0-9_.]+)\"", source):
                full = key if key.startswith("time.") else prefix + key
                assert full in de, f"{name}: {func}({key!r}) has no catalogue entry {full}"
                checked += 1
    assert checked > 15


def test_language_choice():
    assert negotiate(None, None) == "de"
    assert negotiate("en", None) == "en"
    assert negotiate(None, "en") == "en"
    assert negotiate("de", "en") == "de"
    assert negotiate("fr", "en") == "en"
    assert negotiate("xx", "yy") == "de"


@pytest.mark.parametrize(("lang", "value", "expected"), [
    ("de", 1234.5, "1.234,5"),
    ("en", 1234.5, "1,234.5"),
    ("de", 1234567, "1.234.567"),
    ("de", 999, "999"),
    ("de", 0.125, "0,13"),  # half up on the decimal digits, as Intl does
    ("de", 1.005, "1,01"),  # the shortest decimal form, not the binary value
    ("de", -0.001, "0"),
    ("en", -12.345, "-12.35"),
    ("de", 12.0, "12"),
    ("de", 3, "3"),
])
def test_numbers(lang, value, expected):
    assert Translator(lang, BERLIN).number(value) == expected


def test_values_in_words():
    t = Translator("de", BERLIN)
    assert t.value(None) == "–"
    assert t.value(True) == "ja"
    assert Translator("en", BERLIN).value(False) == "no"
    assert t.value("offen") == "offen"


def test_times_in_the_town_time_zone_across_daylight_saving():
    t = Translator("de", BERLIN)
    assert t.datetime("2026-03-29T00:30:00Z") == "29.03.2026, 01:30"  # CET
    assert t.datetime("2026-03-29T01:30:00Z") == "29.03.2026, 03:30"  # CEST from 01:00 UTC
    assert Translator("en", BERLIN).datetime("2026-10-25T01:30:00Z") == "25/10/2026, 02:30"
    assert t.date("2026-12-31T23:30:00Z") == "01.01.2027"
    # An interval: its end is the newest moment.
    assert t.datetime("2026-06-01T10:00:00Z/2026-06-01T11:00:00Z") == "01.06.2026, 13:00"


def test_relative_times():
    t = Translator("de", BERLIN)
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert t.relative(now - timedelta(seconds=20), now) == "gerade eben"
    assert t.relative(now - timedelta(minutes=5), now) == "vor 5 Min."
    assert t.relative(now - timedelta(hours=1, minutes=59), now) == "vor 1 Std."
    assert t.relative(now - timedelta(days=1), now) == "vor 1 Tag"
    assert t.relative(now - timedelta(days=3), now) == "vor 3 Tagen"
    assert t.relative(None, now) == "noch keine Daten"
    assert Translator("en", BERLIN).relative(now - timedelta(hours=3), now) == "3 hours ago"


def test_markup_entries_escape_their_parameters():
    t = Translator("de", BERLIN)
    html = t("a11y.contact_html", href="mailto:a@b.de", contact="<script>")
    assert "&lt;script&gt;" in html and '<a href="mailto:a@b.de">' in html
