"""Parse SensorThings API / OData system query options into the typed AST.

One LALR(1) lark parser (built once, at import) serves every option; the tree is never
materialised, AST nodes are built directly by an inline transformer.  Every failure is
reported as :class:`QuerySyntaxError`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any, NoReturn

from lark import Lark, Token, Transformer
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from .ast import (
    ARITHMETIC_OPS,
    COMPARISON_OPS,
    FUNCTION_ARITY,
    LOGICAL_OPS,
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

__all__ = [
    "MAX_DEPTH",
    "MAX_EXPAND_DEPTH",
    "QUERY_OPTIONS",
    "canonical_option",
    "parse_expand",
    "parse_filter",
    "parse_orderby",
    "parse_query_options",
    "parse_select",
]

#: Deepest expression nesting accepted (keeps recursive consumers of the AST safe).
MAX_DEPTH = 128
#: Deepest ``$expand`` nesting accepted.
MAX_EXPAND_DEPTH = 16

#: Canonical spelling of every supported system query option.
QUERY_OPTIONS: tuple[str, ...] = (
    "$filter",
    "$select",
    "$orderby",
    "$top",
    "$skip",
    "$count",
    "$expand",
    "$resultFormat",
    "$skiptoken",
)
_CANONICAL_OPTION = {name.lower(): name for name in QUERY_OPTIONS}
# Server-made page positions: short, URL-safe, never parsed as an expression here.
_SKIPTOKEN = re.compile(r"[A-Za-z0-9_.~-]{1,200}")
_START_RULE = {
    "$filter": "start_filter",
    "$select": "start_select",
    "$orderby": "start_orderby",
    "$top": "start_top",
    "$skip": "start_skip",
    "$count": "start_count",
    "$expand": "start_expand",
    "$resultFormat": "start_result_format",
}
_OPTION_TOKEN = {
    "FILTER_OPT": "$filter",
    "SELECT_OPT": "$select",
    "ORDERBY_OPT": "$orderby",
    "TOP_OPT": "$top",
    "SKIP_OPT": "$skip",
    "COUNT_OPT": "$count",
    "EXPAND_OPT": "$expand",
    "RESULT_FORMAT_OPT": "$resultFormat",
}
_OPERATOR_TOKEN = {op.upper(): op for op in COMPARISON_OPS | LOGICAL_OPS | ARITHMETIC_OPS}

# Human-readable names of terminals, for "expected one of: ..." messages.
_DISPLAY = {
    "$END": "end of input",
    "NAME": "name",
    "STRING": "string",
    "INT": "number",
    "FLOAT": "number",
    "UINT": "non-negative integer",
    "DATETIME": "datetime",
    "DATE": "date",
    "TIME": "time",
    "DURATION": "duration",
    "GEOGRAPHY": "geography",
    "FORMAT_NAME": "format name",
    **{name: f"'{op}'" for name, op in _OPERATOR_TOKEN.items()},
    **{name: f"'{opt}'" for name, opt in _OPTION_TOKEN.items()},
    **{name: f"'{name.lower()}'" for name in ("NOT", "IN", "ASC", "DESC", "TRUE", "FALSE", "NULL")},
}

_DURATION_BODY = re.compile(
    r"(?P<sign>[+-])?P(?:(?P<W>\d+(?:\.\d+)?)W)?(?:(?P<D>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<H>\d+(?:\.\d+)?)H)?(?:(?P<M>\d+(?:\.\d+)?)M)?(?:(?P<S>\d+(?:\.\d+)?)S)?)?",
    re.ASCII,
)
_SECONDS_PER_UNIT = {"W": 604800, "D": 86400, "H": 3600, "M": 60, "S": 1}


class _SemanticError(Exception):
    """Raised inside transformer callbacks; converted to QuerySyntaxError by ``_parse``."""

    def __init__(self, detail: str, pos0: int | None, expected: Iterable[str] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.pos0 = pos0
        self.expected = list(expected)


def _pos(token: Token) -> int | None:
    return token.start_pos


def _shorten(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unquote(body: str) -> str:
    return body.replace("''", "'")


def _parse_duration(token: Token) -> dt.timedelta:
    body = _unquote(token[token.index("'") + 1 : -1])
    match = _DURATION_BODY.fullmatch(body)
    parts = {} if match is None else {k: v for k, v in match.groupdict().items() if v}
    parts.pop("sign", None)
    if match is None or not parts or body.endswith("T"):
        raise _SemanticError(
            f"invalid duration {_shorten(body)!r} (ISO 8601, e.g. 'P1DT2H30M'; "
            "years and months are not supported)",
            _pos(token),
        )
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        seconds = sum(decimal.Decimal(v) * _SECONDS_PER_UNIT[k] for k, v in parts.items())
        micros = int((seconds * 1_000_000).to_integral_value(decimal.ROUND_HALF_EVEN))
    if match.group("sign") == "-":
        micros = -micros
    try:
        return dt.timedelta(microseconds=micros)
    except OverflowError:
        raise _SemanticError(f"duration {_shorten(body)!r} is out of range", _pos(token)) from None


def _parse_datetime(text: str) -> dt.datetime:
    if " " in text:  # '+' decoded to ' ' by form-urlencoding: 2024-01-01T00:00:00 01:00
        text = text.replace(" ", "+")
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _literal(token: Token) -> Literal:
    kind = token.type
    text = str(token)
    try:
        if kind == "STRING":
            return Literal(_unquote(text[1:-1]), "string")
        if kind == "INT":
            return Literal(int(text.rstrip("lL")), "int")
        if kind == "FLOAT":
            value = float(text.rstrip("dDfFmM"))
            if not math.isfinite(value):
                raise _SemanticError(f"number {_shorten(text)!r} is out of range", _pos(token))
            return Literal(value, "float")
        if kind == "TRUE":
            return Literal(True, "bool")
        if kind == "FALSE":
            return Literal(False, "bool")
        if kind == "NULL":
            return Literal(None, "null")
        if kind == "DATETIME":
            return Literal(_parse_datetime(text), "datetime")
        if kind == "DATE":
            return Literal(dt.date.fromisoformat(text), "date")
        if kind == "TIME":
            return Literal(dt.time.fromisoformat(text), "time")
        if kind == "DURATION":
            return Literal(_parse_duration(token), "duration")
        if kind == "GEOGRAPHY":
            return Literal(_unquote(text[text.index("'") + 1 : -1]), "geography")
    except (ValueError, OverflowError) as exc:
        raise _SemanticError(
            f"invalid {kind.lower()} literal {_shorten(text)!r}: {exc}", _pos(token)
        ) from None
    raise _SemanticError(f"unsupported literal {text!r}", _pos(token))  # pragma: no cover


def _build_options(
    items: Iterable[tuple[str, Any, int | None]], context: str | None = None
) -> QueryOptions:
    """Build (and validate) QueryOptions from ``(canonical option, value, pos0)`` triples.

    Shared by top-level ``parse_query_options`` and nested ``$expand`` options.
    """
    seen: dict[str, Any] = {}
    for name, value, pos0 in items:
        if name in seen:
            where = f" in {context}" if context else ""
            raise _SemanticError(f"duplicate query option {name!r}{where}", pos0)
        seen[name] = value
    return QueryOptions(
        filter=seen.get("$filter"),
        select=seen.get("$select"),
        orderby=seen.get("$orderby", ()),
        top=seen.get("$top"),
        skip=seen.get("$skip"),
        count=seen.get("$count"),
        expand=seen.get("$expand", ()),
        result_format=seen.get("$resultFormat"),
        skiptoken=seen.get("$skiptoken"),
    )


class _AstBuilder(Transformer[Token, Any]):
    """Inline LALR callbacks: each receives the rule's children (anonymous tokens dropped)."""

    # start rules
    def start_filter(self, c: list[Any]) -> Expr:
        return c[0]

    def start_orderby(self, c: list[Any]) -> tuple[OrderItem, ...]:
        return c[0]

    def start_select(self, c: list[Any]) -> tuple[Path, ...]:
        return c[0]

    def start_expand(self, c: list[Any]) -> tuple[ExpandItem, ...]:
        return c[0]

    def start_top(self, c: list[Token]) -> int:
        return int(c[0])

    start_skip = start_top

    def start_count(self, c: list[Token]) -> bool:
        return c[0].type == "TRUE"

    def start_result_format(self, c: list[Token]) -> str:
        return str(c[0])

    # expressions
    def binary(self, c: list[Any]) -> Binary:
        left, op, right = c
        return Binary(_OPERATOR_TOKEN[op.type], left, right)  # type: ignore[arg-type]

    def in_expr(self, c: list[Any]) -> In:
        return In(c[0], tuple(c[2]))

    def not_expr(self, c: list[Any]) -> Unary:
        return Unary("not", c[1])

    def neg_expr(self, c: list[Any]) -> Unary:
        return Unary("neg", c[0])

    def call(self, c: list[Any]) -> Call:
        token: Token = c[0]
        args: tuple[Expr, ...] = tuple(c[1]) if len(c) > 1 else ()
        name = token.lower()
        arity = FUNCTION_ARITY.get(name)
        if arity is None:
            raise _SemanticError(
                f"unknown function {_shorten(str(token))!r}",
                _pos(token),
                sorted(FUNCTION_ARITY),
            )
        low, high = arity
        if not low <= len(args) <= high:
            want = str(low) if low == high else f"{low} to {high}"
            noun = "argument" if want == "1" else "arguments"
            raise _SemanticError(
                f"function {name!r} takes {want} {noun}, got {len(args)}",
                _pos(token),
            )
        return Call(name, args)

    def expr_list(self, c: list[Any]) -> list[Any]:
        return c

    def path(self, c: list[Token]) -> Path:
        return Path(tuple(str(t) for t in c))

    def literal(self, c: list[Token]) -> Literal:
        return _literal(c[0])

    # $orderby / $select
    def order_list(self, c: list[OrderItem]) -> tuple[OrderItem, ...]:
        return tuple(c)

    def order_item(self, c: list[Any]) -> OrderItem:
        return OrderItem(c[0], len(c) > 1 and c[1].type == "DESC")

    def select_list(self, c: list[Path]) -> tuple[Path, ...]:
        return tuple(c)

    # $expand
    def expand_list(self, c: list[ExpandItem]) -> tuple[ExpandItem, ...]:
        return tuple(c)

    def expand_item(self, c: list[Any]) -> ExpandItem:
        path: Path = c[0]
        if len(c) == 1:
            return ExpandItem(path.segments)
        items = c[1]
        return ExpandItem(
            path.segments, _build_options(items, f"$expand item '{'/'.join(path.segments)}'")
        )

    def expand_options(self, c: list[Any]) -> list[Any]:
        return c

    def expand_option(self, c: list[Any]) -> tuple[str, Any, int | None]:
        token, value = c
        name = _OPTION_TOKEN[token.type]
        if isinstance(value, Token):
            if name == "$count":
                value = value.type == "TRUE"
            elif name == "$resultFormat":
                value = str(value)
            else:
                value = int(value)
        return name, value, _pos(token)


