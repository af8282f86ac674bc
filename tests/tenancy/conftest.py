"""A county with two towns on one real server, for the visibility, write and login tests.

`county` (one per database kind) creates with the real CLI the county `kreis` and its member
towns `nord` and `sued`, an admin account and an API key per town, a read key and a viewer
account of the county, and starts `ortspuls serve`. Each town then stores through the
SensorThings API:

- a public Thing with a Location, a public Datastream (results 10.5, 11.5 …), an internal
  Datastream with string results, an internal Datastream shared with the county and an internal
  MultiDatastream, each internal one with its own Sensor and ObservedProperty;
- an internal Thing (its Location, HistoricalLocation and generated feature are internal too)
  with a Datastream that is itself public but hidden with its Thing.

Visibility and sharing are set through the admin UI (login, forms with CSRF token), the way a
clerk does it. Everything internal carries a marker a leak test can search for in any answer:
names start with GEHEIM-<town> (shared: GETEILT-<town>), numeric internal results are 4711.x
(nord) or 4722.x (sued), shared ones 815.x / 826.x.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import pytest
from tests.conftest import (
    TEST_DATABASES,
    Server,
    database_args_for,
    free_port,
    run_cli,
    start_server,
    stop_server,
)
from tests.tenancy.oidc_provider import Provider

GEOJSON = "application/geo+json"
MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
COMPLEX = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation"
PASSWORD = "Sonnenblumenfeld-2026"
TOWNS = ("nord", "sued")
NUMBERS = {"nord": ("4711", "815"), "sued": ("4722", "826")}
SETS = ("Things", "Locations", "HistoricalLocations", "Sensors", "ObservedProperties",
        "Datastreams", "MultiDatastreams", "Observations", "FeaturesOfInterest")


def markers(town: str, shared: bool = True) -> tuple[str, ...]:
    """Strings that appear only in the internal data of `town` (with `shared`: also in what
    it shared with the county)."""
    secret, split = NUMBERS[town]
    out = (f"GEHEIM-{town}", f"{secret}.")
    return (*out, f"GETEILT-{town}", f"{split}.") if shared else out


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`ortspuls …` as a subprocess, with standard input (run_cli has none)."""
    return subprocess.run([sys.executable, "-m", "ortspuls", *args], input=stdin,
                          capture_output=True, text=True, check=True, timeout=120)


def _point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Browser:
    """An HTTP client that keeps cookies by hand: the server's cookies are `Secure`, which
    httpx keeps from plain-http test servers."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, follow_redirects=False, timeout=30)
        self.cookies: dict[str, str] = {}

    def _keep(self, response: httpx.Response) -> httpx.Response:
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if value in ("", '""') or "max-age=0" in header.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return headers

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self._keep(self.http.get(path, headers=self._headers(headers)))

    def post(self, path: str, data: dict[str, Any] | list | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        """A form post (fields as a dict or as a list of pairs for repeated names)."""
        pairs = list(data.items()) if isinstance(data, dict) else list(data or [])
        headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        return self._keep(self.http.post(path, content=urlencode(pairs),
                                         headers=self._headers(headers)))

    def csrf(self, path: str) -> str:
        page = self.get(path)
        assert page.status_code == 200, page.text
        return csrf_of(page.text)

    def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        token = self.csrf("/admin/login")
        return self.post("/admin/login", {"csrf": token, "email": email, "password": password,
                                          "next": "/admin/"})

    def close(self) -> None:
        self.http.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


@dataclass
class County:
    server: Server
    keys: dict[str, str]
    tenant_ids: dict[str, int]
    # (entity set, id) of every entity, by town and kind: "public", "internal", "shared".
    entities: dict[str, dict[str, set[tuple[str, int]]]] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)  # named entities, e.g. "nord:geheim_ds"
    database: str = "sqlite"

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, who: str, prefix: str = "/v1.1") -> httpx.Client:
        """`who`: anon, nord, sued, kreis (keys) — a client on the STA root (or a prefix)."""
        headers = {} if who == "anon" else {"Authorization": f"Bearer {self.keys[who]}"}
        return httpx.Client(base_url=self.url + prefix, headers=headers, timeout=30)

    def browser(self) -> Browser:
        return Browser(self.url)

    def sql(self, statement: str) -> list[tuple]:
        """Run SQL on the server's database (SQLite file or PostgreSQL)."""
        if self.database == "sqlite":
            conn = sqlite3.connect(self.server.data_dir / "ortspuls.sqlite3", timeout=30)
            try:
                rows = conn.execute(statement).fetchall()
                conn.commit()
                return rows
            finally:
                conn.close()
        url = self.server.database_args[self.server.database_args.index("--database-url") + 1]

        async def run() -> list[tuple]:
            conn = await asyncpg.connect(url)
            try:
                return [tuple(r) for r in await conn.fetch(statement)]
            finally:
                await conn.close()

        return asyncio.run(run())


