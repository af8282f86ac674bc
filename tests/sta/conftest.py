"""Fixtures for the SensorThings HTTP tests.

- `make`: creates entities over HTTP on the shared server (unique names, valid defaults), so a
  test builds exactly the graph it needs and never depends on what other tests stored.
- `fresh_server`: starts another real server with its own empty data folder and special
  settings (environment variables or command-line options), stopped after the test.
- `table_counts`: row counts read straight from the server's database (SQLite file or
  PostgreSQL), to prove that a failed request wrote nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from tests.conftest import Server, create_key, start_server, stop_server

GEOJSON = "application/geo+json"
MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
ENTITY_TABLES = ("things", "locations", "historical_locations", "sensors", "observed_properties",
                 "datastreams", "observations", "features", "thing_locations",
                 "historical_location_locations")

_counter = itertools.count(1)


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


class Make:
    """Builds entities with valid defaults; every method returns the created entity's JSON."""

    def __init__(self, api: httpx.Client) -> None:
        self.api = api

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.api.post(path, json=body)
        assert response.status_code == 201, response.text
        return response.json()

    @staticmethod
    def name(kind: str) -> str:
        return f"{kind} {next(_counter)}"

    def location_body(self, lon: float = 8.4, lat: float = 49.0, **extra: Any) -> dict[str, Any]:
        return {"name": self.name("Location"), "description": "Messpunkt",
                "encodingType": GEOJSON, "location": point(lon, lat), **extra}

    def sensor_body(self, **extra: Any) -> dict[str, Any]:
        return {"name": self.name("Sensor"), "description": "Pegelsonde",
                "encodingType": "application/pdf", "metadata": "https://example.org/s.pdf",
                **extra}

    def observed_property_body(self, **extra: Any) -> dict[str, Any]:
        return {"name": self.name("ObservedProperty"), "description": "Wasserstand",
                "definition": "https://example.org/water-level", **extra}

    def datastream_body(self, **extra: Any) -> dict[str, Any]:
        return {"name": self.name("Datastream"), "description": "Wasserstand in cm",
                "unitOfMeasurement": {"name": "Zentimeter", "symbol": "cm",
                                      "definition": "http://unitsofmeasure.org/ucum.html#cm"},
                "observationType": MEASUREMENT, **extra}

    def location(self, lon: float = 8.4, lat: float = 49.0, **extra: Any) -> dict[str, Any]:
        return self._post("/Locations", self.location_body(lon, lat, **extra))

    def thing(self, *, located: bool = True, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name("Thing"), "description": "Pegel", **extra}
        if located and "Locations" not in body:
            body["Locations"] = [self.location_body()]
        return self._post("/Things", body)

    def sensor(self, **extra: Any) -> dict[str, Any]:
        return self._post("/Sensors", self.sensor_body(**extra))

    def observed_property(self, **extra: Any) -> dict[str, Any]:
        return self._post("/ObservedProperties", self.observed_property_body(**extra))

    def datastream(self, thing: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        thing = thing or self.thing()
        body = self.datastream_body(
            Thing={"@iot.id": thing["@iot.id"]},
            Sensor=extra.pop("Sensor", None) or self.sensor_body(),
            ObservedProperty=extra.pop("ObservedProperty", None) or self.observed_property_body(),
            **extra,
        )
        return self._post("/Datastreams", body)

    def feature(self, lon: float = 8.5, lat: float = 49.1, **extra: Any) -> dict[str, Any]:
        return self._post("/FeaturesOfInterest", {
            "name": self.name("Feature"), "description": "Uferstelle", "encodingType": GEOJSON,
            "feature": point(lon, lat), **extra})

    def observation(self, datastream: dict[str, Any], result: Any = 1.0,
                    **extra: Any) -> dict[str, Any]:
        return self._post(f"/Datastreams({datastream['@iot.id']})/Observations",
                          {"result": result, **extra})


@pytest.fixture
def make(api: httpx.Client) -> Make:
    return Make(api)


def all_pages(client: httpx.Client, url: str) -> list[dict[str, Any]]:
    """Follow @iot.nextLink from `url` to the end; the entities of all pages in order."""
    items: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url is not None:
        response = client.get(next_url)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["value"])
        next_url = body.get("@iot.nextLink")
    return items


@pytest.fixture
def fresh_server(tmp_path_factory) -> Iterator[Callable[..., Server]]:
    """Start servers with their own empty data folder; `admin` and `read` keys are created."""
    started: list[Server] = []

    def start(env: dict[str, str] | None = None, args: tuple[str, ...] = (),
              keys: tuple[str, ...] = ("admin", "read")) -> Server:
        data_dir = tmp_path_factory.mktemp("fresh")
        database_args = ["--data-dir", str(data_dir)]
        created = {scope: create_key(database_args, f"fresh-{scope}", scope) for scope in keys}
        server = start_server(data_dir, database_args, extra_env=env, extra_args=args)
        server.keys = created
        started.append(server)
        return server

    yield start
    for server in started:
        stop_server(server)


def sqlite_file(server: Server) -> str:
    return str(server.data_dir / "ortspuls.sqlite3")


def read_sqlite(server: Server, sql: str, params: tuple = ()) -> list[tuple]:
    """Query the server's SQLite database directly (read-only, beside the running server)."""
    conn = sqlite3.connect(f"file:{sqlite_file(server)}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def read_database(server: Server, sql: str) -> list[tuple]:
    """Run one read-only SQL statement directly on the server's database, SQLite or PostgreSQL."""
    args = server.database_args
    if "--database-url" not in args:
        return read_sqlite(server, sql)
    url = args[args.index("--database-url") + 1]

    async def run() -> list[tuple]:
        conn = await asyncpg.connect(url)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture
def table_counts(server: Server) -> Callable[[], dict[str, int]]:
    """Row counts of every entity and link table, read directly from the database."""

    def counts() -> dict[str, int]:
        return {t: read_database(server, f"SELECT count(*) FROM {t}")[0][0]
                for t in ENTITY_TABLES}

    return counts
