"""The dashboard's Python API, shared by the JSON endpoints and the server-rendered pages.

- `usecase_overview(app_state, lang)`: one tile per use case that has public Datastreams;
- `usecase_detail(app_state, slug, lang)`: a tile plus charts, records, averages, profile;
- `series(app_state, datastream_id, start, end, interval, stats)`: aggregated time series;
- `latest(app_state, thing=, observed_property=, usecase=)`: newest value of each Datastream.

Only public data is ever read here: a Datastream is shown when it and its Thing have
`is_public` set. Errors are `ortspuls.sta.errors` exceptions (BadRequest, NotFound), so callers
can turn them into JSON error bodies or error pages.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ortspuls.dashboard import summaries
from ortspuls.dashboard.summaries import Context, Memo, Stream, Summary, iso, status, worst
from ortspuls.dashboard.texts import Texts
from ortspuls.dashboard.usecase import GENERIC, UseCase, assign, usecases
from ortspuls.db.schema import entity_tables, link_tables
from ortspuls.db.types import from_micros, to_micros
from ortspuls.sta.errors import BadRequest, NotFound
from ortspuls.sta.values import GEOJSON_ENCODINGS, format_time
from ortspuls.timeseries import rollups
from ortspuls.timeseries.events import EntityEvent, kinds
from ortspuls.timeseries.latest import Latest
from ortspuls.timeseries.rollups import INTERVALS, STATS, LocalCalendar, SeriesRequest

DATASTREAMS = entity_tables["Datastream"]
THINGS = entity_tables["Thing"]
OBSERVED_PROPERTIES = entity_tables["ObservedProperty"]
LOCATIONS = entity_tables["Location"]
THING_LOCATIONS = link_tables["thing_locations"]

# Longest series answered in one request (e.g. 347 days of ten-minute buckets).
MAX_BUCKETS = 50_000
DEFAULT_STATS = ("mean", "min", "max", "sum", "count")
# Chart ranges of the detail pages: span and bucket interval.
CHART_RANGES = {"24h": (timedelta(hours=24), "PT1H"), "48h": (timedelta(hours=48), "PT1H"),
                "7d": (timedelta(days=7), "PT1H"), "30d": (timedelta(days=30), "P1D"),
                "1y": (timedelta(days=365), "P1D")}


@dataclass(slots=True)
class DashboardState:
    """What the dashboard keeps per process (`app.state.dashboard`)."""

    calendar: LocalCalendar
    memo: Memo
    base_url: str  # public_base_url, or "" for links relative to the server root
    metadata: MetadataCache = field(default_factory=lambda: MetadataCache())


def _dashboard(app_state: Any) -> DashboardState:
    state = getattr(app_state, "dashboard", None)
    if state is None:
        raise RuntimeError("the dashboard is not started (ortspuls.dashboard.api.start)")
    return state


# ---------------------------------------------------------------------------------------------
# Public Datastreams


def _geometry(location: Any, encoding: str | None) -> dict | None:
    if not isinstance(location, dict) or (encoding and encoding not in GEOJSON_ENCODINGS):
        return None
    if location.get("type") == "Feature":
        geometry = location.get("geometry")
        return geometry if isinstance(geometry, dict) else None
    return location


class MetadataCache:
    """Names, units, properties, locations and use cases of all Datastreams, kept per process.

    Reloaded (one query for all Datastreams, one for the Things' Locations) when the event bus
    reports a change of a Thing, Datastream, ObservedProperty or Location, and at the latest
    after `max_age` seconds, for changes made through other worker processes. Visibility is not
    taken from here: every call asks the database which Datastreams are public right now.
    """

    WATCHED = frozenset({"Thing", "Datastream", "ObservedProperty", "Location"})

    def __init__(self, max_age: float = 5.0) -> None:
        self.max_age = max_age
        self._streams: dict[int, Stream] = {}
        self._version = 0
        self._loaded_version = -1
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    def on_events(self, events: Sequence[EntityEvent]) -> None:
        if any(entity in self.WATCHED for _op, entity in kinds(events)):
            self._version += 1

    def _current(self) -> bool:
        return (self._loaded_version == self._version
                and time.monotonic() - self._loaded_at <= self.max_age)

    async def streams(self, conn: AsyncConnection, *, force: bool = False) -> dict[int, Stream]:
        if force or not self._current():
            async with self._lock:
                if force or not self._current():
                    await self._load(conn)
        return self._streams

    async def _load(self, conn: AsyncConnection) -> None:
        version = self._version
        d, t, op = DATASTREAMS, THINGS, OBSERVED_PROPERTIES
        rows = (await conn.execute(
            select(d.c.id, d.c.name, d.c.description, d.c.unit_of_measurement,
                   d.c.observation_type, d.c.properties, d.c.thing_id,
                   t.c.name.label("thing_name"), t.c.properties.label("thing_properties"),
                   op.c.id.label("op_id"), op.c.name.label("op_name"),
                   op.c.definition.label("op_definition"))
            .select_from(d.join(t, t.c.id == d.c.thing_id)
                         .join(op, op.c.id == d.c.observed_property_id))
            .order_by(d.c.id))).all()
        locations: dict[int, dict | None] = {}
        tl, loc = THING_LOCATIONS, LOCATIONS
        for row in await conn.execute(
            select(tl.c.thing_id, loc.c.location, loc.c.encoding_type)
            .join(loc, loc.c.id == tl.c.location_id)
            .order_by(tl.c.thing_id, loc.c.id.desc())
        ):
            if row.thing_id not in locations:  # the newest Location of each Thing
                locations[row.thing_id] = _geometry(row.location, row.encoding_type)
        streams = {}
        for r in rows:
            unit = r.unit_of_measurement if isinstance(r.unit_of_measurement, dict) else None
            symbol = str(unit.get("symbol") or "") if unit else ""
            slug, role = assign(r.op_name, r.op_definition, symbol, r.properties,
                                r.thing_properties)
            streams[r.id] = Stream(
                id=r.id, name=r.name, description=r.description, unit=unit,
                unit_symbol=symbol, observation_type=r.observation_type,
                properties=r.properties, thing_id=r.thing_id, thing_name=r.thing_name,
                thing_properties=r.thing_properties, location=locations.get(r.thing_id),
                op_id=r.op_id, op_name=r.op_name, op_definition=r.op_definition,
                usecase=slug, role=role)
        self._streams = streams
        self._loaded_version = version
        self._loaded_at = time.monotonic()


async def public_streams(conn: AsyncConnection, app_state: Any, *,
                         thing: int | None = None, observed_property: int | None = None,
                         datastream: int | None = None, visibility: Any = None,
                         tenants: Iterable[int] | None = None) -> list[Stream]:
    """Every public Datastream (of a public Thing) with its use case, role and newest value.

    Which Datastreams are public is read from the database on every call (a query of ids
    only), so a Datastream made internal disappears at once; everything else comes from the
    metadata cache and the latest-value cache.
    """
    dash = _dashboard(app_state)
    d, t = DATASTREAMS, THINGS
    stmt = select(d.c.id).select_from(d.join(t, t.c.id == d.c.thing_id)).order_by(d.c.id)
    if visibility is None:
        stmt = stmt.where(d.c.is_public, t.c.is_public)
    else:
        # A caller with an API key or a login (ortspuls.tenancy.visibility): its own internal
        # Datastreams and those shared with it as well, of Things it may see.
        stmt = stmt.where(visibility("Datastream", d), visibility("Thing", t))
    if tenants is not None:
        # One tenant's (or a county's) dashboard.
        stmt = stmt.where(d.c.tenant_id.in_(sorted(tenants)))
    if thing is not None:
        stmt = stmt.where(d.c.thing_id == thing)
    if observed_property is not None:
        stmt = stmt.where(d.c.observed_property_id == observed_property)
    if datastream is not None:
        stmt = stmt.where(d.c.id == datastream)
    public = (await conn.execute(stmt)).scalars().all()
    known = await dash.metadata.streams(conn)
    if any(i not in known for i in public):
        known = await dash.metadata.streams(conn, force=True)  # created through another worker
    cache = app_state.latest
    await cache.settle()
    templates = usecases()
    now = datetime.now(UTC)
    out = []
    for ident in public:
        meta = known.get(ident)
        if meta is None:
            continue  # deleted meanwhile
        latest_value = cache.get(ident)
        out.append(meta.with_state(latest_value,
                                   _is_fresh(meta, latest_value, templates[meta.usecase], now)))
    return out


def _is_fresh(stream: Stream, latest_value: Latest | None, template: UseCase,
              now: datetime) -> bool:
    if latest_value is None:
        return False
    minutes = template.stale_after_minutes
    props = stream.properties
    if isinstance(props, Mapping) and isinstance(props.get("stale_after_minutes"), int | float):
        minutes = float(props["stale_after_minutes"])
    return now - latest_value.time <= timedelta(minutes=minutes)


# ---------------------------------------------------------------------------------------------
# Tiles


def sta_url(dash: DashboardState, datastream_id: int, tenant: str | None = None) -> str:
    """The Datastream in the SensorThings API; with `tenant`, in that tenant's view."""
    scope = f"/t/{tenant}" if tenant else ""
    return f"{dash.base_url}{scope}/v1.1/Datastreams({datastream_id})"


async def station_owners(conn: AsyncConnection, app_state: Any, thing_ids: Iterable[int]
                         ) -> dict[int, dict[str, str]]:
    """Which municipality each station (Thing) belongs to, for a county's roll-up: one query
    for the Things' tenant ids, names from the cached tenant directory."""
    ids = sorted(set(thing_ids))
    if not ids:
        return {}
    rows = (await conn.execute(select(THINGS.c.id, THINGS.c.tenant_id)
                               .where(THINGS.c.id.in_(ids)))).all()
    out = {}
    for row in rows:
        tenant = await app_state.tenants.by_id(row.tenant_id)
        if tenant is not None:
            out[row.id] = {"slug": tenant.slug, "name": tenant.name}
    return out


# Every tile and the latest list show each stream's newest time; most of them are the same
# from one request to the next, so their texts are kept instead of formatted each time.
_time_text = functools.lru_cache(maxsize=8192)(format_time)


def _latest_json(stream: Stream) -> dict[str, Any] | None:
    if stream.latest is None:
        return None
    return {"time": _time_text(stream.latest.time), "value": stream.latest.value}


def _tile(t: Texts, dash: DashboardState, template: UseCase, members: list[Stream],
          summary: Summary, now: datetime, tenant: str | None = None,
          owners: Mapping[int, dict[str, str]] | None = None) -> dict[str, Any]:
    stations: dict[int, dict[str, Any]] = {}
    for s in sorted(members, key=lambda m: (m.thing_name, m.thing_id, m.name, m.id)):
        station = stations.get(s.thing_id)
        if station is None:
            station = stations[s.thing_id] = {
                "thing_id": s.thing_id, "name": s.thing_name, "location": s.location,
                "status": None, "datastreams": []}
            if owners is not None:
                station["tenant"] = owners.get(s.thing_id)
        station["datastreams"].append({
            "id": s.id, "name": s.name, "observed_property": s.op_name,
            "observed_property_id": s.op_id, "role": s.role, "unit": s.unit,
            "unit_symbol": t.unit(s.unit), "latest": _latest_json(s),
            "status": summary.stream_status.get(s.id) or status("unknown", t("status.no_data")),
            "sta_url": sta_url(dash, s.id, tenant)})
    for thing_id, station in stations.items():
        station["status"] = (summary.station_status.get(thing_id)
                             or worst(ds["status"] for ds in station["datastreams"]))
    times = [s.latest.time for s in members if s.latest is not None]
    hour = from_micros(to_micros(now) - to_micros(now) % rollups.HOUR_US)
    return {
        "slug": template.slug,
        "title": t(f"usecase.{template.slug}.title"),
        "summary": t(f"usecase.{template.slug}.summary"),
        "icon": template.icon,
        "status": summary.status,
        "headline": summary.headline,
        "updated": iso(max(times)) if times else None,
        "stale": not any(s.fresh for s in members),
        "trend": summary.trend,
        "trend_interval": "PT1H",
        "trend_start": iso(hour - timedelta(hours=23)),
        "stations": list(stations.values()),
        "figures": summary.figures,
    }


async def _summarise(conn: AsyncConnection, dash: DashboardState, t: Texts,
                     template: UseCase, members: list[Stream], now: datetime,
                     detail: bool) -> Summary:
    ctx = Context(conn=conn, calendar=dash.calendar, now=now, t=t, detail=detail,
                  memo=dash.memo, template=template, streams=members)
    return await summaries.SUMMARISERS[template.summary](ctx)


async def usecase_overview(app_state: Any, lang: str = "de", *, tenant: str | None = None
                           ) -> list[dict[str, Any]]:
    """One tile per use case with public Datastreams, in the templates' order. With `tenant`
    (a slug), of that tenant's view only (a county: itself and its member towns, each station
    naming its town); NotFound for an unknown slug."""
    dash = _dashboard(app_state)
    t = Texts(lang)
    now = datetime.now(UTC)
    view = await _tenant_view(app_state, tenant)
    async with app_state.db.read() as conn:
        streams = await public_streams(conn, app_state, tenants=view)
        owners = (await station_owners(conn, app_state, (s.thing_id for s in streams))
                  if view is not None else None)
        groups: dict[str, list[Stream]] = {}
        for s in streams:
            groups.setdefault(s.usecase, []).append(s)
        tiles = []
        for slug, template in usecases().items():
            members = groups.get(slug)
            if members:
                summary = await _summarise(conn, dash, t, template, members, now, False)
                tiles.append(_tile(t, dash, template, members, summary, now, tenant, owners))
    return tiles


async def _tenant_view(app_state: Any, tenant: str | None) -> frozenset[int] | None:
    """The tenant ids of a `/t/<slug>/` dashboard (None: all tenants)."""
    if tenant is None:
        return None
    view = await app_state.tenants.view(tenant)
    if view is None:
        raise NotFound(f"no municipality {tenant!r}")
    return view


def chart_window(range_key: str, now: datetime | None = None
                 ) -> tuple[datetime, datetime, str]:
    """(from, to, interval) of a chart range such as "24h", "7d" or "1y"."""
    span, interval = CHART_RANGES[range_key]
    end = now or datetime.now(UTC)
    return end - span, end, interval


def _series_url(datastream_id: int, start: datetime, end: datetime, interval: str,
                stats: Sequence[str], tenant: str | None = None) -> str:
    scope = f"/t/{tenant}" if tenant else ""
    return (f"{scope}/api/v1/datastreams/{datastream_id}/series?from={iso(start)}&to={iso(end)}"
            f"&interval={interval}&stats={','.join(stats)}")


async def usecase_detail(app_state: Any, slug: str, lang: str = "de", *,
                         tenant: str | None = None) -> dict[str, Any]:
    """A use case's tile with charts, records, averages and profile; NotFound if unknown.
    `tenant` as for `usecase_overview`."""
    template = usecases().get(slug)
    if template is None:
        raise NotFound(f"no use case {slug!r}; known: {', '.join(usecases())}")
    dash = _dashboard(app_state)
    t = Texts(lang)
    now = datetime.now(UTC)
    view = await _tenant_view(app_state, tenant)
    async with app_state.db.read() as conn:
        members = [s for s in await public_streams(conn, app_state, tenants=view)
                   if s.usecase == slug]
        owners = (await station_owners(conn, app_state, (s.thing_id for s in members))
                  if view is not None else None)
        summary = await _summarise(conn, dash, t, template, members, now, True)
    tile = _tile(t, dash, template, members, summary, now, tenant, owners)
    stats = ("sum", "count") if summary.chart_stat == "sum" else ("mean", "min", "max")
    charts = []
    for s in sorted(members, key=lambda m: (m.thing_name, m.name, m.id)):
        if s.latest is not None and s.number is None:
            continue  # text or JSON results have no chart
        windows = {}
        for key in template.chart_ranges:
            start, end, interval = chart_window(key, now)
            windows[key] = {"from": iso(start), "to": iso(end), "interval": interval,
                            "label": t(f"range.{key}"),
                            "url": _series_url(s.id, start, end, interval, stats, tenant)}
        charts.append({"datastream_id": s.id,
                       "title": t("chart.title", station=s.thing_name, name=s.name),
                       "unit": t.unit(s.unit), "stat": summary.chart_stat,
                       "stats": list(stats), "ranges": list(template.chart_ranges),
                       "series": windows, "sta_url": sta_url(dash, s.id, tenant)})
    tile.update(charts=charts, records=summary.records, averages=summary.averages,
                profile=summary.profile, timezone=dash.calendar.name)
    return tile


# ---------------------------------------------------------------------------------------------
# Series


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_moment(value: str | datetime, name: str, calendar: LocalCalendar) -> datetime:
    """An ISO 8601 time: with offset or Z as given; a date alone is local midnight; a time
    without offset is local time (the town's time zone)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=calendar.zone)\
            .astimezone(UTC)
    text = str(value).strip()
    try:
        if _DATE.match(text):
            return calendar.midnight(date.fromisoformat(text))
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise BadRequest(f"{name}: {value!r} is not an ISO 8601 time (examples: 2024-05-01, "
                         "2024-05-01T12:00:00Z, 2024-05-01T14:00:00+02:00)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=calendar.zone)
    return parsed.astimezone(UTC)


def parse_stats(stats: str | Iterable[str] | None) -> tuple[str, ...]:
    if stats is None or stats == "":
        return DEFAULT_STATS
    items = [s.strip() for s in (stats.split(",") if isinstance(stats, str) else stats)]
    out: list[str] = []
    for item in items:
        if item not in STATS:
            raise BadRequest(f"stats: unknown statistic {item!r}; use any of "
                             f"{', '.join(STATS)}")
        if item not in out:
            out.append(item)
    if not out:
        raise BadRequest(f"stats: name at least one of {', '.join(STATS)}")
    return tuple(out)


async def series(app_state: Any, datastream_id: int | str, start: str | datetime | None,
                 end: str | datetime | None, interval: str = "PT1H",
                 stats: str | Iterable[str] | None = None, *,
                 public_only: bool = True, visibility: Any = None) -> dict[str, Any]:
    """Aggregates of one public Datastream per bucket, empty buckets left out. `start`
    defaults to `end` minus one day (PT10M, PT1H), one year (P1D) or two years (P1M); `end`
    to now. BadRequest for bad parameters, NotFound for an unknown or internal Datastream
    (`public_only=False` is for callers that checked visibility themselves)."""
    try:
        datastream_id = int(datastream_id)  # also from a URL path, as text
    except (TypeError, ValueError):
        raise NotFound(f"no public Datastream with id {datastream_id!r}") from None
    dash = _dashboard(app_state)
    calendar = dash.calendar
    if interval not in INTERVALS:
        raise BadRequest(f"interval: {interval!r} is not supported; use one of "
                         f"{', '.join(INTERVALS)}")
    chosen = parse_stats(stats)
    until = parse_moment(end, "to", calendar) if end else datetime.now(UTC)
    if start:
        since = parse_moment(start, "from", calendar)
    else:
        span = {"PT10M": timedelta(days=1), "PT1H": timedelta(days=1),
                "P1D": timedelta(days=365), "P1M": timedelta(days=730)}[interval]
        since = until - span
    if since >= until:
        raise BadRequest("from must be before to")
    buckets = rollups.bucket_count_estimate(interval, since, until)
    if buckets > MAX_BUCKETS:
        raise BadRequest(f"the range holds about {buckets} buckets of {interval}; at most "
                         f"{MAX_BUCKETS} per request: choose a shorter range or a longer "
                         "interval")
    async with app_state.db.read() as conn:
        d = DATASTREAMS
        stmt = (select(d.c.name, d.c.unit_of_measurement)
                .select_from(d.join(THINGS, THINGS.c.id == d.c.thing_id))
                .where(d.c.id == datastream_id))
        if visibility is not None:
            stmt = stmt.where(visibility("Datastream", d))
        elif public_only:
            stmt = stmt.where(d.c.is_public, THINGS.c.is_public)
        found = (await conn.execute(stmt)).first()
        if found is None:
            raise NotFound(f"no public Datastream with id {datastream_id}")
        values = await rollups.series(conn, calendar, SeriesRequest(
            datastream_id, since, until, interval, chosen))
    return {
        "datastream_id": datastream_id,
        "name": found.name,
        "interval": interval,
        "timezone": calendar.name,
        "unit": found.unit_of_measurement,
        "from": iso(rollups.bucket_floor(calendar, interval, since)),
        "to": iso(until),
        "stats": list(chosen),
        "value": values,
    }


# ---------------------------------------------------------------------------------------------
# Latest values


async def latest(app_state: Any, *, thing: int | None = None,
                 observed_property: int | None = None,
                 usecase: str | None = None, visibility: Any = None) -> list[dict[str, Any]]:
    """The newest value of every public Datastream (optionally of one Thing, ObservedProperty
    or use case), from the latest-value cache; with `visibility`, of every Datastream the
    caller may see."""
    if usecase is not None and usecase not in usecases():
        raise BadRequest(f"usecase: unknown use case {usecase!r}; known: "
                         f"{', '.join(usecases())}")
    now = datetime.now(UTC)
    async with app_state.db.read() as conn:
        streams = await public_streams(conn, app_state, thing=thing,
                                       observed_property=observed_property,
                                       visibility=visibility)
    out = []
    for s in streams:
        if usecase is not None and s.usecase != usecase:
            continue
        entry = s.latest
        out.append({
            "datastream_id": s.id,
            "thing_id": s.thing_id,
            "name": s.name,
            "thing_name": s.thing_name,
            "observed_property": s.op_name,
            "observed_property_id": s.op_id,
            "usecase": s.usecase,
            "unit": s.unit,
            "time": _time_text(entry.time) if entry is not None else None,
            "value": entry.value if entry is not None else None,
            "age_seconds": (round((now - entry.time).total_seconds(), 1)
                            if entry is not None else None),
            "stale": not s.fresh,
        })
    return out


__all__ = ["GENERIC", "DashboardState", "chart_window", "latest", "parse_moment",
           "public_streams", "series", "usecase_detail", "usecase_overview"]
