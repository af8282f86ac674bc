"""Print query ASTs back to OData/SensorThings syntax (e.g. for building nextLinks).

``parse_filter(to_text(e)) == e`` for every well-formed AST whose path segments are not
keywords and whose float literals are finite.
"""

from __future__ import annotations

import datetime as dt

from .ast import (
    Binary,
    Call,
    ExpandItem,
    Expr,
    In,
    Literal,
    OrderItem,
    Path,
    QueryOptions,
    Unary,
)

__all__ = [
    "expand_to_text",
    "literal_to_text",
    "options_to_params",
    "orderby_to_text",
    "select_to_text",
    "to_text",
]

_PRECEDENCE = {
    "or": 1,
    "and": 2,
    "eq": 3,
    "ne": 3,
    "gt": 3,
    "ge": 3,
    "lt": 3,
    "le": 3,
    "add": 4,
    "sub": 4,
    "mul": 5,
    "div": 5,
    "mod": 5,
}
_IN_PRECEDENCE = 3
_UNARY_PRECEDENCE = 6
_ATOM_PRECEDENCE = 7


def _precedence(expr: Expr) -> int:
    if isinstance(expr, Binary):
        return _PRECEDENCE[expr.op]
    if isinstance(expr, In):
        return _IN_PRECEDENCE
    if isinstance(expr, Unary):
        return _UNARY_PRECEDENCE
    return _ATOM_PRECEDENCE


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _duration(value: dt.timedelta) -> str:
    sign = "-" if value < dt.timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    date_part = f"{value.days}D" if value.days else ""
    time_part = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if value.microseconds:
        time_part += f"{seconds}.{value.microseconds:06d}".rstrip("0") + "S"
    elif seconds or not (date_part or time_part):
        time_part += f"{seconds}S"
    return f"duration'{sign}P{date_part}{'T' + time_part if time_part else ''}'"


def literal_to_text(literal: Literal) -> str:
    """Print one literal."""
    value, kind = literal.value, literal.kind
    if kind == "string":
        return _quote(str(value))
    if kind == "null":
        return "null"
    if kind == "bool":
        return "true" if value else "false"
    if kind == "int":
        return str(int(value))  # type: ignore[arg-type]
    if kind == "float":
        return repr(float(value))  # type: ignore[arg-type]
    if kind == "datetime":
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if kind in ("date", "time"):
        assert isinstance(value, dt.date | dt.time)
        return value.isoformat()
    if kind == "duration":
        assert isinstance(value, dt.timedelta)
        return _duration(value)
    if kind == "geography":
        return "geography" + _quote(str(value))
    raise ValueError(f"unknown literal kind {kind!r}")


def to_text(expr: Expr) -> str:
    """Print an expression in ``$filter`` syntax with minimal parentheses."""
    if isinstance(expr, Literal):
        return literal_to_text(expr)
    if isinstance(expr, Path):
        return "/".join(expr.segments)
    if isinstance(expr, Call):
        return f"{expr.name}({', '.join(to_text(a) for a in expr.args)})"
    if isinstance(expr, Unary):
        inner = to_text(expr.operand)
        # "-(3)" keeps a negated literal distinct from the negative literal "-3"
        if _precedence(expr.operand) < _UNARY_PRECEDENCE or (
            expr.op == "neg" and isinstance(expr.operand, Literal)
        ):
            inner = f"({inner})"
        return f"not {inner}" if expr.op == "not" else f"-{inner}"
    if isinstance(expr, Binary):
        prec = _PRECEDENCE[expr.op]
        left, right = to_text(expr.left), to_text(expr.right)
        if _precedence(expr.left) < prec:
            left = f"({left})"
        if _precedence(expr.right) <= prec:
            right = f"({right})"
        return f"{left} {expr.op} {right}"
    if isinstance(expr, In):
        left = to_text(expr.left)
        if _precedence(expr.left) < _IN_PRECEDENCE:
            left = f"({left})"
        return f"{left} in ({', '.join(to_text(v) for v in expr.values)})"
    raise TypeError(f"not an expression: {expr!r}")


def orderby_to_text(items: tuple[OrderItem, ...]) -> str:
    """Print an ``$orderby`` value."""
    return ",".join(to_text(i.expr) + (" desc" if i.descending else "") for i in items)


def select_to_text(paths: tuple[Path, ...]) -> str:
    """Print a ``$select`` value."""
    return ",".join("/".join(p.segments) for p in paths)


def expand_to_text(items: tuple[ExpandItem, ...]) -> str:
    """Print an ``$expand`` value including nested options."""
    parts = []
    for item in items:
        text = "/".join(item.path)
        nested = options_to_params(item.options)
        if nested:
            text += "(" + ";".join(f"{k}={v}" for k, v in nested.items()) + ")"
        parts.append(text)
    return ",".join(parts)


def options_to_params(options: QueryOptions) -> dict[str, str]:
    """Turn QueryOptions back into (unencoded) query parameters; unset options are omitted."""
    params: dict[str, str] = {}
    if options.filter is not None:
        params["$filter"] = to_text(options.filter)
    if options.select is not None:
        params["$select"] = select_to_text(options.select)
    if options.orderby:
        params["$orderby"] = orderby_to_text(options.orderby)
    if options.top is not None:
        params["$top"] = str(options.top)
    if options.skip is not None:
        params["$skip"] = str(options.skip)
    if options.count is not None:
        params["$count"] = "true" if options.count else "false"
    if options.expand:
        params["$expand"] = expand_to_text(options.expand)
    if options.result_format is not None:
        params["$resultFormat"] = options.result_format
    if options.skiptoken is not None:
        params["$skiptoken"] = options.skiptoken
    return params
