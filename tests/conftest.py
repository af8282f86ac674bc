"""Test fixtures: a real Ortspuls server process on a free port, with real databases.

`server` starts `ortspuls serve` as a subprocess (the same command a user runs) against a fresh
data folder and creates API keys with the real CLI. Tests talk to it over HTTP with httpx.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

# The databases every HTTP test runs against. ORTSPULS_TEST_DATABASES=sqlite narrows a local run;
# CI runs both.
TEST_DATABASES = os.environ.get("ORTSPULS_TEST_DATABASES", "sqlite,postgresql").split(",")
PG_ADMIN_URL = os.environ.get("ORTSPULS_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = True):
    """Run `ortspuls …` in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "ortspuls", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, check=check, timeout=120)


@dataclass
class Server:
    url: str
    data_dir: Path
    database_args: list[str]
    process: subprocess.Popen
    keys: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    database: str = "sqlite"
    # The embedded MQTT broker's ports (each test server gets free ones; 1883 is Mosquitto's).
    mqtt_port: int = 0
    mqtt_ws_port: int = 0

    @property
    def sta(self) -> str:
        return f"{self.url}/v1.1"

    def client(self, scope: str | None = "admin", **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[scope]}"} if scope else {}
        return httpx.Client(base_url=self.sta, headers=headers, timeout=30, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path else ""


def start_server(data_dir: Path, database_args: list[str], extra_env: dict[str, str] | None = None,
                 extra_args: tuple[str, ...] = ()) -> Server:
    port = free_port()
    log_path = data_dir / "server.log"
    env = {**os.environ, **(extra_env or {})}
    # Free ports for the embedded MQTT broker unless the caller chose (env or options).
    mqtt_args: list[str] = []
    mqtt_port = mqtt_ws_port = 0
    if "--mqtt-url" not in extra_args:
        if "ORTSPULS_MQTT_PORT" not in env and "--mqtt-port" not in extra_args:
            mqtt_port = free_port()
            mqtt_args += ["--mqtt-port", str(mqtt_port)]
        if "ORTSPULS_MQTT_WS_PORT" not in env and "--mqtt-ws-port" not in extra_args:
            mqtt_ws_port = free_port()
            mqtt_args += ["--mqtt-ws-port", str(mqtt_ws_port)]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ortspuls", "serve", "--port", str(port), *mqtt_args,
             *database_args, *extra_args],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"server did not start: {log_path.read_text()}")
        time.sleep(0.1)
    return Server(url, data_dir, database_args, process, log_path=log_path,
                  mqtt_port=mqtt_port, mqtt_ws_port=mqtt_ws_port)


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()


def create_key(database_args: list[str], name: str, scope: str) -> str:
    result = run_cli("apikey", "create", "--name", name, "--scope", scope, *database_args)
    return result.stdout.strip().splitlines()[-1]


def _pg_admin(sql: str, database: str = "postgres") -> None:
    # Synchronous on purpose: fixtures may be set up while an asyncio test loop is running.
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def create_pg_database(name: str) -> str:
    """A fresh PostgreSQL database with PostGIS; returns its URL."""
    _pg_admin(f'CREATE DATABASE "{name}"')
    _pg_admin("CREATE EXTENSION IF NOT EXISTS postgis", name)
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(name: str) -> None:
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def database_args_for(kind: str, data_dir: Path) -> Iterator[list[str]]:
    """CLI options for a fresh database of `kind` ("sqlite" or "postgresql"), removed after."""
    if kind == "sqlite":
        yield ["--data-dir", str(data_dir)]
        return
    name = f"ortspuls_test_{secrets.token_hex(6)}"
    url = create_pg_database(name)
    try:
        yield ["--data-dir", str(data_dir), "--database-url", url]
    finally:
        drop_pg_database(name)


@pytest.fixture(scope="session", params=TEST_DATABASES)
def server(request, tmp_path_factory) -> Iterator[Server]:
    """One server per database kind; every test using it runs once on each."""
    data_dir = tmp_path_factory.mktemp(f"ortspuls-data-{request.param}")
    with database_args_for(request.param, data_dir) as database_args:
        keys = {scope: create_key(database_args, f"test-{scope}", scope)
                for scope in ("read", "write", "admin")}
        srv = start_server(data_dir, database_args)
        srv.keys = keys
        srv.database = request.param
        yield srv
        stop_server(srv)


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    """A client on /v1.1 with an admin key."""
    with server.client("admin") as client:
        yield client


@pytest.fixture
def anon(server: Server) -> Iterator[httpx.Client]:
    with server.client(None) as client:
        yield client
