"""The latest-value cache: the newest Observation of every Datastream, in memory.

"Newest" means the greatest (phenomenonTime start, id), the order of the observations index.

- At start it is filled with one index seek per Datastream (a correlated
  `ORDER BY phenomenon_time_start DESC, id DESC LIMIT 1` on SQLite, `CROSS JOIN LATERAL` on
  PostgreSQL), never a scan or GROUP BY over all observations.
- New observations arrive from the event bus and are applied at once (a dictionary update); of
  a bulk insert (`EventBatch`) only the newest row is read, from the writer's columns.
- An update or delete of the Observation that is cached as the newest one, a deleted Datastream,
  Thing or FeatureOfInterest, re-seek the Datastreams concerned in a background task.
- Each worker process has its own cache fed by its own bus, so it does not hear about writes
  made by *other* workers (or by other programs on the same database). Every
  `latest_refresh_seconds` (default 5 s) a background task therefore re-seeks all Datastreams;
  a value written through another worker shows up here after at most that long. With one
  worker the bus alone keeps the cache exact and the refresh only repairs races.

A re-seek never overwrites an entry that a bus event changed while the seek was running (each
entry remembers the sequence number of the change that set it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, true

from ortspuls.db.engine import Database
from ortspuls.db.schema import entity_tables
from ortspuls.sta.values import decode_result
from ortspuls.timeseries.events import EntityEvent, EventBatch, EventBus
from ortspuls.timeseries.writer import ObservationColumns

log = logging.getLogger(__name__)

OBSERVATIONS = entity_tables["Observation"]
DATASTREAMS = entity_tables["Datastream"]
# Seeks per statement when only some Datastreams are re-read.
_CHUNK = 500


@dataclass(slots=True)
class Latest:
    """The newest Observation of one Datastream."""

    observation_id: int
    start: datetime  # phenomenonTime (start of an interval)
    end: datetime | None  # end of an interval phenomenonTime, else None
    value: Any  # the result as JSON value
    seq: int = 0  # change sequence number that set this entry

    @property
    def time(self) -> datetime:
        """The moment the value is for: the end of an interval, else the instant."""
        return self.end or self.start

    def key(self) -> tuple[datetime, int]:
        return (self.start, self.observation_id)


def _from_row(row: Any, seq: int) -> Latest:
    return Latest(row["id"], row["phenomenon_time_start"], row["phenomenon_time_end"],
                  decode_result(row["result_type"], row["result_number"], row["result_string"],
                                row["result_json"]), seq)


class LatestValues:
    """Per-process cache of every Datastream's newest Observation."""

    def __init__(self, db: Database, bus: EventBus, refresh_seconds: float = 5.0) -> None:
        self.db = db
        self.bus = bus
        self.refresh_seconds = refresh_seconds
        self._values: dict[int, Latest] = {}
        self._stream_of: dict[int, int] = {}  # cached observation id -> its Datastream
        self._seq = 0
        # Datastream ids to re-seek; None in the set means "all".
        self._pending: set[int | None] = set()
        self._wake = asyncio.Event()
        # Set while no re-seek is pending or running: readers wait on it (`settle`), so a read
        # after an update or delete through this worker sees its effect.
        self._settled = asyncio.Event()
        self._settled.set()
        self._tasks: list[asyncio.Task] = []
        self._unsubscribe = None
        self.loaded = False

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._unsubscribe = self.bus.subscribe(self._on_events)
        await self.reload()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._reseek_loop(), name="latest-reseek"))
        if self.refresh_seconds > 0:
            self._tasks.append(loop.create_task(self._refresh_loop(), name="latest-refresh"))

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # -- reading --------------------------------------------------------------------------------

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until the re-seeks caused by events so far are done (bounded by `timeout`:
        a slow database gives a slightly old value rather than a hanging request)."""
        if not self._settled.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), timeout)

    def get(self, datastream_id: int) -> Latest | None:
        return self._values.get(datastream_id)

    def snapshot(self) -> dict[int, Latest]:
        """The current entries (a shallow copy, safe to iterate while events arrive)."""
        return dict(self._values)

    # -- events ---------------------------------------------------------------------------------

    def _on_events(self, events: Sequence[EntityEvent]) -> None:
        if isinstance(events, EventBatch):
            # A bulk insert: only its newest row can be newer than the cached one.
            source = events.source
            if (events.entity == "Observation" and isinstance(source, ObservationColumns)
                    and len(source)):
                self._apply(source.row(source.newest()))
            return
        for event in events:
            entity = event.entity
            if entity == "Observation":
                if event.op == "create":
                    if event.row is not None:
                        self._apply(event.row)
                    continue
                # An update may move the observation in time or to another Datastream; a delete
                # matters only if it removed a cached newest one.
                old_stream = self._stream_of.get(event.id)
                if old_stream is not None:
                    self._pending.add(old_stream)
                if event.op == "update" and event.row is not None:
                    stream = event.row.get("datastream_id")
                    if stream is not None:
                        if old_stream is None:
                            self._apply(event.row)  # newer than the cached one, or not at all
                        else:
                            self._pending.add(stream)
            elif entity == "Datastream" and event.op == "delete":
                entry = self._values.pop(event.id, None)
                if entry is not None:
                    self._stream_of.pop(entry.observation_id, None)
            elif entity in ("Thing", "FeatureOfInterest") and event.op == "delete":
                self._pending.add(None)  # cascades: re-read everything
        if self._pending:
            self._settled.clear()
            self._wake.set()

    def _apply(self, row: dict[str, Any]) -> None:
        stream = row.get("datastream_id")
        if stream is None or row.get("phenomenon_time_start") is None:
            return  # MultiDatastream observations are not cached
        current = self._values.get(stream)
        key = (row["phenomenon_time_start"], row["id"])
        if current is not None and current.key() >= key:
            return
        self._seq += 1
        if current is not None:
            self._stream_of.pop(current.observation_id, None)
        self._values[stream] = _from_row(row, self._seq)
        self._stream_of[row["id"]] = stream

    # -- seeks ----------------------------------------------------------------------------------

    def _seek_statement(self, ids: list[int] | None):
        o, d = OBSERVATIONS, DATASTREAMS
        columns = (o.c.id, o.c.phenomenon_time_start, o.c.phenomenon_time_end, o.c.result_type,
                   o.c.result_number, o.c.result_string, o.c.result_json)
        if self.db.is_sqlite:
            inner = OBSERVATIONS.alias("newest")
            newest = (select(inner.c.id).where(inner.c.datastream_id == d.c.id)
                      .order_by(inner.c.phenomenon_time_start.desc(), inner.c.id.desc())
                      .limit(1).scalar_subquery())
            stmt = (select(d.c.id.label("datastream_id"), *columns)
                    .select_from(d.join(o, o.c.id == newest)))
        else:
            lateral = (select(*columns).where(o.c.datastream_id == d.c.id)
                       .order_by(o.c.phenomenon_time_start.desc(), o.c.id.desc())
                       .limit(1).lateral("newest"))
            stmt = (select(d.c.id.label("datastream_id"), *lateral.c)
                    .select_from(d.join(lateral, true())))
        if ids is not None:
            stmt = stmt.where(d.c.id.in_(ids))
        return stmt

    async def reload(self, ids: Iterable[int] | None = None) -> None:
        """Re-seek the newest Observation of `ids` (None: every Datastream)."""
        seq_at_start = self._seq
        id_list = None if ids is None else sorted(set(ids))
        found: dict[int, Any] = {}
        async with self.db.read(primary=True) as conn:
            chunks = [None] if id_list is None else [
                id_list[i:i + _CHUNK] for i in range(0, len(id_list), _CHUNK)]
            for chunk in chunks:
                for row in (await conn.execute(self._seek_statement(chunk))).mappings():
                    found[row["datastream_id"]] = row
        targets = set(self._values) | set(found) if id_list is None else set(id_list)
        for stream in targets:
            current = self._values.get(stream)
            if current is not None and current.seq > seq_at_start:
                continue  # an event changed it while we were reading
            row = found.get(stream)
            if current is not None:
                self._stream_of.pop(current.observation_id, None)
            if row is None:
                self._values.pop(stream, None)
                continue
            self._seq += 1
            self._values[stream] = _from_row(row, self._seq)
            self._stream_of[row["id"]] = stream
        if id_list is None:
            self.loaded = True

    async def _reseek_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            pending, self._pending = self._pending, set()
            try:
                await self.reload(None if None in pending else pending)  # type: ignore[arg-type]
            except Exception:
                log.exception("re-reading latest values failed")
                await asyncio.sleep(1)
            if not self._pending:
                self._settled.set()

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await self.reload()
            except Exception:
                log.exception("refreshing latest values failed")
