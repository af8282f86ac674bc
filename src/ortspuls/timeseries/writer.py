"""The observation writer: every observation, from every path, is stored here.

- `submit` is for single observations (HTTP POST, MQTT, ingest): concurrent calls are grouped
  into one transaction (group commit) and each caller is answered after the commit.
- `submit_many` is the bulk path (CreateObservations, DataArray, importers).
- `insert` writes inside a caller's transaction (deep insert, batch change sets); the caller
  publishes the returned events after its commit.

Per batch, not per row: the Datastreams are looked up once, missing FeaturesOfInterest are
generated from the Things' Locations once, and Datastream summaries (phenomenonTime,
resultTime, observedArea) are updated once.

Hooks let derived data (the rollups of `timeseries/rollups.py`) change in the same transaction
as the observations: `batch_hooks` run after each batch is inserted, `change_hooks` when
Observations are updated or deleted (`observations_changed`, called by `sta/write.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import shapely
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ortspuls.db.bulk import insert_observations
from ortspuls.db.engine import Database
from ortspuls.db.partitions import PartitionKeeper, month_of
from ortspuls.db.schema import entity_tables, link_tables
from ortspuls.sta.errors import BadRequest, Forbidden, NotFound, StaError
from ortspuls.sta.values import geometry_to_geojson
from ortspuls.timeseries.events import EntityEvent, EventBus

log = logging.getLogger(__name__)

OBSERVATIONS = entity_tables["Observation"]
DATASTREAMS = entity_tables["Datastream"]
MULTI_DATASTREAMS = entity_tables["MultiDatastream"]
FEATURES = entity_tables["FeatureOfInterest"]
LOCATIONS = entity_tables["Location"]
THING_LOCATIONS = link_tables["thing_locations"]


@dataclass(slots=True)
class NewFeature:
    name: str
    description: str
    encoding_type: str
    feature: Any
    geometry: Any  # shapely geometry or None
    properties: dict | None = None


@dataclass(slots=True)
class NewObservation:
    """A validated observation, ready to store."""

    datastream_id: int | None
    phenomenon_time_start: datetime
    phenomenon_time_end: datetime | None
    result: tuple[int, float | None, str | None, Any]
    result_time: datetime | None = None
    result_quality: Any = None
    valid_time_start: datetime | None = None
    valid_time_end: datetime | None = None
    parameters: dict | None = None
    feature_id: int | None = None
    feature: NewFeature | None = None
    # The Datastream was named in the URL path (404 when missing) rather than in the body (400).
    datastream_from_path: bool = False
    # MultiDatastream extension: set instead of datastream_id (exactly one of the two).
    multi_datastream_id: int | None = None
    # The tenant of the API key or user that sends it: its (Multi)Datastream and a linked
    # feature must belong to that tenant (else 403). None: a trusted internal source (ingest
    # resolved the Datastream from the tenant's own device).
    tenant_id: int | None = None
    # Set while writing.
    row: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def stream_key(self) -> tuple[str, int | None]:
        """("d", Datastream id) or ("m", MultiDatastream id)."""
        if self.multi_datastream_id is not None:
            return ("m", self.multi_datastream_id)
        return ("d", self.datastream_id)


@dataclass(slots=True)
class _Stream:
    id: int
    tenant_id: int
    thing_id: int
    phenomenon: tuple[datetime | None, datetime | None]
    result: tuple[datetime | None, datetime | None]
    area: Any
    # MultiDatastreams: the multiObservationDataTypes every result array must match.
    types: list | None = None


class ObservationWriter:
    def __init__(self, db: Database, bus: EventBus, max_delay_ms: float = 2.0,
                 max_batch: int = 5000) -> None:
        self.db = db
        self.bus = bus
        self.max_delay = max_delay_ms / 1000
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[NewObservation, asyncio.Future]] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._last_batch = 1
        # PostgreSQL: monthly partitions, created when a batch brings a new month.
        self.partitions = None if db.is_sqlite else PartitionKeeper(db)
        self._background: set[asyncio.Task] = set()
        # async fn(conn, rows): inside the batch transaction, after the rows are inserted.
        self.batch_hooks: list[Callable[[AsyncConnection, list[dict]], Awaitable[None]]] = []
        # async fn(conn, spans): Observations of (Datastream id, first, last time) changed.
        self.change_hooks: list[Callable[[AsyncConnection, list[tuple]], Awaitable[None]]] = []

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="obs-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._task is None:
            return
        while not self._queue.empty():
            await asyncio.sleep(0.01)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    # -- entry points ---------------------------------------------------------------------------

    async def submit(self, obs: NewObservation) -> dict[str, Any]:
        """Store one observation (group commit); returns its stored row after the commit."""
        if self._task is None:
            self.start()
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((obs, future))
        return await future

    async def submit_many(self, records: list[NewObservation]) -> list[dict | StaError]:
        """Store many observations in large transactions; per record its row or its error."""
        out: list[dict | StaError] = []
        for start in range(0, len(records), self.max_batch):
            chunk = records[start: start + self.max_batch]
            out.extend(await self._commit(chunk))
        return out

    async def insert(self, conn: AsyncConnection,
                     records: list[NewObservation]) -> tuple[list[dict], list[EntityEvent]]:
        """Store inside the caller's transaction; raises the first record's error."""
        if self.partitions is not None:
            # The caller's transaction will hold locks the attach needs: create the partitions
            # after it has ended; until then the rows sit in the default partition.
            months = batch_months(records)
            if self.partitions.missing(months):
                task = asyncio.get_running_loop().create_task(
                    self.partitions.ensure_after(conn, months))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        results = await self._insert(conn, records)
        for result in results:
            if isinstance(result, StaError):
                raise result
        return results, [_event(r) for r in results]  # type: ignore[arg-type]

    async def settle(self) -> None:
        """Wait for partitions that a committed transaction's rows need (PostgreSQL).

        Called before answering a write, so a client that reads right after its 201 never
        races the move of its rows out of the default partition.
        """
        if self._background:
            await asyncio.gather(*tuple(self._background), return_exceptions=True)

    # -- group commit ---------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_delay
            waited = False
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                # Under load, wait a moment for more (one sleep, not a polling loop: each
                # wake-up costs CPU the requests need); alone, write at once.
                remaining = deadline - loop.time()
                if waited or self._last_batch <= 1 or remaining <= 0:
                    break
                waited = True
                await asyncio.sleep(remaining)
            self._last_batch = len(batch)
            records = [obs for obs, _ in batch]
            try:
                results = await self._commit(records)
            except Exception as exc:  # unexpected: answer every waiter, keep the loop alive
                log.exception("observation batch failed")
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _commit(self, records: list[NewObservation]) -> list[dict | StaError]:
        if self.partitions is not None:
            # Outside the write transaction: attaching a partition must not wait on ourselves.
            await self.partitions.ensure(batch_months(records))
        try:
            async with self.db.write() as conn:
                results = await self._insert(conn, records)
        except Exception:
            if len(records) == 1:
                raise
            # Find the record that broke the batch; the others are stored one by one.
            log.warning("batch of %d observations failed; retrying one by one", len(records))
            out: list[dict | StaError] = []
            for record in records:
                try:
                    out.extend(await self._commit([record]))
                except StaError as exc:
                    out.append(exc)
            return out
        self.bus.publish(_event(r) for r in results if not isinstance(r, StaError))
        return results

    # -- the batch insert -----------------------------------------------------------------------

    async def _insert(self, conn: AsyncConnection,
                      records: list[NewObservation]) -> list[dict | StaError]:
        results: list[dict | StaError | None] = [None] * len(records)
        streams = await self._load_streams(conn, {r.stream_key for r in records})
        for i, record in enumerate(records):
            key = record.stream_key
            stream = streams.get(key)
            if (stream is not None and stream.types is None
                    and (record.tenant_id is None or stream.tenant_id == record.tenant_id)
                    and (record.datastream_id is None) != (record.multi_datastream_id is None)):
                continue  # the usual case, checked once per record in bulk batches
            kind, sid = key
            name = "MultiDatastream" if kind == "m" else "Datastream"
            if (record.datastream_id is None) == (record.multi_datastream_id is None):
                results[i] = BadRequest("an Observation belongs to exactly one Datastream or "
                                        "MultiDatastream")
            elif stream is None:
                cls = NotFound if record.datastream_from_path else BadRequest
                results[i] = cls(f"no {name} with id {sid}")
            elif record.tenant_id is not None and stream.tenant_id != record.tenant_id:
                results[i] = Forbidden(f"{name} {sid} belongs to another municipality; only "
                                       "its own municipality may add Observations to it")
            elif stream.types is not None:
                problem = multi_result_problem(record.result, stream.types)
                if problem is not None:
                    results[i] = BadRequest(f"MultiDatastream {sid}: {problem}")

        geoms = await self._resolve_features(conn, records, streams, results)

        todo = [i for i, r in enumerate(results) if r is None]
        if todo:
            rows = []
            for i in todo:
                rec = records[i]
                stream = streams[rec.stream_key]
                kind, number, string, other = rec.result
                rows.append({
                    "tenant_id": stream.tenant_id,
                    "datastream_id": rec.datastream_id,
                    "multi_datastream_id": rec.multi_datastream_id,
                    "feature_id": rec.feature_id,
                    "phenomenon_time_start": rec.phenomenon_time_start,
                    "phenomenon_time_end": rec.phenomenon_time_end,
                    "result_time": rec.result_time,
                    "result_type": kind,
                    "result_number": number,
                    "result_string": string,
                    "result_json": other,
                    "result_quality": rec.result_quality,
                    "valid_time_start": rec.valid_time_start,
                    "valid_time_end": rec.valid_time_end,
                    "parameters": rec.parameters,
                })
            # COPY on PostgreSQL, executemany on SQLite (ortspuls.db.bulk).
            ids = await insert_observations(conn, rows)
            for i, row, id_ in zip(todo, rows, ids, strict=True):
                row["id"] = id_
                results[i] = row
            await self._update_streams(conn, streams, [records[i] for i in todo], geoms)
            if self.batch_hooks:
                stored = [results[i] for i in todo]
                for hook in self.batch_hooks:
                    await hook(conn, stored)  # type: ignore[arg-type]
        return results  # type: ignore[return-value]

    async def observations_changed(self, conn: AsyncConnection,
                                   spans: list[tuple[int | None, Any, Any]]) -> None:
        """Observations were updated or deleted inside `conn`'s transaction: `spans` are
        (Datastream id, first phenomenonTime, last phenomenonTime) before and after."""
        spans = [s for s in spans if s[0] is not None and s[1] is not None]
        if spans:
            for hook in self.change_hooks:
                await hook(conn, spans)

    async def _load_streams(self, conn: AsyncConnection,
                            keys: set[tuple[str, int | None]]) -> dict[tuple[str, int], _Stream]:
        out: dict[tuple[str, int], _Stream] = {}
        for kind, table in (("d", DATASTREAMS), ("m", MULTI_DATASTREAMS)):
            ids = sorted(i for k, i in keys if k == kind and i is not None)
            if not ids:
                continue
            d = table.c
            cols = [d.id, d.tenant_id, d.thing_id, d.phenomenon_time_start,
                    d.phenomenon_time_end, d.result_time_start, d.result_time_end,
                    d.observed_area_geom]
            if kind == "m":
                cols.append(d.multi_observation_data_types)
            for r in await conn.execute(select(*cols).where(d.id.in_(ids))):
                out[(kind, r.id)] = _Stream(
                    r.id, r.tenant_id, r.thing_id,
                    (r.phenomenon_time_start, r.phenomenon_time_end),
                    (r.result_time_start, r.result_time_end), r.observed_area_geom,
                    list(r.multi_observation_data_types or []) if kind == "m" else None)
        return out

    async def _resolve_features(self, conn, records, streams, results) -> dict[int, Any]:
        """Give every record a feature_id; returns the geometry of each feature used."""
        geoms: dict[int, Any] = {}
        # 1. Linked existing features must exist.
        linked = {r.feature_id for i, r in enumerate(records)
                  if results[i] is None and r.feature_id is not None}
        if linked:
            owners: dict[int, int] = {}
            found = {}
            for row in await conn.execute(
                    select(FEATURES.c.id, FEATURES.c.feature_geom, FEATURES.c.tenant_id)
                    .where(FEATURES.c.id.in_(sorted(linked)))):
                found[row.id] = row.feature_geom
                owners[row.id] = row.tenant_id
            geoms.update(found)
            for i, r in enumerate(records):
                if results[i] is None and r.feature_id is not None and r.feature_id not in found:
                    results[i] = BadRequest(f"no FeatureOfInterest with id {r.feature_id}")
                elif (results[i] is None and r.feature_id is not None
                      and r.tenant_id is not None and owners[r.feature_id] != r.tenant_id):
                    results[i] = Forbidden(f"FeatureOfInterest {r.feature_id} belongs to "
                                           "another municipality; link one of your own")
        # 2. Features given inline are created.
        inline = [i for i, r in enumerate(records) if results[i] is None and r.feature is not None]
        if inline:
            rows = [{
                "tenant_id": streams[records[i].stream_key].tenant_id,
                "name": records[i].feature.name,
                "description": records[i].feature.description,
                "encoding_type": records[i].feature.encoding_type,
                "feature": records[i].feature.feature,
                "feature_geom": records[i].feature.geometry,
                "properties": records[i].feature.properties,
            } for i in inline]
            stmt = insert(FEATURES).returning(FEATURES.c.id, sort_by_parameter_order=True)
            ids = (await conn.execute(stmt, rows)).scalars().all()
            for i, id_, row in zip(inline, ids, rows, strict=True):
                records[i].feature_id = id_
                records[i].feature = None
                geoms[id_] = row["feature_geom"]
                results[i] = None
        # 3. The others get the feature generated from their Thing's Location.
        missing = [i for i, r in enumerate(records) if results[i] is None and r.feature_id is None]
        if missing:
            things = {streams[records[i].stream_key].thing_id for i in missing}
            by_thing = await self._features_from_locations(conn, things, streams, geoms)
            for i in missing:
                thing = streams[records[i].stream_key].thing_id
                feature_id = by_thing.get(thing)
                if feature_id is None:
                    results[i] = BadRequest(
                        "the Observation has no FeatureOfInterest and its Thing has no Location "
                        "to derive one from; add a FeatureOfInterest or a Location to the Thing"
                    )
                else:
                    records[i].feature_id = feature_id
        return geoms

    async def _features_from_locations(self, conn, things: set[int], streams,
                                       geoms: dict[int, Any]) -> dict[int, int]:
        tl, loc = THING_LOCATIONS, LOCATIONS
        rows = (await conn.execute(
            select(tl.c.thing_id, loc.c.id, loc.c.tenant_id, loc.c.name, loc.c.description,
                   loc.c.encoding_type, loc.c.location, loc.c.location_geom)
            .join(loc, loc.c.id == tl.c.location_id)
            .where(tl.c.thing_id.in_(sorted(things)))
            .order_by(tl.c.thing_id, loc.c.id.desc())
        )).all()
        location_of: dict[int, Any] = {}
        for row in rows:
            location_of.setdefault(row.thing_id, row)  # the newest Location of each Thing
        if not location_of:
            return {}
        location_ids = sorted({row.id for row in location_of.values()})
        existing = {
            r.generated_from_location_id: (r.id, r.feature_geom) for r in await conn.execute(
            select(FEATURES.c.id, FEATURES.c.generated_from_location_id, FEATURES.c.feature_geom)
            .where(FEATURES.c.generated_from_location_id.in_(location_ids))
        )}
        to_create = [location_of[t] for t in sorted(location_of)
                     if location_of[t].id not in existing]
        unique = {row.id: row for row in to_create}
        if unique:
            rows = [{
                "tenant_id": row.tenant_id, "name": row.name, "description": row.description,
                "encoding_type": row.encoding_type, "feature": row.location,
                "feature_geom": row.location_geom, "generated_from_location_id": row.id,
            } for row in unique.values()]
            stmt = insert(FEATURES).returning(FEATURES.c.id, sort_by_parameter_order=True)
            ids = (await conn.execute(stmt, rows)).scalars().all()
            for row, id_ in zip(rows, ids, strict=True):
                existing[row["generated_from_location_id"]] = (id_, row["feature_geom"])
        out = {}
        for thing, loc_row in location_of.items():
            feature_id, geom = existing[loc_row.id]
            geoms[feature_id] = geom
            out[thing] = feature_id
        return out

    async def _update_streams(self, conn, streams: dict[tuple[str, int], _Stream],
                              records: list[NewObservation], geoms: dict[int, Any]) -> None:
        """Widen each (Multi)Datastream's phenomenonTime, resultTime and observedArea once per
        batch."""
        by_stream: dict[tuple[str, int], list[NewObservation]] = {}
        for rec in records:
            by_stream.setdefault(rec.stream_key, []).append(rec)
        bounds: dict[tuple[str, int], list] = {}
        features: dict[tuple[str, int], set[int]] = {}
        # min/max over lists: bulk batches of thousands of rows cost C loops, not Python ones.
        for key, recs in by_stream.items():
            starts = [r.phenomenon_time_start for r in recs]
            ends = [r.phenomenon_time_end or r.phenomenon_time_start for r in recs]
            times = [r.result_time for r in recs if r.result_time is not None]
            bounds[key] = [min(starts), max(ends), min(times) if times else None,
                           max(times) if times else None]
            features[key] = {r.feature_id for r in recs}

        params: dict[str, list] = {"d": [], "m": []}
        for sid, (p0, p1, r0, r1) in bounds.items():
            s = streams[sid]
            new = {
                "phenomenon_time_start": _min(s.phenomenon[0], p0),
                "phenomenon_time_end": _max(s.phenomenon[1], p1),
                "result_time_start": _min(s.result[0], r0),
                "result_time_end": _max(s.result[1], r1),
            }
            area = s.area
            shapes = [geoms[f] for f in features[sid] if geoms.get(f) is not None]
            if shapes and (area is None or not all(area.covers(g) for g in shapes)):
                area = shapely.union_all([g for g in [area, *shapes] if g is not None]).convex_hull
            changed = (
                new["phenomenon_time_start"] != s.phenomenon[0]
                or new["phenomenon_time_end"] != s.phenomenon[1]
                or new["result_time_start"] != s.result[0]
                or new["result_time_end"] != s.result[1]
                or area is not s.area
            )
            if not changed:
                continue
            s.phenomenon = (new["phenomenon_time_start"], new["phenomenon_time_end"])
            s.result = (new["result_time_start"], new["result_time_end"])
            s.area = area
            params[sid[0]].append({"sid": sid[1], **new, "observed_area_geom": area,
                                   "observed_area": geometry_to_geojson(area)})
        for kind, table in (("d", DATASTREAMS), ("m", MULTI_DATASTREAMS)):
            if not params[kind]:
                continue
            d = table.c
            stmt = update(table).where(d.id == bindparam("sid")).values(
                phenomenon_time_start=bindparam("phenomenon_time_start"),
                phenomenon_time_end=bindparam("phenomenon_time_end"),
                result_time_start=bindparam("result_time_start"),
                result_time_end=bindparam("result_time_end"),
                observed_area=bindparam("observed_area"),
                observed_area_geom=bindparam("observed_area_geom"),
            )
            await conn.execute(stmt, params[kind])


def _min(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _max(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def batch_months(records: list[NewObservation]) -> set[tuple[int, int]]:
    """The calendar months (UTC) of a batch's phenomenonTimes; usually one."""
    times = [r.phenomenon_time_start for r in records if r.phenomenon_time_start is not None]
    if not times:
        return set()
    first, last = month_of(min(times)), month_of(max(times))
    if first == last:
        return {first}
    return {month_of(t) for t in times}


