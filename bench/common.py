"""Shared parts of the benchmark suite: databases, server processes, wrk, results.

Every server is a real `ortspuls` (or a bare ASGI server on the same app) in its own process
group on a free loopback port, stopped by its process id when the benchmark ends. Every
PostgreSQL database is created for the run (`ortspuls_bench_*`) and dropped after, except the
large query data sets, which are kept and reused (see `queries.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

BENCH = Path(__file__).parent
RESULTS = BENCH / "results"
PG_ADMIN = os.environ.get("ORTSPULS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_BASE = PG_ADMIN.rsplit("/", 1)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_url(name: str) -> str:
    return f"{PG_BASE}/{name}"


async def pg_execute(sql: str, database: str = "postgres") -> None:
    conn = await asyncpg.connect(pg_url(database))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_exists(name: str) -> bool:
    async def run() -> bool:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
        finally:
            await conn.close()

    return asyncio.run(run())


def create_pg(name: str) -> str:
    asyncio.run(pg_execute(f'CREATE DATABASE "{name}"'))
    asyncio.run(pg_execute("CREATE EXTENSION IF NOT EXISTS postgis", name))
    return pg_url(name)


def drop_pg(name: str) -> None:
    asyncio.run(pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Target:
    """One database for one benchmark: its kind, URL and a data folder."""

    kind: str  # "sqlite" | "postgresql"
    url: str
    data_dir: Path

    @property
    def cli_args(self) -> list[str]:
        return ["--data-dir", str(self.data_dir), "--database-url", self.url]


@contextlib.contextmanager
def fresh_database(kind: str) -> Iterator[Target]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"ortspuls-bench-{kind}-"))
    name = f"ortspuls_bench_{secrets.token_hex(4)}"
    try:
        if kind == "sqlite":
            yield Target(kind, f"sqlite:///{data_dir / 'ortspuls.sqlite3'}", data_dir)
        else:
            yield Target(kind, create_pg(name), data_dir)
    finally:
        if kind == "postgresql":
            drop_pg(name)
        shutil.rmtree(data_dir, ignore_errors=True)


def cli(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([sys.executable, "-m", "ortspuls", *args], capture_output=True,
                            text=True, env={**os.environ, **(env or {})}, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"ortspuls {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def create_key(target: Target, name: str = "bench") -> str:
    name = f"{name}-{secrets.token_hex(3)}"
    return cli("apikey", "create", "--name", name, "--scope", "admin",
               *target.cli_args).strip().splitlines()[-1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    key: str
    log_path: Path
    extra: dict = field(default_factory=dict)

    @property
    def sta(self) -> str:
        return f"{self.url}/v1.1"

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.sta, timeout=60,
                            headers={"Authorization": f"Bearer {self.key}"}, **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            # The server runs in its own process group (its workers too).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_server(target: Target, workers: int = 1, http_server: str = "cli",
                 env: dict[str, str] | None = None, start_timeout: float = 60) -> Server:
    """`ortspuls serve` (http_server="cli"), or the app under uvicorn/granian directly."""
    key = create_key(target)
    port = free_port()
    log_path = target.data_dir / f"server-{port}.log"
    run_env = {**os.environ, "ORTSPULS_DATABASE_URL": target.url,
               "ORTSPULS_DATA_DIR": str(target.data_dir),
               # HTTP only: no embedded MQTT broker (and no clash with the machine's Mosquitto).
               "ORTSPULS_MQTT_PORT": "0", "ORTSPULS_MQTT_WS_PORT": "0", **(env or {})}
    if http_server == "cli":
        cmd = [sys.executable, "-m", "ortspuls", "serve", "--port", str(port),
               "--workers", str(workers), *target.cli_args]
    elif http_server == "uvicorn":
        cmd = [sys.executable, "-m", "uvicorn", "--factory", "ortspuls.app:app_from_env",
               "--port", str(port), "--workers", str(workers), "--loop", "uvloop",
               "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    elif http_server == "granian":
        cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
               "--port", str(port), "--workers", str(workers), "--loop", "uvloop",
               "--no-access-log", "--log-level", "warning", "ortspuls.app:app_from_env"]
    else:
        raise ValueError(http_server)
    with log_path.open("w") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=run_env,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    server = Server(url, process, key, log_path)
    deadline = time.monotonic() + start_timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"server did not start: {log_path.read_text()}")
        time.sleep(0.1)
    return server


@contextlib.contextmanager
def running_server(target: Target, **kwargs) -> Iterator[Server]:
    server = start_server(target, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def make_datastreams(server: Server, count: int) -> list[int]:
    """One Thing with a Location and `count` Datastreams, through the API."""
    body = {
        "name": "Bench station", "description": "benchmark",
        "Locations": [{"name": "here", "description": "bench", "encodingType":
                       "application/geo+json",
                       "location": {"type": "Point", "coordinates": [9.18, 48.78]}}],
        "Datastreams": [{
            "name": f"ds {i}", "description": "bench", "observationType":
            "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
            "unitOfMeasurement": {"name": "degree Celsius", "symbol": "°C",
                                  "definition": "ucum:Cel"},
            "Sensor": {"name": "s", "description": "s", "encodingType": "text/plain",
                       "metadata": "none"},
            "ObservedProperty": {"name": "T", "definition": "t", "description": "t"},
        } for i in range(count)],
    }
    with server.client() as client:
        response = client.post("/Things", json=body)
        response.raise_for_status()
        thing = response.json()["@iot.id"]
        ids = [d["@iot.id"] for d in client.get(
            f"/Things({thing})/Datastreams", params={"$top": count, "$select": "id"}
        ).json()["value"]]
    return sorted(ids)


# ---------------------------------------------------------------------------------------------
# wrk

WRK_REPORT = """
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "non2xx": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "timeout": %d, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, '
    .. '"max_ms": %.3f}\\n',
    summary.requests, summary.duration, errors.status, errors.connect, errors.read,
    errors.write, errors.timeout, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def wrk(url: str, script: str, connections: int = 32, duration: float = 10,
        threads: int = 2) -> dict:
    """Run wrk with a Lua script; returns its summary (requests/s, latencies, errors)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script + WRK_REPORT)
        path = f.name
    try:
        result = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s",
             "--timeout", "10s", "-s", path, url],
            capture_output=True, text=True, timeout=duration + 60)
    finally:
        os.unlink(path)
    match = re.search(r"WRKJSON (\{.*\})", result.stdout)
    if not match:
        raise RuntimeError(f"wrk failed: {result.stdout}\n{result.stderr}")
    data = json.loads(match[1])
    data["rps"] = round(data["requests"] / (data["duration_us"] / 1e6), 1)
    return data


def post_script(key: str, path: str, bodies: list[str]) -> str:
    """A wrk script that POSTs the given JSON bodies in turn."""
    quoted = ",\n".join("[[" + b + "]]" for b in bodies)
    return f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
local bodies = {{ {quoted} }}
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "{path}", nil, bodies[(n % #bodies) + 1])
end
"""


# ---------------------------------------------------------------------------------------------
# results


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "machine": platform.machine(), "loadavg_1min": os.getloadavg()[0]}


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(), **data}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def table(title: str, header: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    for row in cells[1:]:
        lines.append("  ".join(c.rjust(w) if _numeric(c) else c.ljust(w)
                               for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "—" if value is None else str(value)


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[-\d,.×%]+", text))
