"""Tests for the SensorThings / OData query-option parser and printer."""

from __future__ import annotations

import contextlib
import datetime as dt
import pickle
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ortspuls.query import (
    FUNCTION_ARITY,
    MAX_DEPTH,
    Binary,
    Call,
    ExpandItem,
    Expr,
    In,
    Literal,
    OrderItem,
    Path,
    QueryOptions,
    QuerySyntaxError,
    Unary,
    expand_to_text,
    options_to_params,
    parse_expand,
    parse_filter,
    parse_orderby,
    parse_query_options,
    parse_select,
    to_text,
)

UTC = dt.UTC


def p(*segments: str) -> Path:
    return Path(segments)


def lit(value: object, kind: str) -> Literal:
    return Literal(value, kind)  # type: ignore[arg-type]


def i(value: int) -> Literal:
    return Literal(value, "int")


def s(value: str) -> Literal:
    return Literal(value, "string")


# ----------------------------------------------------------------------------- operators


@pytest.mark.parametrize("op", ["eq", "ne", "gt", "ge", "lt", "le"])
def test_comparison_operators(op: str) -> None:
    assert parse_filter(f"result {op} 5") == Binary(op, p("result"), i(5))  # type: ignore[arg-type]


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "mod"])
def test_arithmetic_operators(op: str) -> None:
    assert parse_filter(f"a {op} 2") == Binary(op, p("a"), i(2))  # type: ignore[arg-type]


@pytest.mark.parametrize("op", ["and", "or"])
def test_logical_operators(op: str) -> None:
    expected = Binary(op, Binary("eq", p("a"), i(1)), Binary("eq", p("b"), i(2)))  # type: ignore[arg-type]
    assert parse_filter(f"a eq 1 {op} b eq 2") == expected


def test_not_and_negation() -> None:
    assert parse_filter("not done") == Unary("not", p("done"))
    assert parse_filter("not(a eq 1)") == Unary("not", Binary("eq", p("a"), i(1)))
    assert parse_filter("-x") == Unary("neg", p("x"))
    assert parse_filter("- 3") == Unary("neg", i(3))
    assert parse_filter("-(3)") == Unary("neg", i(3))
    assert parse_filter("--x") == Unary("neg", Unary("neg", p("x")))
    assert parse_filter("not not x") == Unary("not", Unary("not", p("x")))


def test_operators_case_insensitive() -> None:
    assert parse_filter("a EQ 1 AND NOT b Or c Gt 2") == parse_filter("a eq 1 and not b or c gt 2")


def test_keywords_are_names_where_an_operand_is_expected() -> None:
    # contextual lexing: like OData, a keyword is only a keyword where it can stand
    assert parse_filter("and eq or") == Binary("eq", p("and"), p("or"))
    assert parse_filter("properties/in") == p("properties", "in")


def test_keyword_prefixes_are_names() -> None:
    # "andy" / "order" / "notable" / "index" are names, not keywords followed by something
    assert parse_filter("andy eq 1") == Binary("eq", p("andy"), i(1))
    assert parse_filter("notable eq order") == Binary("eq", p("notable"), p("order"))
    assert parse_filter("index in (1)") == In(p("index"), (i(1),))
    with pytest.raises(QuerySyntaxError):
        parse_filter("a eq 1 andy eq 2")


def test_in_operator() -> None:
    assert parse_filter("id in (1, 2, 3)") == In(p("id"), (i(1), i(2), i(3)))
    assert parse_filter("name in ('a')") == In(p("name"), (s("a"),))
    assert parse_filter("id in (1,2) and x eq 1") == Binary(
        "and", In(p("id"), (i(1), i(2))), Binary("eq", p("x"), i(1))
    )
    with pytest.raises(QuerySyntaxError):
        parse_filter("id in ()")
    with pytest.raises(QuerySyntaxError):
        parse_filter("id in 1")


