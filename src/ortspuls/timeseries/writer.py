"""The observation writer: every observation, from every path, is stored here.

- `submit` is for single observations (HTTP POST, MQTT, ingest): concurrent calls are grouped
  into one transaction (group commit) and each caller is answered after the commit.
- `submit_many` is the bulk path for records (MQTT intake, importers).
- `submit_columns` is the bulk path for inputs that arrive column by column (CreateObservations):
  one `ObservationColumns` per (Multi)Datastream, nothing built per row.
- `insert` writes inside a caller's transaction (deep insert, batch change sets); the caller
  publishes the returned events after its commit.

All of them end in `_store`, which works on columns: records are grouped per (Multi)Datastream
into `ObservationColumns` first. Per batch, not per row: the (Multi)Datastreams are looked up and
checked once, missing FeaturesOfInterest are generated from the Things' Locations once, the rows
go in with one bulk insert (`db/bulk.py`), and Datastream summaries (phenomenonTime,
resultTime, observedArea) are widened once, from column minima and maxima.

Hooks let derived data (the rollups of `timeseries/rollups.py`) change in the same transaction
as the observations: `batch_hooks` run after each batch is inserted, with the stored
`ObservationColumns`; `change_hooks` when Observations are updated or deleted
(`observations_changed`, called by `sta/write.py`).

After the commit, record paths publish one event per observation; `submit_columns` publishes an
`EventBatch` per (Multi)Datastream, whose events and rows are built only if a subscriber reads
them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import shapely
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ortspuls.db import bulk
from ortspuls.db.bulk import COLUMNS, micros
from ortspuls.db.engine import Database
from ortspuls.db.partitions import PartitionKeeper, month_of
from ortspuls.db.schema import entity_tables, link_tables
from ortspuls.sta.errors import BadRequest, Forbidden, NotFound, StaError
from ortspuls.sta.values import geometry_to_geojson
from ortspuls.timeseries.events import EntityEvent, EventBatch, EventBus

log = logging.getLogger(__name__)

OBSERVATIONS = entity_tables["Observation"]
DATASTREAMS = entity_tables["Datastream"]
MULTI_DATASTREAMS = entity_tables["MultiDatastream"]
FEATURES = entity_tables["FeatureOfInterest"]
LOCATIONS = entity_tables["Location"]
THING_LOCATIONS = link_tables["thing_locations"]
# Rows per transaction of `submit_columns`: a huge request does not hold the write lock for
# seconds, and each transaction still amortises its fixed costs over many rows.
BULK_ROWS = 50_000
# Feature ids a database can hold (64-bit); others cannot exist.
_MAX_ID = 2**63 - 1


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


def _column(values: list[Any]) -> list[Any] | None:
    """A column as ObservationColumns keeps it: None when every row is NULL."""
    return None if values.count(None) == len(values) else values


def _at(values: list[Any] | None, index: int) -> Any:
    return None if values is None else values[index]


@dataclass(slots=True)
class ObservationColumns:
    """Observations of one (Multi)Datastream, column by column.

    Each column is a list with one value per row, or None when the column is NULL in every row
    (such columns cost nothing to store). Results are split as `sta.values.encode_result`
    splits them. This is the writer's unit of work: the bulk input of `submit_columns`, what
    records are grouped into, and, once stored (`ids` and `tenant_id` set), what batch hooks
    and event subscribers read.
    """

    datastream_id: int | None
    multi_datastream_id: int | None
    phenomenon_time_start: list[datetime]
    result_type: list[int]
    result_number: list[float | None] | None = None
    result_string: list[str | None] | None = None
    result_json: list[Any] | None = None
    phenomenon_time_end: list[datetime | None] | None = None
    result_time: list[datetime | None] | None = None
    result_quality: list[Any] | None = None
    valid_time_start: list[datetime | None] | None = None
    valid_time_end: list[datetime | None] | None = None
    parameters: list[dict | None] | None = None
    # None where the feature comes from the Thing's Location (filled in while storing).
    feature_id: list[int | None] | None = None
    # The sender's tenant: the stream and linked features must be its own (None: trusted).
    sender_tenant_id: int | None = None
    # The stream was named in the URL path: a missing one is 404, not 400.
    from_path: bool = False
    # Set once stored: the new ids (row order) and the tenant of the stream.
    ids: Sequence[int] = ()
    tenant_id: int | None = None
    _start_us: list[int] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.phenomenon_time_start)

    @property
    def stream_key(self) -> tuple[str, int | None]:
        if self.multi_datastream_id is not None:
            return ("m", self.multi_datastream_id)
        return ("d", self.datastream_id)

    @property
    def start_us(self) -> list[int]:
        """phenomenonTime starts as epoch microseconds (what SQLite stores, what rollups
        bucket), converted once."""
        if self._start_us is None:
            self._start_us = micros(self.phenomenon_time_start)  # type: ignore[assignment]
        return self._start_us  # type: ignore[return-value]

    @classmethod
    def from_records(cls, records: Sequence[NewObservation],
                     feature_ids: Sequence[int | None] | None = None) -> ObservationColumns:
        """Records of one (Multi)Datastream and sender as columns (`feature_ids` overrides
        the records' own)."""
        first = records[0]
        kinds, numbers, strings, others = (list(c) for c in zip(*(r.result for r in records),
                                                                 strict=True))
        return cls(
            datastream_id=first.datastream_id,
            multi_datastream_id=first.multi_datastream_id,
            phenomenon_time_start=[r.phenomenon_time_start for r in records],
            result_type=kinds,
            result_number=_column(numbers),
            result_string=_column(strings),
            result_json=_column(others),
            phenomenon_time_end=_column([r.phenomenon_time_end for r in records]),
            result_time=_column([r.result_time for r in records]),
            result_quality=_column([r.result_quality for r in records]),
            valid_time_start=_column([r.valid_time_start for r in records]),
            valid_time_end=_column([r.valid_time_end for r in records]),
            parameters=_column([r.parameters for r in records]),
            feature_id=_column(list(feature_ids) if feature_ids is not None
                               else [r.feature_id for r in records]),
            sender_tenant_id=first.tenant_id,
            from_path=first.datastream_from_path,
        )

    def take(self, rows: Sequence[int]) -> ObservationColumns:
        """The given rows only (in that order)."""
        def pick(values):
            return None if values is None else _column([values[i] for i in rows])

        out = dataclasses.replace(self, phenomenon_time_start=[
            self.phenomenon_time_start[i] for i in rows],
            result_type=[self.result_type[i] for i in rows], ids=(), _start_us=None)
        for name in _NULLABLE_COLUMNS:
            setattr(out, name, pick(getattr(self, name)))
        if self._start_us is not None:
            out._start_us = [self._start_us[i] for i in rows]
        return out

    def result(self, index: int) -> tuple[int, float | None, str | None, Any]:
        return (self.result_type[index], _at(self.result_number, index),
                _at(self.result_string, index), _at(self.result_json, index))

    def stored_columns(self) -> dict[str, list[Any] | None]:
        """The columns as `db.bulk.insert_columns` takes them."""
        n = len(self)

        def same(value):
            return None if value is None else [value] * n

        return {
            "tenant_id": same(self.tenant_id),
            "datastream_id": same(self.datastream_id),
            "multi_datastream_id": same(self.multi_datastream_id),
            "feature_id": self.feature_id,
            "phenomenon_time_start": self.phenomenon_time_start,
            "result_type": self.result_type,
            **{name: getattr(self, name) for name in _NULLABLE_COLUMNS if name != "feature_id"},
        }

    def row(self, index: int) -> dict[str, Any]:
        """One stored row as a dict (the shape of an event's row and of `submit`'s answer)."""
        return {
            "tenant_id": self.tenant_id,
            "datastream_id": self.datastream_id,
            "multi_datastream_id": self.multi_datastream_id,
            "feature_id": _at(self.feature_id, index),
            "phenomenon_time_start": self.phenomenon_time_start[index],
            "phenomenon_time_end": _at(self.phenomenon_time_end, index),
            "result_time": _at(self.result_time, index),
            "result_type": self.result_type[index],
            "result_number": _at(self.result_number, index),
            "result_string": _at(self.result_string, index),
            "result_json": _at(self.result_json, index),
            "result_quality": _at(self.result_quality, index),
            "valid_time_start": _at(self.valid_time_start, index),
            "valid_time_end": _at(self.valid_time_end, index),
            "parameters": _at(self.parameters, index),
            "id": self.ids[index],
        }

    def newest(self) -> int:
        """The index of the newest stored row: greatest (phenomenonTime start, id); ids grow
        with the row index, so among equal starts the last row."""
        starts = self.start_us
        top = max(starts)
        return len(starts) - 1 - starts[::-1].index(top)


# The columns that may be None in ObservationColumns (all rows NULL).
_NULLABLE_COLUMNS = ("result_number", "result_string", "result_json", "phenomenon_time_end",
                     "result_time", "result_quality", "valid_time_start", "valid_time_end",
                     "parameters", "feature_id")


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
        # async fn(conn, batches): inside the batch transaction, after the rows are inserted;
        # `batches` are the stored ObservationColumns (one per (Multi)Datastream and sender).
        self.batch_hooks: list[Callable[[AsyncConnection, list[ObservationColumns]],
                                        Awaitable[None]]] = []
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

    async def submit_columns(self, batches: list[ObservationColumns]
                             ) -> list[list[int | StaError]]:
        """Store observations given column by column, in transactions of up to BULK_ROWS
        rows; per batch and row, the new Observation's id or the row's error.

        Rows that fail a check (an unknown or foreign linked feature, a MultiDatastream result
        that does not fit) get their error; the others are stored. Subscribers get one
        `EventBatch` per stored batch.
        """
        out: list[list[int | StaError]] = []
        chunk: list[ObservationColumns] = []
        rows = 0
        for batch in batches:
            for start in range(0, len(batch), BULK_ROWS):
                part = batch if len(batch) <= BULK_ROWS else batch.take(
                    range(start, min(start + BULK_ROWS, len(batch))))
                if chunk and rows + len(part) > BULK_ROWS:
                    out.extend(await self._commit_columns(chunk))
                    chunk, rows = [], 0
                chunk.append(part)
                rows += len(part)
        if chunk:
            out.extend(await self._commit_columns(chunk))
        # Parts of one batch (a batch above BULK_ROWS rows) back together.
        merged: list[list[int | StaError]] = []
        results = iter(out)
        for batch in batches:
            answer: list[int | StaError] = []
            while len(answer) < len(batch):
                answer.extend(next(results))
            merged.append(answer)
        return merged

    async def insert(self, conn: AsyncConnection,
                     records: list[NewObservation]) -> tuple[list[dict], list[EntityEvent]]:
        """Store inside the caller's transaction; raises the first record's error."""
        self._partitions_after(conn, batch_months(records))
        results = await self._insert(conn, records)
        for result in results:
            if isinstance(result, StaError):
                raise result
        return results, [_event(r) for r in results]  # type: ignore[arg-type]

    async def insert_columns(self, conn: AsyncConnection, batches: list[ObservationColumns]
                             ) -> tuple[list[list[int]], list[EntityEvent]]:
        """`submit_columns` inside the caller's transaction (a batch change set): per batch
        the new ids, and the events to publish after the commit; raises the first row's
        error."""
        self._partitions_after(conn, columns_months(batches))
        ids: list[list[int]] = []
        events: list[EntityEvent] = []
        for outcome, stored in await self._store(conn, batches):
            for o in outcome or ():
                if isinstance(o, StaError):
                    raise o
            if stored is None:
                ids.append([])
                continue
            ids.append(list(stored.ids))
            events.extend(EventBatch("Observation", stored.tenant_id, stored))
        return ids, events

    def _partitions_after(self, conn: AsyncConnection, months: set[tuple[int, int]]) -> None:
        """PostgreSQL, writing in a caller's transaction: that transaction will hold locks the
        attach needs, so missing partitions are created after it has ended; until then the rows
        sit in the default partition (`settle` waits for this)."""
        if self.partitions is not None and self.partitions.missing(months):
            task = asyncio.get_running_loop().create_task(
                self.partitions.ensure_after(conn, months))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

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

    async def _commit_columns(self, batches: list[ObservationColumns]
                              ) -> list[list[int | StaError]]:
        if self.partitions is not None:
            await self.partitions.ensure(columns_months(batches))
        try:
            async with self.db.write() as conn:
                outcomes = await self._store(conn, batches)
        except Exception:
            if len(batches) == 1:
                raise
            log.warning("batch of %d observation groups failed; retrying one by one",
                        len(batches))
            out: list[list[int | StaError]] = []
            for batch in batches:
                out.extend(await self._commit_columns([batch]))
            return out
        answer: list[list[int | StaError]] = []
        for outcome, stored in outcomes:
            if stored is not None:
                self.bus.publish(EventBatch("Observation", stored.tenant_id, stored))
            if outcome is None:  # every row stored, in order
                answer.append(list(stored.ids))  # type: ignore[union-attr]
            elif stored is None:
                answer.append(outcome)  # type: ignore[arg-type]
            else:
                ids = stored.ids
                answer.append([o if isinstance(o, StaError) else ids[o] for o in outcome])
        return answer

    # -- the batch insert -----------------------------------------------------------------------

    async def _insert(self, conn: AsyncConnection,
                      records: list[NewObservation]) -> list[dict | StaError]:
        """Records -> per record its stored row or its error: checked per record, grouped
        per (Multi)Datastream and sender into columns, stored by `_store`."""
        results: list[dict | StaError | None] = [None] * len(records)
        streams = await self._load_streams(conn, {r.stream_key for r in records})
        for i, record in enumerate(records):
            if (record.datastream_id is None) == (record.multi_datastream_id is None):
                results[i] = BadRequest("an Observation belongs to exactly one Datastream or "
                                        "MultiDatastream")
                continue
            stream = streams.get(record.stream_key)  # type: ignore[arg-type]
            problem = stream_problem(record.stream_key, stream, record.tenant_id,
                                     record.datastream_from_path)
            if problem is None and stream.types is not None:  # type: ignore[union-attr]
                problem = _multi_problem(record.stream_key, record.result, stream.types)
            results[i] = problem
        features = await self._create_inline_features(conn, records, streams, results)

        groups: dict[tuple, list[int]] = {}
        for i, record in enumerate(records):
            if results[i] is None:
                groups.setdefault((record.stream_key, record.tenant_id,
                                   record.datastream_from_path), []).append(i)
        batches = [ObservationColumns.from_records(
            [records[i] for i in rows], [features.get(i, records[i].feature_id) for i in rows])
            for rows in groups.values()]
        outcomes = await self._store(conn, batches, streams)
        for rows, (outcome, stored) in zip(groups.values(), outcomes, strict=True):
            for i, o in zip(rows, outcome or range(len(rows)), strict=True):
                results[i] = o if isinstance(o, StaError) else stored.row(o)  # type: ignore
        return results  # type: ignore[return-value]

    async def _store(self, conn: AsyncConnection, batches: list[ObservationColumns],
                     streams: dict[tuple[str, int], _Stream] | None = None
                     ) -> list[tuple[list[int | StaError] | None, ObservationColumns | None]]:
        """Check, complete and insert batches; per batch, the outcome of each row (its index
        in the stored batch, or its error; None when every row was stored, in order) and the
        stored batch (None if no row was stored).

        The batches given are not changed (a retry after a failed transaction starts over).
        """
        streams = dict(streams or {})
        wanted = {b.stream_key for b in batches} - set(streams)
        if wanted:
            streams.update(await self._load_streams(conn, wanted))  # type: ignore[arg-type]
        work = [dataclasses.replace(b) for b in batches]
        problems: list[dict[int, StaError]] = []
        for batch in work:
            errors: dict[int, StaError] = {}
            stream = streams.get(batch.stream_key)  # type: ignore[arg-type]
            problem = stream_problem(batch.stream_key, stream, batch.sender_tenant_id,
                                     batch.from_path)
            if problem is not None:
                errors = dict.fromkeys(range(len(batch)), problem)
            elif stream.types is not None:  # type: ignore[union-attr]
                for i in range(len(batch)):
                    problem = _multi_problem(batch.stream_key, batch.result(i), stream.types)
                    if problem is not None:
                        errors[i] = problem
            problems.append(errors)

        geoms = await self._assign_features(conn, work, streams, problems)

        kept: list[ObservationColumns | None] = []
        for batch, errors in zip(work, problems, strict=True):
            if not errors:
                kept.append(batch)
            elif len(errors) == len(batch):
                kept.append(None)
            else:
                kept.append(batch.take([i for i in range(len(batch)) if i not in errors]))
        todo = [b for b in kept if b is not None and len(b)]
        if todo:
            for batch in todo:
                batch.tenant_id = streams[batch.stream_key].tenant_id  # type: ignore[index]
            columns, size, given = _concat(todo)
            # COPY on PostgreSQL, executemany on SQLite (ortspuls.db.bulk).
            ids = await bulk.insert_columns(conn, columns, size, given)
            offset = 0
            for batch in todo:
                batch.ids = ids[offset: offset + len(batch)]
                offset += len(batch)
            await self._update_streams(conn, streams, todo, geoms)
            for hook in self.batch_hooks:
                await hook(conn, todo)

        out: list[tuple[list[int | StaError] | None, ObservationColumns | None]] = []
        for batch, errors, stored in zip(work, problems, kept, strict=True):
            if not errors:
                out.append((None, stored))
                continue
            outcome: list[int | StaError] = []
            position = 0
            for i in range(len(batch)):
                error = errors.get(i)
                if error is None:
                    outcome.append(position)
                    position += 1
                else:
                    outcome.append(error)
            out.append((outcome, stored))
        return out

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

    async def _create_inline_features(self, conn, records: list[NewObservation], streams,
                                      results: list) -> dict[int, int]:
        """FeaturesOfInterest given inline with records that passed their checks are created;
        returns record index -> new feature id."""
        inline = [i for i, r in enumerate(records) if results[i] is None and r.feature is not None]
        if not inline:
            return {}
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
        return dict(zip(inline, ids, strict=True))

    async def _assign_features(self, conn, batches: list[ObservationColumns], streams,
                               problems: list[dict[int, StaError]]) -> dict[int, Any]:
        """Give every row a feature: linked ones must exist and be the sender's (else that
        row's error), the others get the feature generated from their Thing's Location.
        Returns the geometry of each feature used."""
        geoms: dict[int, Any] = {}
        live = [len(errors) < len(batch) for batch, errors in zip(batches, problems, strict=True)]
        # 1. Linked existing features must exist.
        linked: set[int] = set()
        for batch, alive in zip(batches, live, strict=True):
            if alive and batch.feature_id is not None:
                linked.update(batch.feature_id)
        linked.discard(None)  # type: ignore[arg-type]
        if linked:
            owners: dict[int, int] = {}
            query = sorted(f for f in linked if -_MAX_ID <= f <= _MAX_ID)
            for row in await conn.execute(
                    select(FEATURES.c.id, FEATURES.c.feature_geom, FEATURES.c.tenant_id)
                    .where(FEATURES.c.id.in_(query))):
                geoms[row.id] = row.feature_geom
                owners[row.id] = row.tenant_id
            for batch, errors, alive in zip(batches, problems, live, strict=True):
                if not alive or batch.feature_id is None:
                    continue
                bad: dict[int, StaError] = {}
                for feature in set(batch.feature_id) - {None}:
                    if feature not in owners:
                        bad[feature] = BadRequest(f"no FeatureOfInterest with id {feature}")
                    elif (batch.sender_tenant_id is not None
                          and owners[feature] != batch.sender_tenant_id):
                        bad[feature] = Forbidden(f"FeatureOfInterest {feature} belongs to "
                                                 "another municipality; link one of your own")
                if bad:
                    for i, feature in enumerate(batch.feature_id):
                        if feature in bad and i not in errors:
                            errors[i] = bad[feature]
        # 2. The others get the feature generated from their Thing's Location.
        need = [i for i, batch in enumerate(batches) if _lacks_feature(batch, problems[i])]
        if need:
            things = {streams[batches[i].stream_key].thing_id for i in need}
            by_thing = await self._features_from_locations(conn, things, streams, geoms)
            for i in need:
                batch, errors = batches[i], problems[i]
                feature = by_thing.get(streams[batch.stream_key].thing_id)
                if feature is not None:
                    batch.feature_id = [feature] * len(batch) if batch.feature_id is None else \
                        [feature if f is None else f for f in batch.feature_id]
                    continue
                error = BadRequest(
                    "the Observation has no FeatureOfInterest and its Thing has no Location "
                    "to derive one from; add a FeatureOfInterest or a Location to the Thing")
                for row in range(len(batch)):
                    if (batch.feature_id is None or batch.feature_id[row] is None) \
                            and row not in errors:
                        errors[row] = error
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
                              batches: list[ObservationColumns], geoms: dict[int, Any]) -> None:
        """Widen each (Multi)Datastream's phenomenonTime, resultTime and observedArea once per
        batch, from the columns' minima and maxima."""
        bounds: dict[tuple[str, int], list] = {}
        features: dict[tuple[str, int], set[int]] = {}
        # min/max over whole columns: C loops, not Python ones.
        for batch in batches:
            key = batch.stream_key
            starts = batch.phenomenon_time_start
            last = max(starts)
            if batch.phenomenon_time_end is not None:  # an interval ends after its start
                last = max(last, max(e for e in batch.phenomenon_time_end if e is not None))
            times = None if batch.result_time is None else \
                [t for t in batch.result_time if t is not None]
            new = [min(starts), last, min(times) if times else None,
                   max(times) if times else None]
            old = bounds.get(key)
            bounds[key] = new if old is None else [
                _min(old[0], new[0]), _max(old[1], new[1]), _min(old[2], new[2]),
                _max(old[3], new[3])]
            features.setdefault(key, set()).update(batch.feature_id or ())

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
        sqlite = conn.dialect.name == "sqlite"
        for kind, table in (("d", DATASTREAMS), ("m", MULTI_DATASTREAMS)):
            if not params[kind]:
                continue
            d = table.c
            # The stored bounds only widen, in SQL: on PostgreSQL another worker may have
            # widened them since this transaction read them, and a plain SET would narrow
            # them again. Rows in id order, so concurrent writers lock them in the same order.
            stmt = update(table).where(d.id == bindparam("sid")).values(
                phenomenon_time_start=_widened(d.phenomenon_time_start, sqlite, lower=True),
                phenomenon_time_end=_widened(d.phenomenon_time_end, sqlite, lower=False),
                result_time_start=_widened(d.result_time_start, sqlite, lower=True),
                result_time_end=_widened(d.result_time_end, sqlite, lower=False),
                observed_area=bindparam("observed_area"),
                observed_area_geom=bindparam("observed_area_geom"),
            )
            await conn.execute(stmt, sorted(params[kind], key=lambda p: p["sid"]))


