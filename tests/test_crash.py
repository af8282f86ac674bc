"""Crash safety: the server (both workers) is killed with SIGKILL in the middle of sustained
ingest; after a restart every observation that was acknowledged with 201 is there."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.conftest import TEST_DATABASES, create_key, database_args_for, start_server, stop_server
from tests.db.servers import NO_MQTT, kill_hard, make_datastream, observation_ids

CLIENTS = 16


@pytest.mark.parametrize("kind", TEST_DATABASES)
def test_acknowledged_observations_survive_sigkill(kind, tmp_path):
    with database_args_for(kind, tmp_path) as args:
        key = create_key(args, "admin", "admin")
        srv = start_server(tmp_path, args, NO_MQTT, ("--workers", "2"))
        srv.keys = {"admin": key}
        try:
            datastream = make_datastream(srv)
            acknowledged: list[int] = []
            lock = threading.Lock()
            stop = threading.Event()

            def ingest(n: int) -> int:
                sent = 0
                with srv.client("admin") as client:
                    while not stop.is_set():
                        try:
                            response = client.post("/Observations", json={
                                "result": n, "Datastream": {"@iot.id": datastream}})
                        except httpx.HTTPError:
                            return sent  # the server is gone
                        sent += 1
                        if response.status_code == 201:
                            with lock:
                                acknowledged.append(response.json()["@iot.id"])
                return sent

            with ThreadPoolExecutor(CLIENTS) as pool:
                futures = [pool.submit(ingest, n) for n in range(CLIENTS)]
                deadline = time.monotonic() + 60
                while len(acknowledged) < 500 and time.monotonic() < deadline:
                    time.sleep(0.05)
                kill_hard(srv)  # while the clients are still sending
                sent = sum(f.result() for f in futures)
                stop.set()
            assert len(acknowledged) >= 500
            assert sent > len(acknowledged) - 1  # requests were in flight at the kill
        finally:
            stop_server(srv)

        restarted = start_server(tmp_path, args, NO_MQTT)
        restarted.keys = {"admin": key}
        try:
            stored = observation_ids(restarted, datastream)
            assert set(acknowledged) <= stored
            # The store still takes writes after the crash.
            with restarted.client("admin") as client:
                response = client.post("/Observations", json={
                    "result": 1, "Datastream": {"@iot.id": datastream}})
                assert response.status_code == 201
        finally:
            stop_server(restarted)
