"""`ortspuls serve --demo` as the README runs it: on an empty folder it seeds, prints where to
look and serves the dashboard; the demo login works; a second start only serves."""

from __future__ import annotations

import re

import httpx
from tests.conftest import start_server, stop_server
from tests.demo.conftest import NO_MQTT, Seeded

from ortspuls.demo.town import DEMO_EMAIL, DEMO_PASSWORD, DEVICES


def test_serve_demo_seeds_an_empty_folder_then_only_serves(tmp_path):
    data = tmp_path / "demo"
    args = ["--data-dir", str(data)]
    seeded = Seeded(data, None, 1, 42, "")  # type: ignore[arg-type]
    srv = start_server(tmp_path, args, NO_MQTT, ("--demo", "--days", "1"))
    try:
        log = srv.log()
        assert "Musterstadt angelegt (seeded)" in log
        for where in (f"{srv.url}/", f"{srv.url}/admin", f"{srv.url}/v1.1", DEMO_EMAIL,
                      DEMO_PASSWORD):
            assert where in log, where
        page = httpx.get(f"{srv.url}/", timeout=30)
        assert page.status_code == 200
        assert "Musterstadt" in page.text
        outline = httpx.get(f"{srv.url}/map/outline.geojson", timeout=30)
        assert outline.status_code == 200
        assert outline.json()["features"][0]["properties"]["name"] == "Musterstadt"
        # The login cookies are `Secure`: carried by hand over plain HTTP, as a proxy would.
        cookies: dict[str, str] = {}

        def keep(response: httpx.Response) -> httpx.Response:
            for header in response.headers.get_list("set-cookie"):
                name, _, rest = header.partition("=")
                cookies[name] = rest.split(";")[0]
            return response

        def jar() -> dict[str, str]:
            return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}

        with httpx.Client(base_url=srv.url, timeout=30) as browser:
            form = keep(browser.get("/admin/login"))
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
            login = keep(browser.post("/admin/login", headers=jar(), data={
                "email": DEMO_EMAIL, "password": DEMO_PASSWORD, "csrf": csrf,
                "next": "/admin/"}))
            assert login.status_code == 303, login.text[:500]
            admin = browser.get("/admin/", headers=jar())
            assert admin.status_code == 200
            assert "Musterstadt" in admin.text
    finally:
        stop_server(srv)
    things, observations = seeded.sql(
        "SELECT (SELECT count(*) FROM things), (SELECT count(*) FROM observations)")[0]
    assert things == len(DEVICES)
    again = start_server(tmp_path, args, NO_MQTT, ("--demo",))
    try:
        assert "angelegt" not in again.log()
        assert "Dashboard:" in again.log()
    finally:
        stop_server(again)
    assert seeded.sql("SELECT count(*) FROM things")[0][0] == len(DEVICES)
    assert seeded.sql("SELECT count(*) FROM observations")[0][0] >= observations