def _created_id(response: httpx.Response) -> int:
    assert response.status_code == 201, response.text
    return int(response.headers["location"].rsplit("(", 1)[1].rstrip(")"))


def _stream(name: str, sensor: str, prop: str) -> dict[str, Any]:
    return {"name": name, "description": f"Datenstrom {name}",
            "unitOfMeasurement": {"name": "Grad Celsius", "symbol": "°C",
                                  "definition": "http://unitsofmeasure.org/ucum.html#cel"},
            "observationType": MEASUREMENT,
            "Sensor": {"name": sensor, "description": "Gerät", "encodingType": "text/html",
                       "metadata": "https://example.org/geraet"},
            "ObservedProperty": {"name": prop, "definition": f"https://example.org/{prop}",
                                 "description": prop}}


def _populate(county: County, town: str, lon: float) -> None:
    secret, split = NUMBERS[town]
    public, internal, shared = set(), set(), set()
    ids = county.ids
    now = datetime.now(UTC).replace(microsecond=0)
    with county.client(town) as api:
        thing = _created_id(api.post("Things", json={
            "name": f"{town} Messstelle Markt", "description": "öffentlich",
            "Locations": [{"name": f"{town} Markt", "description": "Marktplatz",
                           "encodingType": GEOJSON, "location": _point(lon, 50.0)}],
            "Datastreams": [
                _stream(f"{town} Temperatur Markt", f"{town} Thermometer", f"{town} Temperatur"),
                _stream(f"GEHEIM-{town} Besucher Markt", f"GEHEIM-{town} Zähler",
                        f"GEHEIM-{town} Besucherzahl"),
                _stream(f"GETEILT-{town} Pegel", f"GETEILT-{town} Pegelsonde",
                        f"GETEILT-{town} Wasserstand"),
            ],
        }))
        ids[f"{town}:thing"] = thing
        streams = {d["name"]: d for d in api.get(
            f"Things({thing})/Datastreams?$expand=Sensor,ObservedProperty").json()["value"]}
        location = api.get(f"Things({thing})/Locations").json()["value"][0]["@iot.id"]
        ids[f"{town}:location"] = location
        public |= {("Things", thing), ("Locations", location)}
        public |= {("HistoricalLocations", h["@iot.id"]) for h in
                   api.get(f"Things({thing})/HistoricalLocations").json()["value"]}
        for name, key, bucket in ((f"{town} Temperatur Markt", "public_ds", public),
                                  (f"GEHEIM-{town} Besucher Markt", "geheim_ds", internal),
                                  (f"GETEILT-{town} Pegel", "shared_ds", shared)):
            ds = streams[name]
            ids[f"{town}:{key}"] = ds["@iot.id"]
            bucket |= {("Datastreams", ds["@iot.id"]), ("Sensors", ds["Sensor"]["@iot.id"]),
                       ("ObservedProperties", ds["ObservedProperty"]["@iot.id"])}
        mds = _created_id(api.post("MultiDatastreams", json={
            "name": f"GEHEIM-{town} Wind", "description": "Wind",
            "unitOfMeasurements": [{"name": "Grad", "symbol": "°", "definition": "deg"},
                                   {"name": "Meter je Sekunde", "symbol": "m/s",
                                    "definition": "m/s"}],
            "observationType": COMPLEX,
            "multiObservationDataTypes": [MEASUREMENT, MEASUREMENT],
            "Thing": {"@iot.id": thing},
            "Sensor": {"name": f"GEHEIM-{town} Anemometer", "description": "Wind",
                       "encodingType": "text/html", "metadata": "https://example.org/wind"},
            "ObservedProperties": [
                {"name": f"GEHEIM-{town} Windrichtung", "definition": "https://example.org/wr",
                 "description": "Richtung"},
                {"name": f"GEHEIM-{town} Windstärke", "definition": "https://example.org/ws",
                 "description": "Stärke"}],
        }))
        ids[f"{town}:mds"] = mds
        internal.add(("MultiDatastreams", mds))
        internal.add(("Sensors", api.get(f"MultiDatastreams({mds})/Sensor").json()["@iot.id"]))
        internal |= {("ObservedProperties", p["@iot.id"]) for p in
                     api.get(f"MultiDatastreams({mds})/ObservedProperties").json()["value"]}

        hidden = _created_id(api.post("Things", json={
            "name": f"GEHEIM-{town} Messstelle Rathauskeller", "description": "intern",
            "Locations": [{"name": f"GEHEIM-{town} Keller", "description": "Keller",
                           "encodingType": GEOJSON, "location": _point(lon + 0.01, 50.01)}],
            "Datastreams": [_stream(f"GEHEIM-{town} Feuchte Keller", f"GEHEIM-{town} Hygrometer",
                                    f"GEHEIM-{town} Feuchte")],
        }))
        ids[f"{town}:hidden_thing"] = hidden
        keller = api.get(f"Things({hidden})/Datastreams?$expand=Sensor,ObservedProperty"
                         ).json()["value"][0]
        ids[f"{town}:keller_ds"] = keller["@iot.id"]
        internal |= {("Things", hidden), ("Datastreams", keller["@iot.id"]),
                     ("Sensors", keller["Sensor"]["@iot.id"]),
                     ("ObservedProperties", keller["ObservedProperty"]["@iot.id"])}
        internal |= {("Locations", x["@iot.id"]) for x in
                     api.get(f"Things({hidden})/Locations").json()["value"]}
        internal |= {("HistoricalLocations", x["@iot.id"]) for x in
                     api.get(f"Things({hidden})/HistoricalLocations").json()["value"]}

        def times(n: int) -> list[str]:
            return [_iso(now - timedelta(minutes=30 * (n - i))) for i in range(n)]

        groups = [
            ({"Datastream": {"@iot.id": ids[f"{town}:public_ds"]}}, public,
             [[t, 10.5 + i] for i, t in enumerate(times(2))]),
            ({"Datastream": {"@iot.id": ids[f"{town}:geheim_ds"]}}, internal,
             [[t, f"GEHEIM-{town}-Besucher-{i}"] for i, t in enumerate(times(2))]),
            ({"Datastream": {"@iot.id": ids[f"{town}:shared_ds"]}}, shared,
             [[t, float(f"{split}.25") + i] for i, t in enumerate(times(2))]),
            ({"Datastream": {"@iot.id": ids[f"{town}:keller_ds"]}}, internal,
             [[t, float(f"{secret}.5") + i] for i, t in enumerate(times(2))]),
            ({"MultiDatastream": {"@iot.id": mds}}, internal,
             [[t, [float(f"{secret}.125"), float(f"{secret}.375")]] for t in times(2)]),
        ]
        for link, bucket, rows in groups:
            answer = api.post(county.url + "/v1.1/CreateObservations", json=[
                {**link, "components": ["phenomenonTime", "result"], "dataArray": rows}])
            assert answer.status_code == 201 and "error" not in answer.json(), answer.text
            bucket |= {("Observations", int(u.rsplit("(", 1)[1].rstrip(")")))
                       for u in answer.json()}
        # An internal observation with its own feature: the feature is internal as well.
        obs = _created_id(api.post(f"Datastreams({ids[f'{town}:geheim_ds']})/Observations", json={
            "result": f"GEHEIM-{town}-Besucher-eingang", "phenomenonTime": _iso(now),
            "FeatureOfInterest": {"name": f"GEHEIM-{town} Eingang", "description": "Tür",
                                  "encodingType": GEOJSON,
                                  "feature": _point(lon + 0.02, 50.02)}}))
        internal.add(("Observations", obs))
        feature = api.get(f"Observations({obs})/FeatureOfInterest").json()["@iot.id"]
        ids[f"{town}:geheim_feature"] = feature
        internal.add(("FeaturesOfInterest", feature))
        for key in ("keller_ds", "public_ds"):
            fid = api.get(f"Datastreams({ids[f'{town}:{key}']})/Observations?$top=1"
                          "&$expand=FeatureOfInterest").json()["value"][0]["FeatureOfInterest"]
            (internal if key == "keller_ds" else public).add(("FeaturesOfInterest",
                                                              fid["@iot.id"]))
        ids[f"{town}:public_feature"] = fid["@iot.id"]
    county.entities[town] = {"public": public, "internal": internal, "shared": shared}


