"""Live values for the dashboard: new public observations as Server-Sent Events.

The hub listens on the event bus. Per batch of new observations it asks the database once which
of their Datastreams are public (and their use case), then hands one ready-made SSE message per
observation to every connected client's queue. Queues are bounded: a client that does not keep
up loses messages (counted, and told with a comment line) instead of slowing the server or
piling up memory. Each client gets a heartbeat comment every 15 seconds so proxies keep the
connection open.

Like the latest-value cache, each worker process has its own hub fed by its own bus; with
several workers a client sees the observations written through the worker it is connected to
(and the page's periodic refresh covers the rest).

A server waits for open responses before it stops, and an event stream never ends by itself:
the hub therefore chains itself onto the process's SIGTERM/SIGINT handlers (the server's own
handler still runs) and ends every stream when shutdown begins; browsers reconnect by
themselves (`retry`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select

from ortspuls.dashboard.usecase import assign
from ortspuls.db.engine import Database
from ortspuls.db.schema import entity_tables
from ortspuls.sta.values import decode_result, format_time
from ortspuls.timeseries.events import EntityEvent, EventBus

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
CLIENT_QUEUE = 256
INBOX_LIMIT = 1000

DATASTREAMS = entity_tables["Datastream"]
THINGS = entity_tables["Thing"]
OBSERVED_PROPERTIES = entity_tables["ObservedProperty"]


@dataclass(eq=False, slots=True)
class Client:
    usecase: str | None = None
    datastream: int | None = None
    # A tenant's dashboard (`/t/<slug>/api/v1/live`): only these tenants' Datastreams.
    tenants: frozenset[int] | None = None
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    dropped: int = 0

    def wants(self, datastream_id: int, usecase: str, tenant_id: int | None = None) -> bool:
        return ((self.usecase is None or self.usecase == usecase)
                and (self.datastream is None or self.datastream == datastream_id)
                and (self.tenants is None or tenant_id in self.tenants))

    def offer(self, message: bytes | None) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            if message is None:  # shutting down: make room for the end marker
                with contextlib.suppress(asyncio.QueueEmpty):
                    self.queue.get_nowait()
                self.queue.put_nowait(None)
            else:
                self.dropped += 1


class LiveHub:
    """Fans new public observations out to the connected SSE clients."""

    def __init__(self, db: Database, bus: EventBus) -> None:
        self.db = db
        self.bus = bus
        self.clients: set[Client] = set()
        self._inbox: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue(INBOX_LIMIT)
        self._task: asyncio.Task | None = None
        self._unsubscribe = None
        self._closing = False
        self._chained: list[tuple[int, Any, Any]] = []

    async def start(self) -> None:
        self._unsubscribe = self.bus.subscribe(self._on_events)
        self._task = asyncio.get_running_loop().create_task(self._pump(), name="live-hub")
        self._chain_shutdown_signals()

    def _chain_shutdown_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue  # no server handler to run after ours (e.g. an embedded test app)

            def handler(signum, frame, previous=previous):
                loop.call_soon_threadsafe(self.close_streams)
                previous(signum, frame)

            signal.signal(sig, handler)
            self._chained.append((sig, handler, previous))

    def close_streams(self) -> None:
        """End every open stream now and any opened from here on (shutdown)."""
        self._closing = True
        for client in list(self.clients):
            client.offer(None)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for sig, ours, previous in self._chained:
            if signal.getsignal(sig) is ours:
                signal.signal(sig, previous)
        self._chained.clear()
        self.close_streams()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def connect(self, usecase: str | None = None, datastream: int | None = None,
                tenants: frozenset[int] | None = None) -> Client:
        client = Client(usecase, datastream, tenants)
        self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        self.clients.discard(client)

    # -- from the bus ---------------------------------------------------------------------------

    def _on_events(self, events: list[EntityEvent]) -> None:
        if not self.clients:
            return  # nobody listens: no work at all
        rows = [e.row for e in events
                if e.entity == "Observation" and e.op == "create" and e.row is not None
                and e.row.get("datastream_id") is not None]
        if rows:
            try:
                self._inbox.put_nowait(rows)
            except asyncio.QueueFull:
                log.warning("live hub is behind; %d observations not sent", len(rows))

    async def _pump(self) -> None:
        while True:
            rows = await self._inbox.get()
            try:
                await self._send(rows)
            except Exception:
                log.exception("sending live observations failed")

    async def _send(self, rows: list[dict[str, Any]]) -> None:
        if not self.clients:
            return
        ids = sorted({r["datastream_id"] for r in rows})
        d, t, op = DATASTREAMS, THINGS, OBSERVED_PROPERTIES
        stmt = (select(d.c.id, d.c.thing_id, d.c.tenant_id, d.c.unit_of_measurement,
                       d.c.properties,
                       t.c.properties.label("thing_properties"), op.c.name, op.c.definition)
                .select_from(d.join(t, t.c.id == d.c.thing_id)
                             .join(op, op.c.id == d.c.observed_property_id))
                .where(d.c.id.in_(ids), d.c.is_public, t.c.is_public))
        public: dict[int, tuple[str, int, int]] = {}
        async with self.db.read(primary=True) as conn:
            for r in await conn.execute(stmt):
                unit = r.unit_of_measurement if isinstance(r.unit_of_measurement, dict) else {}
                slug, _role = assign(r.name, r.definition, str(unit.get("symbol") or ""),
                                     r.properties, r.thing_properties)
                public[r.id] = (slug, r.thing_id, r.tenant_id)
        for row in rows:
            info = public.get(row["datastream_id"])
            if info is None:
                continue  # internal data never leaves through the dashboard
            slug, thing_id, tenant_id = info
            end = row.get("phenomenon_time_end")
            message = b"data: " + orjson.dumps({
                "datastream_id": row["datastream_id"],
                "thing_id": thing_id,
                "observation_id": row.get("id"),
                "time": format_time(end or row["phenomenon_time_start"]),
                "value": decode_result(row["result_type"], row["result_number"],
                                       row["result_string"], row["result_json"]),
                "usecase": slug,
            }) + b"\n\n"
            for client in list(self.clients):
                if client.wants(row["datastream_id"], slug, tenant_id):
                    client.offer(message)

    # -- to one client --------------------------------------------------------------------------

    async def stream(self, client: Client) -> AsyncIterator[bytes]:
        """The SSE byte stream of one client; ends when the hub stops."""
        try:
            yield b"retry: 5000\n: connected\n\n"
            if self._closing:
                return
            reported = 0
            while True:
                try:
                    message = await asyncio.wait_for(client.queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield b": heartbeat\n\n"
                    continue
                if message is None:
                    return
                chunks = [message]
                while not client.queue.empty():  # send what piled up in one write
                    extra = client.queue.get_nowait()
                    if extra is None:
                        yield b"".join(chunks)
                        return
                    chunks.append(extra)
                if client.dropped != reported:
                    chunks.append(f": dropped {client.dropped - reported} messages\n\n".encode())
                    reported = client.dropped
                yield b"".join(chunks)
        finally:
            self.disconnect(client)
