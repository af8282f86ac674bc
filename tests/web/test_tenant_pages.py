"""The dashboard per tenant at /t/<slug>/ and the county roll-up, against a real server.

A fresh server holds the county `kreis` with the towns `nord` and `sued` (created with the CLI,
one write key per town) and a station of the installation's first tenant outside the county.
Each town stores public stations through its own /t/<slug>/v1.1 and, with its default switched
to internal for a moment, an internal station whose names start with GEHEIM and whose values are
4711.x. The tests read the tenant pages, their JSON API and their live stream over HTTP, and scan
the county overview with axe-core in real Chromium.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from tests.conftest import Server, create_key, run_cli, start_server, stop_server
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS

from ortspuls.web.assets import ensure_assets

CELSIUS = {"name": "Grad Celsius", "symbol": "°C",
           "definition": "http://unitsofmeasure.org/ucum.html#cel"}
COUNT = {"name": "Anzahl", "symbol": "{#}",
         "definition": "http://unitsofmeasure.org/ucum.html#para-curly"}
MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
TOWN_NAMES = {"nord": "Stadt Nordheim", "sued": "Gemeinde Südhausen"}
SECRET = ("GEHEIM", "4711.")
OUTSIDE = "Wetterstation Anderswo"  # the first tenant's, not a member of the county
PAGES = ("/", "/usecase/wetter", "/map", "/barrierefreiheit", "/leichte-sprache")


@dataclass
class County:
    server: Server
    keys: dict[str, str]
    # "nord:wetter", "sued:rad", "nord:geheim", "outside" -> Datastream id
    streams: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kwargs)

    def post_value(self, key: str, value: float) -> None:
        town = key.split(":")[0]
        prefix = "" if town == "outside" else f"/t/{town}"
        answer = httpx.post(
            f"{self.url}{prefix}/v1.1/Datastreams({self.streams[key]})/Observations",
            json={"phenomenonTime": _iso(datetime.now(UTC)), "result": value},
            headers={"Authorization": f"Bearer {self.keys[town]}"}, timeout=30)
        assert answer.status_code == 201, answer.text


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _station(client: httpx.Client, name: str, lon: float, stream: str, prop: str,
             unit: dict[str, str], values: list[float]) -> int:
    """A Thing with a Location and one Datastream with hourly values; the Datastream's id."""
    answer = client.post("Things", json={
        "name": name, "description": name,
        "Locations": [{"name": name, "description": "Standort",
                       "encodingType": "application/geo+json",
                       "location": {"type": "Point", "coordinates": [lon, 50.0]}}],
        "Datastreams": [{
            "name": stream, "description": stream, "unitOfMeasurement": unit,
            "observationType": MEASUREMENT,
            "Sensor": {"name": f"Sensor {stream}", "description": "Sensor",
                       "encodingType": "text/html", "metadata": "https://example.org"},
            "ObservedProperty": {"name": prop, "definition": f"https://example.org/{prop}",
                                 "description": prop}}]})
    assert answer.status_code == 201, answer.text
    thing = answer.headers["location"].rsplit("(", 1)[1].rstrip(")")
    ds = client.get(f"Things({thing})/Datastreams").json()["value"][0]["@iot.id"]
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [[_iso(now - timedelta(minutes=5 + 60 * (len(values) - 1 - i))), v]
            for i, v in enumerate(values)]
    answer = client.post("CreateObservations", json=[{
        "Datastream": {"@iot.id": ds}, "components": ["phenomenonTime", "result"],
        "dataArray": rows}])
    assert answer.status_code == 201 and "error" not in answer.json(), answer.text
    return ds


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> Iterator[County]:
    assert ensure_assets(), "the browser bundle could not be built (npm ci && npm run build)"
    data_dir = tmp_path_factory.mktemp("ortspuls-tenant-pages")
    args = ["--data-dir", str(data_dir)]
    # The installation's first tenant keeps a station of its own, outside the county.
    keys = {"outside": create_key(args, "erster-write", "write")}
    run_cli("tenant", "add", "kreis", "--name", "Landkreis Beispiel", *args)
    for town, name in TOWN_NAMES.items():
        run_cli("tenant", "add", town, "--name", name, "--parent", "kreis", *args)
        keys[town] = run_cli("apikey", "create", "--name", f"{town}-write", "--scope", "write",
                             "--tenant", town, *args).stdout.strip().splitlines()[-1]
    server = start_server(data_dir, args)
    county = County(server, keys)
    try:
        def client(town: str) -> httpx.Client:
            base = f"{server.url}/v1.1" if town == "outside" else f"{server.url}/t/{town}/v1.1"
            return httpx.Client(base_url=base, timeout=30,
                                headers={"Authorization": f"Bearer {keys[town]}"})

        with client("nord") as api:
            county.streams["nord:wetter"] = _station(
                api, "Wetterstation Nordheim", 9.0, "Lufttemperatur Nordheim",
                "Lufttemperatur", CELSIUS, [11.5, 12.5, 13.5])
        with client("sued") as api:
            county.streams["sued:wetter"] = _station(
                api, "Wetterstation Südhausen", 9.5, "Lufttemperatur Südhausen",
                "Lufttemperatur", CELSIUS, [15.25, 16.25, 17.25])
            county.streams["sued:rad"] = _station(
                api, "Zählstelle Südhausen", 9.6, "Radverkehr Südhausen", "Radverkehr",
                COUNT, [7, 9, 11])
        with client("outside") as api:
            county.streams["outside"] = _station(api, OUTSIDE, 11.0, "Lufttemperatur Anderswo",
                                                 "Lufttemperatur", CELSIUS, [20.5, 21.5])
        # Internal stations: the town keeps its new data internal while they are created.
        for town in TOWN_NAMES:
            run_cli("tenant", "set", town, "--default-visibility", "internal", *args)
            with client(town) as api:
                county.streams[f"{town}:geheim"] = _station(
                    api, f"GEHEIM-{town} Wetter Keller", 9.1, f"GEHEIM-{town} Temperatur",
                    "Lufttemperatur", CELSIUS, [4711.5, 4711.75])
            run_cli("tenant", "set", town, "--default-visibility", "public", *args)
        yield county
    finally:
        stop_server(server)


