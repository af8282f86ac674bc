"""HTTP pollers for sources that are not LoRaWAN (bicycle counters, car parks, vendor APIs).

A poller fetches a JSON document every `interval_s` seconds, picks values with JSONPath-style
paths and hands them to the ingest pipeline as if a device had sent them, so provisioning,
units, mappings and the device status work the same. Errors are recorded on the poller and
retried with exponential backoff (up to one hour).

Paths: `$.a.b`, `$['a b']`, `$.items[0].free`, `$.items[-1]`, and a filter that picks the first
matching element: `$.carparks[?(@.id == 'P1')].free` (compare with a string or a number).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select, update

from ortspuls.db.engine import Database
from ortspuls.ingest import tables as t
from ortspuls.ingest.adapters import Uplink
from ortspuls.ingest.fields import _scalar
from ortspuls.sta.values import parse_time

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 3600.0
TIMEOUT_S = 10.0
MAX_RESPONSE = 5 * 1024 * 1024


class PathError(ValueError):
    pass


_TOKEN = re.compile(
    r"""\.(?P<name>[A-Za-z_][\w\-]*)"""
    r"""|\[\s*(?P<quoted>'[^']*'|"[^"]*")\s*\]"""
    r"""|\[\s*(?P<index>-?\d+)\s*\]"""
    r"""|\[\s*\?\(\s*@\.(?P<fkey>[\w\-.]+)\s*==\s*(?P<fval>'[^']*'|"[^"]*"|-?\d+(?:\.\d+)?|true|false)\s*\)\s*\]"""
)


@dataclass(frozen=True, slots=True)
class _Step:
    kind: str  # key | index | filter
    key: Any = None
    value: Any = None


def parse_path(path: str) -> tuple[_Step, ...]:
    text = path.strip()
    if not text.startswith("$"):
        raise PathError(f"a path starts with '$', e.g. $.data.free; got {path!r}")
    steps, pos = [], 1
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise PathError(f"cannot read the path {path!r} at position {pos}: "
                            f"{text[pos:pos + 20]!r}")
        if match["name"] is not None:
            steps.append(_Step("key", match["name"]))
        elif match["quoted"] is not None:
            steps.append(_Step("key", match["quoted"][1:-1]))
        elif match["index"] is not None:
            steps.append(_Step("index", int(match["index"])))
        else:
            raw = match["fval"]
            if raw[0] in "'\"":
                value: Any = raw[1:-1]
            elif raw in ("true", "false"):
                value = raw == "true"
            else:
                value = float(raw) if "." in raw else int(raw)
            steps.append(_Step("filter", match["fkey"].split("."), value))
        pos = match.end()
    return tuple(steps)


def resolve(document: Any, path: str) -> Any:
    node = document
    for step in parse_path(path):
        if step.kind == "key":
            if not isinstance(node, dict) or step.key not in node:
                raise PathError(f"{path}: no key {step.key!r}")
            node = node[step.key]
        elif step.kind == "index":
            if not isinstance(node, list) or not -len(node) <= step.key < len(node):
                raise PathError(f"{path}: no element {step.key}")
            node = node[step.key]
        else:
            if not isinstance(node, list):
                raise PathError(f"{path}: a filter needs an array")
            for element in node:
                probe = element
                for part in step.key:
                    probe = probe.get(part) if isinstance(probe, dict) else None
                if _same(probe, step.value):
                    node = element
                    break
            else:
                raise PathError(f"{path}: no element matches the filter")
    return node


def _same(probe: Any, value: Any) -> bool:
    if isinstance(value, bool) or isinstance(probe, bool):
        return probe is value
    return probe == value


@dataclass(frozen=True, slots=True)
class PollerConfig:
    id: int
    tenant_id: int
    name: str
    url: str
    interval_s: float
    headers: tuple[tuple[str, str], ...]
    fields: tuple[tuple[str, str], ...]  # (field key, path)
    time_path: str | None

    @classmethod
    def from_row(cls, row: Any) -> PollerConfig:
        return cls(row.id, row.tenant_id, row.name, row.url, float(row.interval_s),
                   tuple(sorted((row.headers or {}).items())),
                   tuple((f["key"], f["path"]) for f in row.fields),
                   row.time_path)

    @property
    def dev_eui(self) -> str:
        return f"HTTP:{self.name}"


