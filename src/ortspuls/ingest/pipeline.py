"""The ingest pipeline: uplinks from webhooks, MQTT and pollers, stored in batches.

Concurrent uplinks queue here and are processed together: one read for the configuration
version and the devices not cached yet, codecs run outside any transaction, then one write
transaction does everything else for the batch — replay check, new devices and their
Things/Datastreams, the observations (through the observation writer's in-transaction batch
path), the deduplication keys, the raw uplink log and the device status. A caller is answered
only after that commit, so an accepted uplink is never lost; a replayed one adds nothing because
its key is stored in the same transaction as its observations.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from ortspuls.db.engine import Database
from ortspuls.db.types import Timestamp
from ortspuls.ingest import tables as t
from ortspuls.ingest.adapters import DeviceEvent, Uplink
from ortspuls.ingest.codecs import CodecError, CodecRunner
from ortspuls.ingest.fields import FieldValue, flatten, normalized_groups
from ortspuls.ingest.mapping import MappedValue, apply_rules
from ortspuls.ingest.provision import ensure_datastream, ensure_thing, move_thing, new_device_rows
from ortspuls.ingest.registry import Device, Integration, Profile, Registry
from ortspuls.sta.errors import StaError
from ortspuls.sta.values import encode_result
from ortspuls.sta.write import WriteContext
from ortspuls.timeseries.events import EntityEvent, EventBus
from ortspuls.timeseries.writer import NewObservation, ObservationWriter

log = logging.getLogger(__name__)

BATTERY_SLUGS = {"battery-voltage", "battery-level"}
# Under load a batch waits this long at most for more uplinks to join it.
MAX_GATHER_S = 0.010
# An integration's "last seen" time is written at most this often.
TOUCH_EVERY_S = 30.0


class _Stale(Exception):
    """The ingest configuration changed while a batch was being prepared."""


class Overloaded(Exception):
    """More uplinks are waiting than the server accepts; the sender should retry later."""


@dataclass(slots=True)
class Pending:
    tenant_id: int
    integration: Integration | None
    uplink: Uplink | None
    event: DeviceEvent | None
    future: asyncio.Future
    device: Device | None = None
    profile: Profile | None = None
    status: str = "pending"
    error: str | None = None
    data: dict | None = None
    normalized: Any = None
    warnings: list[str] = field(default_factory=list)
    observations: int = 0

    @property
    def dev_eui(self) -> str:
        return self.uplink.dev_eui if self.uplink else self.event.dev_eui  # type: ignore[union-attr]

    def result(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "device": self.dev_eui}
        if self.uplink is not None and self.status == "stored":
            body["observations"] = self.observations
        if self.error:
            body["error"] = self.error
        if self.warnings:
            body["warnings"] = self.warnings
        return body


@dataclass(slots=True)
class _DeviceUpdate:
    device: Device
    uplinks: int = 0
    errors: int = 0
    last_seen: datetime | None = None
    f_cnt: int | None = None
    status: str | None = None
    error: str | None = None
    error_at: datetime | None = None


class IngestPipeline:
    def __init__(self, db: Database, writer: ObservationWriter, bus: EventBus,
                 registry: Registry, runner: CodecRunner, max_pending: int = 20_000,
                 max_batch: int = 1_000) -> None:
        self.db = db
        self.writer = writer
        self.bus = bus
        self.registry = registry
        self.runner = runner
        self.max_pending = max_pending
        self.max_batch = max_batch
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self.batches = 0
        self.processed = 0
        self._touched: dict[int, float] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ingest")

    async def stop(self) -> None:
        """Store what was accepted, then stop."""
        if self._task is None:
            return
        if self.batches:
            log.info("ingest: %d uplinks in %d batches (%.1f per batch)", self.processed,
                     self.batches, self.processed / self.batches)
        while not self._queue.empty():
            await asyncio.sleep(0.01)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    # -- entry points ---------------------------------------------------------------------------

    async def submit(self, tenant_id: int, integration: Integration | None,
                     uplink: Uplink | None = None, event: DeviceEvent | None = None
                     ) -> dict[str, Any]:
        """Process one uplink or device event; answered after its batch is committed."""
        if self._queue.qsize() >= self.max_pending:
            raise Overloaded(f"{self._queue.qsize()} uplinks are waiting")
        if self._task is None:
            self.start()
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(Pending(tenant_id, integration, uplink, event, future))
        return await future

    # -- the batch loop -------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = 1
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + MAX_GATHER_S
            idle_polls = 0
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                    idle_polls = 0
                    continue
                except asyncio.QueueEmpty:
                    pass
                # Alone, go at once; under load, let the uplinks being parsed join this batch
                # (one transaction for many is what makes the throughput).
                if last <= 1 or idle_polls >= 2 or loop.time() >= deadline:
                    break
                idle_polls += 1
                await asyncio.sleep(0.001)
            last = len(batch)
            try:
                await self._process(batch)
            except Exception:  # answer every waiter, keep the loop alive
                log.exception("ingest batch failed")
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(RuntimeError("ingest failed"))

    async def _process(self, batch: list[Pending]) -> None:
        try:
            try:
                events = await self._attempt(batch)
            except _Stale:
                self.registry.invalidate()
                for item in batch:
                    self._reset(item)
                events = await self._attempt(batch)
        except Exception as exc:
            # A race with another process, a Datastream deleted meanwhile, a broken record:
            # forget the caches and try again, each uplink on its own.
            self.registry.invalidate()
            if len(batch) > 1:
                log.warning("ingest batch of %d failed (%s); retrying one by one", len(batch),
                            exc)
                for item in batch:
                    self._reset(item)
                    try:
                        await self._process([item])
                    except Exception as one:
                        log.exception("uplink of %s failed", item.dev_eui)
                        if not item.future.done():
                            item.future.set_exception(one)
                return
            self._reset(batch[0])
            events = await self._attempt(batch)
        self.bus.publish(events)
        self.batches += 1
        self.processed += len(batch)
        for item in batch:
            if not item.future.done():
                item.future.set_result(item.result())

    @staticmethod
    def _reset(item: Pending) -> None:
        item.device = item.profile = None
        item.status, item.error, item.data, item.normalized = "pending", None, None, None
        item.warnings, item.observations = [], 0

    # -- one attempt ----------------------------------------------------------------------------

    async def _attempt(self, batch: list[Pending]) -> list[EntityEvent]:
        registry = self.registry
        # 1. Configuration and devices not cached yet, read outside the write transaction.
        keys = {(i.tenant_id, i.dev_eui) for i in batch}
        if registry.version is None or any(k not in registry.devices for k in keys):
            async with self.db.engine.connect() as conn:
                await registry.refresh(conn)
                await registry.load_devices(conn, keys)
        for item in batch:
            item.device = registry.device(item.tenant_id, item.dev_eui)
            if item.uplink is not None:
                self._decode(item)

        # 2. Everything else in one write transaction.
        contexts: dict[int, WriteContext] = {}
        events: list[EntityEvent] = []
        now = datetime.now(UTC)
        async with self.db.write() as conn:
            def context(tenant_id: int) -> WriteContext:
                ctx = contexts.get(tenant_id)
                if ctx is None:
                    ctx = contexts[tenant_id] = WriteContext(conn, self.writer, tenant_id)
                return ctx

            if await registry.changed(conn):
                # The configuration moved since this batch was decoded: start over with it.
                raise _Stale()
            await self._mark_replays(conn, batch)
            await self._create_devices(conn, batch, now)
            records: list[NewObservation] = []
            owners: list[Pending] = []
            updates: dict[int, _DeviceUpdate] = {}
            for item in batch:
                if item.status == "duplicate":
                    continue
                device = item.device
                assert device is not None
                upd = updates.setdefault(device.id, _DeviceUpdate(device))
                if item.event is not None:
                    await self._apply_event(context(item.tenant_id), item, upd)
                    continue
                uplink = item.uplink
                assert uplink is not None
                upd.uplinks += 1
                upd.last_seen = max(filter(None, (upd.last_seen, uplink.received_at)))
                upd.f_cnt = uplink.f_cnt
                self._health(device, uplink)
                if item.status == "codec_error":
                    upd.errors += 1
                    upd.status, upd.error, upd.error_at = "error", item.error, now
                    continue
                if item.status in ("no_codec", "no_data", "dropped"):
                    if item.status == "no_codec":
                        upd.status = "no_codec"
                        upd.error = ("kein Decoder für dieses Gerät (no codec for this device): "
                                     "import or add one with `ortspuls codecs`")
                        upd.error_at = now
                    continue
                ctx = context(item.tenant_id)
                for when, mapped in self._values(item):
                    datastream_id = await ensure_datastream(ctx, registry, device, uplink,
                                                            item.profile, mapped)
                    records.append(NewObservation(
                        datastream_id=datastream_id,
                        phenomenon_time_start=when,
                        phenomenon_time_end=None,
                        result=encode_result(mapped.value),
                        parameters={"simulated": True} if uplink.simulated else None,
                        feature_id=device.feature_id,
                    ))
                    owners.append(item)
                    if mapped.quantity.slug in BATTERY_SLUGS:
                        device.health["battery"] = {"value": mapped.value,
                                                    "unit": mapped.unit.get("symbol")}
                await ensure_thing(ctx, registry, device, uplink)
                item.status = "stored"
                upd.status = "ok"
                if item.warnings:
                    upd.error, upd.error_at = "; ".join(item.warnings)[:500], now
                else:
                    upd.error = None

            if records:
                _, obs_events = await self.writer.insert(conn, records)
                events.extend(obs_events)
                for owner in owners:
                    owner.observations += 1
            await self._store_keys(conn, batch, now)
            await self._store_raw(conn, batch)
            await self._store_devices(conn, updates)
            await self._touch_integrations(conn, batch, now)
        for ctx in contexts.values():
            events[:0] = ctx.events
        return events

    # -- steps ----------------------------------------------------------------------------------

    def _decode(self, item: Pending) -> None:
        uplink = item.uplink
        assert uplink is not None
        integration = item.integration
        if uplink.simulated and integration is not None and (
                integration.option("simulated", "mark") == "drop"):
            item.status = "dropped"
            return
        item.profile = self.registry.profile_for(item.tenant_id, uplink, item.device)
        if uplink.decoded is not None:
            item.data, item.normalized = uplink.decoded, uplink.normalized
            return
        if not uplink.payload:
            item.status = "no_data"
            return
        codec = (self.registry.codec_for(integration, uplink, item.device, item.profile)
                 if integration is not None else None)
        if codec is None:
            item.status = "no_codec"
            return
        variables = dict(uplink.tags)
        if item.device is not None:
            variables.update(item.device.variables)
        try:
            decoded = self.runner.decode(codec, uplink.payload, uplink.f_port,
                                         uplink.received_at, variables)
        except CodecError as exc:
            item.status, item.error = "codec_error", str(exc)
            return
        item.data, item.normalized, item.warnings = (decoded.data, decoded.normalized,
                                                     decoded.warnings)

    def _values(self, item: Pending) -> list[tuple[datetime, MappedValue]]:
        uplink, device = item.uplink, item.device
        assert uplink is not None and device is not None
        groups: list[tuple[datetime | None, dict[str, FieldValue]]] = []
        prefer = item.integration.option("payload", "decoded") if item.integration else "decoded"
        if prefer == "normalized" and item.normalized:
            groups = normalized_groups(item.normalized)
        if not groups:
            groups = [(None, flatten(item.data))]
        if item.integration is not None and item.integration.option("radio_datastreams"):
            radio = {k: FieldValue(v) for k, v in (("radio.rssi", uplink.rssi),
                                                   ("radio.snr", uplink.snr)) if v is not None}
            groups[0][1].update(radio)
        rules = self.registry.rules_for(device, item.profile)
        variables = dict(uplink.tags)
        variables.update(device.variables)
        out = []
        for when, fields in groups:
            mapped, problems = apply_rules(fields, rules, variables)
            item.warnings.extend(problems)
            moment = when or uplink.received_at
            out.extend((moment, m) for m in mapped)
        return out

    def _health(self, device: Device, uplink: Uplink) -> None:
        health = device.health
        for key, value in (("rssi", uplink.rssi), ("snr", uplink.snr),
                           ("gateway", uplink.gateway), ("frequency", uplink.frequency),
                           ("spreadingFactor", uplink.spreading_factor)):
            if value is not None:
                health[key] = value
        if uplink.gateways:
            health["gateways"] = uplink.gateways
        if uplink.battery_percent is not None:
            health["battery"] = {"value": uplink.battery_percent, "unit": "%"}
        if uplink.simulated:
            health["lastSimulated"] = True

    async def _mark_replays(self, conn, batch: list[Pending]) -> None:
        """Uplinks whose key is stored already (or seen earlier in this batch) add nothing."""
        candidates = [i for i in batch if i.uplink is not None and i.uplink.dedup_key
                      and i.status == "pending"]
        by_tenant: dict[int, set[str]] = {}
        for item in candidates:
            by_tenant.setdefault(item.tenant_id, set()).add(item.uplink.dedup_key)  # type: ignore[union-attr]
        stored: set[tuple[int, str]] = set()
        for tenant, keys in by_tenant.items():
            ordered = sorted(keys)
            for start in range(0, len(ordered), 500):
                chunk = ordered[start:start + 500]
                rows = await conn.execute(select(t.uplink_keys.c.key).where(
                    t.uplink_keys.c.tenant_id == tenant, t.uplink_keys.c.key.in_(chunk)))
                stored.update((tenant, k) for k in rows.scalars())
        for item in candidates:
            key = (item.tenant_id, item.uplink.dedup_key)  # type: ignore[union-attr]
            if key in stored:
                item.status = "duplicate"
            else:
                stored.add(key)

    async def _create_devices(self, conn, batch: list[Pending], now: datetime) -> None:
        wanted: dict[tuple[int, str], Pending] = {}
        for item in batch:
            if item.status != "duplicate" and item.device is None:
                wanted.setdefault((item.tenant_id, item.dev_eui), item)
        if not wanted:
            return
        rows = []
        for (tenant, eui), item in wanted.items():
            uplink = item.uplink
            name = (uplink.device_name if uplink else item.event.device_name) or eui  # type: ignore[union-attr]
            network: dict[str, Any] = {"network": uplink.network if uplink else "chirpstack"}
            if uplink is not None:
                network.update(uplink.ids)
                network.update({k: v for k, v in (("brand", uplink.brand),
                                                  ("model", uplink.model),
                                                  ("firmware", uplink.firmware),
                                                  ("profile", uplink.profile_name)) if v})
                if uplink.tags:
                    network["tags"] = uplink.tags
            rows.append({
                "tenant_id": tenant,
                "integration_id": item.integration.id if item.integration else None,
                "dev_eui": eui, "name": name[:200], "network": network,
                "profile_id": item.profile.id if item.profile else None,
                "status": "new", "uplink_count": 0, "error_count": 0, "created_at": now,
            })
        ids = await new_device_rows(conn, rows)
        for row, ident in zip(rows, ids, strict=True):
            device = Device(ident, row["tenant_id"], row["dev_eui"], row["name"],
                            row["integration_id"], row["profile_id"], None, None, None, None,
                            {}, {}, [], {}, dict(row["network"]))
            self.registry.devices[(device.tenant_id, device.dev_eui)] = device
        for item in batch:
            if item.device is None:
                item.device = self.registry.device(item.tenant_id, item.dev_eui)

    async def _apply_event(self, ctx: WriteContext, item: Pending, upd: _DeviceUpdate) -> None:
        event = item.event
        device = item.device
        assert event is not None and device is not None
        health = device.health
        if event.kind == "status":
            if event.battery_percent is not None:
                health["battery"] = {"value": event.battery_percent, "unit": "%"}
            if event.margin is not None:
                health["margin"] = event.margin
            health["externalPower"] = bool(event.external_power)
        elif event.kind == "join":
            health["joinedAt"] = event.at.isoformat()
            if event.dev_addr:
                device.network["dev_addr"] = event.dev_addr
        elif event.kind == "location" and event.location:
            device.network["location"] = event.location
            await move_thing(ctx, device, event.location)
        upd.last_seen = max(filter(None, (upd.last_seen, event.at)))
        item.status = "updated"

    async def _store_keys(self, conn, batch: list[Pending], now: datetime) -> None:
        rows = [{"tenant_id": i.tenant_id, "key": i.uplink.dedup_key, "received_at": now}
                for i in batch if i.status == "stored" and i.uplink and i.uplink.dedup_key]
        if rows:
            await conn.execute(insert(t.uplink_keys), rows)

    async def _store_raw(self, conn, batch: list[Pending]) -> None:
        rows = []
        for item in batch:
            uplink = item.uplink
            if uplink is None or item.status == "duplicate":
                continue
            meta = {k: v for k, v in (
                ("rssi", uplink.rssi), ("snr", uplink.snr), ("gateway", uplink.gateway),
                ("gateways", uplink.gateways or None), ("frequency", uplink.frequency),
                ("spreadingFactor", uplink.spreading_factor),
                ("simulated", uplink.simulated or None), ("warnings", item.warnings or None),
                ("observations", item.observations or None), ("network", uplink.network),
            ) if v is not None}
            rows.append({
                "tenant_id": item.tenant_id,
                "integration_id": item.integration.id if item.integration else None,
                "device_id": item.device.id if item.device else None,
                "dev_eui": uplink.dev_eui,
                "received_at": uplink.received_at,
                "f_port": uplink.f_port,
                "f_cnt": uplink.f_cnt,
                "payload": uplink.payload.hex() if uplink.payload else None,
                "decoded": item.data,
                "status": item.status,
                "error": item.error,
                "meta": meta,
            })
        if rows:
            await conn.execute(insert(t.raw_uplinks), rows)

    async def _store_devices(self, conn, updates: dict[int, _DeviceUpdate]) -> None:
        if not updates:
            return
        params = []
        for upd in updates.values():
            device = upd.device
            params.append({
                "did": device.id, "health": device.health or None,
                "new_status": upd.status, "last_error": upd.error,
                "last_error_at": upd.error_at, "last_seen": upd.last_seen,
                "f_cnt": upd.f_cnt, "inc_up": upd.uplinks, "inc_err": upd.errors,
                "unmapped": device.unmapped or None, "network": device.network or None,
            })
        d = t.devices.c
        stmt = update(t.devices).where(d.id == bindparam("did")).values(
            health=bindparam("health"),
            status=_coalesce(bindparam("new_status"), d.status),
            last_error=_case_error(),
            last_error_at=_coalesce(bindparam("last_error_at", type_=Timestamp()),
                                    d.last_error_at),
            last_seen_at=_coalesce(bindparam("last_seen", type_=Timestamp()), d.last_seen_at),
            last_f_cnt=_coalesce(bindparam("f_cnt"), d.last_f_cnt),
            uplink_count=d.uplink_count + bindparam("inc_up"),
            error_count=d.error_count + bindparam("inc_err"),
            unmapped=bindparam("unmapped"),
            network=bindparam("network"),
        )
        await conn.execute(stmt, params)

    async def _touch_integrations(self, conn, batch: list[Pending], now: datetime) -> None:
        moment = now.timestamp()
        ids = sorted({i.integration.id for i in batch if i.integration is not None
                      and moment - self._touched.get(i.integration.id, 0.0) > TOUCH_EVERY_S})
        for ident in ids:
            self._touched[ident] = moment
        if ids:
            await conn.execute(update(t.integrations).where(t.integrations.c.id.in_(ids))
                               .values(last_seen_at=now))


def _coalesce(a, b):
    from sqlalchemy import func

    return func.coalesce(a, b)


def _case_error():
    """A successful uplink clears the last error; one with no news keeps it."""
    from sqlalchemy import case

    d = t.devices.c
    return case((bindparam("new_status").is_(None), d.last_error),
                else_=bindparam("last_error"))


__all__ = ["IngestPipeline", "Overloaded", "Pending", "StaError"]