# ----------------------------------------------------------------------------- precedence


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a or b and c", Binary("or", p("a"), Binary("and", p("b"), p("c")))),
        ("a and b or c", Binary("or", Binary("and", p("a"), p("b")), p("c"))),
        ("a eq 1 and b", Binary("and", Binary("eq", p("a"), i(1)), p("b"))),
        ("a add b eq c", Binary("eq", Binary("add", p("a"), p("b")), p("c"))),
        ("a add b mul c", Binary("add", p("a"), Binary("mul", p("b"), p("c")))),
        ("a mul b add c", Binary("add", Binary("mul", p("a"), p("b")), p("c"))),
        ("a sub b sub c", Binary("sub", Binary("sub", p("a"), p("b")), p("c"))),
        ("a div b mod c", Binary("mod", Binary("div", p("a"), p("b")), p("c"))),
        ("a sub (b sub c)", Binary("sub", p("a"), Binary("sub", p("b"), p("c")))),
        ("-a mul b", Binary("mul", Unary("neg", p("a")), p("b"))),
        ("not a eq b", Binary("eq", Unary("not", p("a")), p("b"))),
        ("not a and b", Binary("and", Unary("not", p("a")), p("b"))),
        ("(a or b) and c", Binary("and", Binary("or", p("a"), p("b")), p("c"))),
        ("a eq b eq c", Binary("eq", Binary("eq", p("a"), p("b")), p("c"))),
        ("a or b or c", Binary("or", Binary("or", p("a"), p("b")), p("c"))),
        ("((a))", p("a")),
    ],
)
def test_precedence(text: str, expected: Expr) -> None:
    assert parse_filter(text) == expected