def _load_grammar() -> str:
    return resources.files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")


_PARSER = Lark(
    _load_grammar(),
    parser="lalr",
    lexer="contextual",
    start=list(_START_RULE.values()),
    transformer=_AstBuilder(),
    maybe_placeholders=False,
)
_TERMINAL_PATTERNS = {t.name: t.pattern for t in _PARSER.terminals}


def _display(terminal: str) -> str:
    if terminal in _DISPLAY:
        return _DISPLAY[terminal]
    pattern = _TERMINAL_PATTERNS.get(terminal)
    if pattern is not None and pattern.type == "str":
        return f"'{pattern.value}'"
    return terminal.lower()  # pragma: no cover


def _accepted_before(exc: UnexpectedInput, text: str, start: str) -> set[str] | None:
    """Terminals acceptable right before the offending input.

    The failing LALR state has already performed reductions on the bad lookahead, which
    makes its expected set too small (``(a eq 1`` would only expect ``)``).  Replaying the
    parse and stopping before the offending token gives the precise set.
    """
    target = None
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        target = exc.token.start_pos
    try:
        interactive = _PARSER.parse_interactive(text, start=start)
        try:
            for token in interactive.iter_parse():
                if token.start_pos == target:
                    break
        except UnexpectedInput:
            pass  # lexer error: the state is the one right before the bad character
        return set(interactive.accepts())
    except (LarkError, _SemanticError, ValueError, OverflowError, RecursionError):
        return None


