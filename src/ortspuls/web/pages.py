"""The public dashboard pages: overview, use-case detail, map, accessibility, Leichte Sprache.

Pages are rendered on the server from the dashboard service (`ortspuls.dashboard.service`) and
are complete without JavaScript: values, status in words, trends as SVG, every chart's values as
a table, and the map's stations as a list. The browser bundle adds charts, the map and live
updates on top.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ortspuls.dashboard import service
from ortspuls.sta.errors import NotFound
from ortspuls.web.i18n import Translator, unit_symbol
from ortspuls.web.render import ENV, PageContext, browser_config, page_context, render
from ortspuls.web.sparkline import sparkline_points

log = logging.getLogger(__name__)

STAT_ORDER = ("mean", "min", "max", "sum", "count")
# Chart ranges in hours, shown per hour; "1y" is shown per local day.
HOURLY_RANGES = {"24h": 24, "48h": 48, "7d": 24 * 7}
DAILY_RANGES = {"30d": 30, "1y": 365}
RANGES = (*HOURLY_RANGES, *DAILY_RANGES)
# More charts than this on one detail page: show one station's, with a station picker.
MAX_CHARTS = 6
LEVEL_RANK = {"alert": 3, "warn": 2, "ok": 1, "unknown": 0}


# ---------------------------------------------------------------------------------------------
# Chart ranges


@dataclass(frozen=True, slots=True)
class ChartRange:
    key: str  # "24h", "7d", "1y"
    start: datetime
    end: datetime
    interval: str  # ISO 8601 duration understood by the series API


def chart_range(key: str, now: datetime, tz: ZoneInfo) -> ChartRange:
    """The window of a range key ("24h", "48h", "7d", "30d", "1y"), ending with the bucket that
    holds `now`.

    Hours are cut on the hour, days at local midnight of the town's time zone, so the buckets
    match the series API's buckets and the newest one is the current, still growing one.
    """
    if key in DAILY_RANGES:
        local_today = now.astimezone(tz).date()
        end_day = local_today + timedelta(days=1)
        start_day = end_day - timedelta(days=DAILY_RANGES[key])
        end = datetime(end_day.year, end_day.month, end_day.day, tzinfo=tz)
        start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=tz)
        return ChartRange(key, start.astimezone(UTC), end.astimezone(UTC), "P1D")
    hours = HOURLY_RANGES[key]
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return ChartRange(key, end - timedelta(hours=hours), end, "PT1H")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def chart_kind(chart: dict[str, Any]) -> str:
    """"sum" for counts (bicycles per hour), "mean" for levels (temperature)."""
    return "sum" if chart.get("stat") == "sum" else "mean"


def chart_columns(kind: str) -> list[str]:
    return ["sum", "count"] if kind == "sum" else ["mean", "min", "max", "count"]


def chart_summary(t: Translator, chart: dict[str, Any], kind: str, rng: ChartRange,
                  rows: list[dict[str, Any]]) -> str:
    """The text alternative of a chart: what it shows and its extremes."""
    unit = unit_symbol(chart.get("unit"))
    stat = "sum" if kind == "sum" else "mean"
    values = [row[stat] for row in rows if isinstance(row.get(stat), int | float)]
    params = {"title": chart.get("title", ""), "range": t(f"chart.range_long.{rng.key}"),
              "per": t(f"chart.per.{rng.interval}"), "unit": unit}
    if not values:
        return t("chart.summary_empty", **params)
    # Like the browser code: a bucket without min/max contributes its mean.
    present = [row for row in rows if isinstance(row.get(stat), int | float)]
    lows = [row[stat] if row.get("min") is None else row["min"] for row in present]
    highs = [row[stat] if row.get("max") is None else row["max"] for row in present]
    if kind == "sum":
        return t("chart.summary_sum", total=t.number(sum(values)), max=t.number(max(values)),
                 **params)
    return t("chart.summary_mean", min=t.number(min(lows)), max=t.number(max(highs)), **params)


async def build_chart(ctx: PageContext, app_state: Any, chart: dict[str, Any], now: datetime
                      ) -> dict[str, Any]:
    tz = ctx.t.timezone
    ds_id = chart["datastream_id"]
    keys = [k for k in chart.get("ranges") or ["24h", "7d", "1y"] if k in RANGES] or ["24h"]
    wanted = ctx.request.query_params.get(f"range_{ds_id}")
    selected_key = wanted if wanted in keys else keys[0]
    kind = chart_kind(chart)
    columns = chart_columns(kind)
    stats = ",".join(STAT_ORDER)
    ranges = []
    selected: dict[str, Any] = {}
    for key in keys:
        rng = chart_range(key, now, tz)
        query = {"from": iso(rng.start), "to": iso(rng.end), "interval": rng.interval,
                 "stats": stats}
        params = {k: v for k, v in ctx.request.query_params.items() if k != f"range_{ds_id}"}
        entry = {
            "key": key, "start": query["from"], "end": query["to"], "interval": rng.interval,
            "api_url": ctx.url(f"/api/v1/datastreams/{ds_id}/series", **query),
            "csv_url": ctx.url(f"/api/v1/datastreams/{ds_id}/series.csv", **query),
            "page_url": ctx.here(**params, **{f"range_{ds_id}": key})
            + f"#chart-{ds_id}",
            "range": rng,
        }
        ranges.append(entry)
        if key == selected_key:
            selected = entry
    rng = selected["range"]
    series = await service.series(app_state, ds_id, rng.start, rng.end, rng.interval,
                                  list(STAT_ORDER))
    rows = series.get("value", [])
    params = {"title": chart.get("title", ""), "range": ctx.t(f"chart.range_long.{rng.key}"),
              "per": ctx.t(f"chart.per.{rng.interval}")}
    return {
        **chart,
        "kind": kind,
        "columns": columns,
        "ranges": ranges,
        "range": selected,
        "series": series,
        "summary": chart_summary(ctx.t, chart, kind, rng, rows),
        "caption": ctx.t(f"chart.caption_{kind}", **params),
    }


# ---------------------------------------------------------------------------------------------
# Tiles shared by the overview, the live fragments and the map


class TileCache:
    """The overview tiles per language, shared by all readers of one process.

    Every open overview asks for fresh tiles when the live stream reports new observations;
    without sharing, a hundred open pages would compute the overview a hundred times per
    event. Tiles are reused until the event bus announces a change (or `max_age` passes, for
    "today so far" and staleness); concurrent requests wait for one computation.
    """

    def __init__(self, bus: Any, compute: Any = None, max_age: float = 30.0) -> None:
        # compute(app_state, lang=...) -> tiles; the dashboard service's overview by default
        self.compute = compute or service.usecase_overview
        self.version = 0
        self.max_age = max_age
        self._entries: dict[str, tuple[int, float, list[dict[str, Any]]]] = {}
        self._running: dict[tuple[str, int], asyncio.Task] = {}
        if bus is not None:
            bus.subscribe(self._on_events)

    def _on_events(self, events: list[Any]) -> None:
        self.version += 1

    async def get(self, app_state: Any, lang: str) -> list[dict[str, Any]]:
        entry = self._entries.get(lang)
        now = time.monotonic()
        if entry is not None and entry[0] == self.version and now - entry[1] < self.max_age:
            return entry[2]
        key = (lang, self.version)
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(self._compute(app_state, lang, self.version))
            self._running[key] = task
            task.add_done_callback(lambda _t: self._running.pop(key, None))
        # shield: one reader giving up (closed tab) must not cancel the others' computation
        return await asyncio.shield(task)

    async def _compute(self, app_state: Any, lang: str, version: int) -> list[dict[str, Any]]:
        began = time.monotonic()
        tiles = await self.compute(app_state, lang=lang)
        self._entries[lang] = (version, began, tiles)
        return tiles


async def overview_tiles(request: Request, lang: str) -> list[dict[str, Any]]:
    state = request.app.state
    tenant = getattr(request.state, "tenant", None)
    if tenant is not None:
        # One cache per tenant dashboard (/t/<slug>/); tenants are few and known.
        caches = getattr(state, "web_tenant_tiles", None)
        if caches is None:
            caches = state.web_tenant_tiles = {}
        cache = caches.get(tenant.slug)
        if cache is None:
            async def compute(app_state: Any, lang: str, slug: str = tenant.slug
                              ) -> list[dict[str, Any]]:
                return await service.usecase_overview(app_state, lang=lang, tenant=slug)

            cache = caches[tenant.slug] = TileCache(getattr(state, "bus", None), compute)
        return await cache.get(state, lang)
    cache = getattr(state, "web_tiles", None)
    if cache is None:
        cache = state.web_tiles = TileCache(getattr(state, "bus", None))
    return await cache.get(state, lang)


# ---------------------------------------------------------------------------------------------
# Pages


def _not_found(ctx: PageContext, message: str) -> Response:
    return render(ctx, "error.html", status=404, page="error", code=404, message=message,
                  config=browser_config(ctx))


async def overview(request: Request) -> Response:
    ctx = page_context(request)
    tiles = await overview_tiles(request, ctx.lang)
    return render(ctx, "overview.html", page="overview", tiles=tiles,
                  config=browser_config(ctx, tiles=ctx.url("/_fragments/tiles")))


async def tile_fragments(request: Request) -> Response:
    """The changing part of every tile as HTML, for the overview's live updates."""
    ctx = page_context(request)
    tiles = await overview_tiles(request, ctx.lang)
    template = ENV.get_template("_tile_data.html")
    body = {tile["slug"]: template.render(tile=tile, t=ctx.t, ctx=ctx, lang=ctx.lang)
            for tile in tiles}
    return Response(orjson.dumps(body), media_type="application/json",
                    headers={"Cache-Control": "no-store", "Vary": "Cookie"})