# ----------------------------------------------------------------------------- literals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'abc'", s("abc")),
        ("''", s("")),
        ("'it''s'", s("it's")),
        ("''''", s("'")),
        ("'Pegel Mühlbach'", s("Pegel Mühlbach")),
        ("'a;b,c)d(e $top=1'", s("a;b,c)d(e $top=1")),
        ("42", i(42)),
        ("-3", i(-3)),
        ("0", i(0)),
        ("7L", i(7)),
        ("1.5", lit(1.5, "float")),
        ("-2.25", lit(-2.25, "float")),
        ("1e3", lit(1000.0, "float")),
        ("1.5E-2", lit(0.015, "float")),
        ("2e+2", lit(200.0, "float")),
        ("1.5d", lit(1.5, "float")),
        ("1.5f", lit(1.5, "float")),
        ("2.5m", lit(2.5, "float")),
        ("3d", lit(3.0, "float")),
        ("true", lit(True, "bool")),
        ("FALSE", lit(False, "bool")),
        ("null", lit(None, "null")),
        ("2024-01-01T00:00:00Z", lit(dt.datetime(2024, 1, 1, tzinfo=UTC), "datetime")),
        (
            "2024-01-01T12:30:15.250Z",
            lit(dt.datetime(2024, 1, 1, 12, 30, 15, 250000, tzinfo=UTC), "datetime"),
        ),
        ("2024-01-01T01:00:00+01:00", lit(dt.datetime(2024, 1, 1, tzinfo=UTC), "datetime")),
        ("2024-01-01T00:00:00-02:30", lit(dt.datetime(2024, 1, 1, 2, 30, tzinfo=UTC), "datetime")),
        # '+' decoded to ' ' by application/x-www-form-urlencoded
        ("2024-01-01T01:00:00 01:00", lit(dt.datetime(2024, 1, 1, tzinfo=UTC), "datetime")),
        ("2024-01-01T00:00", lit(dt.datetime(2024, 1, 1, tzinfo=UTC), "datetime")),
        ("2024-01-01T00:00:00", lit(dt.datetime(2024, 1, 1, tzinfo=UTC), "datetime")),
        ("2024-02-29", lit(dt.date(2024, 2, 29), "date")),
        ("12:00:00", lit(dt.time(12, 0), "time")),
        ("23:59:59.5", lit(dt.time(23, 59, 59, 500000), "time")),
        ("08:15", lit(dt.time(8, 15), "time")),
        ("duration'P1DT2H'", lit(dt.timedelta(days=1, hours=2), "duration")),
        ("duration'PT30M'", lit(dt.timedelta(minutes=30), "duration")),
        ("duration'PT1.5S'", lit(dt.timedelta(seconds=1.5), "duration")),
        ("duration'P2W'", lit(dt.timedelta(weeks=2), "duration")),
        ("duration'-P1D'", lit(dt.timedelta(days=-1), "duration")),
        ("Duration'P0D'", lit(dt.timedelta(0), "duration")),
        ("geography'POINT(8 50)'", lit("POINT(8 50)", "geography")),
        (
            "geography'POLYGON((7.5 51.5, 7.5 53.5, 8.5 53.5, 7.5 51.5))'",
            lit("POLYGON((7.5 51.5, 7.5 53.5, 8.5 53.5, 7.5 51.5))", "geography"),
        ),
        ("geometry'POINT(1 2)'", lit("POINT(1 2)", "geography")),
    ],
)
def test_literals(text: str, expected: Literal) -> None:
    result = parse_filter(text)
    assert result == expected
    assert isinstance(result, Literal)
    assert type(result.value) is type(expected.value)
    if isinstance(result.value, dt.datetime):
        assert result.value.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2024-13-01T00:00:00Z",
        "2024-02-30",
        "25:00:00",
        "duration'P1Y'",
        "duration'P1M'",
        "duration'P'",
        "duration'PT'",
        "duration'P1DT'",
        "duration'nonsense'",
        "1e999",
        "0001-01-01T00:00:00+01:00",
        "'unterminated",
        "1.5.3",
        "12abc",
    ],
)
def test_invalid_literals(text: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_filter(f"x eq {text}")
    assert info.value.option == "$filter"
    assert info.value.position is not None and info.value.position >= 6


def test_negative_literal_in_expression() -> None:
    assert parse_filter("x add -3") == Binary("add", p("x"), i(-3))
    assert parse_filter("x gt -1.5") == Binary("gt", p("x"), lit(-1.5, "float"))


# ----------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("name", ("name",)),
        ("Datastream/Thing/name", ("Datastream", "Thing", "name")),
        ("properties/kind", ("properties", "kind")),
        ("properties/a/b", ("properties", "a", "b")),
        ("result", ("result",)),
        ("@iot.id", ("@iot.id",)),
        ("id", ("id",)),
        ("Thing/@iot.id", ("Thing", "@iot.id")),
        ("properties/Größe", ("properties", "Größe")),
        ("properties/snake_case_2", ("properties", "snake_case_2")),
        ("PhenomenonTime", ("PhenomenonTime",)),
        ("Datastream / Thing", ("Datastream", "Thing")),
    ],
)
def test_paths(text: str, segments: tuple[str, ...]) -> None:
    result = parse_filter(text)
    assert result == Path(segments)
    assert isinstance(result, Path)
    assert all(type(seg) is str for seg in result.segments)


def test_path_named_like_function_is_a_path() -> None:
    assert parse_filter("time eq 12:00:00") == Binary("eq", p("time"), lit(dt.time(12), "time"))
    assert parse_filter("time(phenomenonTime) eq 12:00") == Binary(
        "eq", Call("time", (p("phenomenonTime"),)), lit(dt.time(12), "time")
    )


# ----------------------------------------------------------------------------- functions


def _args(n: int) -> str:
    return ", ".join(f"a{k}" for k in range(n))


