"""Fixtures for the dashboard page tests: a real server with a known town, and real Chromium.

`town` starts `ortspuls serve` on a fresh SQLite data folder (the page layer does not depend on
the database kind; the dashboard service's own tests cover both) with a town name, outline and
accessibility contact, and stores one station per use case through the SensorThings API with
the write key: Things with Locations, Datastreams, and observations at known times. `browser`
is the Debian Chromium driven by Playwright (never `playwright install`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import Server, create_key, start_server, stop_server

from ortspuls.web.assets import ensure_assets

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
COUNT = {"name": "Anzahl", "symbol": "{#}",
         "definition": "http://unitsofmeasure.org/ucum.html#para-curly"}
TOWN_OUTLINE = {"type": "Feature", "properties": {"name": "Musterstadt"}, "geometry": {
    "type": "Polygon",
    "coordinates": [[[10.49, 52.25], [10.55, 52.25], [10.55, 52.29], [10.49, 52.29],
                     [10.49, 52.25]]]}}


def unit(name: str, symbol: str) -> dict[str, str]:
    return {"name": name, "symbol": symbol, "definition": f"http://unitsofmeasure.org/{symbol}"}


@dataclass
class Stream:
    name: str
    observed_property: str
    unit: dict[str, str]
    # (minutes before the fixture's `now`, value), oldest first
    observations: list[tuple[float, Any]]
    properties: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    @property
    def latest(self) -> Any:
        return self.observations[-1][1]


@dataclass
class Station:
    name: str
    lon: float
    lat: float
    usecase: str
    streams: list[Stream]
    properties: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


def hourly(hours: int, value) -> list[tuple[float, Any]]:
    """One value per hour for the last `hours` hours, the newest 5 minutes ago."""
    return [(5 + 60 * (hours - 1 - i), value(i)) for i in range(hours)]


def town_stations() -> list[Station]:
    # Temperature every 30 minutes over 9 days: enough for the 24-hour and 7-day charts.
    temperature = [(5 + 30 * (431 - i), round(6 + 4 * ((i % 48) / 24 - 1) ** 2 + i * 0.01, 2))
                   for i in range(432)]
    return [
        Station("Zählstelle Ringgleis", 10.520, 52.270, "radverkehr", [
            Stream("Radverkehr Ringgleis", "Radverkehr", COUNT,
                   hourly(30, lambda i: 5 + i % 7 * 3)),
        ]),
        Station("Parkhaus Am Markt", 10.526, 52.262, "parken", [
            Stream("Freie Stellplätze Parkhaus Am Markt", "Freie Parkplätze", COUNT,
                   hourly(6, lambda i: 100 - 12 * i)),
        ], properties={"capacity": 200}),
        Station("Pegel Mühlbach", 10.508, 52.281, "pegel", [
            Stream("Wasserstand Mühlbach", "Wasserstand", unit("Zentimeter", "cm"),
                   hourly(12, lambda i: 110 + i), properties={"thresholds": {"warn": 150,
                                                                            "alert": 200}}),
        ]),
        Station("Linde am Schlossplatz", 10.531, 52.266, "baumbewaesserung", [
            Stream("Bodenfeuchte Linde", "Bodenfeuchte", unit("Prozent", "%"),
                   hourly(6, lambda i: 18 - i)),
        ]),
        Station("Luftmessstation Bahnhof", 10.540, 52.255, "luftqualitaet", [
            Stream("PM10 Bahnhof", "PM10", unit("Mikrogramm je Kubikmeter", "µg/m³"),
                   hourly(6, lambda i: 14 + i)),
        ]),
        Station("Wetterstation Rathaus", 10.523, 52.264, "wetter", [
            Stream("Lufttemperatur Rathaus", "Lufttemperatur", unit("Grad Celsius", "°C"),
                   temperature),
            Stream("Luftfeuchte Rathaus", "Luftfeuchte", unit("Prozent", "%"),
                   hourly(6, lambda i: 70 + i)),
        ]),
        # Its newest value is three days old: the tile must say the data is out of date.
        Station("Lärmmessung Hauptstraße", 10.515, 52.259, "laerm", [
            Stream("LAeq Hauptstraße", "Schallpegel LAeq", unit("Dezibel A", "dB(A)"),
                   [(3 * 1440 + 60 * (5 - i), 48.0 + i) for i in range(6)]),
        ]),
        Station("Besucherzähler Fußgängerzone", 10.528, 52.268, "besucherfrequenz", [
            Stream("Besucher Fußgängerzone", "Besucherzählung", COUNT,
                   hourly(30, lambda i: 40 + i % 5 * 10)),
        ]),
    ]


@dataclass
class Town:
    server: Server
    stations: list[Station]
    now: datetime

    @property
    def url(self) -> str:
        return self.server.url

    def write(self) -> httpx.Client:
        return self.server.client("write")

    def stream(self, name: str) -> Stream:
        return next(s for st in self.stations for s in st.streams if s.name == name)

    def station(self, usecase: str) -> Station:
        return next(st for st in self.stations if st.usecase == usecase)

    def post_observation(self, stream: Stream, value: Any, when: datetime | None = None) -> None:
        when = when or datetime.now(UTC)
        with self.write() as client:
            response = client.post(f"Datastreams({stream.id})/Observations", json={
                "phenomenonTime": when.isoformat().replace("+00:00", "Z"), "result": value})
        assert response.status_code == 201, response.text
        stream.observations.append(((self.now - when).total_seconds() / 60, value))

    def observation_times(self, stream: Stream) -> list[tuple[datetime, Any]]:
        return [(self.now - timedelta(minutes=m), v) for m, v in stream.observations]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def store_town(server: Server, stations: list[Station], now: datetime) -> None:
    with server.client("write") as client:
        for st in stations:
            body = {
                "name": st.name, "description": f"Messstelle {st.name}",
                "properties": st.properties,
                "Locations": [{"name": st.name, "description": "Standort",
                               "encodingType": "application/geo+json",
                               "location": {"type": "Point", "coordinates": [st.lon, st.lat]}}],
                "Datastreams": [{
                    "name": s.name, "description": s.name, "unitOfMeasurement": s.unit,
                    "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
                                       "OM_Measurement",
                    "properties": s.properties,
                    "Sensor": {"name": f"Sensor {s.name}", "description": "Sensor",
                               "encodingType": "text/html", "metadata": "https://example.org"},
                    "ObservedProperty": {"name": s.observed_property,
                                         "definition": f"https://example.org/{s.observed_property}",
                                         "description": s.observed_property},
                } for s in st.streams],
            }
            response = client.post("Things", json=body)
            assert response.status_code == 201, response.text
            st.id = int(response.headers["location"].rsplit("(", 1)[1].rstrip(")"))
            listing = client.get(f"Things({st.id})/Datastreams", params={"$select": "id,name"})
            ids = {d["name"]: d["@iot.id"] for d in listing.json()["value"]}
            for s in st.streams:
                s.id = ids[s.name]
            groups = [{
                "Datastream": {"@iot.id": s.id},
                "components": ["phenomenonTime", "result"],
                "dataArray": [[_iso(now - timedelta(minutes=m)), v] for m, v in s.observations],
            } for s in st.streams]
            response = client.post(f"{server.url}/v1.1/CreateObservations", json=groups)
            assert response.status_code == 201, response.text
            assert "error" not in response.json()


@pytest.fixture(scope="session")
def town(tmp_path_factory) -> Iterator[Town]:
    # Build the browser bundle before the server starts, so its start-up wait stays short.
    assert ensure_assets(), "the browser bundle could not be built (npm ci && npm run build)"
    data_dir = tmp_path_factory.mktemp("ortspuls-web")
    outline = data_dir / "outline.geojson"
    outline.write_text(json.dumps(TOWN_OUTLINE))
    database_args = ["--data-dir", str(data_dir)]
    keys = {scope: create_key(database_args, f"web-{scope}", scope)
            for scope in ("read", "write", "admin")}
    server = start_server(data_dir, database_args, extra_env={
        "ORTSPULS_TOWN_NAME": "Musterstadt",
        "ORTSPULS_TOWN_OUTLINE": str(outline),
        "ORTSPULS_ACCESSIBILITY_CONTACT": "barrierefrei@musterstadt.example",
    })
    server.keys = keys
    now = datetime.now(UTC).replace(microsecond=0)
    stations = town_stations()
    try:
        store_town(server, stations, now)
        yield Town(server, stations, now)
    finally:
        stop_server(server)


# Per module: sync Playwright holds an event loop in the main thread while it runs, which
# async tests collected after the browser tests must not find.
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, town):
    """A fresh page (own cookies) that records every request and every script error."""
    # The browser's own zone differs from the town's: pages must show the town's local time.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE",
                                  timezone_id="America/New_York")
    page = context.new_page()
    page.requests = []  # type: ignore[attr-defined]
    page.errors = []  # type: ignore[attr-defined]
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()
    assert not page.errors, f"script errors: {page.errors}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