def _display_value(t: Translator, value: Any) -> str:
    """A figure's value: a number, a list of numbers (peak hours) or words."""
    if isinstance(value, list):
        return ", ".join(t.value(v) for v in value) if value else t("value.none")
    return t.value(value)


def _records(t: Translator, usecase: dict[str, Any]) -> list[dict[str, Any]]:
    """Records and long-term averages as rows of one table: label, value, unit, day."""
    rows = []
    for entry in [*(usecase.get("records") or []), *(usecase.get("averages") or [])]:
        if not isinstance(entry, dict):
            continue
        rows.append({"key": entry.get("key", ""), "label": entry.get("label", ""),
                     "value": entry.get("value"), "text": _display_value(t, entry.get("value")),
                     "unit": entry.get("unit") or "",
                     "day": t.date(entry["time"]) if entry.get("time") else "",
                     "time": entry.get("time") or ""})
    return rows


def _profile(t: Translator, usecase: dict[str, Any]) -> dict[str, Any] | None:
    """The typical course over the day (e.g. bicycles per hour) as table rows and lines."""
    profile = usecase.get("profile")
    if not isinstance(profile, dict) or not profile.get("series"):
        return None
    hours = profile.get("hours") or list(range(24))
    series = [s for s in profile["series"] if isinstance(s, dict)]
    rows = []
    for i, hour in enumerate(hours):
        cells = []
        for s in series:
            values = s.get("values") or []
            v = values[i] if i < len(values) else None
            cells.append({"value": v, "text": t.value(v)})
        rows.append({"label": t("detail.hour", hour=f"{int(hour):02d}"), "cells": cells})
    lines = [{"label": s.get("label", ""), "points": sparkline_points(s.get("values") or [],
                                                                      width=480, height=120)}
             for s in series]
    peak_parts = []
    for s in series:
        values = [v for v in s.get("values") or [] if isinstance(v, int | float)]
        if values:
            top = max(values)
            hour = hours[(s.get("values") or []).index(top)]
            peak_parts.append(t("detail.profile_peak", series=s.get("label", ""),
                                hour=f"{int(hour):02d}", value=t.number(top)))
    label = profile.get("label") or t("detail.profile")
    return {"title": label, "unit": profile.get("unit") or "",
            "columns": [s.get("label", "") for s in series], "rows": rows, "lines": lines,
            "summary": t("detail.profile_summary", title=label, peaks="; ".join(peak_parts))
            if peak_parts else t("detail.profile_empty", title=label)}


