"""The dashboard's text catalogues (German first, English beside) and number formatting.

Every user-facing word the dashboard service produces — use-case titles, status sentences,
figure labels, unit symbols — lives in `catalogues/<lang>.toml`, addressed by dotted keys. A
table with exactly the keys `one` and `other` is a plural chosen by the parameter `n`.
Numbers in sentences are formatted with the language's separators.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

LANGUAGES = ("de", "en")
DEFAULT_LANGUAGE = "de"
CATALOGUE_DIR = Path(__file__).parent / "catalogues"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and set(value) != {"one", "other"}:
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


@functools.cache
def catalogue(lang: str) -> dict[str, Any]:
    """The flattened catalogue of one language, loaded once per process."""
    with (CATALOGUE_DIR / f"{lang}.toml").open("rb") as fh:
        return _flatten(tomllib.load(fh))


def language(value: str | None) -> str:
    """A supported language code; anything else gives German."""
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


class Texts:
    """Catalogue lookup and number formatting for one language."""

    __slots__ = ("_decimal", "_group", "lang", "messages")

    def __init__(self, lang: str) -> None:
        self.lang = language(lang)
        self.messages = catalogue(self.lang)
        self._group = self.messages["format.group"]
        self._decimal = self.messages["format.decimal"]

    def __call__(self, key: str, **params: Any) -> str:
        text = self.messages[key]  # a missing key is a bug; tests check both catalogues
        if isinstance(text, Mapping):
            text = text["one" if params.get("n") == 1 else "other"]
        if not params:
            return text
        shown = {k: self.number(v) if isinstance(v, int | float) and not isinstance(v, bool)
                 else v for k, v in params.items()}
        return text.format(**shown)

    def get(self, key: str, default: str | None = None) -> str | None:
        value = self.messages.get(key, default)
        return value if value is None or isinstance(value, str) else default

    def number(self, value: float | int | None, decimals: int = 1) -> str:
        """`1234.56` -> "1.234,6" (de) / "1,234.6" (en); integers without decimals."""
        if value is None:
            return "–"
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()
                                      and abs(value) < 1e15):
            decimals = 0
        try:
            rounded = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals),
                                                           rounding=ROUND_HALF_UP)
        except InvalidOperation:
            return str(value)
        if rounded == 0:
            rounded = abs(rounded)
        sign = "-" if rounded < 0 else ""
        whole, _, fraction = f"{abs(rounded):f}".partition(".")
        groups = []
        while len(whole) > 3:
            groups.insert(0, whole[-3:])
            whole = whole[:-3]
        groups.insert(0, whole)
        out = self._group.join(groups)
        fraction = fraction.rstrip("0")
        if fraction:
            out += self._decimal + fraction
        return sign + out

    def unit(self, unit: Mapping[str, Any] | None) -> str:
        """The display symbol of an STA unitOfMeasurement (UCUM codes made readable)."""
        if not unit:
            return ""
        symbol = str(unit.get("symbol") or "")
        shown = self.messages.get(f"units.{symbol}")
        if isinstance(shown, str):
            return shown
        return symbol or str(unit.get("name") or "")
