"""Observations published over MQTT (create observations via MQTT).

A message on `v1.1/Datastreams(1)/Observations`, `v1.1/MultiDatastreams(1)/Observations` or
`v1.1/Observations` is validated exactly like an HTTP POST of the same body
(`sta.write.observation_record`) and stored by the observation writer. Messages are queued
and stored in batches (one `submit_many` per batch, never one transaction per message), so a
fast publisher costs one commit per batch. MQTT has no answer channel: a rejected message is
logged with its reason and stores nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from ortspuls.db.schema import DEFAULT_TENANT_ID
from ortspuls.mqtt.topics import create_target
from ortspuls.sta.errors import BadRequest, StaError
from ortspuls.sta.write import WriteContext, observation_record
from ortspuls.timeseries.writer import NewObservation, ObservationWriter

log = logging.getLogger(__name__)

# Messages taken per batch, and the most waiting before new ones are dropped (with a warning).
BATCH = 5_000
MAX_WAITING = 200_000
# At most this many rejection lines per second reach the log; the rest are counted.
LOG_PER_SECOND = 20


class ObservationIntake:
    def __init__(self, writer: ObservationWriter) -> None:
        self.writer = writer
        self._queue: asyncio.Queue[tuple[str, bytes, int]] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self.stored = 0
        self.rejected = 0
        self._log_window = (0.0, 0)
        self._silenced = 0

    def offer(self, topic: str, payload: bytes, tenant_id: int | None) -> None:
        """Queue one published message (called from the broker's callbacks)."""
        if self._queue.qsize() >= MAX_WAITING:
            self.reject(topic, f"the server is {MAX_WAITING} messages behind; message dropped")
            return
        self._queue.put_nowait((topic, payload, tenant_id or DEFAULT_TENANT_ID))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mqtt-intake")

    async def stop(self) -> None:
        """Store what has arrived, then stop."""
        if self._task is None:
            return
        for _ in range(500):
            if self._queue.empty():
                break
            await asyncio.sleep(0.01)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self.store(batch)
            except Exception:  # the loop must survive anything a message can cause
                log.exception("storing %d MQTT observations failed", len(batch))

    async def store(self, batch: list[tuple[str, bytes, int]]) -> None:
        now = datetime.now(UTC)
        records: list[NewObservation] = []
        topics: list[str] = []
        for topic, payload, tenant_id in batch:
            try:
                records.append(await self._record(topic, payload, tenant_id, now))
                topics.append(topic)
            except StaError as exc:
                self.reject(topic, exc.message)
        if not records:
            return
        results = await self.writer.submit_many(records)
        for topic, result in zip(topics, results, strict=True):
            if isinstance(result, StaError):
                self.reject(topic, result.message)
            else:
                self.stored += 1

    async def _record(self, topic: str, payload: bytes, tenant_id: int,
                      now: datetime) -> NewObservation:
        implied = create_target(topic)
        if implied is None:
            raise BadRequest("Observations are created on v1.1/Datastreams(id)/Observations, "
                             "v1.1/MultiDatastreams(id)/Observations or v1.1/Observations")
        try:
            data: Any = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"the payload is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadRequest("the payload must be a JSON object (one Observation)")
        for name in ("Datastream", "MultiDatastream"):
            link = data.get(name)
            if link is not None and not (isinstance(link, dict)
                                         and ("@iot.id" in link or "id" in link)):
                raise BadRequest(f"over MQTT, Observation.{name} can only be linked "
                                 "({\"@iot.id\": n}), not created")
        ctx = WriteContext(conn=None, writer=self.writer, tenant_id=tenant_id,  # type: ignore[arg-type]
                           now=now)
        return await observation_record(ctx, data, implied)

    def reject(self, topic: str, reason: str) -> None:
        """Count a message that stores nothing, and log why (a few lines per second at most)."""
        self.rejected += 1
        second = time.monotonic() // 1
        start, count = self._log_window
        if start != second:
            if self._silenced:
                log.warning("MQTT create: %d more messages rejected (not logged one by one)",
                            self._silenced)
                self._silenced = 0
            start, count = second, 0
        if count < LOG_PER_SECOND:
            log.warning("MQTT create on %s rejected, nothing stored: %s", topic, reason)
        else:
            self._silenced += 1
        self._log_window = (start, count + 1)
