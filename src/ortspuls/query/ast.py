"""Typed, immutable AST for SensorThings API (OData) query options.

All nodes are frozen, slotted dataclasses, so they are hashable and compare structurally.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal as _L
from typing import TypeAlias

LiteralKind: TypeAlias = _L[
    "string", "int", "float", "bool", "null", "datetime", "date", "time", "duration", "geography"
]
LiteralValue: TypeAlias = (
    str | int | float | bool | dt.datetime | dt.date | dt.time | dt.timedelta | None
)
UnaryOp: TypeAlias = _L["not", "neg"]
BinaryOp: TypeAlias = _L[
    "eq", "ne", "gt", "ge", "lt", "le", "and", "or", "add", "sub", "mul", "div", "mod"
]

COMPARISON_OPS: frozenset[str] = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
LOGICAL_OPS: frozenset[str] = frozenset({"and", "or"})
ARITHMETIC_OPS: frozenset[str] = frozenset({"add", "sub", "mul", "div", "mod"})

#: Built-in filter functions (canonical lower-case name) -> (min, max) number of arguments.
FUNCTION_ARITY: Mapping[str, tuple[int, int]] = {
    # string functions
    "substringof": (2, 2),
    "endswith": (2, 2),
    "startswith": (2, 2),
    "contains": (2, 2),
    "length": (1, 1),
    "indexof": (2, 2),
    "substring": (2, 3),
    "tolower": (1, 1),
    "toupper": (1, 1),
    "trim": (1, 1),
    "concat": (2, 2),
    # date and time functions
    "year": (1, 1),
    "month": (1, 1),
    "day": (1, 1),
    "hour": (1, 1),
    "minute": (1, 1),
    "second": (1, 1),
    "fractionalseconds": (1, 1),
    "date": (1, 1),
    "time": (1, 1),
    "totaloffsetminutes": (1, 1),
    "now": (0, 0),
    "mindatetime": (0, 0),
    "maxdatetime": (0, 0),
    # math functions
    "round": (1, 1),
    "floor": (1, 1),
    "ceiling": (1, 1),
    # geospatial functions
    "geo.distance": (2, 2),
    "geo.length": (1, 1),
    "geo.intersects": (2, 2),
    # spatial relationship functions
    "st_equals": (2, 2),
    "st_disjoint": (2, 2),
    "st_touches": (2, 2),
    "st_within": (2, 2),
    "st_overlaps": (2, 2),
    "st_crosses": (2, 2),
    "st_intersects": (2, 2),
    "st_contains": (2, 2),
    "st_relate": (3, 3),
}


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant.  ``datetime`` values are timezone-aware UTC; ``geography`` values are WKT."""

    value: LiteralValue
    kind: LiteralKind


@dataclass(frozen=True, slots=True)
class Path:
    """A member path such as ``Datastream/Thing/name`` or ``properties/a/b`` (as written)."""

    segments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unary:
    """``not x`` (op ``'not'``) or ``-x`` (op ``'neg'``)."""

    op: UnaryOp
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    """A comparison, logical or arithmetic operation."""

    op: BinaryOp
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class In:
    """``left in (v1, v2, ...)``; ``values`` is never empty."""

    left: Expr
    values: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Call:
    """A built-in function call; ``name`` is a key of :data:`FUNCTION_ARITY`."""

    name: str
    args: tuple[Expr, ...]


Expr: TypeAlias = Literal | Path | Unary | Binary | In | Call


@dataclass(frozen=True, slots=True)
class OrderItem:
    """One ``$orderby`` item."""

    expr: Expr
    descending: bool = False


@dataclass(frozen=True, slots=True)
class QueryOptions:
    """The system query options of one request, or of one ``$expand`` item."""

    filter: Expr | None = None
    select: tuple[Path, ...] | None = None
    orderby: tuple[OrderItem, ...] = ()
    top: int | None = None
    skip: int | None = None
    count: bool | None = None
    expand: tuple[ExpandItem, ...] = ()
    result_format: str | None = None
    #: Opaque position after which the next page starts (keyset paging; top level only).
    skiptoken: str | None = None


@dataclass(frozen=True, slots=True)
class ExpandItem:
    """One ``$expand`` item; ``path`` is e.g. ``('Datastream', 'Thing')``.

    Nested options apply to the last navigation segment of ``path``.
    """

    path: tuple[str, ...]
    options: QueryOptions = QueryOptions()


__all__ = [
    "ARITHMETIC_OPS",
    "COMPARISON_OPS",
    "FUNCTION_ARITY",
    "LOGICAL_OPS",
    "Binary",
    "BinaryOp",
    "Call",
    "ExpandItem",
    "Expr",
    "In",
    "Literal",
    "LiteralKind",
    "LiteralValue",
    "OrderItem",
    "Path",
    "QueryOptions",
    "Unary",
    "UnaryOp",
]
