"""Result formats beyond JSON: `$resultFormat=GeoJSON` and `$resultFormat=CSV`, streamed.

Both answer a whole collection (all matching entities, or `$top` of them; no next links) and
are written while the rows come from the database: rows are fetched in chunks of `CHUNK`, each
chunk is serialized and its `$expand`s loaded (one query per relation and chunk, as in JSON),
turned into bytes and sent, so memory stays flat however large the answer is.

- **GeoJSON**: a FeatureCollection with one Feature per entity. The geometry is the entity's
  own (Location `location`, FeatureOfInterest `feature`, Datastream/MultiDatastream
  `observedArea`) or borrowed: a Thing's newest Location, an Observation's FeatureOfInterest.
  The Feature's properties are the entity's JSON without navigation links, nested objects
  flattened into `a/b` keys (`properties/kind`), expanded entities likewise (`Datastream/name`).
- **CSV** (RFC 4180: comma, CRLF, quotes doubled, UTF-8, header row): one column per selected
  property, objects and arrays (`properties`, `parameters`, geometries, JSON results) as JSON
  text. Expanded entities become prefixed columns (`Datastream/name`); a to-many expand gives
  one line per related entity (parent values repeated), or one line with empty cells if there
  are none.

Everything that can fail with 400/404 is checked before the first byte is sent, and the first
chunk is fetched before it too: a read stopped by the time limit before the first rows (a sort
of everything) is a 400 like any other. Each further chunk gets the whole limit again, as
PostgreSQL's statement_timeout applies to each fetch of the cursor; a chunk stopped later cuts
the answer off (the connection closes without the body's end, so the client sees it).
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ortspuls.db.engine import QueryTimeout, restart_time_limit
from ortspuls.db.schema import entity_tables, link_tables
from ortspuls.model import ENTITY_TYPES, EntityType
from ortspuls.query.ast import QueryOptions
from ortspuls.query.keyset import keyset_for
from ortspuls.sta import read as reading
from ortspuls.sta.errors import BadRequest, NotFound
from ortspuls.sta.paths import ResourcePath
from ortspuls.sta.values import GEOJSON_ENCODINGS

log = logging.getLogger(__name__)

# Rows per database fetch and per chunk sent.
CHUNK = 1000
GEOJSON_MEDIA_TYPE = "application/geo+json"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8; header=present"

ContextFactory = Callable[[AsyncConnection], reading.ReadContext]

# Entity types and where their geometry comes from.
_OWN_GEOMETRY = {"Location": "location", "FeatureOfInterest": "feature",
                 "Datastream": "observedArea", "MultiDatastream": "observedArea"}
_BORROWED_GEOMETRY = {"Thing": "its newest Location", "Observation": "its FeatureOfInterest"}


@dataclass(slots=True)
class _Plan:
    entity: EntityType
    names: tuple[str, ...] | None
    tree: dict[str, reading.ExpandNode]
    statement: Select
    count: int | None = None


async def _prepare(request: Request, path: ResourcePath, options: QueryOptions,
                   context: ContextFactory, fmt: str,
                   extra_columns: tuple[str, ...] = ()) -> _Plan:
    """Validate everything and build the statement (in a short read transaction of its own)."""
    if path.ref or path.member is not None:
        raise BadRequest(f"$resultFormat={fmt} answers entities, not $ref or a single property")
    entity = path.target.entity
    table = entity_tables[entity.name]
    _check_expand_formats(options)
    names = reading.select_names(entity, options.select)
    tree = reading.expand_tree(entity, options.expand)
    async with request.app.state.db.read() as conn:
        ctx = context(conn)
        await reading.check_path_exists(ctx, path)
        where = reading.path_constraints(path.segments, table)
        if not path.target.is_collection:
            await _check_entity_exists(ctx, path, table, where)
        if options.filter is not None:
            where.append(ctx.compiler.filter(entity, table, options.filter))
        count = None
        if options.count:
            stmt = select(func.count()).select_from(table).where(*where)
            stmt = reading._visible(ctx, entity, table, stmt)
            count = (await conn.execute(stmt)).scalar_one()
        if options.skiptoken is not None:
            keyset = keyset_for(entity, options.orderby)
            if keyset is None:
                raise BadRequest("$skiptoken pages Observations ordered by phenomenonTime or id")
            where.append(keyset.after(table, options.skiptoken))
        columns = reading._needed_columns(entity, names, tree)
        columns += [c for c in extra_columns if c not in columns]
        stmt = select(*(table.c[c] for c in columns)).where(*where)
        stmt = reading._visible(ctx, entity, table, stmt)
        stmt = stmt.order_by(*reading.order_clauses(ctx, entity, table, options.orderby))
    # Not paged: the whole answer streams, so $top is honoured but not capped by max_top.
    if options.top is not None:
        stmt = stmt.limit(options.top)
    if options.skip:
        stmt = stmt.offset(options.skip)
    return _Plan(entity, names, tree, stmt, count)


async def _check_entity_exists(ctx: reading.ReadContext, path: ResourcePath,
                               table: Any, where: list) -> None:
    stmt = reading._visible(ctx, path.target.entity, table, select(table.c.id).where(*where))
    if (await ctx.conn.execute(stmt.limit(1))).first() is None:
        seg = path.target
        if seg.id is not None:
            raise NotFound(f"no {seg.entity.name} with id {seg.id}")
        raise NotFound(f"{path.segments[-2].entity.name} has no {seg.via.name}")


def _check_expand_formats(options: QueryOptions) -> None:
    for item in options.expand:
        if item.options.result_format is not None:
            raise BadRequest("$resultFormat applies to the whole answer, not inside $expand")
        _check_expand_formats(item.options)


async def _chunks(request: Request, plan: _Plan, context: ContextFactory
                  ) -> AsyncIterator[tuple[reading.ReadContext, list[dict], list[dict]]]:
    """(context, rows, serialized entities with their expands) per chunk, from one cursor."""
    async with request.app.state.db.read() as conn:
        ctx = context(conn)
        result = await conn.stream(plan.statement)
        async for part in result.mappings().partitions(CHUNK):
            rows = [dict(r) for r in part]
            values = [ctx.serializer.entity(plan.entity, r, plan.names) for r in rows]
            await reading.load_expands(ctx, plan.entity, rows, values, plan.tree)
            yield ctx, rows, values
            restart_time_limit(conn)


Chunks = AsyncIterator[tuple[reading.ReadContext, list[dict], list[dict]]]


async def _started(chunks: Chunks) -> Chunks:
    """`chunks` with the first one fetched now, before the answer starts (QueryTimeout here is
    still a 400)."""
    first = await anext(chunks, None)

    async def all_chunks() -> Chunks:
        if first is not None:
            yield first
            async for chunk in chunks:
                yield chunk

    return all_chunks()


class _Stream(StreamingResponse):
    async def stream_response(self, send) -> None:
        try:
            await super().stream_response(send)
        except QueryTimeout as exc:
            # Too late for an error status: end without the body's last chunk, so the client
            # sees a cut-off answer rather than a complete-looking one.
            log.warning("read stopped at the time limit of %g s while streaming %s",
                        exc.seconds, self.media_type)


# ---------------------------------------------------------------------------------------------
# GeoJSON


async def geojson_response(request: Request, path: ResourcePath, options: QueryOptions,
                           context: ContextFactory) -> Response:
    entity = path.target.entity
    own = _OWN_GEOMETRY.get(entity.name)
    if own is None and entity.name not in _BORROWED_GEOMETRY:
        kinds = ", ".join([*_OWN_GEOMETRY, *_BORROWED_GEOMETRY])
        raise BadRequest(f"$resultFormat=GeoJSON needs entities with a geometry ({kinds}); "
                         f"{entity.set_name} have none")
    extra: tuple[str, ...] = ()
    if own is not None:
        field = entity.field_by_name[own]
        extra = (field.column,)
        if "encodingType" in entity.field_by_name:
            extra += ("encoding_type",)
    elif entity.name == "Observation":
        extra = ("feature_id",)
    plan = await _prepare(request, path, options, context, "GeoJSON", extra)
    chunks = await _started(_chunks(request, plan, context))
    return _Stream(_geojson_body(plan, chunks, own), media_type=GEOJSON_MEDIA_TYPE)


async def _geojson_body(plan: _Plan, chunks: Chunks, own: str | None) -> AsyncIterator[bytes]:
    head = b'{"type":"FeatureCollection",'
    if plan.count is not None:
        head += b'"@iot.count":' + str(plan.count).encode() + b","
    yield head + b'"features":['
    first = True
    async for ctx, rows, values in chunks:
        if own is not None:
            column = plan.entity.field_by_name[own].column
            geometries = [_geojson_geometry(r[column], r.get("encoding_type")) for r in rows]
        else:
            geometries = await _borrowed_geometries(ctx.conn, plan.entity, rows)
        features = []
        for value, geometry in zip(values, geometries, strict=True):
            if own is not None:
                value.pop(own, None)
            features.append({"type": "Feature", "id": value.get("@iot.id"),
                             "geometry": geometry, "properties": _flatten(value)})
        if features:
            body = orjson.dumps(features)[1:-1]  # the items, without the array's brackets
            yield body if first else b"," + body
            first = False
    yield b"]}"


def _geojson_geometry(value: Any, encoding: str | None) -> Any:
    """A stored location/feature/observedArea as a GeoJSON geometry (None if it is not one)."""
    if not isinstance(value, dict) or (encoding is not None
                                       and encoding not in GEOJSON_ENCODINGS):
        return None
    if value.get("type") == "Feature":
        return value.get("geometry")
    return value


async def _borrowed_geometries(conn: AsyncConnection, entity: EntityType,
                               rows: list[dict]) -> list[Any]:
    """One query per chunk: Things' newest Locations, Observations' FeaturesOfInterest."""
    if entity.name == "Thing":
        links, locations = link_tables["thing_locations"], entity_tables["Location"]
        ids = [r["id"] for r in rows]
        stmt = (select(links.c.thing_id, locations.c.location, locations.c.encoding_type)
                .join(locations, locations.c.id == links.c.location_id)
                .where(links.c.thing_id.in_(ids))
                .order_by(links.c.thing_id, locations.c.id.desc()))
        by_thing: dict[int, Any] = {}
        for thing_id, location, encoding in (await conn.execute(stmt)).all():
            by_thing.setdefault(thing_id, _geojson_geometry(location, encoding))
        return [by_thing.get(r["id"]) for r in rows]
    features = entity_tables["FeatureOfInterest"]
    ids = sorted({r["feature_id"] for r in rows if r.get("feature_id") is not None})
    by_feature: dict[int, Any] = {}
    if ids:
        stmt = select(features.c.id, features.c.feature, features.c.encoding_type).where(
            features.c.id.in_(ids))
        by_feature = {fid: _geojson_geometry(feature, encoding)
                      for fid, feature, encoding in (await conn.execute(stmt)).all()}
    return [by_feature.get(r.get("feature_id")) for r in rows]


def _flatten(value: dict[str, Any], prefix: str = "", out: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    """Nested objects into `a/b` keys; navigation links dropped; lists of entities (to-many
    expands) stay lists of flattened entities."""
    out = {} if out is None else out
    for key, item in value.items():
        if key.endswith("@iot.navigationLink"):
            continue
        name = prefix + key
        if isinstance(item, dict) and item:
            _flatten(item, name + "/", out)
        elif key in _TO_MANY_NAMES and isinstance(item, list) and all(
                isinstance(i, dict) for i in item):
            out[name] = [_flatten(i) for i in item]
        else:
            out[name] = item
    return out


_TO_MANY_NAMES = frozenset(r.name for e in ENTITY_TYPES.values() for r in e.to_many)


# ---------------------------------------------------------------------------------------------
# CSV


@dataclass(frozen=True, slots=True)
class _Columns:
    """The CSV columns of one entity level: its own, then those of each expanded relation."""

    keys: tuple[str, ...]  # keys in the serialized JSON
    headers: tuple[str, ...]
    children: tuple[tuple[str, bool, _Columns], ...]  # (relation name, to-many, columns)

    @property
    def width(self) -> int:
        return len(self.keys) + sum(c.width for _, _, c in self.children)

    def all_headers(self) -> list[str]:
        out = list(self.headers)
        for _, _, child in self.children:
            out.extend(child.all_headers())
        return out


def _columns(entity: EntityType, names: tuple[str, ...] | None,
             tree: dict[str, reading.ExpandNode], prefix: str = "") -> _Columns:
    if names is None:
        own = ["id", *(f.name for f in entity.fields)]
    else:
        own = [n for n in names if n in ("id", "selfLink") or n in entity.field_by_name]
    keys = tuple({"id": "@iot.id", "selfLink": "@iot.selfLink"}.get(n, n) for n in own)
    headers = tuple(prefix + n for n in own)
    children = []
    for rel_name, node in tree.items():
        rel = entity.relation_by_name[rel_name]
        target = ENTITY_TYPES[rel.target]
        child_names = reading.select_names(target, node.options.select)
        children.append((rel_name, rel.many, _columns(target, child_names, node.children,
                                                      f"{prefix}{rel_name}/")))
    return _Columns(keys, headers, tuple(children))


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value


def _lines(value: dict[str, Any] | None, columns: _Columns) -> list[list[Any]]:
    """The CSV lines of one entity with its expands (to-many expands multiply the lines)."""
    if value is None:
        return [[""] * columns.width]
    own = [_cell(value.get(k)) for k in columns.keys]
    parts: list[list[list[Any]]] = []
    for rel_name, many, child in columns.children:
        related = value.get(rel_name)
        if many:
            lines = [line for item in (related or ()) for line in _lines(item, child)]
            parts.append(lines or [[""] * child.width])
        else:
            parts.append(_lines(related, child))
    if not parts:
        return [own]
    return [own + [cell for part in combo for cell in part]
            for combo in itertools.product(*parts)]


async def csv_response(request: Request, path: ResourcePath, options: QueryOptions,
                       context: ContextFactory) -> Response:
    plan = await _prepare(request, path, options, context, "CSV")
    columns = _columns(plan.entity, plan.names, plan.tree)
    chunks = await _started(_chunks(request, plan, context))
    return _Stream(_csv_body(chunks, columns), media_type=CSV_MEDIA_TYPE)


async def _csv_body(chunks: Chunks, columns: _Columns) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns.all_headers())
    yield buffer.getvalue().encode()
    async for _, _, values in chunks:
        buffer.seek(0)
        buffer.truncate()
        for value in values:
            writer.writerows(_lines(value, columns))
        yield buffer.getvalue().encode()

