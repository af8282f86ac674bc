"""Create, update and delete, validated against the model and run in one transaction.

A request body is checked field by field before anything is written; related entities are
linked (`{"@iot.id": n}`) or created (deep insert) in the same transaction, so a failure at any
depth leaves the database as it was. Observations are stored by the observation writer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import shapely
from sqlalchemy import delete, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ortspuls.db.schema import entity_tables, link_tables
from ortspuls.model import ENTITY_TYPES, EntityType, Field, FieldKind, Relation
from ortspuls.sta.errors import BadRequest, Conflict, Forbidden, NotFound
from ortspuls.sta.paths import MAX_ID
from ortspuls.sta.values import (
    encode_result,
    geometry_of,
    geometry_to_geojson,
    parse_interval,
    parse_time,
    parse_time_or_interval,
)
from ortspuls.timeseries.events import EntityEvent
from ortspuls.timeseries.writer import NewFeature, NewObservation, ObservationWriter

_IGNORED_SUFFIXES = ("@iot.navigationLink", "@iot.selfLink", "@iot.count", "@iot.nextLink")
_LINK_KEYS = ("@iot.id", "id")


@dataclass(slots=True)
class WriteContext:
    conn: AsyncConnection
    writer: ObservationWriter
    tenant_id: int
    events: list[EntityEvent] = field(default_factory=list)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


# ---------------------------------------------------------------------------------------------
# Validation of request bodies


def _where(entity: EntityType, relation: str | None = None) -> str:
    return f"{entity.name}.{relation}" if relation else entity.name


def convert_field(entity: EntityType, f: Field, value: Any) -> dict[str, Any]:
    """One API field value -> its SQL column values."""
    name = f"{entity.name}.{f.name}"
    if value is None and f.kind is not FieldKind.RESULT:
        # A result may be JSON null (the sensor reported "no value"); it is still present.
        if f.required:
            raise BadRequest(f"{name} is mandatory and may not be null")
        return dict.fromkeys(f.columns)
    match f.kind:
        case FieldKind.STRING:
            if not isinstance(value, str):
                raise BadRequest(f"{name} must be a string, got {type(value).__name__}")
            return {f.column: value}
        case FieldKind.OBJECT:
            if not isinstance(value, dict):
                raise BadRequest(f"{name} must be a JSON object, got {type(value).__name__}")
            return {f.column: value}
        case FieldKind.ARRAY:
            if not isinstance(value, list):
                raise BadRequest(f"{name} must be a JSON array, got {type(value).__name__}")
            return {f.column: value}
        case FieldKind.JSON:
            return {f.column: value}
        case FieldKind.TIME:
            return {f.column: parse_time(value, name)}
        case FieldKind.INTERVAL:
            start, end = parse_interval(value, name)
            return dict(zip(f.columns, (start, end), strict=True))
        case FieldKind.TIME_OR_INTERVAL:
            start, end = parse_time_or_interval(value, name)
            return dict(zip(f.columns, (start, end), strict=True))
        case FieldKind.GEOMETRY:
            # The geometry column is derived once encodingType is known (see _derive_geometry).
            return {f.column: value}
        case FieldKind.RESULT:
            kind, number, string, other = encode_result(value)
            return {"result_type": kind, "result_number": number, "result_string": string,
                    "result_json": other}
    raise AssertionError(f.kind)


@dataclass(slots=True)
class Parsed:
    """A validated body: column values and the related entities it names."""

    values: dict[str, Any]
    given: set[str]  # API field names present in the body
    relations: dict[str, Any]


def parse_body(entity: EntityType, data: Any, *, partial: bool) -> Parsed:
    if not isinstance(data, dict):
        raise BadRequest(f"the body for a {entity.name} must be a JSON object")
    values: dict[str, Any] = {}
    given: set[str] = set()
    relations: dict[str, Any] = {}
    for key, value in data.items():
        if key in _LINK_KEYS or key.endswith(_IGNORED_SUFFIXES) or key == "@iot.selfLink":
            continue
        f = entity.field_by_name.get(key)
        if f is not None:
            if not f.editable:
                raise BadRequest(f"{entity.name}.{key} is maintained by the server and cannot "
                                 "be set")
            values.update(convert_field(entity, f, value))
            given.add(key)
            continue
        if key in entity.relation_by_name:
            relations[key] = value
            continue
        known = ", ".join([f.name for f in entity.fields if f.editable]
                          + [r.name for r in entity.relations])
        raise BadRequest(f"{entity.name} has no property {key!r}; known: {known}")
    if not partial:
        for f in entity.fields:
            if f.required and f.editable and f.name not in given:
                raise BadRequest(f"{entity.name}.{f.name} is mandatory")
    _derive_geometry(entity, values, given)
    return Parsed(values, given, relations)


def _derive_geometry(entity: EntityType, values: dict[str, Any], given: set[str]) -> None:
    for f in entity.fields:
        if f.kind is FieldKind.GEOMETRY and f.editable and f.name in given:
            raw_col, geom_col = f.columns
            geom = geometry_of(values[raw_col], values.get("encoding_type"),
                               f"{entity.name}.{f.name}")
            values[geom_col] = geom


def _link_id(entity: EntityType, value: Any, where: str) -> int | None:
    """The id of `{"@iot.id": n}`, or None if `value` describes a new entity."""
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be a JSON object (an entity or {{\"@iot.id\": n}})")
    for key in _LINK_KEYS:
        if key in value:
            ident = value[key]
            if isinstance(ident, bool) or not isinstance(ident, int):
                raise BadRequest(f"{where}: @iot.id must be an integer, got {ident!r}")
            if not 1 <= ident <= MAX_ID:
                raise BadRequest(f"{where}: no {entity.name} with id {ident}")
            return ident
    return None


# ---------------------------------------------------------------------------------------------
# Create


async def _require_exists(ctx: WriteContext, entity: EntityType, ident: int, where: str) -> None:
    table = entity_tables[entity.name]
    row = (await ctx.conn.execute(
        select(table.c.tenant_id).where(table.c.id == ident))).first()
    if row is None:
        raise BadRequest(f"{where}: no {entity.name} with id {ident}")
    if row.tenant_id != ctx.tenant_id:
        raise Forbidden(f"{where}: {entity.name} {ident} belongs to another municipality; "
                        "only its own municipality may link it")


async def create(ctx: WriteContext, entity: EntityType, data: Any,
                 implied: dict[str, int] | None = None) -> int:
    """Create `entity` from `data` (deep insert); `implied` links relation name -> parent id."""
    if entity.name == "Observation":
        record = await observation_record(ctx, data, implied or {})
        rows, events = await ctx.writer.insert(ctx.conn, [record])
        ctx.events.extend(events)
        return rows[0]["id"]

    parsed = parse_body(entity, data, partial=False)
    implied = implied or {}
    table = entity_tables[entity.name]
    values = dict(parsed.values, tenant_id=ctx.tenant_id)
    if entity.name == "MultiDatastream":
        check_multi_datastream(values)
    if entity.name in ("Thing", "Datastream", "MultiDatastream"):
        # New Things and streams get their tenant's default visibility (public or internal).
        from ortspuls.tenancy.tenants import default_public

        values["is_public"] = await default_public(ctx.conn, ctx.tenant_id)

    for rel in entity.to_one:
        where = _where(entity, rel.name)
        target = ENTITY_TYPES[rel.target]
        if rel.name in implied:
            values[rel.fk] = implied[rel.name]
            if rel.name in parsed.relations:
                raise BadRequest(f"{where} is given by the URL; leave it out of the body")
            # Things(7)/Datastreams links Thing 7: it must be the writer's own (else 403).
            await _require_exists(ctx, target, implied[rel.name], where)
        elif rel.name in parsed.relations:
            values[rel.fk] = await _link_or_create(ctx, target, parsed.relations[rel.name], where)
        elif rel.required:
            raise BadRequest(f"{where} is mandatory: link one with {{\"@iot.id\": n}} or "
                             "create it inline")

    ident = (await ctx.conn.execute(
        insert(table).values(values).returning(table.c.id))).scalar_one()
    ctx.events.append(EntityEvent("create", entity.name, ident, ctx.tenant_id,
                                  dict(values, id=ident)))

    locations_changed = False
    for rel in entity.to_many:
        items = parsed.relations.get(rel.name)
        implied_id = implied.get(rel.name)
        if items is None and implied_id is None:
            continue
        if items is None:
            items = []
        if not isinstance(items, list):
            raise BadRequest(f"{_where(entity, rel.name)} must be a JSON array")
        if implied_id is not None:
            items = [*items, {"@iot.id": implied_id}]
        await _attach_many(ctx, entity, ident, rel, items)
        if rel.name in ("Locations", "Things") and entity.name in ("Thing", "Location"):
            locations_changed = True
    if entity.name == "MultiDatastream":
        await check_multi_datastream_links(ctx, ident, values)

    if locations_changed:
        if entity.name == "Thing":
            await record_historical_location(ctx, ident)
        else:
            # A Thing is at one place at a time: a new Location linked to it replaces its
            # previous ones (several Locations of a Thing are encodings of one place and are
            # linked in one request, on the Thing).
            tl = link_tables["thing_locations"]
            for thing in await _things_of_location(ctx, ident):
                await ctx.conn.execute(delete(tl).where(tl.c.thing_id == thing,
                                                        tl.c.location_id != ident))
                await record_historical_location(ctx, thing)
    return ident


async def _link_or_create(ctx: WriteContext, target: EntityType, value: Any, where: str) -> int:
    ident = _link_id(target, value, where)
    if ident is not None:
        await _require_exists(ctx, target, ident, where)
        return ident
    return await create(ctx, target, value)


async def _attach_many(ctx: WriteContext, entity: EntityType, ident: int, rel: Relation,
                       items: list) -> None:
    target = ENTITY_TYPES[rel.target]
    where = _where(entity, rel.name)
    if rel.remote_fk is not None:
        for item in items:
            link = _link_id(target, item, where)
            if link is None:
                await create(ctx, target, item, implied={rel.inverse: ident})
                continue
            await _require_exists(ctx, target, link, where)
            t = entity_tables[target.name]
            await ctx.conn.execute(update(t).where(t.c.id == link).values({rel.remote_fk: ident}))
        return
    link_table = link_tables[rel.link_table]
    here, there = rel.link_columns
    ordered = rel.link_table == MULTI_OBSERVED_PROPERTIES
    if ordered and entity.name != "MultiDatastream":
        raise BadRequest(f"{where}: the ObservedProperties of a MultiDatastream are given with "
                         "the MultiDatastream, in the order of its result components")
    linked: list[int] = []
    for item in items:
        link = _link_id(target, item, where)
        if link is None:
            link = await create(ctx, target, item)
        else:
            await _require_exists(ctx, target, link, where)
        if link not in linked:
            linked.append(link)
    if linked:
        existing = set((await ctx.conn.execute(
            select(link_table.c[there]).where(link_table.c[here] == ident))).scalars())
        rows = [{here: ident, there: t} for t in linked if t not in existing]
        if ordered:
            # The n-th ObservedProperty describes the n-th component of every result.
            for position, row in enumerate(rows, start=len(existing)):
                row["position"] = position
        if rows:
            await ctx.conn.execute(insert(link_table), rows)


async def _things_of_location(ctx: WriteContext, location_id: int) -> list[int]:
    tl = link_tables["thing_locations"]
    return list((await ctx.conn.execute(
        select(tl.c.thing_id).where(tl.c.location_id == location_id))).scalars())


async def record_historical_location(ctx: WriteContext, thing_id: int) -> None:
    """A Thing's Locations changed: remember its current Locations with the time."""
    tl = link_tables["thing_locations"]
    hl = entity_tables["HistoricalLocation"]
    hll = link_tables["historical_location_locations"]
    locations = list((await ctx.conn.execute(
        select(tl.c.location_id).where(tl.c.thing_id == thing_id))).scalars())
    values = {"tenant_id": ctx.tenant_id, "thing_id": thing_id, "time": ctx.now}
    ident = (await ctx.conn.execute(insert(hl).values(values).returning(hl.c.id))).scalar_one()
    if locations:
        await ctx.conn.execute(insert(hll), [
            {"historical_location_id": ident, "location_id": loc} for loc in locations])
    ctx.events.append(EntityEvent("create", "HistoricalLocation", ident, ctx.tenant_id,
                                  dict(values, id=ident)))


