"""The dashboard pages over plain HTTP: language choice, error pages, static files, the CSV
download and its bad input, and the JSON index that moved from / to /api."""

from __future__ import annotations

import csv
import io
import re
from zoneinfo import ZoneInfo

import httpx
import pytest
from tests.conftest import TEST_DATABASES

from ortspuls.web.assets import bundle_files
from ortspuls.web.i18n import Translator


@pytest.fixture
def http(town):
    with httpx.Client(base_url=town.url, timeout=30) as client:
        yield client


def test_overview_is_german_by_default_and_english_on_request(town):
    page = httpx.get(f"{town.url}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="de">' in page.text
    assert page.headers["content-language"] == "de"
    assert "Zum Inhalt springen" in page.text
    english = httpx.get(f"{town.url}/", params={"lang": "en"})
    assert '<html lang="en">' in english.text and "Skip to content" in english.text
    assert "ortspuls_lang=en" in english.headers["set-cookie"]
    # The cookie keeps the choice (a client that stores cookies, like a browser) …
    with httpx.Client(base_url=town.url) as browser_like:
        browser_like.get("/", params={"lang": "en"})
        again = browser_like.get("/barrierefreiheit")
        assert '<html lang="en">' in again.text and "Accessibility statement" in again.text
    # … and an unknown language falls back to German.
    assert '<html lang="de">' in httpx.get(f"{town.url}/", params={"lang": "fr"}).text


def test_every_page_answers_in_both_languages(http):
    for path in ("/", "/map", "/barrierefreiheit", "/leichte-sprache", "/usecase/pegel"):
        for lang in ("de", "en"):
            response = http.get(path, params={"lang": lang})
            assert response.status_code == 200, (path, lang)
            assert f'<html lang="{lang}">' in response.text


def test_accessibility_statement_names_contact_and_state(http):
    de = http.get("/barrierefreiheit", params={"lang": "de"}).text
    assert "Erklärung zur Barrierefreiheit" in de
    assert "teilweise vereinbar" in de
    assert '<a href="mailto:barrierefrei@musterstadt.example">' in de
    assert "Musterstadt möchte" in de
    en = http.get("/barrierefreiheit", params={"lang": "en"}).text
    assert "partially compliant" in en and "barrierefrei@musterstadt.example" in en
    easy = http.get("/leichte-sprache", params={"lang": "de"}).text
    assert "Leichte Sprache" in easy and "Internet·seite" in easy


def test_unknown_usecase_is_a_404_page(http):
    response = http.get("/usecase/gibt-es-nicht")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "gibt-es-nicht" in response.text and "Zur Übersicht" in response.text


def test_json_index_moved_to_api(http):
    index = http.get("/api")
    assert index.status_code == 200
    assert any(link["rel"] == "sensorthings" for link in index.json()["links"])


def test_static_files_and_bundle_are_served_from_the_server_itself(http):
    page = http.get("/usecase/wetter").text
    urls = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert not [u for u in urls if u.startswith(("http://", "https://", "//"))
                and "/v1.1/" not in u]
    assets = [u for u in urls if u.startswith("/static/")]
    assert any("detail.js" in u for u in assets) and any("ortspuls.css" in u for u in assets)
    for url in assets:
        response = http.get(url)
        assert response.status_code == 200, url
        # A content-hashed URL may be cached for long: a new build has a new hash.
        assert "immutable" in response.headers["cache-control"]
    assert http.get("/static/ortspuls.css").headers["cache-control"] == "no-cache"
    assert "detail.js" in bundle_files()


def test_town_outline_is_served(http):
    response = http.get("/map/outline.geojson")
    assert response.status_code == 200
    assert response.json()["geometry"]["type"] == "Polygon"


def test_csv_download_has_the_series_buckets(http, town):
    ds_id = town.stream("Lufttemperatur Rathaus").id
    params = {"from": "2026-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z", "interval": "P1D",
              "stats": "mean,min,max,count"}
    series = http.get(f"/api/v1/datastreams/{ds_id}/series", params=params).json()
    response = http.get(f"/api/v1/datastreams/{ds_id}/series.csv", params=params)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == ["start", "end", "mean", "min", "max", "count"]
    assert len(rows) == len(series["value"]) > 5
    for row, bucket in zip(rows, series["value"], strict=True):
        assert row["start"] == bucket["start"] and row["end"] == bucket["end"]
        for stat in ("mean", "min", "max"):
            assert float(row[stat]) == bucket[stat]
        assert int(row["count"]) == bucket["count"]


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"interval": "PT5M"}, 400, "interval"),
    ({"stats": "median"}, 400, "median"),
    ({"from": "gestern"}, 400, "ISO 8601"),
    ({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, 400, "before"),
])
def test_csv_download_refuses_bad_parameters(http, town, params, status, words):
    ds_id = town.stream("Lufttemperatur Rathaus").id
    response = http.get(f"/api/v1/datastreams/{ds_id}/series.csv", params=params)
    assert response.status_code == status
    body = response.json()
    assert body["code"] == status and words in body["message"]