def extract(document: Any, config: PollerConfig) -> tuple[dict[str, Any], list[str], datetime]:
    """The configured fields of one response, the problems met, and the time of the values."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key, path in config.fields:
        try:
            raw = resolve(document, path)
        except PathError as exc:
            problems.append(str(exc))
            continue
        scalar = _scalar(raw)
        if scalar is None:
            problems.append(f"{path}: {raw!r} is not a number or boolean")
            continue
        values[key] = scalar
    when = datetime.now(UTC)
    if config.time_path:
        try:
            raw_time = resolve(document, config.time_path)
            when = (datetime.fromtimestamp(raw_time, UTC) if isinstance(raw_time, int | float)
                    else parse_time(raw_time, config.time_path))
        except Exception as exc:
            problems.append(f"time: {exc}")
    return values, problems, when


def backoff_delay(interval_s: float, failures: int) -> float:
    """The wait before the next poll: the interval, doubled per failure in a row (max 1 h)."""
    if failures <= 0:
        return interval_s
    return min(interval_s * 2 ** min(failures, 30), max(MAX_BACKOFF_S, interval_s))


class PollerManager:
    """Runs one task per configured poller; `sync` starts, restarts and stops them."""

    def __init__(self, db: Database, pipeline) -> None:
        self.db = db
        self.pipeline = pipeline
        self._tasks: dict[int, tuple[PollerConfig, asyncio.Task]] = {}

    async def load(self) -> list[PollerConfig]:
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(select(t.pollers).where(t.pollers.c.enabled))).all()
        return [PollerConfig.from_row(r) for r in rows]

    def sync(self, configs: list[PollerConfig]) -> None:
        wanted = {c.id: c for c in configs}
        for ident, (config, task) in list(self._tasks.items()):
            if wanted.get(ident) != config:
                task.cancel()
                del self._tasks[ident]
        for ident, config in wanted.items():
            if ident not in self._tasks:
                task = asyncio.get_running_loop().create_task(self._loop(config),
                                                              name=f"poller-{config.name}")
                self._tasks[ident] = (config, task)

    async def stop(self) -> None:
        tasks = [task for _, task in self._tasks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def _loop(self, config: PollerConfig) -> None:
        failures = 0
        async with httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=True) as client:
            while True:
                error = await self.poll_once(client, config)
                failures = failures + 1 if error else 0
                await self._record(config, error, failures)
                await asyncio.sleep(backoff_delay(config.interval_s, failures))

    async def poll_once(self, client: httpx.AsyncClient, config: PollerConfig) -> str | None:
        """Fetch and store once; returns an error text or None."""
        try:
            response = await client.get(config.url, headers=dict(config.headers))
        except httpx.HTTPError as exc:
            return f"Abruf fehlgeschlagen (request failed): {type(exc).__name__}: {exc}"[:500]
        if response.status_code >= 400:
            return f"HTTP {response.status_code} von/from {config.url}"
        if len(response.content) > MAX_RESPONSE:
            return f"Antwort zu groß (response larger than {MAX_RESPONSE} bytes)"
        try:
            document = response.json()
        except ValueError:
            return "Antwort ist kein JSON (the response is not JSON)"
        values, problems, when = extract(document, config)
        if not values:
            return "keine Werte gefunden (no configured field found): " + "; ".join(problems)
        uplink = Uplink(
            network="http", dev_eui=config.dev_eui, received_at=when,
            dedup_key=f"poll:{config.id}:{when.isoformat()}" if config.time_path else None,
            decoded=values, device_name=config.name, ids={"url": config.url},
        )
        try:
            await self.pipeline.submit(config.tenant_id, None, uplink=uplink)
        except Exception as exc:
            log.exception("poller %s could not store", config.name)
            return f"Speichern fehlgeschlagen (store failed): {exc}"[:500]
        return "; ".join(problems)[:500] if problems else None

    async def _record(self, config: PollerConfig, error: str | None, failures: int) -> None:
        now = datetime.now(UTC)
        values: dict[str, Any] = {"last_run_at": now, "last_error": error, "failures": failures}
        if error is None:
            values["last_ok_at"] = now
        try:
            async with self.db.write() as conn:
                await conn.execute(update(t.pollers).where(t.pollers.c.id == config.id)
                                   .values(values))
        except Exception:
            log.exception("poller %s: cannot record its state", config.name)
        if error:
            log.warning("poller %s: %s", config.name, error)