async def observation_record(ctx: WriteContext, data: Any,
                             implied: dict[str, int]) -> NewObservation:
    """Validate an Observation body into a record for the observation writer."""
    entity = ENTITY_TYPES["Observation"]
    parsed = parse_body(entity, data, partial=False)
    v = parsed.values
    from_path = "Datastream" in implied or "MultiDatastream" in implied
    datastream_id = multi_datastream_id = None
    if "Datastream" in parsed.relations and "MultiDatastream" in parsed.relations:
        raise BadRequest("an Observation belongs to a Datastream or a MultiDatastream, not both")
    for name in ("Datastream", "MultiDatastream"):
        if name in implied:
            if "Datastream" in parsed.relations or "MultiDatastream" in parsed.relations:
                raise BadRequest(f"Observation.{name} is given by the URL; leave the "
                                 "Datastream out of the body")
            ident = implied[name]
        elif name in parsed.relations:
            value = parsed.relations[name]
            ident = _link_id(ENTITY_TYPES[name], value, f"Observation.{name}")
            if ident is None:
                ident = await create(ctx, ENTITY_TYPES[name], value)
        else:
            continue
        if name == "Datastream":
            datastream_id = ident
        else:
            multi_datastream_id = ident
    if datastream_id is None and multi_datastream_id is None:
        raise BadRequest("Observation.Datastream is mandatory: link one with {\"@iot.id\": n} "
                         "(or a MultiDatastream)")

    feature_id, feature = implied.get("FeatureOfInterest"), None
    if "FeatureOfInterest" in parsed.relations:
        value = parsed.relations["FeatureOfInterest"]
        feature_id = _link_id(ENTITY_TYPES["FeatureOfInterest"], value,
                              "Observation.FeatureOfInterest")
        if feature_id is None:
            feature = new_feature(value)
    if "phenomenonTime" in parsed.given:
        start, end = v["phenomenon_time_start"], v["phenomenon_time_end"]
    else:
        start, end = ctx.now, None
    return NewObservation(
        datastream_id=datastream_id,
        phenomenon_time_start=start,
        phenomenon_time_end=end,
        result=(v["result_type"], v["result_number"], v["result_string"], v["result_json"]),
        result_time=v.get("result_time"),
        result_quality=v.get("result_quality"),
        valid_time_start=v.get("valid_time_start"),
        valid_time_end=v.get("valid_time_end"),
        parameters=v.get("parameters"),
        feature_id=feature_id,
        feature=feature,
        datastream_from_path=from_path,
        multi_datastream_id=multi_datastream_id,
        tenant_id=ctx.tenant_id,
    )