# multiObservationDataTypes whose result components have a JSON type to check.
_NUMBER_TYPES = {
    "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement": "a number",
    "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CountObservation": "an integer",
    "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_TruthObservation": "true or false",
}


def multi_result_problem(result: tuple, types: list) -> str | None:
    """Why a MultiDatastream result does not fit its multiObservationDataTypes, or None."""
    _kind, _number, _string, value = result
    if not isinstance(value, list):
        return (f"the result must be a JSON array of {len(types)} values, one per "
                "multiObservationDataTypes entry")
    if len(value) != len(types):
        return (f"the result has {len(value)} values but multiObservationDataTypes has "
                f"{len(types)}")
    for index, (item, kind_uri) in enumerate(zip(value, types, strict=True)):
        expected = _NUMBER_TYPES.get(kind_uri)
        if expected is None or item is None:
            continue
        ok = (
            (expected == "a number" and isinstance(item, int | float))
            or (expected == "an integer" and isinstance(item, int))
            or (expected == "true or false" and isinstance(item, bool))
        )
        if expected != "true or false" and isinstance(item, bool):
            ok = False
        if not ok:
            return f"result component {index} must be {expected}, got {item!r}"
    return None


def _event(row: dict[str, Any]) -> EntityEvent:
    return EntityEvent("create", "Observation", row["id"], row["tenant_id"], row)


def now_utc() -> datetime:
    return datetime.now(UTC)
