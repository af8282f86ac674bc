"""The live simulator of `ortspuls serve --demo`: Musterstadt's devices keep sending uplinks.

It runs in the server process (started from the app lifespan) but talks to the server like
the network servers do: over HTTP to `POST /ingest/ttn` (The Things Stack webhook messages) and
`POST /ingest/chirpstack?event=up` (two devices behind ChirpStack), raw payloads in base64,
authenticated with the demo integrations' tokens. Those tokens are renewed at every start and
held only in memory. So every uplink passes the whole ingest path: token check, adapter, the
demo's JavaScript codecs, mapping rules, the observation writer, the rollups, MQTT and the
dashboard's live updates.

Values come from the same model as the seeded history (same seed, same anchor), so the
Datastreams continue without a seam. On start the simulator first sends what its devices
"measured" since their last stored value (at most `CATCHUP_S` back), then each device sends at
its cadence. `demo_speed` > 1 (tests, presentations) divides the cadences: the devices send
more often, with the current time as their time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
from sqlalchemy import func, select, update

from ortspuls.db.schema import DEFAULT_TENANT_ID, entity_tables
from ortspuls.demo import model, payloads, uplinks
from ortspuls.demo.seed import DemoInfo, read_info
from ortspuls.demo.town import CHIRPSTACK_INTEGRATION, DEVICES, TTS_INTEGRATION, Device
from ortspuls.ingest import tables as t
from ortspuls.ingest.registry import PREFIX_LENGTH, bump_config_version, hash_token

log = logging.getLogger(__name__)

CATCHUP_S = 24 * 3600
# The model is computed this far ahead, and again when the clock gets near its end.
HORIZON_S = 2 * 86_400
CONCURRENCY = 8
OBSERVATIONS = entity_tables["Observation"]


@dataclass(slots=True)
class _Schedule:
    device: Device
    port: int  # 1 measurement, 2 status
    due: float  # next send, UTC seconds


class DemoSimulator:
    """Background task of a demo server: sends the simulated devices' uplinks."""

    def __init__(self, settings: Any, db: Any) -> None:
        self.settings = settings
        self.db = db
        self.speed = max(float(getattr(settings, "demo_speed", 1.0) or 1.0), 1.0)
        host = settings.host
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        host = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{host}:{settings.port}"
        self.info: DemoInfo | None = None
        self.env: model.Environment | None = None
        self.tokens: dict[str, str] = {}
        self.sent = 0
        self.stored = 0
        self.failed = 0
        self._task: asyncio.Task | None = None
        self._client: httpx.AsyncClient | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        # One line per simulated uplink would drown the server log.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self.info = await read_info(self.db)
        if self.info is None:
            log.warning("demo mode, but this database holds no demo town: nothing to simulate "
                        "(seed one with `ortspuls demo seed`)")
            return
        self.tokens = await self._renew_tokens()
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=30.0)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="demo-simulator")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self.sent:
            log.info("demo: %d uplinks sent, %d stored, %d failed", self.sent, self.stored,
                     self.failed)

    async def _renew_tokens(self) -> dict[str, str]:
        """A new token for each demo integration, known only to this process."""
        from ortspuls.ingest.admin import new_token

        tokens = {}
        async with self.db.write() as conn:
            for kind, name in (("ttn", TTS_INTEGRATION), ("chirpstack", CHIRPSTACK_INTEGRATION)):
                token = new_token()
                await conn.execute(update(t.integrations).where(
                    t.integrations.c.tenant_id == DEFAULT_TENANT_ID,
                    t.integrations.c.name == name).values(
                    token_prefix=token[:PREFIX_LENGTH], token_hash=hash_token(token),
                    revoked_at=None))
                tokens[kind] = token
            await bump_config_version(conn)
        return tokens

    # -- the loop -------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._wait_for_server()
            now = time.time()
            await self._model(now)
            schedules = await self._catch_up(now)
            while True:
                now = time.time()
                due = [s for s in schedules if s.due <= now]
                if due:
                    await self._model(now)
                    await self._send_all([(s.device, s.port, self._stamp(s, now)) for s in due])
                    for s in due:
                        s.due = self._next(s, now)
                wake = min(s.due for s in schedules)
                await asyncio.sleep(min(max(wake - time.time(), 0.05), 60.0))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the demo simulator stopped")

    async def _wait_for_server(self) -> None:
        """The lifespan starts us before the server listens: wait until it answers."""
        assert self._client is not None
        for _ in range(600):
            try:
                if (await self._client.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the server at {self.base_url} did not answer")

    async def _model(self, now: float) -> None:
        """(Re)compute the model when the clock approaches its end (in a thread: ~1 s)."""
        assert self.info is not None
        if self.env is not None and now + 3600 < self.env.end:
            return
        info = self.info
        self.env = await asyncio.to_thread(model.Environment, info.seed, info.anchor,
                                           int(now) + HORIZON_S)

    def _cadence(self, device: Device, port: int) -> float:
        return device.spec.cadence_s if port == 1 else 86_400.0

    def _next(self, s: _Schedule, now: float) -> float:
        if self.speed > 1:
            return now + self._cadence(s.device, s.port) / self.speed
        step = self._cadence(s.device, s.port)
        if s.port == 2:
            times = model.status_times(s.device, int(now) + 1, int(now) + 86_400 + 1)
            return float(times[0])
        return (now // step + 1) * step

    def _stamp(self, s: _Schedule, now: float) -> int:
        """The uplink's time: its slot on the cadence grid, or now when sped up."""
        return int(now) if self.speed > 1 else int(s.due)

    async def _catch_up(self, now: float) -> list[_Schedule]:
        """Send what the devices measured since their last stored uplink (at most a day);
        returns each device's schedule from now on."""
        last = await self._last_times()
        backlog: list[tuple[Device, int, int]] = []
        schedules = []
        for device in DEVICES:
            ports = (1, 2) if device.spec.battery else (1,)
            for port in ports:
                since = max(last.get((device.dev_eui, port), 0), int(now) - CATCHUP_S)
                times = (model.measurement_times(device, since + 1, int(now)) if port == 1
                         else model.status_times(device, since + 1, int(now)))
                backlog.extend((device, port, int(x)) for x in times)
                schedule = _Schedule(device, port, now)
                schedule.due = (now + (device.index % 10) * 0.1 if self.speed > 1
                                else self._next(schedule, now))
                schedules.append(schedule)
        backlog.sort(key=lambda item: item[2])
        if backlog:
            log.info("demo: sending %d uplinks measured since the last stored values",
                     len(backlog))
            await self._send_all(backlog)
        return schedules

    async def _last_times(self) -> dict[tuple[str, int], int]:
        """(DevEUI, port) -> newest stored time of the device's Datastreams of that port."""
        d, f, o = t.devices, t.device_fields, OBSERVATIONS
        out: dict[tuple[str, int], int] = {}
        async with self.db.read() as conn:
            for eui, field_name, ds in (await conn.execute(select(
                    d.c.dev_eui, f.c.field, f.c.datastream_id).join(
                    f, f.c.device_id == d.c.id).where(d.c.tenant_id == DEFAULT_TENANT_ID))).all():
                newest = (await conn.execute(select(func.max(o.c.phenomenon_time_start)).where(
                    o.c.datastream_id == ds))).scalar()
                if newest is None:
                    continue
                # SQLite aggregates come back as epoch µs, PostgreSQL's as datetimes.
                newest_s = (newest // 1_000_000 if isinstance(newest, int)
                            else int(newest.timestamp()))
                key = (eui, 2 if field_name == "battery_voltage" else 1)
                out[key] = max(out.get(key, 0), newest_s)
        return out

    # -- sending --------------------------------------------------------------------------------

    def payload(self, device: Device, port: int, when: int) -> bytes:
        """The bytes `device` sends at `when` (from the model)."""
        assert self.env is not None
        times = np.array([when], dtype=np.int64)
        if port == 2:
            return payloads.encode_status(int(model.battery_mv(self.env, device, times)[0]))
        span = (device.spec.cadence_s / self.speed if self.speed > 1
                else device.spec.cadence_s)
        raw = model.sample(self.env, device, times, span)
        return payloads.encode(device.kind, {k: int(v[0]) for k, v in raw.items()})

    async def _send_all(self, items: list[tuple[Device, int, int]]) -> None:
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def one(device: Device, port: int, when: int) -> None:
            async with semaphore:
                await self.send(device, port, when)

        for start in range(0, len(items), 500):
            await asyncio.gather(*(one(*item) for item in items[start:start + 500]))

    async def send(self, device: Device, port: int, when: int) -> dict[str, Any] | None:
        """One uplink through the ingest endpoint; the answer's JSON, or None on failure."""
        assert self._client is not None
        path, body = uplinks.message(device, when, port, self.payload(device, port, when))
        token = self.tokens["chirpstack" if device.network == "chirpstack" else "ttn"]
        self.sent += 1
        try:
            response = await self._client.post(path, json=body,
                                               headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            self.failed += 1
            log.warning("demo: uplink of %s failed: %s", device.key, exc)
            return None
        if response.status_code != 200:
            self.failed += 1
            log.warning("demo: uplink of %s answered %d: %s", device.key, response.status_code,
                        response.text[:200])
            return None
        answer = response.json()
        if answer.get("status") in ("stored", "duplicate"):
            self.stored += 1
        else:
            self.failed += 1
            log.warning("demo: uplink of %s at %s: %s", device.key,
                        datetime.fromtimestamp(when, UTC).isoformat(), answer)
        return answer