def new_feature(value: Any) -> NewFeature:
    entity = ENTITY_TYPES["FeatureOfInterest"]
    parsed = parse_body(entity, value, partial=False)
    if parsed.relations:
        raise BadRequest("a FeatureOfInterest created with an Observation cannot link others")
    v = parsed.values
    return NewFeature(v["name"], v["description"], v["encoding_type"], v["feature"],
                      v.get("feature_geom"), v.get("properties"))


# ---------------------------------------------------------------------------------------------
# Update


async def load_row(ctx: WriteContext, entity: EntityType, ident: int) -> dict[str, Any]:
    table = entity_tables[entity.name]
    row = (await ctx.conn.execute(select(table).where(table.c.id == ident))).mappings().first()
    if row is None:
        raise NotFound(f"no {entity.name} with id {ident}")
    if row["tenant_id"] != ctx.tenant_id:
        raise Forbidden(f"{entity.name} {ident} belongs to another municipality; only its own "
                        "municipality may change it")
    return dict(row)


async def update_entity(ctx: WriteContext, entity: EntityType, ident: int, data: Any,
                        *, replace: bool) -> None:
    """PATCH (merge) or PUT (replace) of one entity."""
    current = await load_row(ctx, entity, ident)
    parsed = parse_body(entity, data, partial=not replace)
    values = dict(parsed.values)
    if replace:
        for f in entity.fields:
            if f.editable and f.name not in parsed.given:
                values.update(dict.fromkeys(f.columns))
    # A geometry needs its encodingType: re-derive when only one of the two changed.
    for f in entity.fields:
        if f.kind is FieldKind.GEOMETRY and f.editable:
            raw_col, geom_col = f.columns
            if ("encoding_type" in values) != (raw_col in values):
                merged = {**current, **values}
                values[geom_col] = geometry_of(merged[raw_col], merged.get("encoding_type"),
                                               f"{entity.name}.{f.name}")
    if entity.name == "Observation" and "result_type" in values and values["result_type"] is None:
        raise BadRequest("Observation.result is mandatory")
    if entity.name == "MultiDatastream":
        check_multi_datastream({**current, **values})

    table = entity_tables[entity.name]
    for rel in entity.to_one:
        if rel.name in parsed.relations:
            target = ENTITY_TYPES[rel.target]
            values[rel.fk] = await _link_or_create(ctx, target, parsed.relations[rel.name],
                                                   _where(entity, rel.name))
    if values:
        await ctx.conn.execute(update(table).where(table.c.id == ident).values(values))

    for rel in entity.to_many:
        if rel.name not in parsed.relations:
            continue
        items = parsed.relations[rel.name]
        if not isinstance(items, list):
            raise BadRequest(f"{_where(entity, rel.name)} must be a JSON array")
        if rel.link_table is not None and entity.name == "Thing" and rel.name == "Locations":
            # A Thing has its Locations replaced (and the change remembered).
            lt = link_tables[rel.link_table]
            await ctx.conn.execute(delete(lt).where(lt.c.thing_id == ident))
            await _attach_many(ctx, entity, ident, rel, items)
            await record_historical_location(ctx, ident)
        else:
            await _attach_many(ctx, entity, ident, rel, items)

    if entity.name == "Location" and ("location_geom" in values or "encoding_type" in values):
        # Features generated from the old position must not be reused for new observations.
        ft = entity_tables["FeatureOfInterest"]
        await ctx.conn.execute(update(ft).where(ft.c.generated_from_location_id == ident)
                               .values(generated_from_location_id=None))
    if entity.name == "Observation":
        await refresh_datastream_summary(ctx, [current["datastream_id"],
                                               values.get("datastream_id")])
        await refresh_datastream_summary(ctx, [current.get("multi_datastream_id"),
                                               values.get("multi_datastream_id")], multi=True)
    after = await load_row(ctx, entity, ident)
    if entity.name == "Observation":
        await check_observation_stream(ctx, after)
        # Derived data (rollups) of the old and the new time and Datastream is recomputed.
        await ctx.writer.observations_changed(ctx.conn, [
            (r["datastream_id"], r["phenomenon_time_start"], r["phenomenon_time_start"])
            for r in (current, after)])
    if entity.name == "MultiDatastream":
        await check_multi_datastream_links(ctx, ident, after)
    ctx.events.append(EntityEvent("update", entity.name, ident, ctx.tenant_id, after))