class Links(HTMLParser):
    """Every URL of a page the user or the page's code follows: links, form targets, chart
    data attributes and the URLs in the JSON configuration blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._json = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("href", "action", "data-series", "data-csv"):
            if name in values and not (tag == "use" or (tag == "link" and name == "href")):
                self.urls.append(values[name] or "")
        self._json = tag == "script" and values.get("type") == "application/json"

    def handle_data(self, data: str) -> None:
        if self._json:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._json:
            self._walk(json.loads("".join(self._text)))
            self._json, self._text = False, []

    def _walk(self, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("tileUrl", "tileAttribution"):
                    continue  # the map tiles' server: the operator's choice, not a page link
                if key == "prefix":
                    continue
                self._walk(value)
        elif isinstance(node, list):
            for value in node:
                self._walk(value)
        elif isinstance(node, str) and node.startswith("/"):
            self.urls.append(node)


def page_urls(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    return parser.urls


def text_of(answer: httpx.Response) -> str:
    assert answer.status_code == 200, (answer.request.url, answer.status_code, answer.text)
    return answer.text


def station_names(tiles: list[dict[str, Any]]) -> set[str]:
    return {st["name"] for tile in tiles for st in tile["stations"]}


@pytest.mark.parametrize(("town", "other"), [("nord", "sued"), ("sued", "nord")])
def test_each_town_page_shows_only_its_own_public_data(county, town, other):
    own = "Nordheim" if town == "nord" else "Südhausen"
    foreign = "Südhausen" if town == "nord" else "Nordheim"
    for path in ("/", "/usecase/wetter", "/map", "/api/v1/usecases", "/api/v1/usecases/wetter",
                 "/api/v1/latest", "/_fragments/tiles"):
        body = text_of(county.get(f"/t/{town}{path}"))
        if path not in ("/", "/_fragments/tiles", "/api/v1/latest"):  # these name no station
            assert f"Wetterstation {own}" in body, path
        assert foreign not in body, path
        assert OUTSIDE not in body and "Anderswo" not in body, path
        for marker in SECRET:
            assert marker not in body, (path, marker)
    tiles = county.get(f"/t/{town}/api/v1/usecases").json()["usecases"]
    assert station_names(tiles) == ({"Wetterstation Nordheim"} if town == "nord" else
                                    {"Wetterstation Südhausen", "Zählstelle Südhausen"})
    latest = county.get(f"/t/{town}/api/v1/latest").json()["value"]
    assert {v["datastream_id"] for v in latest} == (
        {county.streams["nord:wetter"]} if town == "nord"
        else {county.streams["sued:wetter"], county.streams["sued:rad"]})
    # The overview is titled with the town's name and has the town's topics only.
    overview = text_of(county.get(f"/t/{town}/"))
    assert f"Ortspuls {TOWN_NAMES[town]}" in overview
    assert re.findall(r'data-usecase="([a-z]+)"', overview) == (
        ["wetter"] if town == "nord" else ["radverkehr", "wetter"])
    # Another town's or an internal Datastream's series is not there for this town.
    for key in (f"{other}:wetter", f"{town}:geheim", "outside"):
        ds = county.streams[key]
        assert county.get(f"/t/{town}/api/v1/datastreams/{ds}/series").status_code == 404
        assert county.get(f"/t/{town}/api/v1/datastreams/{ds}/series.csv").status_code == 404
    own_ds = county.streams[f"{town}:wetter"]
    series = county.get(f"/t/{town}/api/v1/datastreams/{own_ds}/series",
                        params={"interval": "PT1H"})
    assert series.status_code == 200 and series.json()["value"], series.text


def test_county_rollup_shows_both_towns_public_data_and_nothing_internal(county):
    for path in ("/", "/usecase/wetter", "/usecase/radverkehr", "/map", "/api/v1/usecases",
                 "/api/v1/latest"):
        body = text_of(county.get(f"/t/kreis{path}"))
        for marker in SECRET:
            assert marker not in body, (path, marker)
        assert "Anderswo" not in body, path
    tiles = {t["slug"]: t for t in county.get("/t/kreis/api/v1/usecases").json()["usecases"]}
    assert set(tiles) == {"wetter", "radverkehr"}
    # The weather tile aggregates over both towns' stations, each naming its town.
    owners = {st["name"]: st["tenant"]["name"] for st in tiles["wetter"]["stations"]}
    assert owners == {"Wetterstation Nordheim": "Stadt Nordheim",
                      "Wetterstation Südhausen": "Gemeinde Südhausen"}
    assert tiles["radverkehr"]["stations"][0]["tenant"] == {"slug": "sued",
                                                            "name": "Gemeinde Südhausen"}
    # The tile's trend covers both towns: each hour the mean of the two (rounded to 0.01).
    trend = [v for v in tiles["wetter"]["trend"] if v is not None]
    assert trend == pytest.approx([(11.5 + 15.25) / 2, (12.5 + 16.25) / 2, (13.5 + 17.25) / 2],
                                  abs=0.006)
    overview = text_of(county.get("/t/kreis/"))
    assert "Stadt Nordheim" in overview and "Gemeinde Südhausen" in overview
    for path in ("/usecase/wetter", "/map"):
        body = text_of(county.get(f"/t/kreis{path}"))
        assert "Wetterstation Nordheim <span class=\"station-town\">(Stadt Nordheim)" in body
        assert ("Wetterstation Südhausen <span class=\"station-town\">(Gemeinde Südhausen)"
                in body)
    latest = county.get("/t/kreis/api/v1/latest").json()["value"]
    assert {v["datastream_id"] for v in latest} == {
        county.streams[k] for k in ("nord:wetter", "sued:wetter", "sued:rad")}
    # A town's page never names the town of its stations: there is only one.
    assert "station-town" not in text_of(county.get("/t/nord/map"))


def test_every_link_of_a_tenant_page_stays_in_its_prefix(county):
    checked = 0
    for slug in ("kreis", "nord"):
        for path in PAGES:
            for lang in ("de", "en"):
                html = text_of(county.get(f"/t/{slug}{path}", params={"lang": lang}))
                for url in page_urls(html):
                    if url.startswith("#"):
                        continue
                    # Relative links (in the catalogue's prose) resolve against the page.
                    target = urljoin(f"{county.url}/t/{slug}{path}", url)
                    assert urlsplit(target).netloc == urlsplit(county.url).netloc, url
                    assert urlsplit(target).path.startswith(f"/t/{slug}/"), (slug, path, url)
                    checked += 1
                # The Datastreams' SensorThings links are the tenant's view too.
                for sta in re.findall(r'href="([^"]*/v1\.1/Datastreams\(\d+\))"', html):
                    assert sta.startswith(f"/t/{slug}/v1.1/"), sta
    assert checked > 100
    # The links lead somewhere: the footer's API links and a chart's CSV.
    assert county.get("/t/kreis/v1.1").status_code == 200
    index = county.get("/t/kreis/api").json()
    assert {link["href"].split("/t/", 1)[1] for link in index["links"]} == {
        "kreis/v1.1", "kreis/api/v1/usecases"}
    detail = text_of(county.get("/t/kreis/usecase/wetter"))
    csv_url = re.search(r'data-csv="([^"]+)"', detail).group(1).replace("&amp;", "&")
    csv = county.get(csv_url)
    assert csv.status_code == 200 and csv.text.startswith("start,end"), csv.text
    assert county.get("/t/kreis", follow_redirects=False).headers["location"] == "/t/kreis/"


def test_unknown_tenant_is_a_404(county):
    for path in ("/", "/map", "/usecase/wetter"):
        answer = county.get(f"/t/gibt-es-nicht{path}")
        assert answer.status_code == 404
        assert "text/html" in answer.headers["content-type"]
        assert "gibt-es-nicht" in answer.text
    for path in ("/api/v1/usecases", "/api/v1/latest", "/api/v1/live", "/api",
                 f"/api/v1/datastreams/{county.streams['nord:wetter']}/series"):
        answer = county.get(f"/t/gibt-es-nicht{path}")
        assert answer.status_code == 404, path
        assert answer.json()["code"] == 404
    # An unknown use case inside a tenant: the 404 page leads back to the tenant's overview.
    answer = county.get("/t/nord/usecase/gibt-es-nicht")
    assert answer.status_code == 404 and 'href="/t/nord/"' in answer.text


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.startswith("data: "):
            yield json.loads(line[6:])


def _connected(lines: Iterator[str]) -> None:
    for line in lines:
        if line == ": connected":
            return


def test_live_stream_delivers_only_the_tenants_public_observations(county):
    timeout = httpx.Timeout(30.0)
    with httpx.Client(base_url=county.url, timeout=timeout) as http, \
            http.stream("GET", "/t/nord/api/v1/live") as nord, \
            http.stream("GET", "/t/kreis/api/v1/live") as kreis:
        assert nord.status_code == kreis.status_code == 200
        nord_lines, kreis_lines = nord.iter_lines(), kreis.iter_lines()
        _connected(nord_lines)
        _connected(kreis_lines)
        # In this order: what must not arrive is written before what must.
        county.post_value("outside", 30.5)
        county.post_value("sued:wetter", 18.25)
        county.post_value("nord:geheim", 4711.25)
        county.post_value("sued:geheim", 4711.125)
        county.post_value("nord:wetter", 14.5)
        seen_nord = []
        for event in _events(nord_lines):
            seen_nord.append((event["datastream_id"], event["value"]))
            if event["datastream_id"] == county.streams["nord:wetter"]:
                break
        assert seen_nord == [(county.streams["nord:wetter"], 14.5)]
        seen_kreis = []
        for event in _events(kreis_lines):
            seen_kreis.append((event["datastream_id"], event["value"]))
            if event["datastream_id"] == county.streams["nord:wetter"]:
                break
        assert seen_kreis == [(county.streams["sued:wetter"], 18.25),
                              (county.streams["nord:wetter"], 14.5)]


def test_the_installation_overview_is_unchanged(county):
    """`/` still shows every tenant's public data and never the tenant concept."""
    body = text_of(county.get("/"))
    for name in ("Wetterstation Nordheim", "Wetterstation Südhausen", OUTSIDE):
        assert name in body or name in text_of(county.get("/map"))
    assert "/t/" not in body and "station-town" not in text_of(county.get("/map"))


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.mark.parametrize("lang", ["de", "en"])
def test_county_overview_in_chromium_has_no_axe_violations(browser, county, lang):
    from axe_playwright_python.sync_playwright import Axe

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{county.url}/t/kreis/?lang={lang}", wait_until="load")
        page.wait_for_function("document.readyState === 'complete'")
        assert page.locator("html").get_attribute("lang") == lang
        assert page.locator("li[data-usecase]").count() == 2
        # The live connection of the tenant's page opens (the script shows its state).
        page.wait_for_selector("[data-live-state][data-state='on']", timeout=15_000)
        result = Axe().run(page)
        violations = [f"{v['id']} ({v['impact']}) {[n['target'] for n in v['nodes']][:5]}"
                      for v in result.response["violations"]]
        assert not violations, "\n".join(violations)
        # Everything the page loaded is the tenant's or a shared static file.
        own = [u.removeprefix(county.url) for u in requests if u.startswith(county.url)]
        assert len(own) == len(requests), requests
        assert all(u.startswith(("/t/kreis/", "/static/")) for u in own), own
        assert any(u.startswith("/t/kreis/api/v1/live") for u in own), own
    finally:
        context.close()
    assert not errors, errors