def _widened(column: Any, sqlite: bool, lower: bool) -> Any:
    """SQL for the smaller (`lower`) or larger of a stored time and the bind parameter of the
    same name, either of them NULL meaning "no bound yet"."""
    given = bindparam(column.key, type_=column.type)
    pick = (func.min if lower else func.max) if sqlite else \
        (func.least if lower else func.greatest)
    return pick(func.coalesce(column, given), func.coalesce(given, column))


def stream_problem(key: tuple[str, int | None], stream: _Stream | None, tenant_id: int | None,
                   from_path: bool = False) -> StaError | None:
    """Why observations cannot go to this (Multi)Datastream for this sender, or None."""
    kind, sid = key
    name = "MultiDatastream" if kind == "m" else "Datastream"
    if stream is None:
        cls = NotFound if from_path else BadRequest
        return cls(f"no {name} with id {sid}")
    if tenant_id is not None and stream.tenant_id != tenant_id:
        return Forbidden(f"{name} {sid} belongs to another municipality; only its own "
                         "municipality may add Observations to it")
    return None


def _lacks_feature(batch: ObservationColumns, errors: dict[int, StaError]) -> bool:
    """Whether a row that is still to be stored has no FeatureOfInterest yet."""
    if batch.feature_id is None:
        return len(errors) < len(batch)
    if not errors:
        return None in batch.feature_id
    return any(f is None and i not in errors for i, f in enumerate(batch.feature_id))