@pytest.mark.parametrize("name", sorted(FUNCTION_ARITY))
def test_every_function_with_valid_and_invalid_arity(name: str) -> None:
    low, high = FUNCTION_ARITY[name]
    for n in range(low, high + 1):
        expected = Call(name, tuple(p(f"a{k}") for k in range(n)))
        assert parse_filter(f"{name}({_args(n)})") == expected
        assert parse_filter(f"{name.upper()}( {_args(n)} )") == expected
    for n in {low - 1, high + 1} - {-1}:
        with pytest.raises(QuerySyntaxError) as info:
            parse_filter(f"x eq {name}({_args(n)})")
        assert info.value.position == 6
        assert name in str(info.value)


def test_function_arities() -> None:
    assert FUNCTION_ARITY["substring"] == (2, 3)
    assert FUNCTION_ARITY["st_relate"] == (3, 3)
    assert FUNCTION_ARITY["now"] == (0, 0)
    assert FUNCTION_ARITY["geo.distance"] == (2, 2)


def test_unknown_function() -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_filter("name eq frobnicate(name)")
    assert info.value.position == 9
    assert "frobnicate" in str(info.value)
    assert "startswith" in info.value.expected


def test_nested_function_calls() -> None:
    assert parse_filter(
        "geo.distance(location, geography'POINT(8 50)') lt 0.1 and startswith(tolower(name), 'peg')"
    ) == Binary(
        "and",
        Binary(
            "lt",
            Call("geo.distance", (p("location"), lit("POINT(8 50)", "geography"))),
            lit(0.1, "float"),
        ),
        Call("startswith", (Call("tolower", (p("name"),)), s("peg"))),
    )
    assert parse_filter("substring(name, 1, 2) eq 'eg'") == Binary(
        "eq", Call("substring", (p("name"), i(1), i(2))), s("eg")
    )
    assert parse_filter("st_relate(location, geography'POINT(1 1)', 'T********')") == Call(
        "st_relate", (p("location"), lit("POINT(1 1)", "geography"), s("T********"))
    )
    assert parse_filter("now() sub duration'P1D' lt phenomenonTime") == Binary(
        "lt",
        Binary("sub", Call("now", ()), lit(dt.timedelta(days=1), "duration")),
        p("phenomenonTime"),
    )


def test_whitespace_tolerance() -> None:
    assert parse_filter("  a   eq\t1\nand\r\nb eq ( 2 )  ") == parse_filter("a eq 1 and b eq 2")
    assert parse_filter("startswith( name ,'x' )") == Call("startswith", (p("name"), s("x")))


# ----------------------------------------------------------------------------- orderby/select


def test_orderby() -> None:
    assert parse_orderby("id") == (OrderItem(p("id"), False),)
    assert parse_orderby("phenomenonTime desc, id ASC,name") == (
        OrderItem(p("phenomenonTime"), True),
        OrderItem(p("id"), False),
        OrderItem(p("name"), False),
    )
    assert parse_orderby("length(name) desc") == (OrderItem(Call("length", (p("name"),)), True),)
    assert parse_orderby("result add 1") == (OrderItem(Binary("add", p("result"), i(1))),)
    # keywords only where an operator may stand: a lone "desc" is a member name
    assert parse_orderby("desc desc") == (OrderItem(p("desc"), True),)
    for bad in ["", "id,", "id desc asc", "id desc desc", ",id"]:
        with pytest.raises(QuerySyntaxError):
            parse_orderby(bad)


def test_select() -> None:
    assert parse_select("id,name") == (p("id"), p("name"))
    assert parse_select(" @iot.id , properties/kind ") == (
        p("@iot.id"),
        p("properties", "kind"),
    )
    for bad in ["", "id,", "name eq 1", "'x'", "a,,b"]:
        with pytest.raises(QuerySyntaxError):
            parse_select(bad)


# ----------------------------------------------------------------------------- expand


def test_expand_simple_and_paths() -> None:
    assert parse_expand("Datastreams") == (ExpandItem(("Datastreams",)),)
    assert parse_expand("Datastreams/Thing, Locations") == (
        ExpandItem(("Datastreams", "Thing")),
        ExpandItem(("Locations",)),
    )


