"""Compilation of the query AST to SQL (SQLAlchemy Core), for SQLite and PostgreSQL.

Every `$filter` and `$orderby` runs inside the database. Values are compiled to `Typed` SQL
expressions that know their kind (number, string, time, interval, geometry, JSON, result …), so
comparisons choose the right columns and casts:

- `result` is compared as a number with numeric literals and as a string with string literals;
- JSON paths (`properties/kind`) are extracted by the type the other side asks for;
- interval-valued times compare with before/after semantics (see `_compare_interval`);
- comparisons follow OData's two-valued logic: a comparison with null is false, `ne` with null
  is true, and `not` turns unknown into true (NULLs never leak as "unknown").

Navigation paths go through to-one relations as scalar subqueries and through to-many relations
as EXISTS ("any related entity matches").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.sql import ColumnElement, FromClause
from sqlalchemy.sql.elements import False_, Null, True_

from ortspuls.db.schema import entity_tables, link_tables
from ortspuls.db.types import Timestamp
from ortspuls.model import ENTITY_TYPES, EntityType, FieldKind, Relation
from ortspuls.query.ast import Binary, Call, Expr, In, Literal, Path, Unary
from ortspuls.sta.errors import BadRequest
from ortspuls.sta.values import RESULT_BOOL, RESULT_FLOAT, RESULT_INT, RESULT_STRING

NUMBER, STRING, BOOL, TIME, INTERVAL, GEOMETRY, JSON, RESULT, NULL, DATE, CLOCK, DURATION = (
    "number", "string", "boolean", "time", "interval", "geometry", "json", "result", "null",
    "date", "clock", "duration",
)
MIN_TIME = datetime(1, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Typed:
    """A compiled value and its kind. Intervals carry `end` (None: an instant, end = start)."""

    sql: Any
    kind: str
    end: Any = None
    # JSON paths: (column, path segments) so extraction can pick the type later.
    json: tuple[Any, tuple[str, ...]] | None = None
    # Result columns of an Observation table (for result comparisons).
    table: Any = None
    # The Python value of a literal (dates are promoted to times where compared with times).
    value: Any = None


@dataclass(frozen=True, slots=True)
class Scope:
    entity: EntityType
    table: FromClause


class QueryCompiler:
    """Compiles filter and order expressions for one SQL dialect ("sqlite" or "postgresql")."""

    def __init__(self, dialect: str, visible=None) -> None:
        self.dialect = dialect
        self.pg = dialect == "postgresql"
        # Visibility (entity, table) -> extra where clause for navigation subqueries.
        self.visible = visible
        self._alias_counter = 0

    # -- public ---------------------------------------------------------------------------------

    def filter(self, entity: EntityType, table: FromClause, expr: Expr, visible=None
               ) -> ColumnElement[bool]:
        compiler = self if visible is None else QueryCompiler(self.dialect, visible)
        return compiler._bool(Scope(entity, table), expr)

    def order_key(self, entity: EntityType, table: FromClause, expr: Expr) -> list:
        """SQL expressions to order by (a `result` orders numbers first, then strings)."""
        value = self._value(Scope(entity, table), expr)
        if next(_paths(expr), None) is None or isinstance(value.sql, True_ | False_ | Null):
            # A constant orders nothing (and SQLite would read a bare number as a column).
            return []
        if value.kind == RESULT:
            return [self._result_number(value), value.table.c.result_string]
        if value.kind == BOOL:
            # A condition as 0/1 (never a bare constant, which PostgreSQL refuses here).
            return [case((value.sql, 1), else_=0)]
        if value.kind == INTERVAL:
            return [value.sql]
        if value.kind == JSON:
            column, path = value.json
            return [self._json_extract(column, path, NUMBER), self._json_extract(column, path,
                                                                                STRING)]
        if value.kind == GEOMETRY:
            raise BadRequest("$orderby: geometries cannot be ordered")
        return [value.sql]

    # -- booleans -------------------------------------------------------------------------------

    def _bool(self, scope: Scope, expr: Expr) -> ColumnElement[bool]:
        match expr:
            case Binary(op="and", left=left, right=right):
                return and_(self._bool(scope, left), self._bool(scope, right))
            case Binary(op="or", left=left, right=right):
                return or_(self._bool(scope, left), self._bool(scope, right))
            case Unary(op="not", operand=operand):
                # Two-valued logic: "not unknown" is true.
                return not_(func.coalesce(self._bool(scope, operand), false()))
            case Binary(op=op) if op in ("eq", "ne", "gt", "ge", "lt", "le"):
                return self._navigate(scope, expr, self._comparison)
            case In():
                return self._navigate(scope, expr, self._in)
            case Call():
                return self._navigate(scope, expr, lambda s, e: self._call_bool(s, e))
            case Literal(kind="bool", value=value):
                return true() if value else false()
            case Path():
                value = self._value(scope, expr)
                if value.kind == BOOL:
                    return value.sql
                if value.kind == JSON:
                    column, path = value.json
                    return self._json_extract(column, path, BOOL)
                if value.kind == RESULT:
                    return and_(value.table.c.result_type == RESULT_BOOL,
                                value.table.c.result_number == 1)
        raise BadRequest(f"$filter: this expression is not a condition: {_show(expr)}")

    def _call_bool(self, scope: Scope, call: Call) -> ColumnElement[bool]:
        value = self._call(scope, call)
        if value.kind != BOOL:
            raise BadRequest(f"$filter: {call.name}() is not a condition; compare its value")
        return value.sql

    # -- navigation -----------------------------------------------------------------------------

    def _navigate(self, scope: Scope, expr: Expr, build):
        """Compile a condition whose paths all start with the same relation as a semi-join.

        Through a to-many relation: EXISTS (any related entity matches). Through a to-one
        relation: `fk IN (SELECT id FROM target WHERE …)`, which both databases run as one
        lookup of the (usually few) matching targets instead of a subquery per row. A to-one
        condition that may be true for a missing target (`ne`, `eq null`) keeps the per-row
        scalar subqueries of `_to_one`, so it sees the null.
        """
        rel = self._shared_relation(scope.entity, expr)
        if rel is None:
            return build(scope, expr)
        rest = _strip_prefix(expr, (rel.name,))
        target = ENTITY_TYPES[rel.target]
        if not (rel.many or _crosses_many(target, rest) or _null_rejecting(expr)):
            return build(scope, expr)
        inner = Scope(target, self._alias(target))
        # The rest of the path may cross further relations (Datastreams/Observations/result).
        condition = self._navigate(inner, rest, build)
        visible = self._visible_clause(inner)
        if rel.many:
            return exists(select(literal(1)).select_from(inner.table)
                          .where(self._join_condition(rel, scope, inner), *visible, condition))
        return scope.table.c[rel.fk].in_(select(inner.table.c.id).where(*visible, condition))

    def _shared_relation(self, entity: EntityType, expr: Expr) -> Relation | None:
        """The relation every path in `expr` starts with, if there is one."""
        paths = list(_paths(expr))
        firsts = {p.segments[0] for p in paths}
        if len(firsts) != 1:
            return None
        (name,) = firsts
        rel = entity.relation_by_name.get(name)
        if rel is None:
            return None
        if any(len(p.segments) == 1 for p in paths):
            if rel.many:
                raise BadRequest(f"$filter: {name} is a collection; name one of its "
                                 f"properties, e.g. {name}/id")
            return None  # `_path` explains that an entity needs a property
        return rel

    def _alias(self, entity: EntityType) -> FromClause:
        self._alias_counter += 1
        return entity_tables[entity.name].alias(f"q{self._alias_counter}")

    def _join_condition(self, rel: Relation, parent: Scope, child: Scope):
        if rel.fk is not None:
            return child.table.c.id == parent.table.c[rel.fk]
        if rel.remote_fk is not None:
            return child.table.c[rel.remote_fk] == parent.table.c.id
        link = link_tables[rel.link_table]
        here, there = rel.link_columns
        # correlate_except: the parent's table comes from the enclosing query, never from here.
        return child.table.c.id.in_(
            select(link.c[there]).where(link.c[here] == parent.table.c.id)
            .correlate_except(link).scalar_subquery()
        )

    def _visible_clause(self, scope: Scope) -> list:
        if self.visible is None:
            return []
        clause = self.visible(scope.entity, scope.table)
        return [] if clause is None else [clause]

    # -- comparisons ----------------------------------------------------------------------------

    def _comparison(self, scope: Scope, expr: Binary) -> ColumnElement[bool]:
        left, right = self._value(scope, expr.left), self._value(scope, expr.right)
        return self._compare(expr.op, left, right)

    def _in(self, scope: Scope, expr: In) -> ColumnElement[bool]:
        left = self._value(scope, expr.left)
        return or_(*(self._compare("eq", left, self._value(scope, v)) for v in expr.values))

    def _compare(self, op: str, left: Typed, right: Typed) -> ColumnElement[bool]:
        if left.kind == NULL and right.kind == NULL:
            return true() if op in ("eq", "ge", "le") else false()
        if right.kind == NULL or left.kind == NULL:
            value = left if right.kind == NULL else right
            column = self._nullable_sql(value)
            if op == "eq":
                return column.is_(None)
            if op == "ne":
                return column.is_not(None)
            return false()
        right = self._dates_as_times(right, left)
        left = self._dates_as_times(left, right)
        if left.kind == INTERVAL or right.kind == INTERVAL:
            if op == "ne":
                # Two-valued: an interval that is null is "not equal" to any time.
                return not_(func.coalesce(self._compare_interval("eq", left, right), false()))
            return self._compare_interval(op, left, right)
        left, right = self._unify(left, right)
        if left.kind == BOOL and op not in ("eq", "ne"):
            raise BadRequest(f"$filter: booleans are compared with eq or ne, not {op}")
        return _apply(op, left.sql, right.sql)

    def _dates_as_times(self, value: Typed, other: Typed | None = None) -> Typed:
        """A date literal compared with a time or an interval means midnight UTC of that day;
        a computed date (`date(x)`) makes the time side a date instead."""
        if other is None or value.kind != DATE or other.kind not in (TIME, INTERVAL):
            return value
        if value.value is not None:
            midnight = datetime(value.value.year, value.value.month, value.value.day, tzinfo=UTC)
            return Typed(bindparam(None, midnight, Timestamp()), TIME, value=midnight)
        return value

    def _nullable_sql(self, value: Typed):
        if value.kind == RESULT:
            return case((value.table.c.result_type == 0, None), else_=literal(1))
        if value.kind == JSON:
            column, path = value.json
            return self._json_raw(column, path)
        return value.sql

    def _unify(self, left: Typed, right: Typed) -> tuple[Typed, Typed]:
        """Bring both sides to one comparable kind; 400 if they cannot be compared."""
        dynamic = (RESULT, JSON)
        if left.kind in dynamic and right.kind in dynamic:
            return self._as(left, NUMBER), self._as(right, NUMBER)
        for value, other in ((left, right), (right, left)):
            if value.kind in dynamic and other.kind not in (NUMBER, STRING, BOOL):
                what = "result" if value.kind == RESULT else "JSON value"
                raise BadRequest(f"$filter: cannot compare a {what} with a {other.kind}")
        if left.kind in dynamic:
            return self._as(left, right.kind), right
        if right.kind in dynamic:
            return left, self._as(right, left.kind)
        if left.kind == right.kind:
            return left, right
        if {left.kind, right.kind} == {TIME, DATE}:
            # A computed date against a time: compare the time's date.
            if left.kind == TIME:
                return self._time_func("date", [left]), right
            return left, self._time_func("date", [right])
        raise BadRequest(f"$filter: cannot compare a {left.kind} with a {right.kind}")

    def _as(self, value: Typed, kind: str) -> Typed:
        if value.kind == RESULT:
            table = value.table
            if kind == STRING:
                return Typed(case((table.c.result_type == RESULT_STRING, table.c.result_string)),
                             STRING)
            if kind == BOOL:
                return Typed(case((table.c.result_type == RESULT_BOOL,
                                   table.c.result_number == 1)), BOOL)
            if kind == TIME:
                raise BadRequest("$filter: result cannot be compared with a time")
            return Typed(self._result_number(value), NUMBER)
        if value.kind == JSON:
            column, path = value.json
            target = kind if kind in (NUMBER, STRING, BOOL) else STRING
            return Typed(self._json_extract(column, path, target), target)
        return value

    def _result_number(self, value: Typed):
        table = value.table
        return case((table.c.result_type.in_((RESULT_FLOAT, RESULT_INT)), table.c.result_number))

    def _compare_interval(self, op: str, left: Typed, right: Typed) -> ColumnElement[bool]:
        """Before/after semantics: an interval is greater than t if it starts after t, less than
        t if it ends before t; equal if both ends equal t. Instants have end = start."""
        if left.kind != INTERVAL:
            left, right, op = right, left, _MIRROR[op]
        if right.kind not in (TIME, INTERVAL):
            raise BadRequest(f"$filter: cannot compare a time interval with a {right.kind}")
        start, end = left.sql, left.end
        r_start = right.sql
        r_end = right.sql
        if right.kind == INTERVAL and right.end is not None:
            # An Observation's instant phenomenonTime has no end: it ends where it starts.
            r_end = func.coalesce(right.end, right.sql)

        def end_cmp(fn):
            # Written so the index on the start column stays usable (end >= start always).
            if end is None:
                return fn(start)
            return and_(fn(start), or_(end.is_(None), fn(end)))

        match op:
            case "gt":
                return start > r_end
            case "ge":
                return start >= r_end
            case "lt":
                return end_cmp(lambda c: c < r_start)
            case "le":
                return end_cmp(lambda c: c <= r_start)
            case "eq":
                if end is None:
                    return and_(start == r_start, r_start == r_end)
                return and_(start == r_start, func.coalesce(end, start) == r_end)
            case "ne":
                if end is None:
                    return or_(start != r_start, r_start != r_end)
                return or_(start != r_start, func.coalesce(end, start) != r_end)
        raise AssertionError(op)

    # -- values ---------------------------------------------------------------------------------

    def _value(self, scope: Scope, expr: Expr) -> Typed:
        match expr:
            case Literal():
                return self._literal(expr)
            case Path():
                return self._path(scope, expr.segments)
            case Call():
                return self._call(scope, expr)
            case Unary(op="neg", operand=operand):
                value = self._numeric(self._value(scope, operand), "-")
                return Typed(-value, NUMBER)
            case Binary(op=op, left=left, right=right) if op in _ARITH:
                return self._arith(op, self._value(scope, left), self._value(scope, right))
            case Binary() | Unary() | In():
                return Typed(self._bool(scope, expr), BOOL)
        raise BadRequest(f"$filter: unsupported expression {_show(expr)}")

    def _literal(self, lit: Literal) -> Typed:
        value = lit.value
        match lit.kind:
            case "string":
                return Typed(bindparam(None, value, String()), STRING)
            case "int" | "float":
                return Typed(bindparam(None, value, Float() if lit.kind == "float" else Integer()),
                             NUMBER)
            case "bool":
                return Typed(bindparam(None, value, Boolean()), BOOL)
            case "null":
                return Typed(null(), NULL)
            case "datetime":
                return Typed(bindparam(None, value, Timestamp()), TIME)
            case "date":
                return Typed(self._date_literal(value), DATE, value=value)
            case "time":
                return Typed(bindparam(None, value.strftime("%H:%M:%S"), String()), CLOCK)
            case "duration":
                # A duration compares with durations (as microseconds or a PostgreSQL
                # interval); time arithmetic uses the value itself.
                if self.pg:
                    return Typed(bindparam(None, value, _pg_type("interval")), DURATION,
                                 value=value)
                return Typed(bindparam(None, value // timedelta(microseconds=1), Integer()),
                             DURATION, value=value)
            case "geography":
                return Typed(self._geometry_literal(value), GEOMETRY)
        raise BadRequest(f"$filter: unsupported literal {value!r}")

    def _date_literal(self, value: date):
        if self.pg:
            return cast(bindparam(None, value.isoformat(), String()), _pg_type("date"))
        return bindparam(None, value.isoformat(), String())

    def _geometry_literal(self, wkt: str):
        import shapely

        # OData writes geography'SRID=4326;POINT(…)'; every geometry here is WGS 84.
        srid, sep, rest = wkt.partition(";")
        if sep and srid.strip().upper().startswith("SRID="):
            if srid.strip()[5:].strip() != "4326":
                raise BadRequest(f"$filter: geometries are in WGS 84 (SRID=4326), not {srid!r}")
            wkt = rest
        try:
            shapely.from_wkt(wkt)
        except Exception:
            raise BadRequest(f"$filter: {wkt!r} is not valid WKT") from None
        if self.pg:
            return func.ST_GeomFromText(bindparam(None, wkt, String()), 4326)
        return func.st_geomfromtext(bindparam(None, wkt, String()))

    def _path(self, scope: Scope, segments: tuple[str, ...]) -> Typed:
        entity, table = scope.entity, scope.table
        first, rest = segments[0], segments[1:]
        if first in ("id", "@iot.id") and not rest:
            return Typed(table.c.id, NUMBER)
        rel = entity.relation_by_name.get(first)
        if rel is not None:
            if not rest:
                raise BadRequest(f"$filter: {first} is an entity; name one of its properties, "
                                 f"e.g. {first}/id")
            if rel.many:
                raise BadRequest(f"$filter: {first} is a collection")
            return self._to_one(scope, rel, rest)
        field = entity.field_by_name.get(first)
        if field is None:
            raise BadRequest(f"$filter: {entity.name} has no property {first!r}")
        if rest and field.kind not in (FieldKind.OBJECT, FieldKind.JSON, FieldKind.RESULT,
                                       FieldKind.GEOMETRY, FieldKind.ARRAY):
            raise BadRequest(f"$filter: {entity.name}.{first} has no sub-properties")
        match field.kind:
            case FieldKind.STRING:
                return Typed(table.c[field.column], STRING)
            case FieldKind.TIME:
                return Typed(table.c[field.column], TIME)
            case FieldKind.INTERVAL | FieldKind.TIME_OR_INTERVAL:
                start, end = field.columns
                return Typed(table.c[start], INTERVAL, end=table.c[end])
            case FieldKind.GEOMETRY:
                if rest:
                    return Typed(None, JSON, json=(table.c[field.column], rest))
                return Typed(table.c[field.columns[1]], GEOMETRY)
            case FieldKind.RESULT:
                if rest:
                    return Typed(None, JSON, json=(table.c.result_json, rest))
                return Typed(None, RESULT, table=table)
            case _:
                if not rest:
                    return Typed(None, JSON, json=(table.c[field.column], ()))
                return Typed(None, JSON, json=(table.c[field.column], rest))

    def _to_one(self, scope: Scope, rel: Relation, rest: tuple[str, ...]) -> Typed:
        """A property of a related entity, as a correlated scalar subquery."""
        target = ENTITY_TYPES[rel.target]
        alias = self._alias(target)
        inner = self._path(Scope(target, alias), rest)
        condition = alias.c.id == scope.table.c[rel.fk]
        visible = self._visible_clause(Scope(target, alias))

        def sub(column):
            if column is None:
                return None
            return (select(column).select_from(alias).where(condition, *visible)
                    .limit(1).scalar_subquery())

        if inner.kind == RESULT:
            raise BadRequest("$filter: results of related Observations cannot be compared here")
        if inner.kind == JSON:
            column, path = inner.json
            return Typed(None, JSON, json=(sub(column), path))
        return Typed(sub(inner.sql), inner.kind, end=sub(inner.end))

    # -- JSON -----------------------------------------------------------------------------------

    def _json_raw(self, column, path: tuple[str, ...]):
        if self.pg:
            # A JSON null is null (SQLite's json_extract says so by itself).
            node = column.op("#>")(_pg_path(path)) if path else column
            return func.nullif(node, cast(literal("null"), _pg_type("jsonb")))
        return func.json_extract(column, _sqlite_path(path))

    def _json_extract(self, column, path: tuple[str, ...], kind: str):
        """A JSON value as `kind`, or NULL where the stored value has another type."""
        if self.pg:
            node = column.op("#>")(_pg_path(path)) if path else column
            text = column.op("#>>")(_pg_path(path)) if path else cast(column, String())
            jtype = func.jsonb_typeof(node)
            match kind:
                case "number":
                    return case((jtype == "number", cast(text, Float())))
                case "boolean":
                    return case((jtype == "boolean", cast(text, Boolean())))
                case _:
                    return case((jtype == "string", text))
        jpath = _sqlite_path(path)
        jtype = func.json_type(column, jpath)
        value = func.json_extract(column, jpath)
        match kind:
            case "number":
                return case((jtype.in_(("integer", "real")), value))
            case "boolean":
                return case((jtype == "true", true()), (jtype == "false", false()))
            case _:
                return case((jtype == "text", value))

    # -- arithmetic -----------------------------------------------------------------------------

    def _numeric(self, value: Typed, op: str):
        if value.kind in (RESULT, JSON):
            value = self._as(value, NUMBER)
        if value.kind not in (NUMBER,):
            raise BadRequest(f"$filter: {op} needs numbers, got a {value.kind}")
        return value.sql

    def _arith(self, op: str, left: Typed, right: Typed) -> Typed:
        if TIME in (left.kind, right.kind) or INTERVAL in (left.kind, right.kind):
            return self._time_arith(op, left, right)
        a, b = self._numeric(left, op), self._numeric(right, op)
        match op:
            case "add":
                return Typed(a + b, NUMBER)
            case "sub":
                return Typed(a - b, NUMBER)
            case "mul":
                return Typed(a * b, NUMBER)
            case "div":
                return Typed(cast(a, Float()) / func.nullif(b, 0), NUMBER)
            case "mod":
                # The remainder of truncated division (sign of the dividend), for decimals too;
                # SQLite's % would truncate both operands to integers first.
                quotient = cast(a, Float()) / func.nullif(b, 0)
                truncated = func.trunc(quotient) if self.pg else cast(quotient, Integer())
                return Typed(a - b * truncated, NUMBER)
        raise AssertionError(op)

    def _time_arith(self, op: str, left: Typed, right: Typed) -> Typed:
        if left.kind == INTERVAL:
            left = Typed(left.sql, TIME)
        if right.kind == INTERVAL:
            right = Typed(right.sql, TIME)
        if left.kind == TIME and right.kind == DURATION and op in ("add", "sub"):
            delta: timedelta = right.value
            if self.pg:
                interval = bindparam(None, delta, _pg_type("interval"))
                return Typed(left.sql + interval if op == "add" else left.sql - interval, TIME)
            micros = delta // timedelta(microseconds=1)
            return Typed(left.sql + micros if op == "add" else left.sql - micros, TIME)
        raise BadRequest(f"$filter: {op} of a {left.kind} and a {right.kind} is not supported")

    # -- functions ------------------------------------------------------------------------------

    def _call(self, scope: Scope, call: Call) -> Typed:
        name = call.name
        args = [self._value(scope, a) for a in call.args]
        if name in _STRING_FUNCS:
            return self._string_func(name, args)
        if name in _TIME_PARTS or name in ("date", "time", "fractionalseconds",
                                            "totaloffsetminutes"):
            return self._time_func(name, args)
        if name == "now":
            return Typed(bindparam(None, datetime.now(UTC), Timestamp()), TIME)
        if name == "mindatetime":
            return Typed(bindparam(None, MIN_TIME, Timestamp()), TIME)
        if name == "maxdatetime":
            return Typed(bindparam(None, MAX_TIME, Timestamp()), TIME)
        if name in ("round", "floor", "ceiling"):
            value = self._numeric(args[0], name)
            if self.pg:
                # In double precision, like every other number here (numeric would round a
                # double to 15 digits first); round half away from zero as SQLite does.
                value = cast(value, Float())
                if name == "round":
                    return Typed(func.sign(value) * func.floor(func.abs(value) + 0.5), NUMBER)
                return Typed(func.floor(value) if name == "floor" else func.ceil(value), NUMBER)
            if name == "round":
                return Typed(func.round(value), NUMBER)
            # Without math functions (SQLAlchemy's Python floor() fails on NULL): CAST
            # truncates towards zero, then step down (floor) or up (ceiling).
            whole = cast(value, Integer())
            if name == "floor":
                return Typed(case((value < whole, whole - 1), else_=whole), NUMBER)
            return Typed(case((value > whole, whole + 1), else_=whole), NUMBER)
        if name in _GEO_FUNCS or name.startswith("st_"):
            return self._geo_func(name, args)
        raise BadRequest(f"$filter: unknown function {name}")

    def _string(self, value: Typed, fn: str):
        if value.kind in (RESULT, JSON):
            value = self._as(value, STRING)
        if value.kind != STRING:
            raise BadRequest(f"$filter: {fn}() needs text, got a {value.kind}")
        return value.sql

    def _string_func(self, name: str, args: list[Typed]) -> Typed:
        find = func.strpos if self.pg else func.instr
        match name:
            case "substringof":  # substringof(needle, haystack)
                return Typed(find(self._string(args[1], name), self._string(args[0], name)) > 0,
                             BOOL)
            case "contains":  # contains(haystack, needle)
                return Typed(find(self._string(args[0], name), self._string(args[1], name)) > 0,
                             BOOL)
            case "startswith":
                hay, needle = self._string(args[0], name), self._string(args[1], name)
                return Typed(func.substr(hay, 1, func.length(needle)) == needle, BOOL)
            case "endswith":
                hay, needle = self._string(args[0], name), self._string(args[1], name)
                if self.pg:
                    return Typed(func.right(hay, func.length(needle)) == needle, BOOL)
                start = func.length(hay) - func.length(needle) + 1
                return Typed(func.substr(hay, start) == needle, BOOL)
            case "length":
                return Typed(func.length(self._string(args[0], name)), NUMBER)
            case "indexof":
                return Typed(find(self._string(args[0], name), self._string(args[1], name)) - 1,
                             NUMBER)
            case "substring":
                hay = self._string(args[0], name)
                # Whole numbers, as PostgreSQL's substr wants (JSON numbers are doubles).
                start = cast(self._numeric(args[1], name), Integer()) + 1
                if len(args) == 3:
                    length = cast(self._numeric(args[2], name), Integer())
                    return Typed(func.substr(hay, start, length), STRING)
                return Typed(func.substr(hay, start), STRING)
            # SQLite's lower()/upper() only know ASCII; ours know umlauts (sqlite_functions).
            case "tolower":
                text = self._string(args[0], name)
                return Typed(func.lower(text) if self.pg else func.unicode_lower(text), STRING)
            case "toupper":
                text = self._string(args[0], name)
                return Typed(func.upper(text) if self.pg else func.unicode_upper(text), STRING)
            case "trim":
                return Typed(func.trim(self._string(args[0], name)), STRING)
            case "concat":
                return Typed(self._string(args[0], name).concat(self._string(args[1], name)),
                             STRING)
        raise AssertionError(name)

    def _time_func(self, name: str, args: list[Typed]) -> Typed:
        value = args[0]
        if value.kind == INTERVAL:
            value = Typed(value.sql, TIME)
        if value.kind != TIME:
            raise BadRequest(f"$filter: {name}() needs a time, got a {value.kind}")
        column = value.sql
        if name == "totaloffsetminutes":
            return Typed(literal(0), NUMBER)  # all times are stored in UTC
        if self.pg:
            utc = func.timezone("UTC", column)
            if name == "date":
                return Typed(cast(utc, _pg_type("date")), DATE)
            if name == "time":
                return Typed(func.to_char(utc, "HH24:MI:SS"), CLOCK)
            if name == "fractionalseconds":
                return Typed(func.extract("microseconds", utc) % 1_000_000 / 1e6, NUMBER)
            part = {"second": "second"}.get(name, name)
            extracted = func.extract(part, utc)
            if name == "second":
                extracted = func.floor(extracted)
            return Typed(cast(extracted, Integer()), NUMBER)
        # Epoch microseconds as a plain integer (not the Timestamp type, which would treat the
        # numbers below as times).
        micros = type_coerce(column, Integer())
        seconds = micros / 1_000_000
        if name == "date":
            return Typed(func.date(seconds, "unixepoch"), DATE)
        if name == "time":
            return Typed(func.time(seconds, "unixepoch"), CLOCK)
        if name == "fractionalseconds":
            return Typed((micros % 1_000_000) / literal(1e6, Float()), NUMBER)
        fmt = _TIME_PARTS[name]
        return Typed(cast(func.strftime(fmt, seconds, "unixepoch"), Integer()), NUMBER)

    def _geo_func(self, name: str, args: list[Typed]) -> Typed:
        geoms = []
        for arg in args[:2]:
            if arg.kind != GEOMETRY:
                raise BadRequest(f"$filter: {name}() needs geometries, got a {arg.kind}")
            geoms.append(arg.sql)
        if name == "geo.distance":
            return Typed(func.ST_Distance(*geoms) if self.pg else func.st_distance(*geoms),
                         NUMBER)
        if name == "geo.length":
            return Typed(func.ST_Length(*geoms) if self.pg else func.st_length(*geoms), NUMBER)
        if name == "st_relate":
            pattern = self._string(args[2], name)
            if self.pg:
                return Typed(func.ST_Relate(geoms[0], geoms[1], pattern), BOOL)
            return Typed(func.st_relate(geoms[0], geoms[1], pattern) == 1, BOOL)
        sql_name = "st_intersects" if name == "geo.intersects" else name
        if self.pg:
            return Typed(getattr(func, "ST_" + sql_name[3:].capitalize())(*geoms), BOOL)
        return Typed(getattr(func, sql_name)(*geoms) == 1, BOOL)


# ---------------------------------------------------------------------------------------------


_ARITH = ("add", "sub", "mul", "div", "mod")
_MIRROR = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge", "eq": "eq", "ne": "ne"}
_STRING_FUNCS = {"substringof", "contains", "startswith", "endswith", "length", "indexof",
                 "substring", "tolower", "toupper", "trim", "concat"}
_TIME_PARTS = {"year": "%Y", "month": "%m", "day": "%d", "hour": "%H", "minute": "%M",
               "second": "%S"}
_GEO_FUNCS = {"geo.distance", "geo.length", "geo.intersects"}


def _apply(op: str, a, b):
    match op:
        case "eq":
            return a == b
        case "ne":
            return a.is_distinct_from(b)
        case "gt":
            return a > b
        case "ge":
            return a >= b
        case "lt":
            return a < b
        case "le":
            return a <= b
    raise AssertionError(op)


def _pg_type(name: str):
    from sqlalchemy.dialects import postgresql

    return {"date": postgresql.DATE(), "numeric": postgresql.NUMERIC(),
            "interval": postgresql.INTERVAL(), "jsonb": postgresql.JSONB()}[name]


def _pg_path(path: tuple[str, ...]):
    from sqlalchemy.dialects.postgresql import ARRAY

    return bindparam(None, list(path), ARRAY(String()))


def _sqlite_path(path: tuple[str, ...]) -> str:
    out = "$"
    for part in path:
        if part.isdigit():
            out += f"[{part}]"
        else:
            escaped = part.replace('"', '\\"')
            out += f'."{escaped}"'
    return out


def _paths(expr: Expr):
    match expr:
        case Path():
            yield expr
        case Unary(operand=operand):
            yield from _paths(operand)
        case Binary(left=left, right=right):
            yield from _paths(left)
            yield from _paths(right)
        case In(left=left, values=values):
            yield from _paths(left)
            for v in values:
                yield from _paths(v)
        case Call(args=args):
            for a in args:
                yield from _paths(a)


def _crosses_many(entity: EntityType, expr: Expr) -> bool:
    """Whether a path in `expr` goes through a to-many relation."""
    for path in _paths(expr):
        current = entity
        for name in path.segments:
            rel = current.relation_by_name.get(name)
            if rel is None:
                break
            if rel.many:
                return True
            current = ENTITY_TYPES[rel.target]
    return False


def _null_rejecting(expr: Expr) -> bool:
    """Whether `expr` is false (or null) when every path in it is null: then a to-one
    navigation can be a semi-join, which is false for a missing target too."""
    match expr:
        case Binary(op="eq" | "gt" | "ge" | "lt" | "le", left=left, right=right):
            return not (_is_null(left) or _is_null(right))
        case In(left=left, values=values):
            return not (_is_null(left) or any(_is_null(v) for v in values))
        case Call():
            return True
    return False


def _is_null(expr: Expr) -> bool:
    return isinstance(expr, Literal) and expr.kind == "null"


def _strip_prefix(expr: Expr, prefix: tuple[str, ...]) -> Expr:
    """Rewrite paths below `prefix` relative to it; other paths are left to the outer scope."""
    match expr:
        case Path(segments=segments) if segments[: len(prefix)] == prefix:
            return Path(segments[len(prefix):])
        case Path():
            raise BadRequest("$filter: a condition through a collection may only use properties "
                             f"of that collection, not {'/'.join(expr.segments)}")
        case Unary(op=op, operand=operand):
            return Unary(op, _strip_prefix(operand, prefix))
        case Binary(op=op, left=left, right=right):
            return Binary(op, _strip_prefix(left, prefix), _strip_prefix(right, prefix))
        case In(left=left, values=values):
            return In(_strip_prefix(left, prefix), tuple(_strip_prefix(v, prefix) for v in values))
        case Call(name=name, args=args):
            return Call(name, tuple(_strip_prefix(a, prefix) for a in args))
    return expr


def _show(expr: Expr) -> str:
    try:
        from ortspuls.query import to_text

        return to_text(expr)
    except Exception:
        return type(expr).__name__

