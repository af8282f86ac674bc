"""The admin texts: every key in German and English, every key the templates and views use
exists, and placeholders match between the languages."""

from __future__ import annotations

import re
import string
from pathlib import Path

from ortspuls.admin.render import admin_catalogue

ADMIN = Path(__file__).resolve().parents[2] / "src" / "ortspuls" / "admin"


def _fields(text) -> set[str]:
    values = text.values() if isinstance(text, dict) else [text]
    return {f for v in values for _, f, _, _ in string.Formatter().parse(v) if f}


def test_languages_have_the_same_keys_and_placeholders():
    de, en = admin_catalogue("de"), admin_catalogue("en")
    assert set(de) == set(en)
    for key in de:
        assert _fields(de[key]) == _fields(en[key]), key


def test_every_used_key_exists():
    de = admin_catalogue("de")
    sources = [p.read_text() for p in (ADMIN / "templates").glob("*.html")]
    sources.append((ADMIN / "views.py").read_text())
    used = set()
    for text in sources:
        used |= set(re.findall(r"['\"](admin\.[a-z_]+\.[a-z_.]+)['\"]", text))
    missing = {k for k in used if k not in de and not k.endswith(("_", "."))}
    assert not missing, missing
