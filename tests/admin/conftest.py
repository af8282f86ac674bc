"""Fixtures for the admin UI in a real browser: a server with two towns of a county, an admin
and an editor account, a few stations, a local OpenID Connect provider, and Chromium.

The page layer does not depend on the database kind, so one SQLite server serves these tests
(the tenancy tests run both databases). Chromium is the Debian package driven by Playwright
(never `playwright install`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from tests.conftest import Server, free_port, run_cli, start_server, stop_server
from tests.tenancy.conftest import PASSWORD, cli
from tests.tenancy.oidc_provider import Provider

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"


@dataclass
class Site:
    server: Server
    key: str
    provider: Provider
    thing_id: int
    datastream_id: int

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Iterator[Site]:
    data_dir = tmp_path_factory.mktemp("ortspuls-admin")
    args = ["--data-dir", str(data_dir)]
    run_cli("tenant", "add", "kreis", "--name", "Landkreis Beispiel", *args)
    run_cli("tenant", "add", "nord", "--name", "Stadt Nordheim", "--parent", "kreis", *args)
    run_cli("tenant", "add", "sued", "--name", "Gemeinde Südhausen", "--parent", "kreis", *args)
    key = run_cli("apikey", "create", "--name", "nord-write", "--scope", "write", "--tenant",
                  "nord", *args).stdout.strip().splitlines()[-1]
    cli("user", "add", "admin@nord.example", "--tenant", "nord", "--role", "admin",
        "--name", "Anna Admin", "--password-stdin", *args, stdin=PASSWORD)
    cli("user", "add", "betrieb@kreis.example", "--tenant", "kreis", "--role", "admin",
        "--operator", "--password-stdin", *args, stdin=PASSWORD)
    provider = Provider(free_port())
    provider.start()
    server = start_server(data_dir, args)
    try:
        with httpx.Client(base_url=server.url + "/v1.1", timeout=30,
                          headers={"Authorization": f"Bearer {key}"}) as api:
            created = api.post("Things", json={
                "name": "Wetterstation Rathaus", "description": "Dach des Rathauses",
                "Locations": [{"name": "Rathaus", "description": "Markt 1",
                               "encodingType": "application/geo+json",
                               "location": {"type": "Point", "coordinates": [9.0, 50.0]}}],
                "Datastreams": [{
                    "name": "Lufttemperatur Rathaus", "description": "2 m über Dach",
                    "unitOfMeasurement": {"name": "Grad Celsius", "symbol": "°C",
                                          "definition": "http://unitsofmeasure.org/cel"},
                    "observationType": MEASUREMENT,
                    "Sensor": {"name": "Thermometer", "description": "PT100",
                               "encodingType": "text/html", "metadata": "https://example.org"},
                    "ObservedProperty": {"name": "Lufttemperatur",
                                         "definition": "https://example.org/temp",
                                         "description": "Temperatur der Luft"}}]})
            assert created.status_code == 201, created.text
            thing = created.json()["@iot.id"]
            ds = api.get(f"Things({thing})/Datastreams").json()["value"][0]["@iot.id"]
        yield Site(server, key, provider, thing, ds)
    finally:
        stop_server(server)
        provider.stop()


# Per module: sync Playwright keeps an asyncio loop running in the main thread while it is
# open, which later tests (asyncio.run in fixtures, pytest-asyncio) must not find.
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, site):
    """A fresh page (own cookies) that fails the test on script errors and on any request
    that leaves the server (no third parties)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE")
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.foreign = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith((site.url, site.provider.issuer))
            else page.foreign.append(r.url))
    yield page
    context.close()
    assert not page.errors, f"script errors: {page.errors}"
    assert not page.foreign, f"requests to third parties: {page.foreign}"
