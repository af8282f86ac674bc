"""SensorThings API / OData query-option parsing: typed AST, parser and printer."""

from .ast import (
    FUNCTION_ARITY,
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
from .errors import QuerySyntaxError
from .parser import (
    MAX_DEPTH,
    MAX_EXPAND_DEPTH,
    QUERY_OPTIONS,
    parse_expand,
    parse_filter,
    parse_orderby,
    parse_query_options,
    parse_select,
)
from .printer import (
    expand_to_text,
    literal_to_text,
    options_to_params,
    orderby_to_text,
    select_to_text,
    to_text,
)

__all__ = [
    "FUNCTION_ARITY",
    "MAX_DEPTH",
    "MAX_EXPAND_DEPTH",
    "QUERY_OPTIONS",
    "Binary",
    "Call",
    "ExpandItem",
    "Expr",
    "In",
    "Literal",
    "OrderItem",
    "Path",
    "QueryOptions",
    "QuerySyntaxError",
    "Unary",
    "expand_to_text",
    "literal_to_text",
    "options_to_params",
    "orderby_to_text",
    "parse_expand",
    "parse_filter",
    "parse_orderby",
    "parse_query_options",
    "parse_select",
    "select_to_text",
    "to_text",
]
