"""Text catalogues and locale formatting of the dashboard pages (German first, English beside).

Every user-facing word of the pages lives in `catalogues/<lang>.toml`, addressed by a dotted
key. A key ending in `_html` holds trusted markup (links inside a sentence); a table with `one`
and `other` is a plural. Numbers and times are formatted here the way the browser code formats
them with `Intl` (same separators, same half-up rounding), so server-rendered and live-updated
values look identical.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup

LANGUAGES = ("de", "en")
DEFAULT_LANGUAGE = "de"
LANG_COOKIE = "ortspuls_lang"
CATALOGUE_DIR = Path(__file__).parent / "catalogues"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and not _is_plural(value):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _is_plural(value: Mapping[str, Any]) -> bool:
    return set(value) == {"one", "other"}


@functools.cache
def catalogue(lang: str) -> dict[str, Any]:
    """The flattened catalogue of one language (loaded once per process)."""
    with (CATALOGUE_DIR / f"{lang}.toml").open("rb") as fh:
        return _flatten(tomllib.load(fh))


def negotiate(query_lang: str | None, cookie_lang: str | None) -> str:
    """The page language: `?lang=` wins, then the cookie, then German."""
    for candidate in (query_lang, cookie_lang):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE


@dataclass(frozen=True, slots=True)
class Translator:
    """Looks up catalogue texts and formats numbers and times for one language."""

    lang: str
    timezone: ZoneInfo

    @property
    def messages(self) -> dict[str, Any]:
        return catalogue(self.lang)

    def __call__(self, key: str, **params: Any) -> str | Markup:
        text = self.messages[key]  # a missing key is a bug; the catalogue tests catch it
        if isinstance(text, Mapping):
            text = text["one" if params.get("n") == 1 else "other"]
        if key.endswith("_html"):
            # Markup text: the parameters are escaped, the catalogue's own markup is kept.
            return Markup(text).format(**params) if params else Markup(text)
        return text.format(**params) if params else text

    def block(self, key: str, **params: Any) -> Any:
        """A structured entry (lists and tables of texts, e.g. the sections of a page), with
        every text formatted; under a key ending in `_html` the texts are trusted markup."""
        markup = key.endswith("_html")

        def walk(node: Any) -> Any:
            if isinstance(node, str):
                if markup:
                    return Markup(node).format(**params) if params else Markup(node)
                return node.format(**params) if params else node
            if isinstance(node, Mapping):
                return {k: walk(v) for k, v in node.items()}
            if isinstance(node, list):
                return [walk(v) for v in node]
            return node

        return walk(self.messages[key])

    def has(self, key: str) -> bool:
        return key in self.messages

    def subset(self, prefix: str) -> dict[str, Any]:
        """All entries under `prefix.` (without it), for the browser code."""
        cut = len(prefix) + 1
        return {k[cut:]: v for k, v in self.messages.items() if k.startswith(prefix + ".")}

    # -- numbers ----------------------------------------------------------------------------

    def number(self, value: Any, max_fraction: int = 2) -> str:
        """A number with the language's separators, rounded half-up like `Intl.NumberFormat`."""
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            return str(value)
        try:
            # repr() gives the shortest decimal form, the same digits the browser starts from.
            exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
            rounded = exact.quantize(Decimal(1).scaleb(-max_fraction), rounding=ROUND_HALF_UP)
        except InvalidOperation:
            return str(value)
        if rounded == 0:
            rounded = abs(rounded)  # Intl prints "0", never "-0"
        sign = "-" if rounded < 0 else ""
        whole, _, fraction = f"{abs(rounded):f}".partition(".")
        fraction = fraction.rstrip("0")
        groups = []
        while len(whole) > 3:
            groups.insert(0, whole[-3:])
            whole = whole[:-3]
        groups.insert(0, whole)
        # Intl (de-DE, en-GB) groups from 1,000 on; four-digit numbers are grouped too.
        text = self.messages["format.group"].join(groups)
        if fraction:
            text += self.messages["format.decimal"] + fraction
        return sign + text

    def value(self, value: Any) -> str:
        """An observation result as text: numbers formatted, booleans in words, None as a dash."""
        if value is None:
            return self("value.none")
        if isinstance(value, bool):
            return self("value.true") if value else self("value.false")
        if isinstance(value, int | float):
            return self.number(value)
        return str(value)

    # -- times ------------------------------------------------------------------------------

    def parse_time(self, value: Any) -> datetime | None:
        if value is None or value == "":
            return None
        if isinstance(value, datetime):
            moment = value
        else:
            text = str(value)
            # Interval "start/end": the end is the newest moment.
            text = text.split("/")[-1]
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment

    def datetime(self, value: Any) -> str:
        moment = self.parse_time(value)
        if moment is None:
            return self("value.none")
        return moment.astimezone(self.timezone).strftime(self.messages["format.datetime"])

    def date(self, value: Any) -> str:
        moment = self.parse_time(value)
        if moment is None:
            return self("value.none")
        return moment.astimezone(self.timezone).strftime(self.messages["format.date"])

    def relative(self, value: Any, now: datetime | None = None) -> str:
        """ "vor 5 Min." — the browser code updates it with the same catalogue entries."""
        moment = self.parse_time(value)
        if moment is None:
            return self("time.never")
        seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
        if seconds < 60:
            return self("time.just_now")
        minutes = int(seconds // 60)
        if minutes < 60:
            return self("time.minutes_ago", n=minutes)
        hours = minutes // 60
        if hours < 24:
            return self("time.hours_ago", n=hours)
        return self("time.days_ago", n=hours // 24)


def unit_symbol(unit: Any) -> str:
    """The display symbol of a unit given as text or as an STA unitOfMeasurement object."""
    if unit is None:
        return ""
    if isinstance(unit, Mapping):
        return str(unit.get("symbol") or unit.get("name") or "")
    return str(unit)
