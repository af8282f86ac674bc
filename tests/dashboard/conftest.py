"""Fixtures for the dashboard API tests: real servers (SQLite and PostgreSQL), entities and
observations created over HTTP, and direct database access where the API has no way in yet
(marking a Datastream internal).

- `dash`: a server of its own per database kind (data of other test folders never shows up),
  shared by the latest-value, series and live tests, which only look at their own Datastreams;
- `town`: a fresh server per test module for tests that look at the whole overview;
- `Town`: builds Things, Datastreams and observations; `post_many` uses CreateObservations,
  so observations arrive in batches through the writer's bulk path.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from tests.conftest import (
    TEST_DATABASES,
    Server,
    create_key,
    database_args_for,
    start_server,
    stop_server,
)

MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
_names = itertools.count(1)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Town:
    """Creates entities over HTTP on one server; every method returns ids."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.sta = server.client("admin")
        self.web = httpx.Client(base_url=server.url, timeout=30)

    def close(self) -> None:
        self.sta.close()
        self.web.close()

    def _post(self, path: str, body: Any) -> Any:
        response = self.sta.post(path, json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def thing(self, name: str | None = None, properties: dict | None = None,
              lon: float = 10.52, lat: float = 52.26) -> int:
        name = name or f"Station {next(_names)}"
        body: dict[str, Any] = {"name": name, "description": "Messstation", "Locations": [{
            "name": f"Ort {name}", "description": "Standort", "encodingType":
            "application/geo+json", "location": {"type": "Point", "coordinates": [lon, lat]}}]}
        if properties is not None:
            body["properties"] = properties
        return self._post("/Things", body)["@iot.id"]

    def datastream(self, thing: int, observed_property: str, symbol: str, *,
                   definition: str = "", name: str | None = None,
                   properties: dict | None = None) -> int:
        body: dict[str, Any] = {
            "name": name or f"{observed_property} {next(_names)}",
            "description": observed_property,
            "unitOfMeasurement": {"name": symbol, "symbol": symbol, "definition": ""},
            "observationType": MEASUREMENT,
            "Thing": {"@iot.id": thing},
            "Sensor": {"name": f"Sensor {next(_names)}", "description": "Sensor",
                       "encodingType": "text/plain", "metadata": "none"},
            "ObservedProperty": {"name": observed_property, "definition": definition,
                                 "description": observed_property},
        }
        if properties is not None:
            body["properties"] = properties
        return self._post("/Datastreams", body)["@iot.id"]

    def post_many(self, datastream: int, rows: list[tuple[datetime | str, Any]]) -> list[int]:
        """Observations (phenomenonTime, result) in one CreateObservations request."""
        ids: list[int] = []
        for start in range(0, len(rows), 2000):
            chunk = rows[start:start + 2000]
            links = self._post("/CreateObservations", [{
                "Datastream": {"@iot.id": datastream},
                "components": ["phenomenonTime", "result"],
                "dataArray": [[t if isinstance(t, str) else iso(t), v] for t, v in chunk],
            }])
            assert "error" not in links, links
            ids += [int(link.rsplit("(", 1)[1].rstrip(")")) for link in links]
        return ids

    def post(self, datastream: int, value: Any, when: datetime | None = None) -> int:
        body: dict[str, Any] = {"result": value}
        if when is not None:
            body["phenomenonTime"] = iso(when)
        return self._post(f"/Datastreams({datastream})/Observations", body)["@iot.id"]

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.web.get(path, params=params)

    def ok(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()


def execute_sql(server: Server, sql_sqlite: str, sql_pg: str, *params: Any) -> None:
    """Change the server's database directly (what no API offers yet)."""
    args = server.database_args
    if "--database-url" not in args:
        conn = sqlite3.connect(str(server.data_dir / "ortspuls.sqlite3"), timeout=30)
        try:
            conn.execute(sql_sqlite, params)
            conn.commit()
        finally:
            conn.close()
        return
    url = args[args.index("--database-url") + 1]

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql_pg, *params)
        finally:
            await conn.close()

    asyncio.run(run())


def make_internal(server: Server, datastream: int) -> None:
    execute_sql(server, "UPDATE datastreams SET is_public = 0 WHERE id = ?",
                "UPDATE datastreams SET is_public = false WHERE id = $1", datastream)


def started(kind: str, tmp_path_factory, env: dict[str, str] | None = None):
    """A context: a fresh server of database `kind` with an admin key."""
    import contextlib

    @contextlib.contextmanager
    def run() -> Iterator[Server]:
        data_dir = tmp_path_factory.mktemp(f"dashboard-{kind}")
        with database_args_for(kind, data_dir) as database_args:
            key = create_key(database_args, "dashboard-admin", "admin")
            srv = start_server(data_dir, database_args, extra_env=env)
            srv.keys = {"admin": key}
            srv.database = kind
            try:
                yield srv
            finally:
                stop_server(srv)

    return run()


@pytest.fixture(scope="session", params=TEST_DATABASES)
def dash(request, tmp_path_factory) -> Iterator[Town]:
    with started(request.param, tmp_path_factory) as srv:
        town = Town(srv)
        yield town
        town.close()


@pytest.fixture(scope="module", params=TEST_DATABASES)
def town(request, tmp_path_factory) -> Iterator[Town]:
    with started(request.param, tmp_path_factory) as srv:
        built = Town(srv)
        yield built
        built.close()