def _charts_to_show(ctx: PageContext, usecase: dict[str, Any]
                    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """All charts of a small use case; with many, those of one station and a station picker
    (each chart costs a series query and a table, a county may have a hundred counters)."""
    charts = [c for c in usecase.get("charts") or [] if isinstance(c, dict)]
    if len(charts) <= MAX_CHARTS:
        return charts, None
    station_of = {ds["id"]: st["thing_id"] for st in usecase.get("stations") or []
                  for ds in st.get("datastreams") or []}
    options = [{"id": st["thing_id"], "name": st.get("name", "")}
               for st in usecase.get("stations") or []
               if any(station_of.get(c["datastream_id"]) == st["thing_id"] for c in charts)]
    try:
        wanted = int(ctx.request.query_params.get("station", ""))
    except ValueError:
        wanted = None
    ids = [o["id"] for o in options]
    selected = wanted if wanted in ids else ids[0]
    shown = [c for c in charts if station_of.get(c["datastream_id"]) == selected][:MAX_CHARTS]
    name = next(o["name"] for o in options if o["id"] == selected)
    return shown, {"options": options, "selected": selected, "station_name": name,
                   "with_charts": set(ids)}


async def usecase_detail(request: Request) -> Response:
    ctx = page_context(request)
    slug = request.path_params["slug"]
    try:
        usecase = await service.usecase_detail(request.app.state, slug, lang=ctx.lang,
                                               tenant=ctx.tenant.slug if ctx.tenant else None)
    except NotFound:
        return _not_found(ctx, ctx.t("error.no_usecase", slug=slug))
    now = datetime.now(UTC)
    wanted, picker = _charts_to_show(ctx, usecase)
    charts = [await build_chart(ctx, request.app.state, chart, now) for chart in wanted]
    plot_enabled = bool(ctx.bundle("detail.js"))
    return render(ctx, "detail.html", page="detail", usecase=usecase, charts=charts,
                  picker=picker,
                  figures=[f for f in usecase.get("figures") or [] if isinstance(f, dict)],
                  records=_records(ctx.t, usecase), profile=_profile(ctx.t, usecase),
                  plot_enabled=plot_enabled, display_value=lambda v: _display_value(ctx.t, v),
                  config=browser_config(ctx, usecase=slug, chartTexts=ctx.t.subset("chart")))


def _position(geometry: Any) -> list[float] | None:
    """[lon, lat] of a marker for a GeoJSON geometry (a point, or a point inside a shape)."""
    if not isinstance(geometry, dict):
        return None
    if geometry.get("type") == "Feature":
        geometry = geometry.get("geometry") or {}
    if geometry.get("type") == "Point":
        coords = geometry.get("coordinates") or []
        return [float(coords[0]), float(coords[1])] if len(coords) >= 2 else None
    try:
        from shapely.geometry import shape

        point = shape(geometry).representative_point()
    except Exception:  # an unusable geometry: the station stays in the list, off the map
        return None
    return [point.x, point.y]


def collect_stations(tiles: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every Thing of the public use cases once, with its worst status and all its streams."""
    stations: dict[Any, dict[str, Any]] = {}
    for tile in tiles:
        for st in tile.get("stations") or []:
            entry = stations.get(st["thing_id"])
            if entry is None:
                entry = stations[st["thing_id"]] = {
                    "thing_id": st["thing_id"], "name": st.get("name", ""),
                    "position": _position(st.get("location")),
                    "status": st.get("status") or {"level": "unknown"},
                    "tenant": st.get("tenant"),  # a county's roll-up: the station's town
                    "usecases": [], "datastreams": [], "_seen": set(),
                }
            entry["usecases"].append({"slug": tile["slug"], "title": tile.get("title", "")})
            status = st.get("status") or {}
            if LEVEL_RANK.get(status.get("level"), 0) > LEVEL_RANK.get(
                    entry["status"].get("level"), 0):
                entry["status"] = status
            for ds in st.get("datastreams") or []:
                if ds["id"] not in entry["_seen"]:
                    entry["_seen"].add(ds["id"])
                    entry["datastreams"].append(ds)
    result = []
    for entry in stations.values():
        entry.pop("_seen")
        result.append(entry)
    return sorted(result, key=lambda s: str(s["name"]).casefold())


def _map_payload(ctx: PageContext, stations: list[dict[str, Any]]) -> dict[str, Any]:
    settings = ctx.request.app.state.settings
    t = ctx.t
    markers = []
    for s in stations:
        if not s["position"]:
            continue
        level = s["status"].get("level") if s["status"].get("level") in LEVEL_RANK else "unknown"
        markers.append({
            "id": s["thing_id"], "position": s["position"], "level": level,
            "name": (t("tenant.station_of", station=s["name"], town=s["tenant"]["name"])
                     if ctx.county and s.get("tenant") else s["name"]),
            "statusText": s["status"].get("text") or t(f"status.level.{level}"),
            "usecases": [{"title": u["title"], "url": ctx.url(f"/usecase/{u['slug']}")}
                         for u in s["usecases"]],
            "datastreams": [{
                "id": ds["id"], "name": ds.get("name", ""),
                "unit": ds["unit_symbol"] if "unit_symbol" in ds else unit_symbol(ds.get("unit")),
                "value": (ds.get("latest") or {}).get("value"),
                "time": (ds.get("latest") or {}).get("time"),
                "series": ctx.url(f"/api/v1/datastreams/{ds['id']}/series"),
            } for ds in s["datastreams"]],
        })
    # The configured outline is the installation's town; a tenant's map goes without it.
    outline = settings.town_outline if ctx.tenant is None else None
    return {
        "markers": markers,
        "tileUrl": settings.map_tile_url,
        "tileAttribution": settings.map_tile_attribution,
        "outline": ctx.url("/map/outline.geojson") if outline else None,
        "usecases": ctx.url("/api/v1/usecases", lang=ctx.lang),
    }


async def map_page(request: Request) -> Response:
    ctx = page_context(request)
    tiles = await overview_tiles(request, ctx.lang)
    stations = collect_stations(tiles)
    return render(ctx, "map.html", page="map", stations=stations,
                  map_enabled=bool(ctx.bundle("map.js")), map_data=_map_payload(ctx, stations),
                  config=browser_config(ctx, mapTexts=ctx.t.subset("map")))


async def town_outline(request: Request) -> Response:
    """The configured town outline (GeoJSON), so the default map needs no tile server."""
    path = request.app.state.settings.town_outline
    if not path:
        raise HTTPException(404)
    try:
        data = Path(path).read_bytes()
        orjson.loads(data)
    except (OSError, orjson.JSONDecodeError) as exc:
        log.warning("town_outline %s cannot be used: %s", path, exc)
        raise HTTPException(404) from None
    return Response(data, media_type="application/geo+json",
                    headers={"Cache-Control": "public, max-age=3600"})


def _contact(ctx: PageContext) -> Any:
    """The feedback address of the accessibility statement, as a link when configured."""
    contact = ctx.request.app.state.settings.accessibility_contact
    if not contact:
        return ctx.t("a11y.contact_missing")
    href = contact if ":" in contact else f"mailto:{contact}"
    return ctx.t("a11y.contact_html", href=href, contact=contact)


async def accessibility(request: Request) -> Response:
    ctx = page_context(request)
    town = (ctx.tenant.name if ctx.tenant else request.app.state.settings.town_name) \
        or ctx.t("a11y.town_fallback")
    return render(ctx, "prose.html", page="a11y", key="a11y", easy=False,
                  params={"contact": _contact(ctx), "town": town}, config=browser_config(ctx))


async def easy_read(request: Request) -> Response:
    ctx = page_context(request)
    return render(ctx, "prose.html", page="easy", key="easy", easy=True,
                  params={"contact": _contact(ctx)}, config=browser_config(ctx))