def _hide_and_share(county: County, town: str) -> None:
    """The town's admin sets visibility and sharing in the admin UI."""
    browser = county.browser()
    try:
        assert browser.login(f"admin@{town}.example").status_code == 303
        csrf = browser.csrf(f"/admin/t/{town}/")
        ids = county.ids
        answer = browser.post(f"/admin/t/{town}/things/{ids[f'{town}:hidden_thing']}",
                              {"csrf": csrf, "visibility": "internal"})
        assert answer.status_code == 303, answer.text
        for kind, key, shares in (("datastream", "geheim_ds", []),
                                  ("datastream", "shared_ds", [county.tenant_ids["kreis"]]),
                                  ("multidatastream", "mds", [])):
            answer = browser.post(f"/admin/t/{town}/streams/{kind}/{ids[f'{town}:{key}']}",
                                  [("csrf", csrf), ("visibility", "internal"), ("usecase", ""),
                                   *(("share", str(s)) for s in shares)])
            assert answer.status_code == 303, answer.text
    finally:
        browser.close()


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[Provider]:
    provider = Provider(free_port())
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session", params=TEST_DATABASES)
def county(request, tmp_path_factory) -> Iterator[County]:
    data_dir = tmp_path_factory.mktemp(f"ortspuls-county-{request.param}")
    with database_args_for(request.param, data_dir) as args:
        run_cli("tenant", "add", "kreis", "--name", "Landkreis Beispiel", "--ags", "09123000",
                *args)
        for town, name in (("nord", "Stadt Nordheim"), ("sued", "Gemeinde Südhausen")):
            run_cli("tenant", "add", town, "--name", name, "--parent", "kreis", *args)
        keys = {}
        for tenant, scope in (("nord", "admin"), ("sued", "admin"), ("kreis", "read")):
            out = run_cli("apikey", "create", "--name", f"{tenant}-{scope}", "--scope", scope,
                          "--tenant", tenant, *args)
            keys[tenant] = out.stdout.strip().splitlines()[-1]
        for email, tenant, role in (("admin@nord.example", "nord", "admin"),
                                    ("admin@sued.example", "sued", "admin"),
                                    ("leser@kreis.example", "kreis", "viewer"),
                                    ("redaktion@nord.example", "nord", "editor")):
            cli("user", "add", email, "--tenant", tenant, "--role", role, "--password-stdin",
                *args, stdin=PASSWORD)
        server = start_server(data_dir, args)
        try:
            county = County(server, keys, {}, database=request.param)
            county.tenant_ids = dict(county.sql("SELECT slug, id FROM tenants"))
            for town, lon in (("nord", 9.0), ("sued", 9.5)):
                _populate(county, town, lon)
                _hide_and_share(county, town)
            yield county
        finally:
            stop_server(server)
