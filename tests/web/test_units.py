"""Small parts of the page layer on their own: chart windows across daylight saving, stations
gathered for the map, trend lines, and the decision when to build the browser bundle."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ortspuls.web import assets
from ortspuls.web.pages import chart_range, collect_stations
from ortspuls.web.sparkline import sparkline_points, trend_direction

BERLIN = ZoneInfo("Europe/Berlin")


def test_hourly_windows_end_with_the_current_hour():
    now = datetime(2026, 11, 26, 14, 37, 12, tzinfo=UTC)
    day = chart_range("24h", now, BERLIN)
    assert day.end == datetime(2026, 11, 26, 15, tzinfo=UTC)
    assert day.end - day.start == timedelta(hours=24) and day.interval == "PT1H"
    week = chart_range("7d", now, BERLIN)
    assert week.end - week.start == timedelta(days=7)
    assert chart_range("48h", now, BERLIN).start == day.end - timedelta(hours=48)


@pytest.mark.parametrize(("now", "start", "end"), [
    # Winter: local midnight is 23:00 UTC.
    (datetime(2026, 11, 26, 22, 30, tzinfo=UTC), "2025-11-26T23:00", "2026-11-26T23:00"),
    # After local midnight but before UTC midnight: already the next local day.
    (datetime(2026, 11, 26, 23, 30, tzinfo=UTC), "2025-11-27T23:00", "2026-11-27T23:00"),
    # Summer: local midnight is 22:00 UTC.
    (datetime(2026, 7, 1, 12, tzinfo=UTC), "2025-07-01T22:00", "2026-07-01T22:00"),
    # Spring forward on 29 March 2026: the window starts in summer time of 2025.
    (datetime(2026, 3, 29, 12, tzinfo=UTC), "2025-03-29T23:00", "2026-03-29T22:00"),
])
def test_daily_windows_are_local_days(now, start, end):
    window = chart_range("1y", now, BERLIN)
    assert window.interval == "P1D"
    assert window.start == datetime.fromisoformat(start).replace(tzinfo=UTC)
    assert window.end == datetime.fromisoformat(end).replace(tzinfo=UTC)
    assert window.start.astimezone(BERLIN).hour == 0 and window.end.astimezone(BERLIN).hour == 0


def _tile(slug, stations):
    return {"slug": slug, "title": slug.title(), "stations": stations}


def _station(thing_id, name, level, streams, location=None):
    return {"thing_id": thing_id, "name": name, "status": {"level": level, "text": level},
            "location": location, "datastreams": [{"id": i, "name": f"ds{i}"} for i in streams]}


def test_map_stations_are_gathered_once_with_their_worst_status():
    point = {"type": "Point", "coordinates": [10.5, 52.2]}
    square = {"type": "Polygon", "coordinates": [[[10, 52], [11, 52], [11, 53], [10, 53],
                                                  [10, 52]]]}
    stations = collect_stations([
        _tile("wetter", [_station(1, "Rathaus", "ok", [1, 2], point),
                         _station(2, "Park", "unknown", [5], square)]),
        _tile("luftqualitaet", [_station(1, "Rathaus", "warn", [3, 2], point)]),
        _tile("laerm", [_station(3, "Ohne Ort", "alert", [4])]),
    ])
    by_id = {s["thing_id"]: s for s in stations}
    assert [s["name"] for s in stations] == ["Ohne Ort", "Park", "Rathaus"]
    assert by_id[1]["status"]["level"] == "warn"
    assert [u["slug"] for u in by_id[1]["usecases"]] == ["wetter", "luftqualitaet"]
    assert [d["id"] for d in by_id[1]["datastreams"]] == [1, 2, 3]
    assert by_id[1]["position"] == [10.5, 52.2]
    lon, lat = by_id[2]["position"]  # a point inside the area
    assert 10 < lon < 11 and 52 < lat < 53
    assert by_id[3]["position"] is None


def test_trend_lines():
    assert sparkline_points([1]) == ""
    assert sparkline_points([None, 3, None]) == ""
    points = sparkline_points([0, 10, None, 5])
    assert points == "2.0,30.0 40.7,2.0 118.0,16.0"
    assert sparkline_points([4, 4]) == "2.0,16.0 118.0,16.0"  # flat: in the middle
    assert trend_direction([1, 2, 9]) == "rising"
    assert trend_direction([9, 2, 1]) == "falling"
    assert trend_direction([5, 9, 5.1]) == "steady"
    assert trend_direction([None]) == "none"


def _frontend(tmp_path):
    frontend = tmp_path / "frontend"
    (frontend / "src").mkdir(parents=True)
    (frontend / "package.json").write_text("{}")
    (frontend / "src" / "a.js").write_text("1")
    return frontend


def test_bundle_is_current_only_when_newer_than_every_source(tmp_path):
    frontend = _frontend(tmp_path)
    manifest = tmp_path / "manifest.json"
    assert not assets.assets_current(frontend, manifest)
    manifest.write_text("{}")
    future = time.time() + 10
    os.utime(manifest, (future, future))
    assert assets.assets_current(frontend, manifest)
    later = future + 10
    os.utime(frontend / "src" / "a.js", (later, later))
    assert not assets.assets_current(frontend, manifest)
    # An installed package without sources uses whatever bundle it has.
    assert assets.assets_current(tmp_path / "missing", manifest)


def test_without_npm_the_server_says_how_to_build(tmp_path, monkeypatch):
    frontend = _frontend(tmp_path)
    monkeypatch.setattr(assets, "MANIFEST", tmp_path / "no-manifest.json")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    said: list[str] = []
    assert assets.ensure_assets(said.append, frontend) is False
    assert "npm was not found" in said[0] and "npm ci && npm run build" in said[0]
    said.clear()
    assert assets.ensure_assets(said.append, tmp_path / "nothing") is False
    assert "no frontend/" in said[0]


def _request(query: str):
    from starlette.applications import Starlette
    from starlette.requests import Request

    from ortspuls.settings import load_settings

    app = Starlette()
    app.state.settings = load_settings(environ={})
    return Request({"type": "http", "method": "GET", "path": "/usecase/radverkehr",
                    "raw_path": b"/usecase/radverkehr", "query_string": query.encode(),
                    "headers": [(b"host", b"127.0.0.1:8000")], "scheme": "http",
                    "server": ("127.0.0.1", 8000), "root_path": "", "app": app})


def test_many_stations_show_one_stations_charts_with_a_picker():
    from ortspuls.web.pages import MAX_CHARTS, _charts_to_show
    from ortspuls.web.render import page_context

    stations = [{"thing_id": 10 + i, "name": f"Zählstelle {i}",
                 "datastreams": [{"id": 100 + i}]} for i in range(MAX_CHARTS + 3)]
    usecase = {"stations": stations,
               "charts": [{"datastream_id": 100 + i} for i in range(MAX_CHARTS + 3)]}
    shown, picker = _charts_to_show(page_context(_request("")), usecase)
    assert [c["datastream_id"] for c in shown] == [100]
    assert picker["selected"] == 10 and len(picker["options"]) == MAX_CHARTS + 3
    shown, picker = _charts_to_show(page_context(_request("station=14")), usecase)
    assert [c["datastream_id"] for c in shown] == [104] and picker["station_name"] == "Zählstelle 4"
    # An unknown or malformed station falls back to the first.
    assert _charts_to_show(page_context(_request("station=x")), usecase)[1]["selected"] == 10
    # Few charts: all of them, no picker.
    small = {"stations": stations[:2], "charts": usecase["charts"][:2]}
    assert _charts_to_show(page_context(_request("")), small) == (small["charts"], None)


def test_tile_cache_computes_once_for_many_readers_and_again_after_a_change():
    # In a thread of its own: the browser tests' Playwright keeps an event loop in this one.
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _tile_cache_scenario()).result()


async def _tile_cache_scenario():
    import asyncio

    from ortspuls.timeseries.events import EntityEvent, EventBus
    from ortspuls.web.pages import TileCache

    calls: list[str] = []

    async def overview(app_state, lang):
        calls.append(lang)
        await asyncio.sleep(0.05)  # readers arrive while it runs
        return [{"slug": "pegel", "lang": lang, "n": len(calls)}]

    bus = EventBus()
    cache = TileCache(bus, compute=overview)
    results = await asyncio.gather(*(cache.get(None, "de") for _ in range(20)))
    assert calls == ["de"] and all(r == results[0] for r in results)
    assert (await cache.get(None, "de"))[0]["n"] == 1  # reused
    await cache.get(None, "en")
    assert calls == ["de", "en"]  # per language
    bus.publish([EntityEvent("create", "Observation", 1, None, {})])
    assert (await cache.get(None, "de"))[0]["n"] == 3  # a change: computed anew
    cache.max_age = 0
    assert (await cache.get(None, "de"))[0]["n"] == 4  # too old: computed anew
