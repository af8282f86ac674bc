"""The ingest component of a server process: pipeline, codecs, caches and background work.

Webhooks are served by every process. Background work — MQTT subscribers, HTTP pollers and the
pruning of the raw uplink log and the replay keys — runs in one process only: the one holding a
lock (a file lock beside the SQLite database, an advisory lock on PostgreSQL). The others try
again now and then, so the work moves on when that process stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.engine import make_url

from ortspuls.db.engine import Database, async_url
from ortspuls.ingest import tables as t
from ortspuls.ingest.codecs import CodecRunner
from ortspuls.ingest.mqtt import MqttManager
from ortspuls.ingest.pipeline import IngestPipeline
from ortspuls.ingest.pollers import PollerManager
from ortspuls.ingest.registry import Registry
from ortspuls.settings import Settings
from ortspuls.timeseries.events import EntityEvent, EventBus, kinds
from ortspuls.timeseries.writer import ObservationWriter

log = logging.getLogger(__name__)

WATCH_SECONDS = 1.0
PRUNE_SECONDS = 600.0
LEADER_RETRY_SECONDS = 30.0
ADVISORY_LOCK = 74203
# Deleting these (through the API) invalidates cached device -> Datastream maps.
_STRUCTURE = {"Thing", "Datastream", "Sensor", "ObservedProperty", "FeatureOfInterest",
              "Location"}


class Leadership:
    """Who runs the background work: one process per database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._file = None
        self._conn = None

    async def acquire(self) -> bool:
        if self.db.is_sqlite:
            path = make_url(async_url(self.db.url)).database
            if not path or path == ":memory:":
                return True
            lock = Path(path).with_name(Path(path).name + ".ingest-lock")
            handle = open(lock, "a+")  # noqa: SIM115 - held for the process lifetime
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
            self._file = handle
            return True
        conn = await self.db.engine.connect()
        got = (await conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({ADVISORY_LOCK})")
               ).scalar()
        await conn.commit()
        if got:
            self._conn = conn
            return True
        await conn.close()
        return False

    async def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.exec_driver_sql(f"SELECT pg_advisory_unlock({ADVISORY_LOCK})")
            await self._conn.close()
            self._conn = None


class IngestService:
    def __init__(self, settings: Settings, db: Database, writer: ObservationWriter,
                 bus: EventBus) -> None:
        self.settings = settings
        self.db = db
        self.registry = Registry()
        self.runner = CodecRunner(settings.codec_time_limit_ms, settings.codec_memory_limit_mb)
        self.pipeline = IngestPipeline(db, writer, bus, self.registry, self.runner)
        self.mqtt = MqttManager(self.pipeline)
        self.pollers = PollerManager(db, self.pipeline)
        self.leadership = Leadership(db)
        self._bus = bus
        self._unsubscribe = None
        self._task: asyncio.Task | None = None
        self._watched_version: int | None = None

    async def start(self) -> None:
        self.pipeline.start()
        self._unsubscribe = self._bus.subscribe(self._on_events)
        if self.settings.ingest_background:
            self._task = asyncio.get_running_loop().create_task(self._background(),
                                                                name="ingest-background")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.mqtt.stop()
        await self.pollers.stop()
        await self.pipeline.stop()
        await self.leadership.release()

    def _on_events(self, events: list[EntityEvent]) -> None:
        if any(op == "delete" and entity in _STRUCTURE for op, entity in kinds(events)):
            self.registry.invalidate()

    # -- background work (leader only) --------------------------------------------------------

    async def _background(self) -> None:
        while not await self._try_lead():
            await asyncio.sleep(LEADER_RETRY_SECONDS)
        log.info("ingest background work runs in process %d", os.getpid())
        last_prune = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self._sync()
                if loop.time() - last_prune > PRUNE_SECONDS:
                    await self.prune()
                    last_prune = loop.time()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ingest background work failed; trying again")
            await asyncio.sleep(WATCH_SECONDS)

    async def _try_lead(self) -> bool:
        try:
            return await self.leadership.acquire()
        except Exception:
            log.exception("cannot take the ingest background lock")
            return False

    async def _sync(self) -> None:
        """Start, restart and stop MQTT subscribers and pollers after configuration changes."""
        async with self.db.engine.connect() as conn:
            version = (await conn.execute(select(t.ingest_state.c.config_version))).scalar()
            if version == self._watched_version:
                return
            integrations = await self.registry.integrations_with(conn, "mqtt")
        self.mqtt.sync(integrations)
        self.pollers.sync(await self.pollers.load())
        self._watched_version = version

    async def prune(self) -> dict[str, int]:
        """Bounded retention of the raw uplink log and the replay keys."""
        now = datetime.now(UTC)
        settings = self.settings
        raw_cutoff = now - timedelta(days=settings.raw_log_retention_days)
        key_cutoff = now - timedelta(days=settings.uplink_key_retention_days)
        removed = {}
        async with self.db.write() as conn:
            result = await conn.execute(delete(t.raw_uplinks).where(
                t.raw_uplinks.c.received_at < raw_cutoff))
            removed["raw_by_age"] = result.rowcount or 0
            newest_kept = (await conn.execute(
                select(t.raw_uplinks.c.id).order_by(t.raw_uplinks.c.id.desc())
                .offset(settings.raw_log_max_rows).limit(1))).scalar()
            removed["raw_by_count"] = 0
            if newest_kept is not None:
                result = await conn.execute(delete(t.raw_uplinks).where(
                    t.raw_uplinks.c.id <= newest_kept))
                removed["raw_by_count"] = result.rowcount or 0
            result = await conn.execute(delete(t.uplink_keys).where(
                t.uplink_keys.c.received_at < key_cutoff))
            removed["keys"] = result.rowcount or 0
        return removed