def test_csv_download_of_an_unknown_datastream_is_404(http):
    response = http.get("/api/v1/datastreams/999999/series.csv")
    assert response.status_code == 404
    assert response.json()["code"] == 404


def test_without_the_bundle_pages_show_tables_and_the_station_list(town, monkeypatch):
    """The browser bundle missing (no npm): the same real data renders as tables and a list."""
    from datetime import UTC, datetime

    from starlette.applications import Starlette
    from starlette.requests import Request

    from ortspuls.settings import load_settings
    from ortspuls.web import assets, pages
    from ortspuls.web.render import page_context, render

    monkeypatch.setattr(assets, "MANIFEST", town.server.data_dir / "no-bundle.json")
    assert assets.bundle_files() == {}
    app = Starlette()
    app.state.settings = load_settings(environ={})
    request = Request({"type": "http", "method": "GET", "path": "/usecase/wetter",
                       "raw_path": b"/usecase/wetter", "query_string": b"",
                       "headers": [(b"host", b"127.0.0.1")], "scheme": "http",
                       "server": ("127.0.0.1", 80), "root_path": "", "app": app})
    ctx = page_context(request)
    usecase = httpx.get(f"{town.url}/api/v1/usecases/wetter").json()
    chart = usecase["charts"][0]
    series = httpx.get(f"{town.url}/api/v1/datastreams/{chart['datastream_id']}/series").json()
    rng = pages.chart_range("24h", datetime.now(UTC), ctx.t.timezone)
    view = {**chart, "kind": "mean", "columns": ["mean", "min", "max", "count"],
            "ranges": [{"key": "24h", "start": "", "end": "", "interval": "PT1H",
                        "api_url": "", "csv_url": "/x.csv", "page_url": "", "range": rng}],
            "series": series, "summary": "Zusammenfassung", "caption": "Tabelle"}
    view["range"] = view["ranges"][0]
    html = render(ctx, "detail.html", page="detail", usecase=usecase, charts=[view],
                  picker=None, figures=[], records=[], profile=None, plot_enabled=False,
                  display_value=str, config={}).body.decode()
    assert "detail.js" not in html and "data-plot" not in html
    assert '<details class="chart__table" open>' in html  # the table is shown at once
    assert html.count("<tr data-start=") == len(series["value"]) > 0
    assert '<p class="chart__summary">Zusammenfassung</p>' in html
    tiles = httpx.get(f"{town.url}/api/v1/usecases").json()["usecases"]
    stations = pages.collect_stations(tiles)
    map_html = render(ctx, "map.html", page="map", stations=stations, map_enabled=False,
                      map_data={}, config={}).body.decode()
    assert "map.js" not in map_html and "data-map" not in map_html
    assert ctx.t("map.no_bundle") in map_html
    assert map_html.count('<tr data-thing="') == len(town.stations)


@pytest.mark.parametrize("kind", TEST_DATABASES)
def test_pages_render_the_stored_values_on_each_database(tmp_path, kind):
    """The same town on SQLite and on PostgreSQL: the pages show what was stored."""
    from datetime import UTC, datetime

    from tests.conftest import create_key, database_args_for, start_server, stop_server
    from tests.web.conftest import store_town, town_stations

    with database_args_for(kind, tmp_path) as database_args:
        key = create_key(database_args, "pages", "write")
        server = start_server(tmp_path, database_args)
        server.keys = {"write": key}
        try:
            stations = town_stations()
            store_town(server, stations, datetime.now(UTC).replace(microsecond=0))
            level = next(s for st in stations for s in st.streams
                         if s.name == "Wasserstand Mühlbach")
            overview = httpx.get(f"{server.url}/").text
            assert overview.count('<li class="tile"') == 8
            tile = re.search(r'data-usecase="pegel".*?<span class="value" data-raw="([^"]*)">'
                             r'([^<]*)<', overview, re.S)
            assert float(tile[1]) == level.latest
            assert tile[2] == Translator("de", ZoneInfo("Europe/Berlin")).value(level.latest)
            detail = httpx.get(f"{server.url}/usecase/pegel").text
            assert f'<tr data-datastream="{level.id}"' in detail
            series = httpx.get(f"{server.url}/api/v1/datastreams/{level.id}/series",
                               params={"interval": "PT1H"}).json()
            link = re.search(rf'data-series="(/api/v1/datastreams/{level.id}/series\?[^"]+)"',
                             detail)
            shown = httpx.get(f"{server.url}{link[1].replace('&amp;', '&')}").json()
            table = detail[detail.index(f'id="chart-{level.id}"'):]
            table = table[:table.index("</figure>")]
            assert table.count("<tr data-start=") == len(shown["value"]) > 0
            assert series["value"][-1]["max"] == level.latest
            map_page = httpx.get(f"{server.url}/map").text
            assert map_page.count('<tr data-thing="') == len(stations)
            csv_text = httpx.get(f"{server.url}/api/v1/datastreams/{level.id}/series.csv").text
            assert csv_text.startswith("start,end,mean,min,max,sum,count")
        finally:
            stop_server(server)
