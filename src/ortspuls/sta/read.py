"""Reading: resource path + query options -> SQL -> rows -> SensorThings JSON.

One statement per collection level: the addressed collection is one query (plus one for
`$count`), and every `$expand` level is one more query for all parents at once; to-many expands
take their per-parent `$top` with index seeks (a UNION ALL of small ordered selects), never one
query per parent row.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import Select, bindparam, func, select, true
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement, FromClause

from ortspuls.db.schema import entity_tables, link_tables
from ortspuls.model import ENTITY_TYPES, EntityType, FieldKind, Relation
from ortspuls.query.ast import Binary, Call, ExpandItem, In, OrderItem, Path, QueryOptions, Unary
from ortspuls.query.keyset import keyset_for
from ortspuls.query.parser import canonical_option
from ortspuls.query.printer import options_to_params
from ortspuls.sta.errors import BadRequest, NotFound
from ortspuls.sta.paths import ResourcePath, Segment
from ortspuls.sta.serialize import Serializer, columns_for

# Parents per query of a to-many $expand (bound parameters stay well below both databases'
# limits).
_PARENT_CHUNK = 5000


@dataclass(slots=True)
class ReadContext:
    conn: AsyncConnection
    dialect: str
    serializer: Serializer
    default_top: int
    max_top: int
    compiler: Any  # ortspuls.query.compile.QueryCompiler
    # Visibility: a callable (entity, table) -> extra where clause or None.
    visible: Any = None


@dataclass(slots=True)
class ExpandNode:
    options: QueryOptions
    children: dict[str, ExpandNode] = field(default_factory=dict)


def expand_tree(entity: EntityType, items: tuple[ExpandItem, ...]) -> dict[str, ExpandNode]:
    """Turn `$expand` items (paths like Datastreams/Thing) into a tree keyed by relation."""
    tree: dict[str, ExpandNode] = {}
    for item in items:
        current_entity, level = entity, tree
        for depth, name in enumerate(item.path):
            rel = current_entity.relation_by_name.get(name)
            if rel is None:
                raise BadRequest(f"$expand: {current_entity.name} has no navigation property "
                                 f"{name!r}")
            last = depth == len(item.path) - 1
            node = level.get(name)
            if node is None:
                node = level[name] = ExpandNode(item.options if last else QueryOptions())
            elif last:
                node.options = item.options
            current_entity = ENTITY_TYPES[rel.target]
            if last:
                for child_name, child in expand_tree(current_entity, item.options.expand).items():
                    node.children[child_name] = child
            level = node.children
    return tree


def select_names(entity: EntityType, select: tuple[Path, ...] | None) -> tuple[str, ...] | None:
    if select is None:
        return None
    names = []
    for path in select:
        if len(path.segments) != 1:
            raise BadRequest("$select takes property names, not paths: "
                             + "/".join(path.segments))
        name = path.segments[0]
        if name in ("id", "@iot.id"):
            names.append("id")
        elif name in ("@iot.selfLink", "selfLink"):
            names.append("selfLink")
        elif entity.member(name) is None:
            raise BadRequest(f"$select: {entity.name} has no property {name!r}")
        else:
            names.append(name)
    return tuple(dict.fromkeys(names))


# ---------------------------------------------------------------------------------------------
# Path constraints


def path_constraints(segments: tuple[Segment, ...], table: FromClause) -> list[ColumnElement]:
    """Where-clauses on `table` (the last segment's table) that the path implies."""
    seg = segments[-1]
    out: list[ColumnElement] = []
    if seg.id is not None:
        out.append(table.c.id == seg.id)
    if seg.via is None:
        return out
    rel, parent = seg.via, segments[:-1]
    parent_seg = parent[-1]
    parent_alias = entity_tables[parent_seg.entity.name].alias(f"p{len(parent)}")
    if rel.fk is not None:
        out.append(table.c.id.in_(
            select(parent_alias.c[rel.fk]).where(*path_constraints(parent, parent_alias))
        ))
        return out
    if parent_seg.id is not None:
        parent_ids: Any = [parent_seg.id]
    else:
        parent_ids = select(parent_alias.c.id).where(*path_constraints(parent, parent_alias))
    if rel.remote_fk is not None:
        col = table.c[rel.remote_fk]
        out.append(col == parent_seg.id if parent_seg.id is not None else col.in_(parent_ids))
    else:
        link = link_tables[rel.link_table].alias(f"l{len(parent)}")
        here, there = rel.link_columns
        out.append(table.c.id.in_(select(link.c[there]).where(link.c[here].in_(parent_ids))))
    return out


async def check_path_exists(ctx: ReadContext, path: ResourcePath) -> None:
    """404 if an entity named by id in the path (other than the target) does not exist."""
    segments = path.segments
    for index in range(len(segments) - 2, -1, -1):
        if segments[index].id is not None:
            prefix = segments[: index + 1]
            table = entity_tables[prefix[-1].entity.name]
            stmt = select(table.c.id).where(*path_constraints(prefix, table))
            stmt = _visible(ctx, prefix[-1].entity, table, stmt)
            if (await ctx.conn.execute(stmt.limit(1))).first() is None:
                seg = prefix[-1]
                raise NotFound(f"no {seg.entity.name} with id {seg.id}"
                               + (" here" if seg.via is not None else ""))
            return


class MemoVisibility:
    """Visibility rules whose clause for each entity table itself is built once.

    The rules build fresh aliased subqueries on every call, and setting up SQLAlchemy aliases
    costs more than running a small query. On the entity tables the clause is the same every
    time, so it is kept (for a request, or for good for a caller without identity); clauses on
    aliases (navigation inside $filter, per-parent expands) are built each time as before.
    """

    __slots__ = ("_clauses", "rules", "shared")

    def __init__(self, rules: Any, shared: bool = False) -> None:
        self.rules = rules
        # Shared by many requests (the anonymous caller's): statements built with it are kept.
        self.shared = shared
        self._clauses: dict[str, Any] = {}

    def __call__(self, entity: EntityType | str, table: FromClause) -> ColumnElement | None:
        name = entity if isinstance(entity, str) else entity.name
        if table is not entity_tables.get(name):
            return self.rules(entity, table)
        try:
            return self._clauses[name]
        except KeyError:
            clause = self._clauses[name] = self.rules(entity, table)
            return clause


def _visible(ctx: ReadContext, entity: EntityType, table: FromClause, stmt: Select) -> Select:
    if ctx.visible is None:
        return stmt
    clause = ctx.visible(entity, table)
    return stmt if clause is None else stmt.where(clause)


# ---------------------------------------------------------------------------------------------
# Ordering, paging


def order_clauses(ctx: ReadContext, entity: EntityType, table: FromClause,
                  orderby: tuple[OrderItem, ...]) -> list:
    clauses = []
    pg = ctx.dialect == "postgresql"
    for item in orderby:
        for key in ctx.compiler.order_key(entity, table, item.expr):
            clause = key.desc() if item.descending else key.asc()
            if pg and getattr(key, "nullable", True):
                # Nulls sort as the smallest values on both databases (SQLite's rule). Not on
                # NOT NULL columns: there it changes nothing but keeps PostgreSQL from reading
                # the (datastream_id, phenomenon_time_start, id) index backwards for "latest".
                clause = clause.nulls_last() if item.descending else clause.nulls_first()
            clauses.append(clause)
    if not orderby and entity.name == "Observation":
        clauses.append(table.c.phenomenon_time_start.asc())
    clauses.append(table.c.id.asc())
    return clauses


def page_size(ctx: ReadContext, top: int | None) -> int:
    if top is None:
        return ctx.default_top
    return min(top, ctx.max_top)


def _needed_columns(entity: EntityType, names: tuple[str, ...] | None,
                    tree: dict[str, ExpandNode]) -> list[str]:
    cols = columns_for(entity, None if names is None else [n for n in names if n != "selfLink"])
    for rel in entity.to_one:
        if names is None or rel.name in tree or rel.name in (names or ()):
            cols.add(rel.fk)
    for name in tree:
        rel = entity.relation_by_name[name]
        if rel.fk:
            cols.add(rel.fk)
    # Geometries are answered from their GeoJSON column; the derived `*_geom` column is for
    # spatial filters only (reading it would decode WKB on every row for nothing).
    cols -= _GEOMETRY_COLUMNS[entity.name]
    table = entity_tables[entity.name]
    return [col.name for col in table.columns if col.name in cols]


_GEOMETRY_COLUMNS = {
    e.name: {f.columns[1] for f in e.fields if f.kind is FieldKind.GEOMETRY}
    for e in ENTITY_TYPES.values()
}


# ---------------------------------------------------------------------------------------------
# Collections and entities


@dataclass(slots=True)
class Page:
    rows: list[dict[str, Any]]
    count: int | None
    has_more: bool
    top: int
    skip: int


async def read_collection(ctx: ReadContext, path: ResourcePath, options: QueryOptions,
                          next_link_base: str, query_params: dict[str, str]) -> dict[str, Any]:
    entity = path.target.entity
    table = entity_tables[entity.name]
    await check_path_exists(ctx, path)
    where = path_constraints(path.segments, table)
    if options.filter is not None:
        where.append(ctx.compiler.filter(entity, table, options.filter))
    names = select_names(entity, options.select)
    tree = expand_tree(entity, options.expand)
    top, skip = page_size(ctx, options.top), options.skip or 0
    data_array = _wants_data_array(entity, options, path)

    out: dict[str, Any] = {}
    if options.count:
        stmt = _visible(ctx, entity, table, select(func.count()).select_from(table).where(*where))
        out["@iot.count"] = (await ctx.conn.execute(stmt)).scalar_one()

    # Observations in index order page by keyset ($skiptoken) instead of a growing $skip.
    keyset = keyset_for(entity, options.orderby)
    page_where = list(where)
    if options.skiptoken is not None:
        if keyset is None:
            raise BadRequest("$skiptoken pages Observations ordered by phenomenonTime or id; "
                             "follow @iot.nextLink as the server gave it")
        page_where.append(keyset.after(table, options.skiptoken))
    cols = _needed_columns(entity, names, tree)
    if data_array:
        # dataArray groups the rows by their (Multi)Datastream.
        cols += [c for c in ("datastream_id", "multi_datastream_id") if c not in cols]
    if keyset is not None:
        cols += [c for c in keyset.columns if c not in cols]
    stmt = select(*(table.c[c] for c in cols)).where(*page_where)
    stmt = _visible(ctx, entity, table, stmt)
    stmt = stmt.order_by(*_component_order(path, table, options),
                         *order_clauses(ctx, entity, table, options.orderby))
    stmt = stmt.limit(top + 1).offset(skip)
    result = await ctx.conn.execute(stmt)
    keys = list(result.keys())
    # Plain dicts from plain rows: RowMapping objects cost more per row than the zip.
    rows = [dict(zip(keys, r, strict=True)) for r in result.all()]
    has_more = len(rows) > top
    rows = rows[:top]

    if path.ref:
        out["value"] = [{"@iot.selfLink": ctx.serializer.self_link(entity, r["id"])}
                        for r in rows]
    elif data_array:
        from ortspuls.sta.dataarray import data_array_value

        out["value"] = data_array_value(ctx.serializer, rows, names)
    else:
        values = [ctx.serializer.entity(entity, r, names) for r in rows]
        await load_expands(ctx, entity, rows, values, tree)
        out["value"] = values
    if has_more and top > 0:
        # Every option goes on, in its canonical spelling (so $TOP and $top never both appear).
        params = {canonical_option(k) or k: v for k, v in query_params.items()}
        params["$top"] = str(top)
        if keyset is not None:
            params.pop("$skip", None)
            params["$skiptoken"] = keyset.token(rows[-1])
        else:
            params["$skip"] = str(skip + top)
        out["@iot.nextLink"] = next_link_base + "?" + urlencode(params, quote_via=quote)
    return _order_keys(out)


_MULTI_OBSERVED_PROPERTIES = "multi_datastream_observed_properties"


def _wants_data_array(entity: EntityType, options: QueryOptions, path: ResourcePath) -> bool:
    """$resultFormat=dataArray (DataArray extension) is for Observation collections only."""
    fmt = options.result_format
    if fmt is None:
        return False
    if fmt != "dataArray":
        raise BadRequest(f"$resultFormat={fmt} is not supported; the supported format is "
                         "dataArray (for Observations)")
    if entity.name != "Observation" or path.ref:
        raise BadRequest("$resultFormat=dataArray is for Observation collections, e.g. "
                         "Datastreams(1)/Observations?$resultFormat=dataArray")
    if options.expand:
        raise BadRequest("$resultFormat=dataArray cannot be combined with $expand")
    return True


def _component_order(path: ResourcePath, table: FromClause, options: QueryOptions) -> list:
    """MultiDatastreams(1)/ObservedProperties: in the order of the result components."""
    rel = path.target.via
    parent = path.parent
    if (options.orderby or rel is None or rel.link_table != _MULTI_OBSERVED_PROPERTIES
            or parent is None or parent.id is None or rel.name != "ObservedProperties"):
        return []
    link = link_tables[rel.link_table]
    return [select(link.c.position).where(link.c.multi_datastream_id == parent.id,
                                          link.c.observed_property_id == table.c.id)
            .scalar_subquery()]


def next_params(options: QueryOptions, top: int, skip: int) -> str:
    """Query string for the next page of an expanded collection, carrying its options."""
    params = options_to_params(replace(options, top=top, skip=skip))
    return urlencode(params, quote_via=quote)


def _order_keys(out: dict[str, Any]) -> dict[str, Any]:
    """@iot.count and @iot.nextLink before value, as clients expect."""
    ordered = {k: out[k] for k in ("@iot.count", "@iot.nextLink") if k in out}
    ordered["value"] = out["value"]
    return ordered


async def read_entity(ctx: ReadContext, path: ResourcePath,
                      options: QueryOptions) -> tuple[EntityType, dict[str, Any], dict[str, Any]]:
    """The single entity the path addresses: (entity type, row, JSON dict)."""
    entity = path.target.entity
    table = entity_tables[entity.name]
    await check_path_exists(ctx, path)
    names = select_names(entity, options.select)
    tree = expand_tree(entity, options.expand)
    stmt = select(table).where(*path_constraints(path.segments, table))
    stmt = _visible(ctx, entity, table, stmt)
    row = (await ctx.conn.execute(stmt.limit(1))).mappings().first()
    if row is None:
        seg = path.target
        if seg.id is not None:
            raise NotFound(f"no {entity.name} with id {seg.id}")
        raise NotFound(f"{path.segments[-2].entity.name} has no {seg.via.name}")
    row = dict(row)
    value = ctx.serializer.entity(entity, row, names)
    await load_expands(ctx, entity, [row], [value], tree)
    return entity, row, value


# ---------------------------------------------------------------------------------------------
# $expand


async def load_expands(ctx: ReadContext, entity: EntityType, rows: list[dict[str, Any]],
                       values: list[dict[str, Any]], tree: dict[str, ExpandNode]) -> None:
    if not rows or not tree:
        return
    for name, node in tree.items():
        rel = entity.relation_by_name[name]
        if rel.many:
            await _expand_many(ctx, entity, rel, rows, values, node)
        else:
            await _expand_one(ctx, rel, rows, values, node)


async def _expand_one(ctx: ReadContext, rel: Relation, rows, values, node: ExpandNode) -> None:
    target = ENTITY_TYPES[rel.target]
    table = entity_tables[target.name]
    ids = sorted({r[rel.fk] for r in rows if r.get(rel.fk) is not None})
    names = select_names(target, node.options.select)
    by_id: dict[int, dict[str, Any]] = {}
    if ids:
        where = [table.c.id.in_(ids)]
        if node.options.filter is not None:
            where.append(ctx.compiler.filter(target, table, node.options.filter))
        cols = _needed_columns(target, names, node.children)
        stmt = _visible(ctx, target, table, select(*(table.c[c] for c in cols)).where(*where))
        by_id = {r["id"]: dict(r) for r in (await ctx.conn.execute(stmt)).mappings()}
    child_rows, child_values = [], []
    for row, value in zip(rows, values, strict=True):
        child = by_id.get(row.get(rel.fk))
        if child is None:
            continue
        child_value = ctx.serializer.entity(target, child, names)
        value[rel.name] = child_value
        child_rows.append(child)
        child_values.append(child_value)
    await load_expands(ctx, target, child_rows, child_values, node.children)


def _parent_key(rel: Relation, table: FromClause, link: FromClause | None = None
                ) -> tuple[FromClause, ColumnElement]:
    """The FROM clause and the column that says which parent a child row belongs to."""
    if rel.remote_fk is not None:
        return table, table.c[rel.remote_fk]
    link = link_tables[rel.link_table] if link is None else link
    here, there = rel.link_columns
    return table.join(link, link.c[there] == table.c.id), link.c[here]


def _children_statement(ctx: ReadContext, parent: EntityType, rel: Relation,
                        options: QueryOptions, columns: tuple[str, ...], top: int, skip: int
                        ) -> Select:
    """The first `top + 1` children (after `skip`) of every parent, in one statement.

    Each parent's children are one small ordered index range. PostgreSQL takes them with a
    LATERAL subquery per parent; SQLite (no LATERAL) with `child.id IN (correlated subquery)`
    per parent row, re-sorted by parent and order keys at the end (only the few rows found).
    The parent ids are the expanding parameter `parent_ids`. Statements are kept for their
    next use (building them, aliases and all, costs more than running them) when the
    visibility rules are shared by many requests and the filter does not ask for the current
    time.
    """
    key = (ctx.dialect, parent.name, rel.name, options, columns, top, skip, ctx.visible)
    stmt = _CHILDREN_STATEMENTS.get(key)
    if stmt is None:
        stmt = _build_children_statement(ctx, parent, rel, options, columns, top, skip)
        reusable = ctx.visible is None or getattr(ctx.visible, "shared", False)
        if reusable and not _mentions_now(options):
            if len(_CHILDREN_STATEMENTS) >= _CHILDREN_STATEMENTS_MAX:
                _CHILDREN_STATEMENTS.pop(next(iter(_CHILDREN_STATEMENTS)))
            _CHILDREN_STATEMENTS[key] = stmt
    return stmt


_CHILDREN_STATEMENTS: dict[tuple, Select] = {}
_CHILDREN_STATEMENTS_MAX = 512


def _mentions_now(options: QueryOptions) -> bool:
    exprs = [options.filter, *(item.expr for item in options.orderby)]
    stack = [e for e in exprs if e is not None]
    while stack:
        expr = stack.pop()
        if isinstance(expr, Call):
            if expr.name == "now":
                return True
            stack.extend(expr.args)
        elif isinstance(expr, Binary):
            stack += (expr.left, expr.right)
        elif isinstance(expr, Unary):
            stack.append(expr.operand)
        elif isinstance(expr, In):
            stack += (expr.left, *expr.values)
    return False


def _build_children_statement(ctx: ReadContext, parent: EntityType, rel: Relation,
                              options: QueryOptions, columns: tuple[str, ...], top: int,
                              skip: int) -> Select:
    parent_ids = bindparam("parent_ids", expanding=True)
    target = ENTITY_TYPES[rel.target]
    table = entity_tables[target.name]
    p = entity_tables[parent.name].alias("p")
    position_first = rel.link_table == _MULTI_OBSERVED_PROPERTIES and not options.orderby

    def per_parent(child: FromClause, *selected) -> Select:
        link = link_tables[rel.link_table].alias("pl") if rel.link_table else None
        source, parent_col = _parent_key(rel, child, link)
        where = [parent_col == p.c.id]
        if options.filter is not None:
            where.append(ctx.compiler.filter(target, child, options.filter))
        if ctx.visible is not None:
            clause = ctx.visible(target, child)
            if clause is not None:
                where.append(clause)
        order = order_clauses(ctx, target, child, options.orderby)
        if position_first:
            # A MultiDatastream's ObservedProperties come in the order of its result
            # components.
            order.insert(0, link.c.position)
        return (select(*selected).select_from(source).where(*where).order_by(*order)
                .limit(top + 1).offset(skip))

    if ctx.dialect == "postgresql":
        child = table.alias("c")
        lateral = per_parent(child, *(child.c[c] for c in columns)).lateral("l")
        return (select(*lateral.c, p.c.id.label("_parent"))
                .select_from(p.join(lateral, true())).where(p.c.id.in_(parent_ids)))
    inner = table.alias("c")
    chosen = per_parent(inner, inner.c.id).scalar_subquery()
    stmt = (select(*(table.c[c] for c in columns), p.c.id.label("_parent"))
            .select_from(p).join(table, table.c.id.in_(chosen))
            .where(p.c.id.in_(parent_ids)))
    order = order_clauses(ctx, target, table, options.orderby)
    if position_first:
        link = link_tables[rel.link_table].alias("ol")
        here, there = rel.link_columns
        stmt = stmt.join(link, (link.c[here] == p.c.id) & (link.c[there] == table.c.id))
        order.insert(0, link.c.position)
    return stmt.order_by(p.c.id, *order)


async def _expand_many(ctx: ReadContext, parent: EntityType, rel: Relation, rows, values,
                       node: ExpandNode) -> None:
    target = ENTITY_TYPES[rel.target]
    table = entity_tables[target.name]
    options = node.options
    names = select_names(target, options.select)
    top, skip = page_size(ctx, options.top), options.skip or 0
    columns = tuple(_needed_columns(target, names, node.children))
    parent_ids = list(dict.fromkeys(r["id"] for r in rows))

    children: dict[int, list[dict[str, Any]]] = {pid: [] for pid in parent_ids}
    stmt = _children_statement(ctx, parent, rel, options, columns, top, skip)
    for start in range(0, len(parent_ids), _PARENT_CHUNK):
        chunk = parent_ids[start: start + _PARENT_CHUNK]
        result = await ctx.conn.execute(stmt, {"parent_ids": chunk})
        keys = list(result.keys())
        for r in result.all():
            child = dict(zip(keys, r, strict=True))
            children[child["_parent"]].append(child)

    counts: dict[int, int] = {}
    if options.count:
        source, parent_col = _parent_key(rel, table)
        extra = []
        if options.filter is not None:
            extra.append(ctx.compiler.filter(target, table, options.filter))
        if ctx.visible is not None:
            clause = ctx.visible(target, table)
            if clause is not None:
                extra.append(clause)
        stmt = (select(parent_col, func.count()).select_from(source)
                .where(parent_col.in_(parent_ids), *extra).group_by(parent_col))
        counts = {pid: n for pid, n in (await ctx.conn.execute(stmt)).all()}

    child_rows, child_values = [], []
    query = next_params(options, top, skip + top)  # the same for every parent
    for row, value in zip(rows, values, strict=True):
        items = children[row["id"]]
        if options.count:
            value[f"{rel.name}@iot.count"] = counts.get(row["id"], 0)
        serialized = [ctx.serializer.entity(target, c, names) for c in items[:top]]
        value[rel.name] = serialized
        if len(items) > top:
            link = ctx.serializer.self_link(parent, row["id"])
            value[f"{rel.name}@iot.nextLink"] = f"{link}/{rel.name}?{query}"
        child_rows.extend(items[:top])
        child_values.extend(serialized)
    await load_expands(ctx, target, child_rows, child_values, node.children)
