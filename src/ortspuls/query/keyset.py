"""Keyset paging for Observation collections.

With a growing `$skip` the database reads and throws away every row before the page, so deep
pages of a long time series get slower and slower. When the order is one the time-series index
`(datastream_id, phenomenon_time_start, id)` serves — the default `phenomenonTime, id`,
`phenomenonTime desc`, or `id` in either direction — a next link instead carries the sort key of
the page's last row as `$skiptoken`, and the next page starts right after it with an index seek.

A token is opaque to clients: `<epoch microseconds>_<id>` for time orders, `<id>` for id orders.
Like `$skip`, it is only valid together with the `$orderby` it was made for; the next link
carries both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_
from sqlalchemy.sql import ColumnElement, FromClause

from ortspuls.db.types import Timestamp, from_micros, to_micros
from ortspuls.model import EntityType
from ortspuls.query.ast import OrderItem, Path
from ortspuls.sta.errors import BadRequest

_TIME = "phenomenonTime"


@dataclass(frozen=True, slots=True)
class Keyset:
    """The keys of an order the time-series index serves: (column, descending) pairs."""

    keys: tuple[tuple[str, bool], ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(column for column, _ in self.keys)

    def token(self, row: dict[str, Any]) -> str:
        """The position after `row` (a result row holding the key columns)."""
        parts = []
        for column, _ in self.keys:
            value = row[column]
            parts.append(str(to_micros(value) if isinstance(value, datetime) else int(value)))
        return "_".join(parts)

    def after(self, table: FromClause, token: str) -> ColumnElement[bool]:
        """Rows strictly after the position `token`, in this order."""
        values = _decode(token, len(self.keys))
        bound = []
        for (column, _), value in zip(self.keys, values, strict=True):
            if column == "phenomenon_time_start":
                bound.append(bindparam(None, from_micros(value), Timestamp()))
            else:
                bound.append(bindparam(None, value))
        return _after([(table.c[c], desc) for c, desc in self.keys], bound)


def keyset_for(entity: EntityType, orderby: tuple[OrderItem, ...]) -> Keyset | None:
    """The keyset of an Observation order, or None if the order needs `$skip`."""
    if entity.name != "Observation":
        return None
    names = []
    for item in orderby:
        if not isinstance(item.expr, Path) or len(item.expr.segments) != 1:
            return None
        names.append((item.expr.segments[0], item.descending))
    if not names:
        return Keyset((("phenomenon_time_start", False), ("id", False)))
    first, first_desc = names[0]
    if first in ("id", "@iot.id") and len(names) == 1:
        return Keyset((("id", first_desc),))
    if first != _TIME:
        return None
    if len(names) == 1:
        # read.order_clauses adds the id, ascending, as the last key.
        return Keyset((("phenomenon_time_start", first_desc), ("id", False)))
    second, second_desc = names[1]
    if len(names) == 2 and second in ("id", "@iot.id"):
        return Keyset((("phenomenon_time_start", first_desc), ("id", second_desc)))
    return None


def _decode(token: str, count: int) -> list[int]:
    parts = token.split("_")
    try:
        if len(parts) != count:
            raise ValueError
        return [int(p) for p in parts]
    except ValueError:
        raise BadRequest("$skiptoken does not belong to this $orderby; follow @iot.nextLink "
                         "as the server gave it") from None


def _after(keys: list[tuple[Any, bool]], values: list[Any]) -> ColumnElement[bool]:
    """Lexicographically after `values`: k1 ≥ v1 and (k1 > v1 or (rest after)).

    Written with a plain bound on the first key (instead of row values or a bare OR) so both
    SQLite and PostgreSQL turn it into an index range.
    """
    (column, desc), value = keys[0], values[0]
    strictly = column < value if desc else column > value
    if len(keys) == 1:
        return strictly
    at_least = column <= value if desc else column >= value
    return and_(at_least, or_(strictly, _after(keys[1:], values[1:])))