def test_expand_nested_options() -> None:
    text = (
        "Datastreams($filter=name eq 'a;b';$select=id,name;$orderby=id desc;$top=2;$skip=1;"
        "$count=true;$expand=Observations($top=1)),Thing($select=name)"
    )
    assert parse_expand(text) == (
        ExpandItem(
            ("Datastreams",),
            QueryOptions(
                filter=Binary("eq", p("name"), s("a;b")),
                select=(p("id"), p("name")),
                orderby=(OrderItem(p("id"), True),),
                top=2,
                skip=1,
                count=True,
                expand=(ExpandItem(("Observations",), QueryOptions(top=1)),),
            ),
        ),
        ExpandItem(("Thing",), QueryOptions(select=(p("name"),))),
    )


def test_expand_string_literals_do_not_split() -> None:
    (item,) = parse_expand("Datastreams($filter=name eq 'x),(;y''z' or id in (1,2))")
    assert item.options.filter == Binary(
        "or", Binary("eq", p("name"), s("x),(;y'z")), In(p("id"), (i(1), i(2)))
    )


def test_expand_deep_and_mixed() -> None:
    result = parse_expand(
        "Things( $expand = Datastreams( $expand=Sensor,ObservedProperty ; $top=3 ) ; "
        "$COUNT=false ),"
        "Datastreams/Observations($orderby=phenomenonTime desc;$resultFormat=dataArray)"
    )
    assert result == (
        ExpandItem(
            ("Things",),
            QueryOptions(
                count=False,
                expand=(
                    ExpandItem(
                        ("Datastreams",),
                        QueryOptions(
                            top=3,
                            expand=(ExpandItem(("Sensor",)), ExpandItem(("ObservedProperty",))),
                        ),
                    ),
                ),
            ),
        ),
        ExpandItem(
            ("Datastreams", "Observations"),
            QueryOptions(
                orderby=(OrderItem(p("phenomenonTime"), True),), result_format="dataArray"
            ),
        ),
    )


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("Datastreams($foo=1)", 13, "'$foo'"),
        ("Datastreams($top=1;$top=2)", 20, "duplicate"),
        ("Datastreams($top=-1)", 18, "non-negative integer"),
        ("Datastreams($top=x)", 18, "non-negative integer"),
        ("Datastreams($count=yes)", 20, "'true'"),
        ("Datastreams($filter=name eq)", 28, "unexpected ')'"),
        ("Datastreams()", 13, "'$filter'"),
        ("Datastreams(", 13, "end of input"),
        ("Datastreams($top=1", 19, "end of input"),
        ("Datastreams,", 13, "end of input"),
        ("Datastreams($filter=foo(1))", 21, "unknown function"),
    ],
)
def test_expand_errors(text: str, position: int, fragment: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_expand(text)
    assert info.value.option == "$expand"
    assert info.value.position == position
    assert fragment in str(info.value)


# ----------------------------------------------------------------------------- query options


def test_parse_query_options_all() -> None:
    result = parse_query_options(
        {
            "$filter": "result gt 5",
            "$select": "id,result",
            "$orderby": "phenomenonTime desc",
            "$top": "10",
            "$skip": "20",
            "$count": "true",
            "$expand": "Datastream($select=name)",
            "$resultFormat": "dataArray",
            "foo": "ignored",
            "page": "$top",
        }
    )
    assert result == QueryOptions(
        filter=Binary("gt", p("result"), i(5)),
        select=(p("id"), p("result")),
        orderby=(OrderItem(p("phenomenonTime"), True),),
        top=10,
        skip=20,
        count=True,
        expand=(ExpandItem(("Datastream",), QueryOptions(select=(p("name"),))),),
        result_format="dataArray",
    )


def test_parse_query_options_defaults() -> None:
    assert parse_query_options({}) == QueryOptions()
    assert parse_query_options({"x": "y"}) == QueryOptions()
    assert parse_query_options({"$count": "FALSE", "$top": " 0 "}) == QueryOptions(
        count=False, top=0
    )
    assert parse_query_options({"$Filter": "a eq 1"}).filter == Binary("eq", p("a"), i(1))


@pytest.mark.parametrize(
    ("params", "option"),
    [
        ({"$top": "-1"}, "$top"),
        ({"$top": "1.5"}, "$top"),
        ({"$top": ""}, "$top"),
        ({"$top": "ten"}, "$top"),
        ({"$skip": "-5"}, "$skip"),
        ({"$count": "yes"}, "$count"),
        ({"$count": ""}, "$count"),
        ({"$filter": ""}, "$filter"),
        ({"$filter": "name eq"}, "$filter"),
        ({"$select": ""}, "$select"),
        ({"$orderby": "id sideways"}, "$orderby"),
        ({"$expand": ""}, "$expand"),
        ({"$resultFormat": ""}, "$resultFormat"),
        ({"$frobnicate": "1"}, "$frobnicate"),
        ({"$": "1"}, "$"),
        ({"$filter": "a eq 1", "$FILTER": "b eq 2"}, "$filter"),
    ],
)
def test_parse_query_options_errors(params: dict[str, str], option: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_query_options(params)
    assert info.value.option == option
    assert str(info.value).startswith(f"{option}: ")


def test_unknown_option_names_option() -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_query_options({"$frobnicate": "1"})
    assert "$frobnicate" in str(info.value)
    assert "$filter" in info.value.expected


def test_parse_query_options_multi_items() -> None:
    class MultiDict(dict[str, str]):
        def __init__(self, pairs: list[tuple[str, str]]) -> None:
            super().__init__(pairs)
            self.pairs = pairs

        def multi_items(self) -> list[tuple[str, str]]:
            return self.pairs

    with pytest.raises(QuerySyntaxError, match="duplicate"):
        parse_query_options(MultiDict([("$top", "1"), ("$top", "2")]))
    assert parse_query_options(MultiDict([("$top", "1"), ("a", "1"), ("a", "2")])).top == 1


# ----------------------------------------------------------------------------- errors


def test_error_message_and_attributes() -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_filter("name eq 'x' xyz")
    err = info.value
    assert isinstance(err, ValueError)
    assert err.option == "$filter"
    assert err.position == 13
    assert {"'and'", "'or'", "end of input"} <= set(err.expected)
    assert str(err).startswith("$filter: unexpected 'xyz' at position 13; expected one of: ")


def test_error_positions() -> None:
    cases = {
        "": 1,
        "name eq": 8,
        "(a eq 1": 8,
        "a eq 1)": 7,
        "a # 1": 3,
        "name eq 'open": 9,
        "a eq 1 and )": 12,
        "x eq 2024-13-01": 6,
    }
    for text, position in cases.items():
        with pytest.raises(QuerySyntaxError) as info:
            parse_filter(text)
        assert info.value.position == position, text


def test_expected_set_is_precise_after_reductions() -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_filter("(a eq 1")
    assert {"')'", "'and'", "'or'", "'add'"} <= set(info.value.expected)
    assert "end of input" not in info.value.expected


def test_unterminated_string_message() -> None:
    with pytest.raises(QuerySyntaxError, match="unterminated string literal at position 6"):
        parse_filter("a eq 'b")


def test_error_is_picklable() -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_filter("a eq")
    clone = pickle.loads(pickle.dumps(info.value))
    assert (clone.option, clone.position, clone.expected, str(clone)) == (
        info.value.option,
        info.value.position,
        info.value.expected,
        str(info.value),
    )


def test_absurd_nesting_is_a_syntax_error() -> None:
    # redundant parentheses create no nodes
    assert parse_filter("(" * 10_000 + "a" + ")" * 10_000) == p("a")
    for text in [
        "(" * 10_000 + "a",
        "not " * 5_000 + "a",
        "-" * 5_000 + "a",
        "a eq 1" + " or a eq 1" * (MAX_DEPTH + 5),
        "x in (" * 1_000,
        "A($expand=" * 50 + "B" + ")" * 50,
    ]:
        with pytest.raises(QuerySyntaxError):
            parse_query_options({"$filter" if "$expand" not in text else "$expand": text})


def test_depth_limit_allows_reasonable_nesting() -> None:
    text = "a eq 1" + " or a eq 1" * (MAX_DEPTH - 10)
    assert isinstance(parse_filter(text), Binary)
    assert parse_expand("A($expand=B($expand=C($expand=D)))")[0].path == ("A",)


def test_huge_integer_is_syntax_error() -> None:
    with pytest.raises(QuerySyntaxError):
        parse_filter("x eq " + "9" * 10_000)


# ----------------------------------------------------------------------------- printer


@pytest.mark.parametrize(
    "text",
    [
        "Datastream/Thing/name eq 'Pegel Mühlbach' and phenomenonTime ge 2024-01-01T00:00:00Z",
        "a sub (b sub c)",
        "(a or b) and not (c eq 1)",
        "-(3) add -3 mul -x",
        "not (a in (1, 2)) or (a eq b) eq c",
        "a eq (b eq c)",
        "substring(name, 1, 2) eq 'it''s'",
        "geo.distance(location, geography'POINT(8 50)') lt 1.5e-07",
        "d eq 2024-01-01 or t eq 12:00:00.5 or x eq duration'-P1DT0.5S'",
        "now() gt maxdatetime() and x eq null and y eq true",
    ],
)
def test_printer_round_trip_examples(text: str) -> None:
    expr = parse_filter(text)
    assert parse_filter(to_text(expr)) == expr


def test_printer_output() -> None:
    assert to_text(parse_filter("a  eq 1 AND (b OR c)")) == "a eq 1 and (b or c)"
    assert to_text(Unary("neg", i(3))) == "-(3)"
    assert to_text(i(-3)) == "-3"
    assert (
        to_text(
            lit(dt.datetime(2024, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))), "datetime")
        )
        == "2024-01-01T00:00:00Z"
    )
    assert to_text(lit(dt.timedelta(days=1, hours=2), "duration")) == "duration'P1DT2H'"