def api_view(entity: EntityType, row: dict[str, Any]) -> dict[str, Any]:
    """The editable fields of a stored row as the API shows them (for JSON Patch)."""
    from ortspuls.sta.serialize import field_value

    return {f.name: field_value(entity, f.name, row) for f in entity.fields if f.editable}


async def json_patch(ctx: WriteContext, entity: EntityType, ident: int, operations: Any) -> None:
    current = api_view(entity, await load_row(ctx, entity, ident))
    patched = apply_json_patch(current, operations)
    await update_entity(ctx, entity, ident, patched, replace=True)


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or not path.startswith("/"):
        raise BadRequest(f"JSON Patch path {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str], path: str) -> tuple[Any, str]:
    target = doc
    for part in parts[:-1]:
        if isinstance(target, dict) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            raise BadRequest(f"JSON Patch path {path!r} does not exist")
    return target, parts[-1]


def apply_json_patch(document: dict[str, Any], operations: Any) -> dict[str, Any]:
    """RFC 6902 on a plain JSON document; any failure is a 400 and nothing changes."""
    if not isinstance(operations, list):
        raise BadRequest("a JSON Patch body must be an array of operations")
    doc = copy.deepcopy(document)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise BadRequest("each JSON Patch operation needs 'op' and 'path'")
        kind, path = op["op"], op["path"]
        parts = _pointer(path)
        if kind in ("add", "replace", "test") and "value" not in op:
            raise BadRequest(f"JSON Patch {kind} needs a 'value'")
        if kind in ("move", "copy"):
            src_parent, src_key = _resolve(doc, _pointer(op.get("from")), op.get("from"))
            value = _get(src_parent, src_key, op.get("from"))
            if kind == "move":
                _remove(src_parent, src_key, op.get("from"))
            kind, op = "add", {"value": copy.deepcopy(value)}
        parent, key = _resolve(doc, parts, path)
        if kind == "add":
            if isinstance(parent, list):
                index = len(parent) if key == "-" else _index(key, len(parent) + 1, path)
                parent.insert(index, op["value"])
            elif isinstance(parent, dict):
                parent[key] = op["value"]
            else:
                raise BadRequest(f"JSON Patch path {path!r} does not exist")
        elif kind == "remove":
            _remove(parent, key, path)
        elif kind == "replace":
            _get(parent, key, path)
            if isinstance(parent, list):
                parent[_index(key, len(parent), path)] = op["value"]
            else:
                parent[key] = op["value"]
        elif kind == "test":
            if _get(parent, key, path) != op["value"]:
                raise Conflict(f"JSON Patch test failed at {path!r}")
        else:
            raise BadRequest(f"unknown JSON Patch operation {kind!r}")
    return doc


def _index(key: str, size: int, path: str) -> int:
    if not key.isdigit() or int(key) >= size:
        raise BadRequest(f"JSON Patch path {path!r}: no array index {key!r}")
    return int(key)


def _get(parent: Any, key: str, path: str) -> Any:
    if isinstance(parent, dict) and key in parent:
        return parent[key]
    if isinstance(parent, list):
        return parent[_index(key, len(parent), path)]
    raise BadRequest(f"JSON Patch path {path!r} does not exist")


def _remove(parent: Any, key: str, path: str) -> None:
    _get(parent, key, path)
    if isinstance(parent, list):
        del parent[int(key)]
    else:
        del parent[key]


# ---------------------------------------------------------------------------------------------
# Delete


async def delete_entity(ctx: WriteContext, entity: EntityType, ident: int) -> None:
    row = await load_row(ctx, entity, ident)
    table = entity_tables[entity.name]
    affected: list[int | None] = []
    spans: list[tuple] = []  # (Datastream, first, last time) of Observations that go
    if entity.name == "FeatureOfInterest":
        # Its Observations go with it (foreign key cascade); their Datastreams' summaries shrink.
        obs = entity_tables["Observation"]
        affected = list((await ctx.conn.execute(
            select(obs.c.datastream_id).where(obs.c.feature_id == ident).distinct())).scalars())
        spans = [tuple(r) for r in await ctx.conn.execute(
            select(obs.c.datastream_id, func.min(obs.c.phenomenon_time_start),
                   func.max(obs.c.phenomenon_time_start))
            .where(obs.c.feature_id == ident).group_by(obs.c.datastream_id))]
    await ctx.conn.execute(delete(table).where(table.c.id == ident))
    if entity.name == "Location":
        # HistoricalLocations that pointed only at this Location have lost their meaning.
        hl = entity_tables["HistoricalLocation"]
        hll = link_tables["historical_location_locations"]
        await ctx.conn.execute(delete(hl).where(
            ~exists().where(hll.c.historical_location_id == hl.c.id),
            hl.c.tenant_id == ctx.tenant_id,
        ))
    if entity.name == "Observation":
        await refresh_datastream_summary(ctx, [row["datastream_id"]])
        await refresh_datastream_summary(ctx, [row.get("multi_datastream_id")], multi=True)
        spans = [(row["datastream_id"], row["phenomenon_time_start"], row["phenomenon_time_start"])]
    if spans:
        await ctx.writer.observations_changed(ctx.conn, spans)
    if affected:
        await refresh_datastream_summary(ctx, affected)
    ctx.events.append(EntityEvent("delete", entity.name, ident, ctx.tenant_id, None))


async def refresh_datastream_summary(ctx: WriteContext, ids: list[int | None],
                                     multi: bool = False) -> None:
    """Recompute phenomenonTime, resultTime and observedArea after an update or delete (of
    Datastreams, or with `multi` of MultiDatastreams)."""
    obs = entity_tables["Observation"]
    ds = entity_tables["MultiDatastream" if multi else "Datastream"]
    stream_col = obs.c.multi_datastream_id if multi else obs.c.datastream_id
    ft = entity_tables["FeatureOfInterest"]
    for ident in {i for i in ids if i is not None}:
        row = (await ctx.conn.execute(select(
            func.min(obs.c.phenomenon_time_start),
            func.max(func.coalesce(obs.c.phenomenon_time_end, obs.c.phenomenon_time_start)),
            func.min(obs.c.result_time), func.max(obs.c.result_time),
        ).where(stream_col == ident))).first()
        geoms = [g for g in (await ctx.conn.execute(
            select(ft.c.feature_geom).where(ft.c.id.in_(
                select(obs.c.feature_id).where(stream_col == ident).distinct()))
        )).scalars() if g is not None]
        area = shapely.union_all(geoms).convex_hull if geoms else None
        await ctx.conn.execute(update(ds).where(ds.c.id == ident).values(
            phenomenon_time_start=_as_time(row[0]), phenomenon_time_end=_as_time(row[1]),
            result_time_start=_as_time(row[2]), result_time_end=_as_time(row[3]),
            observed_area_geom=area, observed_area=geometry_to_geojson(area),
        ))


# ---------------------------------------------------------------------------------------------
# MultiDatastream rules (extension of SensorThings 1.1)

MULTI_OBSERVED_PROPERTIES = "multi_datastream_observed_properties"
COMPLEX_OBSERVATION = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation"


def check_multi_datastream(values: dict[str, Any]) -> None:
    """unitOfMeasurements and multiObservationDataTypes: one entry per result component."""
    uoms = values.get("unit_of_measurements")
    types = values.get("multi_observation_data_types")
    if values.get("observation_type") != COMPLEX_OBSERVATION:
        raise BadRequest(f"MultiDatastream.observationType must be {COMPLEX_OBSERVATION}")
    if not uoms or not all(isinstance(u, dict) for u in uoms):
        raise BadRequest("MultiDatastream.unitOfMeasurements must be a non-empty array of "
                         "unitOfMeasurement objects, one per result component")
    if not types or not all(isinstance(t, str) for t in types):
        raise BadRequest("MultiDatastream.multiObservationDataTypes must be a non-empty array of "
                         "observation type URIs, one per result component")
    if len(uoms) != len(types):
        raise BadRequest(f"MultiDatastream: unitOfMeasurements has {len(uoms)} entries but "
                         f"multiObservationDataTypes has {len(types)}; give one of each per "
                         "result component")


async def check_multi_datastream_links(ctx: WriteContext, ident: int,
                                       values: dict[str, Any]) -> None:
    """A MultiDatastream has exactly one ObservedProperty per result component."""
    link = link_tables[MULTI_OBSERVED_PROPERTIES]
    count = (await ctx.conn.execute(select(func.count()).select_from(link).where(
        link.c.multi_datastream_id == ident))).scalar_one()
    expected = len(values.get("unit_of_measurements") or ())
    if count != expected:
        raise BadRequest(f"MultiDatastream: {expected} result components need {expected} "
                         f"different ObservedProperties (in component order), got {count}")


async def check_observation_stream(ctx: WriteContext, row: dict[str, Any]) -> None:
    """After an update: one Datastream or MultiDatastream, and a result that fits it."""
    from ortspuls.timeseries.writer import multi_result_problem

    if (row["datastream_id"] is None) == (row.get("multi_datastream_id") is None):
        raise BadRequest("an Observation belongs to exactly one Datastream or MultiDatastream")
    if row.get("multi_datastream_id") is not None:
        mds = entity_tables["MultiDatastream"]
        types = (await ctx.conn.execute(select(mds.c.multi_observation_data_types).where(
            mds.c.id == row["multi_datastream_id"]))).scalar_one_or_none() or []
        problem = multi_result_problem((row["result_type"], row["result_number"],
                                        row["result_string"], row["result_json"]), types)
        if problem is not None:
            raise BadRequest(f"MultiDatastream {row['multi_datastream_id']}: {problem}")


def _as_time(value: Any) -> Any:
    """Aggregates over Timestamp columns come back raw (epoch micros on SQLite)."""
    if isinstance(value, int):
        from ortspuls.db.types import from_micros

        return from_micros(value)
    return value
