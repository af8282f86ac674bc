"""Generated valid filters give the same rows on the server as a straightforward Python
evaluation of the same filter on the same small dataset.

Hypothesis builds typed filter ASTs over the members of Observations and Things (numbers,
strings, times, booleans, `result` and JSON paths whose type is only known per row), prints them
with the query printer and sends them to the real server. The reference evaluator below reads
the same AST and follows OData's two-valued logic:

- a comparison with null is false, except `eq null`/`ne null`; `ne` is true when exactly one
  side is null; `not` of a false-by-null comparison is true;
- a value whose type is only known per row (`result`, `properties/x`, `parameters/x`) takes the
  type the other side asks for: a number compared with a string is simply not equal, never an
  error;
- arithmetic and functions of null are null; division (and mod) by zero is null.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.query.conftest import World, geometry, ok

from ortspuls.query import (
    FUNCTION_ARITY,
    Binary,
    Call,
    Expr,
    In,
    Literal,
    Path,
    Unary,
    parse_filter,
    to_text,
)

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# ------------------------------------------------------------------------------ the dataset

# (result, phenomenonTime, resultTime, parameters)
OBSERVATIONS = [
    (1, "2024-03-01T10:15:30.250Z", "2024-03-01T10:16:00Z", {"n": 1, "s": "abc", "flag": True}),
    (2.5, "2024-03-02T00:00:00Z", None, {"n": 2.5}),
    (-3, "2023-12-31T23:59:59Z", None, {"n": "3", "s": "Ärger"}),
    (0, "2024-06-15T12:00:00Z", "2024-06-15T12:00:00Z", {"flag": False}),
    (7, "2025-01-01T00:00:00Z", None, None),
    ("abc", "2024-03-01T10:15:30Z", None, {"s": "a'b", "n": 0}),
    ("Ärger", "2024-02-29T23:00:00Z", "2024-03-01T00:00:00Z", {"s": "", "n": -1.5}),
    ("", "2024-01-01T06:30:00Z", None, {"s": " x ", "flag": "yes"}),
    (None, "2024-07-04T18:45:10Z", None, {"n": 10}),
    (True, "2024-03-01T10:15:30.250Z", None, {"s": "ABC"}),
    (False, "2024-05-05T05:05:05.500Z", None, {"n": True}),
    ({"a": 1}, "2024-08-08T08:08:08Z", None, {"n": None}),
]

# (name, description, properties)
THINGS = [
    ("abc", "x", {"kind": "a", "level": 3, "active": True}),
    ("Abc", "ä", {"kind": "b", "level": 2.5, "active": False}),
    ("äbc ", " x", {"kind": "A", "level": "3"}),
    ("x'y", "", {"level": None, "active": "true"}),
    ("", "abc", {"kind": 5, "level": -1}),
    (" a ", "ÄX", {"kind": "", "level": 0, "active": True}),
    ("ba", "ab", {}),
]

TIMES = sorted({t(o[1]) for o in OBSERVATIONS} | {t(o[2]) for o in OBSERVATIONS if o[2]}
               | {t("2024-03-01T00:00:00Z"), t("2024-06-01T00:00:00Z")})


@dataclass
class Dataset:
    world: World
    datastream: int
    observations: dict[int, dict[str, Any]]  # id -> members
    things: dict[int, dict[str, Any]]


@pytest.fixture(scope="module")
def dataset(new_world) -> Dataset:
    w = new_world()
    thing = w.thing("Referenz", location=geometry("Point", [8.0, 49.0]))
    ds = w.datastream(thing, "referenz")
    observations = {}
    for n, (result, phenomenon, result_time, parameters) in enumerate(OBSERVATIONS):
        extra: dict[str, Any] = {}
        if result_time is not None:
            extra["resultTime"] = result_time
        if parameters is not None:
            extra["parameters"] = parameters
        obs = w.observation(ds, f"r{n}", result, phenomenon, **extra)
        observations[obs["@iot.id"]] = {
            "result": result, "phenomenonTime": t(phenomenon),
            "resultTime": t(result_time) if result_time else None,
            "parameters": parameters}
    things = {}
    for name, description, properties in THINGS:
        suite = {"suite": w.suite + "-ref"}
        created = w.post("/Things", {"name": name, "description": description,
                                     "properties": {**suite, **properties}})
        things[created["@iot.id"]] = {"name": name, "description": description,
                                      "properties": {**suite, **properties}}
    return Dataset(w, ds["@iot.id"], observations, things)


# ------------------------------------------------------------------------- the reference

NUMBER, STRING, BOOL, TIME, DYNAMIC, NULL, DATE, CLOCK = (
    "number", "string", "bool", "time", "dynamic", "null", "date", "clock")
TYPED_MEMBERS = {"name": STRING, "description": STRING, "phenomenonTime": TIME,
                 "resultTime": TIME}
STRING_FUNCTIONS = {"tolower", "toupper", "trim", "concat", "substring"}
NUMBER_FUNCTIONS = {"length", "indexof", "round", "floor", "ceiling", "year", "month", "day",
                    "hour", "minute", "second", "fractionalseconds"}


def kind_of(expr: Expr) -> str:
    match expr:
        case Literal(kind="int" | "float"):
            return NUMBER
        case Literal(kind="string"):
            return STRING
        case Literal(kind="bool"):
            return BOOL
        case Literal(kind="null"):
            return NULL
        case Literal(kind="datetime"):
            return TIME
        case Literal(kind="date"):
            return DATE
        case Literal(kind="time"):
            return CLOCK
        case Path(segments=segments):
            return TYPED_MEMBERS.get(segments[0], DYNAMIC)
        case Call(name=name):
            if name in STRING_FUNCTIONS:
                return STRING
            if name in NUMBER_FUNCTIONS:
                return NUMBER
            return {"date": DATE, "time": CLOCK}.get(name, BOOL)
        case Binary(op="add" | "sub", left=left) if kind_of(left) == TIME:
            return TIME
        case Binary(op="add" | "sub" | "mul" | "div" | "mod") | Unary(op="neg"):
            return NUMBER
    return BOOL


def as_kind(value: Any, kind: str) -> Any:
    """A per-row value seen as `kind`: None where it has another type."""
    if kind == NUMBER:
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if kind == STRING:
        return value if isinstance(value, str) else None
    if kind == BOOL:
        return value if isinstance(value, bool) else None
    return value


def member(row: dict[str, Any], segments: tuple[str, ...]) -> Any:
    value: Any = row.get(segments[0])
    for part in segments[1:]:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def value_of(expr: Expr, row: dict[str, Any], want: str | None = None) -> Any:
    """Evaluate a value expression; a per-row typed value is coerced to `want`."""
    match expr:
        case Literal(value=value):
            return value
        case Path(segments=segments):
            value = member(row, segments)
            return as_kind(value, want) if want and kind_of(expr) == DYNAMIC else value
        case Unary(op="neg", operand=operand):
            value = value_of(operand, row, NUMBER)
            return None if value is None else -value
        case Binary(op="add" | "sub", left=left, right=right) if kind_of(left) == TIME:
            base, delta = value_of(left, row), value_of(right, row)
            if base is None:
                return None
            return base + delta if expr.op == "add" else base - delta
        case Binary(op=op, left=left, right=right) if op in ("add", "sub", "mul", "div", "mod"):
            a, b = value_of(left, row, NUMBER), value_of(right, row, NUMBER)
            if a is None or b is None:
                return None
            if op == "add":
                return a + b
            if op == "sub":
                return a - b
            if op == "mul":
                return a * b
            if b == 0:
                return None
            return a / b if op == "div" else math.fmod(a, b)
        case Call(name=name, args=args):
            return call(name, args, row)
    return condition(expr, row)


def call(name: str, args: tuple[Expr, ...], row: dict[str, Any]) -> Any:
    if name in ("round", "floor", "ceiling"):
        x = value_of(args[0], row, NUMBER)
        if x is None:
            return None
        if name == "round":
            return math.copysign(math.floor(abs(x) + 0.5), x)
        return math.floor(x) if name == "floor" else math.ceil(x)
    if name in ("year", "month", "day", "hour", "minute", "second", "fractionalseconds",
                "date", "time"):
        moment = value_of(args[0], row)
        if moment is None:
            return None
        if name == "fractionalseconds":
            return moment.microsecond / 1e6
        if name == "date":
            return moment.date()
        if name == "time":
            return moment.time().replace(microsecond=0)
        return getattr(moment, name)
    if name == "substring":
        s = value_of(args[0], row, STRING)
        bounds = [value_of(a, row, NUMBER) for a in args[1:]]
        if s is None or None in bounds:
            return None
        start = bounds[0]
        return s[start:] if len(bounds) == 1 else s[start:start + bounds[1]]
    strings = [value_of(a, row, STRING) for a in args]
    if None in strings:
        return None
    match name:
        case "length":
            return len(strings[0])
        case "indexof":
            return strings[0].find(strings[1])
        case "tolower":
            return strings[0].lower()
        case "toupper":
            return strings[0].upper()
        case "trim":
            return strings[0].strip(" ")
        case "concat":
            return strings[0] + strings[1]
        case "startswith":
            return strings[0].startswith(strings[1])
        case "endswith":
            return strings[0].endswith(strings[1])
        case "substringof":
            return strings[0] in strings[1]
    raise AssertionError(name)


def compare(op: str, left: Expr, right: Expr, row: dict[str, Any]) -> bool:
    lk, rk = kind_of(left), kind_of(right)
    if NULL in (lk, rk):
        other = right if lk == NULL else left
        is_null = (value_of(other, row) is None if kind_of(other) != NULL else True)
        return {"eq": is_null, "ne": not is_null}.get(op, False)
    # a per-row typed side takes the other side's type (numbers if both are per-row)
    if lk == DYNAMIC:
        lk = NUMBER if rk == DYNAMIC else rk
    if rk == DYNAMIC:
        rk = lk
    a, b = value_of(left, row, lk), value_of(right, row, rk)
    if op == "ne":
        return a != b if (a is None) == (b is None) else True
    if a is None or b is None:
        return False
    if isinstance(a, date) and not isinstance(a, datetime) and isinstance(b, datetime):
        a = datetime(a.year, a.month, a.day, tzinfo=UTC)
    if isinstance(b, date) and not isinstance(b, datetime) and isinstance(a, datetime):
        b = datetime(b.year, b.month, b.day, tzinfo=UTC)
    return {"eq": a == b, "gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]


def condition(expr: Expr, row: dict[str, Any]) -> bool:
    match expr:
        case Binary(op="and", left=left, right=right):
            return condition(left, row) and condition(right, row)
        case Binary(op="or", left=left, right=right):
            return condition(left, row) or condition(right, row)
        case Unary(op="not", operand=operand):
            return not condition(operand, row)
        case Binary(op=op, left=left, right=right):
            return compare(op, left, right, row)
        case In(left=left, values=values):
            return any(compare("eq", left, v, row) for v in values)
        case Literal(kind="bool", value=value):
            return bool(value)
        case Path():
            return value_of(expr, row, BOOL) is True
        case Call():
            return value_of(expr, row) is True
    raise AssertionError(expr)


# ------------------------------------------------------------------------ the generators


def lit(value: Any, kind: str) -> Literal:
    return Literal(value, kind)  # type: ignore[arg-type]


NUMBER_LITERALS = st.sampled_from([-3, -1.5, 0, 0.5, 1, 2, 2.5, 3, 7, 10]).map(
    lambda v: lit(v, "float" if isinstance(v, float) else "int"))
STRING_LITERALS = st.text(alphabet="abcAäÄx' ", max_size=4).map(lambda v: lit(v, "string"))
TIME_LITERALS = st.sampled_from(TIMES).map(lambda v: lit(v, "datetime"))
DURATIONS = st.sampled_from([timedelta(hours=1), timedelta(days=1, minutes=30),
                             timedelta(seconds=30)]).map(lambda v: lit(v, "duration"))
COMPARISONS = st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"])


@dataclass(frozen=True)
class Members:
    numbers: tuple[Path, ...]
    strings: tuple[Path, ...]
    times: tuple[Path, ...]
    booleans: tuple[Path, ...]
    nullable: tuple[Path, ...]


OBSERVATION_MEMBERS = Members(
    numbers=(Path(("result",)), Path(("parameters", "n"))),
    strings=(Path(("result",)), Path(("parameters", "s"))),
    times=(Path(("phenomenonTime",)), Path(("resultTime",))),
    booleans=(Path(("parameters", "flag")), Path(("result",))),
    nullable=(Path(("result",)), Path(("resultTime",)), Path(("parameters", "n")),
              Path(("parameters",))),
)
THING_MEMBERS = Members(
    numbers=(Path(("properties", "level")), Path(("properties", "kind"))),
    strings=(Path(("name",)), Path(("description",)), Path(("properties", "kind")),
             Path(("properties", "level"))),
    times=(),
    booleans=(Path(("properties", "active")),),
    nullable=(Path(("properties", "kind")), Path(("properties", "level")),
              Path(("properties", "active"))),
)


def numbers(m: Members, depth: int) -> st.SearchStrategy[Expr]:
    leaves = st.one_of(NUMBER_LITERALS, st.sampled_from(m.numbers))
    if depth <= 0:
        return leaves
    inner = numbers(m, depth - 1)
    options = [
        leaves,
        st.builds(Binary, st.sampled_from(["add", "sub", "mul", "div", "mod"]), inner, inner),
        st.builds(Unary, st.just("neg"), inner),
        st.builds(lambda n, a: Call(n, (a,)), st.sampled_from(["round", "floor", "ceiling"]),
                  inner),
        st.builds(lambda a: Call("length", (a,)), strings(m, depth - 1)),
        st.builds(lambda a, b: Call("indexof", (a, b)), strings(m, depth - 1), STRING_LITERALS),
    ]
    if m.times:
        options.append(st.builds(
            lambda n, a: Call(n, (a,)),
            st.sampled_from(["year", "month", "day", "hour", "minute", "second",
                             "fractionalseconds"]), st.sampled_from(m.times)))
    return st.one_of(*options)


def strings(m: Members, depth: int) -> st.SearchStrategy[Expr]:
    leaves = st.one_of(STRING_LITERALS, st.sampled_from(m.strings))
    if depth <= 0:
        return leaves
    inner = strings(m, depth - 1)
    small = st.integers(0, 4).map(lambda v: lit(v, "int"))
    return st.one_of(
        leaves,
        st.builds(lambda n, a: Call(n, (a,)), st.sampled_from(["tolower", "toupper", "trim"]),
                  inner),
        st.builds(lambda a, b: Call("concat", (a, b)), inner, STRING_LITERALS),
        st.builds(lambda a, b: Call("substring", (a, b)), inner, small),
        st.builds(lambda a, b, c: Call("substring", (a, b, c)), inner, small, small),
    )


def times(m: Members) -> st.SearchStrategy[Expr]:
    return st.one_of(
        st.sampled_from(m.times),
        st.builds(Binary, st.sampled_from(["add", "sub"]), st.sampled_from(m.times), DURATIONS),
    )


def computed(values: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    """Values that are not a bare per-row-typed path (so a comparison has a known type)."""
    return values.filter(lambda e: not (isinstance(e, Path) and kind_of(e) == DYNAMIC))


def conditions(m: Members, depth: int) -> st.SearchStrategy[Expr]:
    num, text = numbers(m, 2), strings(m, 2)
    leaves = [
        st.builds(Binary, COMPARISONS, num, NUMBER_LITERALS),
        st.builds(Binary, COMPARISONS, NUMBER_LITERALS, num),
        st.builds(Binary, COMPARISONS, computed(num), computed(num)),
        st.builds(Binary, COMPARISONS, text, STRING_LITERALS),
        st.builds(Binary, COMPARISONS, computed(text), computed(text)),
        st.builds(Binary, st.sampled_from(["eq", "ne"]),
                  st.one_of(st.sampled_from(m.nullable), num, text), st.just(lit(None, "null"))),
        st.builds(lambda n, a, b: Call(n, (a, b)), st.sampled_from(["startswith", "endswith"]),
                  text, STRING_LITERALS),
        st.builds(lambda a, b: Call("substringof", (a, b)), STRING_LITERALS, text),
        st.sampled_from(m.booleans),
        st.builds(Binary, st.sampled_from(["eq", "ne"]), st.sampled_from(m.booleans),
                  st.sampled_from([lit(True, "bool"), lit(False, "bool")])),
        st.builds(lambda a, vs: In(a, tuple(vs)), num, st.lists(NUMBER_LITERALS, min_size=1,
                                                                 max_size=3)),
        st.builds(lambda a, vs: In(a, tuple(vs)), text, st.lists(STRING_LITERALS, min_size=1,
                                                                  max_size=3)),
    ]
    if m.times:
        leaves += [
            st.builds(Binary, COMPARISONS, times(m), TIME_LITERALS),
            st.builds(Binary, COMPARISONS, TIME_LITERALS, times(m)),
            st.builds(Binary, COMPARISONS, st.sampled_from(m.times), st.sampled_from(m.times)),
            st.builds(Binary, COMPARISONS,
                      st.sampled_from(m.times).map(lambda p: Call("date", (p,))),
                      st.sampled_from([date(2024, 3, 1), date(2024, 6, 15)]).map(
                          lambda v: lit(v, "date"))),
            st.builds(Binary, COMPARISONS,
                      st.sampled_from(m.times).map(lambda p: Call("time", (p,))),
                      st.sampled_from([time(10, 15, 30), time(0, 0), time(12, 0)]).map(
                          lambda v: lit(v, "time"))),
        ]
    base = st.one_of(*leaves)
    if depth <= 0:
        return base
    inner = conditions(m, depth - 1)
    return st.one_of(
        base,
        st.builds(Binary, st.sampled_from(["and", "or"]), inner, inner),
        st.builds(Unary, st.just("not"), inner),
    )


# ----------------------------------------------------------------------------------- tests


def server_ids(world: World, path: str, text: str) -> set[int]:
    body = ok(world.api.get(path, params={"$filter": text, "$select": "id", "$top": "1000"}))
    assert "@iot.nextLink" not in body
    return {e["@iot.id"] for e in body["value"]}


@SETTINGS
@given(expr=conditions(OBSERVATION_MEMBERS, 2))
def test_generated_observation_filters_match_the_reference(dataset, expr):
    text = to_text(expr)
    assert parse_filter(text) == expr
    expected = {i for i, row in dataset.observations.items() if condition(expr, row)}
    found = server_ids(dataset.world, f"/Datastreams({dataset.datastream})/Observations", text)
    assert found == expected, text


@SETTINGS
@given(expr=conditions(THING_MEMBERS, 2))
def test_generated_thing_filters_match_the_reference(dataset, expr):
    text = to_text(expr)
    assert parse_filter(text) == expr
    expected = {i for i, row in dataset.things.items() if condition(expr, row)}
    scope = f"properties/suite eq '{dataset.world.suite}-ref'"
    found = server_ids(dataset.world, "/Things", f"{scope} and ({text})")
    assert found == expected, text


# ------------------------------------------------------ any filter: an answer, never a 500

GEOGRAPHY = lit("POINT(8.4 49)", "geography")
ANY_LITERALS = st.one_of(
    NUMBER_LITERALS, STRING_LITERALS, TIME_LITERALS, DURATIONS,
    st.sampled_from([lit(True, "bool"), lit(None, "null"), lit(date(2024, 3, 1), "date"),
                     lit(time(10, 0), "time"), GEOGRAPHY]))
ANY_PATHS = st.sampled_from([Path(tuple(p.split("/"))) for p in (
    "id", "result", "phenomenonTime", "resultTime", "validTime", "parameters", "parameters/n",
    "resultQuality", "Datastream/name", "Datastream/phenomenonTime", "Datastream/observedArea",
    "Datastream/Thing/properties/kind", "Datastream/Thing/Locations/location",
    "FeatureOfInterest/feature", "FeatureOfInterest/name", "Datastream/Observations/result",
)])
FUNCTIONS = sorted(FUNCTION_ARITY.items())


def any_expr(depth: int) -> st.SearchStrategy[Expr]:
    leaves = st.one_of(ANY_LITERALS, ANY_PATHS)
    if depth <= 0:
        return leaves
    inner = any_expr(depth - 1)
    calls = st.sampled_from(FUNCTIONS).flatmap(lambda item: st.builds(
        lambda args, name=item[0]: Call(name, tuple(args)),
        st.lists(inner, min_size=item[1][0], max_size=item[1][1])))
    return st.one_of(
        leaves, calls,
        st.builds(Binary, st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le", "and", "or",
                                           "add", "sub", "mul", "div", "mod"]), inner, inner),
        st.builds(Unary, st.sampled_from(["not", "neg"]), inner),
        st.builds(lambda a, vs: In(a, tuple(vs)), inner, st.lists(inner, min_size=1,
                                                                  max_size=2)),
    )


@SETTINGS
@given(expr=any_expr(3))
def test_any_filter_is_answered_or_refused_never_an_error(dataset, expr):
    """Type errors are 400 with a message; everything else is answered. Never a 500."""
    text = to_text(expr)
    expand = f"Datastream($filter={text})"
    for params in ({"$filter": text}, {"$orderby": text}, {"$expand": expand}):
        response = dataset.world.api.get(
            f"/Datastreams({dataset.datastream})/Observations", params={**params, "$top": "3"})
        assert response.status_code in (200, 400), (params, response.text)
        if response.status_code == 400:
            assert response.json()["message"]