def _raise_syntax(exc: UnexpectedInput, text: str, option: str) -> NoReturn:
    """Convert a lark error into a QuerySyntaxError."""
    terminals = _accepted_before(exc, text, _START_RULE[option])
    if terminals is None:
        terminals = set(
            exc.allowed if isinstance(exc, UnexpectedCharacters) else getattr(exc, "expected", ())
        )
    expected = sorted({_display(t) for t in terminals})
    tail = f"; expected one of: {', '.join(expected)}" if expected else ""

    if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
        position: int | None = len(text) + 1
        what = "unexpected end of input"
    elif isinstance(exc, UnexpectedToken):
        position = exc.token.start_pos + 1 if exc.token.start_pos is not None else None
        what = f"unexpected {_shorten(str(exc.token))!r}"
    else:
        pos0 = exc.pos_in_stream if exc.pos_in_stream is not None else 0
        position = pos0 + 1
        char = text[pos0] if 0 <= pos0 < len(text) else ""
        if char == "'":
            what = "unterminated string literal"
            tail = ""
        elif char == "$" and any(t in _OPTION_TOKEN for t in terminals):
            end = pos0 + 1
            while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                end += 1
            what = f"unknown query option {_shorten(text[pos0:end])!r}"
        else:
            what = f"unexpected character {char!r}"
    at = f" at position {position}" if position is not None else ""
    raise QuerySyntaxError(
        f"{what}{at}{tail}", option=option, position=position, expected=expected
    ) from None