def _multi_problem(key: tuple[str, int | None], result: tuple, types: list) -> StaError | None:
    problem = multi_result_problem(result, types)
    return None if problem is None else BadRequest(f"MultiDatastream {key[1]}: {problem}")


def _concat(batches: list[ObservationColumns]
            ) -> tuple[dict[str, list[Any] | None], int, dict[str, list[int]]]:
    """Stored batches as one set of columns for one bulk insert: (columns, rows, the
    phenomenonTime starts already in epoch µs)."""
    parts = [b.stored_columns() for b in batches]
    size = sum(len(b) for b in batches)
    given = {"phenomenon_time_start": list(itertools.chain.from_iterable(
        b.start_us for b in batches))}
    if len(parts) == 1:
        return parts[0], size, given
    columns: dict[str, list[Any] | None] = {}
    for name in COLUMNS[1:]:
        values = [part[name] for part in parts]
        if all(v is None for v in values):
            columns[name] = None
        else:
            columns[name] = list(itertools.chain.from_iterable(
                [None] * len(b) if v is None else v
                for b, v in zip(batches, values, strict=True)))
    return columns, size, given


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


def _months(times: Sequence[datetime]) -> set[tuple[int, int]]:
    """The calendar months (UTC) of these times; usually one, found from the extremes."""
    if not times:
        return set()
    first, last = month_of(min(times)), month_of(max(times))
    return {first} if first == last else {month_of(t) for t in times}


def columns_months(batches: list[ObservationColumns]) -> set[tuple[int, int]]:
    """The calendar months (UTC) of the batches' phenomenonTimes."""
    return set().union(*(_months(batch.phenomenon_time_start) for batch in batches))


def batch_months(records: list[NewObservation]) -> set[tuple[int, int]]:
    """The calendar months (UTC) of the records' phenomenonTimes."""
    return _months([r.phenomenon_time_start for r in records
                    if r.phenomenon_time_start is not None])


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
