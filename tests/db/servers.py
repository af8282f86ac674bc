"""Helpers for the tests that run their own servers (workers, crash, replica, partitions)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
from tests.conftest import Server, create_key, database_args_for, start_server, stop_server

MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
# Our servers need no MQTT broker (and must not take the port of the machine's Mosquitto).
NO_MQTT = {"ORTSPULS_MQTT_PORT": "0", "ORTSPULS_MQTT_WS_PORT": "0"}


@contextlib.contextmanager
def own_server(kind: str, data_dir: Path, extra_args: tuple[str, ...] = (),
               extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """A server with a fresh database of `kind`, an admin key, and one Datastream."""
    with database_args_for(kind, data_dir) as args:
        key = create_key(args, "admin", "admin")
        srv = start_server(data_dir, args, {**NO_MQTT, **(extra_env or {})}, extra_args)
        srv.keys = {"admin": key}
        try:
            srv.datastream = make_datastream(srv)
            yield srv
        finally:
            stop_server(srv)


def thing_with_datastream(name: str = "Pegel", observations: list | None = None) -> dict:
    """A Thing with a Location and one Datastream (and optional Observations), for deep insert."""
    datastream = {
        "name": "Wasserstand", "description": "d", "observationType": MEASUREMENT,
        "unitOfMeasurement": {"name": "cm", "symbol": "cm", "definition": "cm"},
        "Sensor": {"name": "s", "description": "d", "encodingType": "text/plain",
                   "metadata": "m"},
        "ObservedProperty": {"name": "h", "definition": "h", "description": "d"},
    }
    if observations is not None:
        datastream["Observations"] = observations
    return {
        "name": name, "description": "d",
        "Locations": [{"name": "l", "description": "d", "encodingType": "application/geo+json",
                       "location": {"type": "Point", "coordinates": [9.1, 48.7]}}],
        "Datastreams": [datastream],
    }


def make_datastream(srv: Server) -> int:
    with srv.client("admin") as client:
        response = client.post("/Things", json=thing_with_datastream())
        assert response.status_code == 201, response.text
        return client.get(response.headers["location"] + "/Datastreams"
                          ).json()["value"][0]["@iot.id"]


def child_pids(pid: int) -> list[int]:
    """Direct children of a process (the ASGI server's workers)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(p) for p in (task / "children").read_text().split()]
    return out


def kill_hard(srv: Server) -> None:
    """SIGKILL the server and its workers at once, as a power cut or OOM kill would."""
    pids = [srv.process.pid, *child_pids(srv.process.pid)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    srv.process.wait(timeout=10)


def observation_ids(srv: Server, datastream: int) -> set[int]:
    """Every stored Observation id of the Datastream, read through the API (all pages)."""
    ids: set[int] = set()
    with srv.client("admin") as client:
        url = f"/Datastreams({datastream})/Observations?$select=id&$top=10000&$orderby=id"
        while url:
            body = client.get(url).json()
            ids |= {o["@iot.id"] for o in body["value"]}
            url = body.get("@iot.nextLink")
            if url:
                url = httpx.URL(url).raw_path.decode().removeprefix("/v1.1")
    return ids