def _raise_semantic(exc: _SemanticError, option: str) -> NoReturn:
    position = exc.pos0 + 1 if exc.pos0 is not None else None
    at = f" at position {position}" if position is not None else ""
    raise QuerySyntaxError(
        f"{exc.detail}{at}", option=option, position=position, expected=exc.expected
    ) from None


def _check_depth(node: Any, option: str) -> None:
    """Reject absurdly deep nesting (iteratively, so the check itself cannot overflow)."""
    stack: list[tuple[Any, int, int]] = [(node, 1, 0)]
    while stack:
        item, depth, expand_depth = stack.pop()
        if isinstance(item, tuple):
            stack.extend((child, depth, expand_depth) for child in item)
            continue
        if depth > MAX_DEPTH:
            raise QuerySyntaxError(
                f"expression nested too deeply (maximum depth {MAX_DEPTH})", option=option
            )
        if isinstance(item, Binary):
            stack.append((item.left, depth + 1, expand_depth))
            stack.append((item.right, depth + 1, expand_depth))
        elif isinstance(item, Unary):
            stack.append((item.operand, depth + 1, expand_depth))
        elif isinstance(item, Call):
            stack.extend((arg, depth + 1, expand_depth) for arg in item.args)
        elif isinstance(item, In):
            stack.append((item.left, depth + 1, expand_depth))
            stack.extend((value, depth + 1, expand_depth) for value in item.values)
        elif isinstance(item, OrderItem):
            stack.append((item.expr, 1, expand_depth))
        elif isinstance(item, ExpandItem):
            if expand_depth + 1 > MAX_EXPAND_DEPTH:
                raise QuerySyntaxError(
                    f"$expand nested too deeply (maximum depth {MAX_EXPAND_DEPTH})",
                    option=option,
                )
            opts = item.options
            for child in (opts.filter, opts.orderby, opts.expand):
                if child is not None:
                    stack.append((child, 1, expand_depth + 1))


