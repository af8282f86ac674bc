"""Test fixtures: a real Ortspuls server process on a free port, with real databases.

`server` starts `ortspuls serve` as a subprocess (the same command a user runs) against a fresh
data folder and creates API keys with the real CLI. Tests talk to it over HTTP with httpx.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(*args: str, env: dict[str, str] | None = None, check: bool = True):
    """Run `ortspuls …` in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "ortspuls.cli", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, check=check, timeout=120)


@dataclass
class Server:
    url: str
    data_dir: Path
    database_args: list[str]
    process: subprocess.Popen
    keys: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None

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
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ortspuls.cli", "serve", "--port", str(port),
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
    return Server(url, data_dir, database_args, process, log_path=log_path)


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()


def create_key(database_args: list[str], name: str, scope: str) -> str:
    result = run_cli("apikey", "create", "--name", name, "--scope", scope, *database_args)
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("ortspuls-data")
    database_args = ["--data-dir", str(data_dir)]
    keys = {scope: create_key(database_args, f"test-{scope}", scope)
            for scope in ("read", "write", "admin")}
    srv = start_server(data_dir, database_args)
    srv.keys = keys
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