def test_options_round_trip() -> None:
    params = {
        "$filter": "result gt 5 and name eq 'x;y'",
        "$select": "id,result",
        "$orderby": "phenomenonTime desc,id",
        "$top": "10",
        "$skip": "0",
        "$count": "false",
        "$expand": "Datastream($select=name;$expand=Thing($top=1;$filter=id eq 2)),Sensor",
        "$resultFormat": "dataArray",
    }
    options = parse_query_options(params)
    printed = options_to_params(options)
    assert parse_query_options(printed) == options
    assert printed["$expand"] == expand_to_text(options.expand)
    assert printed["$orderby"] == "phenomenonTime desc,id"


# ----------------------------------------------------------------------------- properties

_KEYWORDS = {
    "and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "add", "sub", "mul", "div", "mod",
    "in", "asc", "desc", "true", "false", "null", "duration", "geography", "geometry",
}  # fmt: skip

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True).filter(
    lambda n: n.lower() not in _KEYWORDS
)
paths = st.one_of(
    st.lists(names, min_size=1, max_size=3).map(lambda segs: Path(tuple(segs))),
    st.just(Path(("@iot.id",))),
    names.map(lambda n: Path(("Thing", "@iot.id", n))),
)
literals = st.one_of(
    st.text(max_size=8).map(lambda v: Literal(v, "string")),
    st.integers(min_value=-(10**20), max_value=10**20).map(lambda v: Literal(v, "int")),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: Literal(v, "float")),
    st.booleans().map(lambda v: Literal(v, "bool")),
    st.just(Literal(None, "null")),
    st.datetimes(
        min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(UTC)
    ).map(lambda v: Literal(v, "datetime")),
    st.dates().map(lambda v: Literal(v, "date")),
    st.times().map(lambda v: Literal(v, "time")),
    st.timedeltas().map(lambda v: Literal(v, "duration")),
    st.text(alphabet=string.ascii_uppercase + "0123456789 ().,'", max_size=20).map(
        lambda v: Literal(v, "geography")
    ),
)