# Clients repeat the same options (dashboards poll, next links carry them): parsed results are
# immutable, so the most recent ones are kept. Failures are not cached.
_CACHE_SIZE = 2048
_CACHE_MAX_TEXT = 2000


def _parse(text: str, option: str) -> Any:
    if len(text) <= _CACHE_MAX_TEXT:
        return _parse_cached(text, option)
    return _parse_uncached(text, option)


def _parse_uncached(text: str, option: str) -> Any:
    try:
        result = _PARSER.parse(text, start=_START_RULE[option])
    except QuerySyntaxError:
        raise
    except _SemanticError as exc:
        _raise_semantic(exc, option)
    except UnexpectedInput as exc:
        _raise_syntax(exc, text, option)
    except LarkError as exc:  # pragma: no cover - defensive
        raise QuerySyntaxError(str(exc), option=option) from None
    except RecursionError:  # pragma: no cover - defensive
        raise QuerySyntaxError("query nested too deeply", option=option) from None
    except (ValueError, OverflowError) as exc:  # pragma: no cover - defensive
        raise QuerySyntaxError(f"invalid value: {exc}", option=option) from None
    if option in ("$filter", "$orderby", "$expand"):
        _check_depth(result, option)
    return result


_parse_cached = functools.lru_cache(maxsize=_CACHE_SIZE)(_parse_uncached)


def parse_filter(text: str) -> Expr:
    """Parse a ``$filter`` value (already URL-decoded) into an expression."""
    return _parse(text, "$filter")  # type: ignore[no-any-return]


def parse_orderby(text: str) -> tuple[OrderItem, ...]:
    """Parse an ``$orderby`` value: comma-separated expressions with optional asc/desc."""
    return _parse(text, "$orderby")  # type: ignore[no-any-return]


def parse_select(text: str) -> tuple[Path, ...]:
    """Parse a ``$select`` value: comma-separated member paths."""
    return _parse(text, "$select")  # type: ignore[no-any-return]


def parse_expand(text: str) -> tuple[ExpandItem, ...]:
    """Parse an ``$expand`` value, including nested ``(...;...)`` options."""
    return _parse(text, "$expand")  # type: ignore[no-any-return]


def parse_query_options(params: Mapping[str, str]) -> QueryOptions:
    """Parse and validate the system query options among decoded URL query parameters.

    Keys not starting with ``$`` are ignored; option names are case-insensitive.  If
    ``params`` has ``multi_items()`` (Starlette's ``QueryParams``), repeated options are
    detected and rejected.
    """
    multi_items = getattr(params, "multi_items", None)
    pairs: Iterable[tuple[str, str]] = multi_items() if callable(multi_items) else params.items()
    items: list[tuple[str, Any, int | None]] = []
    seen: set[str] = set()
    for key, raw in pairs:
        if not key.startswith("$"):
            continue
        option = _CANONICAL_OPTION.get(key.lower())
        if option is None:
            raise QuerySyntaxError(
                f"unknown query option {_shorten(key)!r}",
                option=key,
                expected=list(QUERY_OPTIONS),
            )
        if option in seen:
            raise QuerySyntaxError(f"duplicate query option {option!r}", option=option)
        seen.add(option)
        if option == "$skiptoken":
            if _SKIPTOKEN.fullmatch(raw) is None:
                raise QuerySyntaxError(
                    "not a page position this server made; follow @iot.nextLink as given",
                    option=option,
                )
            items.append((option, raw, None))
            continue
        items.append((option, _parse(raw, option), None))
    return _build_options(items)


def canonical_option(name: str) -> str | None:
    """The canonical spelling of a system query option (``$TOP`` -> ``$top``), or None."""
    return _CANONICAL_OPTION.get(name.lower())