def _calls(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    def build(name: str) -> st.SearchStrategy[Expr]:
        low, high = FUNCTION_ARITY[name]
        return st.lists(children, min_size=low, max_size=high).map(
            lambda args: Call(name, tuple(args))
        )

    return st.sampled_from(sorted(FUNCTION_ARITY)).flatmap(build)


_BINARY_OPS = ["eq", "ne", "gt", "ge", "lt", "le", "and", "or", "add", "sub", "mul", "div", "mod"]

exprs: st.SearchStrategy[Expr] = st.recursive(
    st.one_of(literals, paths),
    lambda children: st.one_of(
        st.builds(Unary, st.sampled_from(["not", "neg"]), children),
        st.builds(Binary, st.sampled_from(_BINARY_OPS), children, children),
        st.builds(In, children, st.lists(children, min_size=1, max_size=3).map(tuple)),
        _calls(children),
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exprs)
def test_round_trip_generated_asts(expr: Expr) -> None:
    text = to_text(expr)
    assert parse_filter(text) == expr, text


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(paths, st.booleans()), min_size=1, max_size=3),
    st.lists(paths, min_size=1, max_size=3),
    st.one_of(st.none(), exprs),
    st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_round_trip_generated_options(
    order: list[tuple[Path, bool]], select: list[Path], flt: Expr | None, top: int | None
) -> None:
    inner = QueryOptions(filter=flt, top=top, select=tuple(select))
    options = QueryOptions(
        filter=flt,
        orderby=tuple(OrderItem(path, desc) for path, desc in order),
        expand=(ExpandItem(("Datastreams",), inner), ExpandItem(("Thing", "Locations"))),
    )
    assert parse_query_options(options_to_params(options)) == options


_PARSERS = [parse_filter, parse_orderby, parse_select, parse_expand]


def _never_crashes(text: str) -> None:
    for parse in _PARSERS:
        try:
            parse(text)
        except QuerySyntaxError as exc:
            assert exc.option in {"$filter", "$orderby", "$select", "$expand"}
            assert exc.position is None or 1 <= exc.position <= len(text) + 1
    with contextlib.suppress(QuerySyntaxError):
        parse_query_options({"$top": text, "$count": text, "$resultFormat": text})


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_never_crashes(text: str) -> None:
    _never_crashes(text)


_TOKENS = [
    "name", "Datastream/Thing/name", "@iot.id", "properties/kind", "(", ")", ",", ";", "/", "-",
    "'x'", "'a''b'", "'", "''", "eq", "ne", "gt", "and", "or", "not", "in", "add", "mul", "mod",
    "asc", "desc", "true", "null", "0", "-3", "1.5", "1e3", "1e999", "99999999999999999999",
    "2024-01-01T00:00:00Z", "2024-99-01T00:00:00+01:00", "2024-01-01", "12:00:00", "99:99:99",
    "duration'P1D'", "duration'P1Y'", "duration'-PT1.5S'", "geography'POINT(8 50)'",
    "substring", "substring(", "st_relate(", "now()", "geo.distance", "foo(", "$filter=", "$top=",
    "$top=1", "$expand=", "$count=true", "$foo=", "Datastreams(", "=", "$", "#", "ü", "\x00",
    "\n", " ",
]  # fmt: skip


@settings(max_examples=800, deadline=None)
@given(
    st.lists(st.sampled_from(_TOKENS), max_size=25),
    st.sampled_from(["", " "]),
)
def test_grammar_shaped_text_never_crashes(tokens: list[str], sep: str) -> None:
    _never_crashes(sep.join(tokens))
