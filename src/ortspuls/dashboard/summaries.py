"""How each use case summarises its Datastreams: headline, status, figures, trend, details.

A summariser gets the use case's Datastreams (with their newest values from the latest-value
cache) and answers from the cache and the rollups — a few aggregate queries over all the use
case's Datastreams at once, never one query per Datastream and never a scan of raw history.
The only raw reads are short windows: the last hour of people counts, the noise levels of the
current day and night (LAeq is an energy average, which sums of decibels cannot give), and the
level of each gauge one hour ago (one index seek each).

Figures that change slowly (records, long averages, hourly profiles) are memoised for a few
minutes; everything current is computed per call.
"""

from __future__ import annotations

import math
import time as monotonic_time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from ortspuls.dashboard.texts import Texts
from ortspuls.dashboard.usecase import UseCase, threshold
from ortspuls.db.types import from_micros, to_micros
from ortspuls.timeseries.latest import Latest
from ortspuls.timeseries.rollups import (
    HOUR_US,
    LocalCalendar,
    as_datetime,
    bucket_totals,
    stream_totals,
    time_param,
)

LEVELS = ("unknown", "ok", "warn", "alert")
_RANK = {level: i for i, level in enumerate(LEVELS)}
EPOCH_START = datetime(1970, 1, 2, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Data passed around


@dataclass(slots=True)
class Stream:
    """A public Datastream with what the dashboard needs to know about it."""

    id: int
    name: str
    description: str
    unit: dict | None
    unit_symbol: str
    observation_type: str
    properties: dict | None
    thing_id: int
    thing_name: str
    thing_properties: dict | None
    location: dict | None
    op_id: int
    op_name: str
    op_definition: str
    usecase: str
    role: str | None
    latest: Latest | None = None
    fresh: bool = False

    def with_state(self, latest: Latest | None, fresh: bool) -> Stream:
        """A copy with the newest value (the cached metadata object stays untouched)."""
        return Stream(self.id, self.name, self.description, self.unit, self.unit_symbol,
                      self.observation_type, self.properties, self.thing_id, self.thing_name,
                      self.thing_properties, self.location, self.op_id, self.op_name,
                      self.op_definition, self.usecase, self.role, latest, fresh)

    @property
    def number(self) -> float | None:
        """The newest result as a number (booleans as 0/1), if it is one."""
        if self.latest is None:
            return None
        value = self.latest.value
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if isinstance(value, int | float):
            return float(value)
        return None

    @property
    def current(self) -> float | None:
        """The newest number, but only while it is fresh."""
        return self.number if self.fresh else None


@dataclass(slots=True)
class Summary:
    headline: dict[str, Any]
    status: dict[str, str]
    figures: list[dict[str, Any]] = field(default_factory=list)
    trend: list[float | None] = field(default_factory=list)
    stream_status: dict[int, dict[str, str]] = field(default_factory=dict)
    station_status: dict[int, dict[str, str]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    averages: list[dict[str, Any]] = field(default_factory=list)
    profile: dict[str, Any] | None = None
    # Which statistic charts of this use case show ("sum" for counts, "mean" for levels).
    chart_stat: str = "mean"


class Memo:
    """Results of slow-changing aggregate queries, kept for `ttl` seconds."""

    def __init__(self, ttl: float = 300.0, max_entries: int = 512) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[Any, tuple[float, Any]] = {}

    async def get(self, key: Any, compute: Callable[[], Awaitable[Any]]) -> Any:
        now = monotonic_time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await compute()
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (now + self.ttl, value)
        return value

    def clear(self) -> None:
        self._entries.clear()


@dataclass(slots=True)
class Context:
    conn: AsyncConnection
    calendar: LocalCalendar
    now: datetime
    t: Texts
    detail: bool
    memo: Memo
    template: UseCase
    streams: list[Stream]

    @property
    def slug(self) -> str:
        return self.template.slug

    def say(self, key: str, **params: Any) -> str:
        return self.t(f"usecase.{self.slug}.{key}", **params)

    def ids(self, role: str | None = None) -> list[int]:
        return [s.id for s in self.streams if (role is None or s.role == role)]

    def of_role(self, *roles: str) -> list[Stream]:
        return [s for s in self.streams if s.role in roles]

    @property
    def today(self) -> datetime:
        return self.calendar.day_start(self.now)

    @property
    def yesterday(self) -> datetime:
        return self.calendar.midnight(self.calendar.local_date(self.now) - timedelta(days=1))

    @property
    def hour(self) -> datetime:
        """Start of the current UTC hour."""
        t = to_micros(self.now)
        return from_micros(t - t % HOUR_US)

    def memo_key(self, kind: str, *extra: Any) -> tuple:
        return (self.slug, kind, tuple(sorted(self.ids())), *extra)


def status(level: str, text: str) -> dict[str, str]:
    return {"level": level, "text": text}


def worst(statuses: Iterable[dict[str, str]]) -> dict[str, str] | None:
    best: dict[str, str] | None = None
    for item in statuses:
        if best is None or _RANK[item["level"]] > _RANK[best["level"]]:
            best = item
    return best


def figure(key: str, label: str, value: Any, unit: str = "") -> dict[str, Any]:
    return {"key": key, "label": label, "value": _round(value), "unit": unit}


def _round(value: Any, digits: int = 2) -> Any:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return round(value, digits)
    return value


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def stale_status(ctx: Context, stream: Stream) -> dict[str, str]:
    if stream.latest is None:
        return status("unknown", ctx.t("status.no_data"))
    return status("unknown", ctx.t("status.stale"))


def _mean(values: Iterable[float | None]) -> float | None:
    items = [v for v in values if v is not None]
    return sum(items) / len(items) if items else None


# ---------------------------------------------------------------------------------------------
# Shared queries


async def hourly_trend(ctx: Context, ids: list[int], stat: str) -> list[float | None]:
    """The last 24 hourly values (oldest first, None where no data) of all `ids` together:
    `sum` adds the counts of every stream, `mean` is the mean over all values."""
    first = ctx.hour - timedelta(hours=23)
    rows = await bucket_totals(ctx.conn, "rollups_hourly", ids, first)
    by_hour = {to_micros(r[0]): r for r in rows}
    out: list[float | None] = []
    for i in range(24):
        row = by_hour.get(to_micros(first) + i * HOUR_US)
        if row is None or not row[1]:
            out.append(None)
        elif stat == "sum":
            out.append(_round(row[2]))
        else:
            out.append(_round(row[2] / row[1]))
    return out


async def daily_totals(ctx: Context, ids: list[int], since: datetime | None = None
                       ) -> list[tuple[datetime, float]]:
    """(local day, sum over all `ids`) for every day with data since `since`."""
    rows = await bucket_totals(ctx.conn, "rollups_daily", ids, since or EPOCH_START)
    return [(r[0], r[2]) for r in rows]


def _by_local_hour(ctx: Context, rows: Iterable[tuple], stat: str
                   ) -> dict[tuple[Any, int], float]:
    """Hourly rollup totals per (local date, local hour): the two UTC hours of the repeated
    autumn hour are one hour of that day; `sum` adds the counts, `mean` averages the values."""
    per: dict[tuple[Any, int], list[float]] = {}
    zone = ctx.calendar.zone
    for bucket, n, total, _lo, _hi, _streams in rows:
        if not n:
            continue
        local = bucket.astimezone(zone)
        entry = per.setdefault((local.date(), local.hour), [0.0, 0])
        entry[0] += total
        entry[1] += n
    return {key: (t if stat == "sum" else t / n) for key, (t, n) in per.items()}


async def local_hour_profile(ctx: Context, ids: list[int], days: int, stat: str,
                             split_weekend: bool = False) -> dict[str, list[float | None]]:
    """Mean per local hour of day over the last `days` complete days (of the days with data
    in that hour): for `sum` the mean hourly total, for `mean` the mean value. With
    `split_weekend`, separate weekday and weekend profiles."""
    start = ctx.calendar.midnight(ctx.calendar.local_date(ctx.now) - timedelta(days=days))
    rows = await bucket_totals(ctx.conn, "rollups_hourly", ids, start, ctx.today)
    groups = ("weekday", "weekend") if split_weekend else ("all",)
    totals = {g: [0.0] * 24 for g in groups}
    counts = {g: [0] * 24 for g in groups}
    for (day, hour), value in _by_local_hour(ctx, rows, stat).items():
        group = ("weekend" if day.weekday() >= 5 else "weekday") if split_weekend else "all"
        totals[group][hour] += value
        counts[group][hour] += 1
    return {g: [_round(totals[g][h] / counts[g][h]) if counts[g][h] else None
                for h in range(24)] for g in groups}


async def usual_now(ctx: Context, ids: list[int], days: int) -> float | None:
    """The mean hourly total of the current local hour on the same kind of day (weekday or
    weekend) over the last `days` complete days: the one profile value a tile needs, read
    from a few dozen rollup buckets instead of the whole profile."""
    zone = ctx.calendar.zone
    local = ctx.now.astimezone(zone)
    weekend = local.weekday() >= 5
    starts = set()
    for back in range(1, days + 1):
        day = local.date() - timedelta(days=back)
        if (day.weekday() >= 5) != weekend:
            continue
        for fold in (0, 1):  # both UTC hours of a repeated local hour
            moment = datetime.combine(day, datetime.min.time(), tzinfo=zone).replace(
                hour=local.hour, fold=fold).astimezone(UTC)
            if moment.astimezone(zone).hour == local.hour:
                starts.add(to_micros(moment))
    if not ids or not starts:
        return None
    rows = (await ctx.conn.execute(text(
        "SELECT bucket_start, CAST(sum(value_count) AS BIGINT), sum(value_sum), 0, 0, 0"
        f" FROM rollups_hourly WHERE datastream_id IN ({_id_list(ids)})"
        f" AND bucket_start IN ({', '.join(f':b{i}' for i in range(len(starts)))})"
        " GROUP BY bucket_start"),
        {f"b{i}": time_param(ctx.conn, from_micros(t)) for i, t in enumerate(sorted(starts))}
    )).all()
    totals = _by_local_hour(ctx, [(as_datetime(r[0]), *r[1:]) for r in rows], "sum")
    return _round(_mean(totals.values()))


async def newest_hour_means(ctx: Context, ids: list[int]) -> dict[int, float]:
    """Per Datastream the mean of its newest hourly bucket in the last two hours."""
    if not ids:
        return {}
    since = ctx.hour - timedelta(hours=1)
    rows = (await ctx.conn.execute(text(
        "SELECT datastream_id, bucket_start, value_sum / value_count FROM rollups_hourly"
        f" WHERE datastream_id IN ({_id_list(ids)}) AND bucket_start >= :t0"
        " ORDER BY datastream_id, bucket_start"), {"t0": time_param(ctx.conn, since)})).all()
    return {r[0]: r[2] for r in rows}  # the later bucket of a stream overwrites the earlier


async def values_at(ctx: Context, ids: list[int], moment: datetime
                    ) -> dict[int, tuple[datetime, float]]:
    """Per Datastream its newest numeric value at or before `moment` (one index seek each)."""
    if not ids:
        return {}
    seek = ("SELECT {col} FROM observations o WHERE o.datastream_id = d.id"
            " AND o.phenomenon_time_start <= :t AND o.result_number IS NOT NULL"
            " ORDER BY o.phenomenon_time_start DESC LIMIT 1")
    rows = (await ctx.conn.execute(text(
        f"SELECT d.id, ({seek.format(col='o.phenomenon_time_start')}),"
        f" ({seek.format(col='o.result_number')}) FROM datastreams d"
        f" WHERE d.id IN ({_id_list(ids)})"), {"t": time_param(ctx.conn, moment)})).all()
    return {r[0]: (as_datetime(r[1]), r[2]) for r in rows if r[1] is not None}


async def stream_records(ctx: Context, ids: list[int], column: str, descending: bool = True,
                         since: datetime | None = None) -> dict[int, tuple[datetime, float]]:
    """Per Datastream the daily rollup with the highest (lowest) `column` expression, and its
    value: e.g. the record day of a counter (`value_sum`) or the highest level (`value_max`)."""
    if not ids:
        return {}
    order = "DESC" if descending else "ASC"
    rows = (await ctx.conn.execute(text(
        "SELECT datastream_id, bucket_start, v FROM (SELECT datastream_id, bucket_start,"
        f" {column} AS v, row_number() OVER (PARTITION BY datastream_id ORDER BY {column}"
        f" {order}, bucket_start DESC) AS rank FROM rollups_daily"
        f" WHERE datastream_id IN ({_id_list(ids)}) AND bucket_start >= :t0) AS ranked"
        " WHERE rank = 1"), {"t0": time_param(ctx.conn, since or EPOCH_START)})).all()
    return {r[0]: (as_datetime(r[1]), r[2]) for r in rows}


def _id_list(ids: Iterable[int]) -> str:
    return ", ".join(str(int(i)) for i in ids)


def _profile(ctx: Context, key: str, profiles: Mapping[str, list[float | None]], unit: str
             ) -> dict[str, Any]:
    return {
        "key": key,
        "label": ctx.say(f"profile.{key}"),
        "hours": list(range(24)),
        "unit": unit,
        "series": [{"key": name, "label": ctx.t(f"profile.{name}"), "values": values}
                   for name, values in profiles.items()],
    }


# ---------------------------------------------------------------------------------------------
# Counts: Radverkehr and Besucherfrequenz


async def counts(ctx: Context) -> Summary:
    """Counters: today so far, yesterday, record day, hourly profile, daily average."""
    return await _counts(ctx, split_weekend=False)


async def _counts(ctx: Context, split_weekend: bool) -> Summary:
    ids = ctx.ids()
    word = ctx.say("unit")
    per_day = await bucket_totals(ctx.conn, "rollups_daily", ids, ctx.yesterday)
    today = sum(r[2] for r in per_day if r[0] == ctx.today)
    yesterday = sum(r[2] for r in per_day if r[0] == ctx.yesterday)
    per_stream_today = await stream_totals(ctx.conn, "rollups_daily", ids, ctx.today)
    fresh = [s for s in ctx.streams if s.fresh]
    summary = Summary(
        headline={"value": _round(today), "unit": word, "label": ctx.say("headline")},
        status=(status("ok", ctx.say("status.ok", today=today, yesterday=yesterday))
                if fresh else status("unknown", ctx.t("status.stale"))),
        figures=[figure("today", ctx.say("figure.today"), today, word),
                 figure("yesterday", ctx.say("figure.yesterday"), yesterday, word)],
        trend=await hourly_trend(ctx, ids, "sum"),
        chart_stat="sum",
    )
    for s in ctx.streams:
        count_today = per_stream_today.get(s.id, (0, 0.0))[1]
        summary.stream_status[s.id] = (
            status("ok", ctx.say("station.today", today=count_today)) if s.fresh
            else stale_status(ctx, s))
    if ctx.detail:
        await _count_details(ctx, summary, ids, word, split_weekend)
    return summary


async def _count_details(ctx: Context, summary: Summary, ids: list[int], word: str,
                         split_weekend: bool = False) -> None:
    days = await ctx.memo.get(ctx.memo_key("days", ctx.today, ctx.hour),
                              lambda: daily_totals(ctx, ids))
    complete = [(d, v) for d, v in days if d < ctx.today]
    if days:
        best_day, best = max(days, key=lambda item: (item[1], item[0]))
        summary.records.append({"key": "record_day", "label": ctx.say("figure.record_day"),
                                "value": _round(best), "unit": word, "time": iso(best_day)})
    per_stream = await ctx.memo.get(
        ctx.memo_key("stream-records", ctx.today, ctx.hour),
        lambda: stream_records(ctx, ids, "value_sum"))
    names = {s.id: s for s in ctx.streams}
    for sid, (day, value) in sorted(per_stream.items()):
        summary.records.append({
            "key": "record_day", "label": ctx.say("figure.record_day_station",
                                                  station=names[sid].thing_name),
            "value": _round(value), "unit": word, "time": iso(day), "datastream_id": sid})
    average = _mean(v for _, v in complete)
    summary.averages.append({"key": "daily_average", "label": ctx.say("figure.daily_average"),
                             "value": _round(average), "unit": word,
                             "days": len(complete)})
    summary.figures.append(figure("record_day", ctx.say("figure.record_day"),
                                  summary.records[0]["value"] if summary.records else None, word))
    summary.figures.append(figure("daily_average", ctx.say("figure.daily_average"), average,
                                  word))
    if split_weekend:
        weekday = _mean(v for d, v in complete
                        if d.astimezone(ctx.calendar.zone).weekday() < 5)
        weekend = _mean(v for d, v in complete
                        if d.astimezone(ctx.calendar.zone).weekday() >= 5)
        summary.averages.append({"key": "weekday_average",
                                 "label": ctx.say("figure.weekday_average"),
                                 "value": _round(weekday), "unit": word})
        summary.averages.append({"key": "weekend_average",
                                 "label": ctx.say("figure.weekend_average"),
                                 "value": _round(weekend), "unit": word})
    profile_days = int(ctx.template.thresholds.get("profile_days", 28))
    profiles = await ctx.memo.get(
        ctx.memo_key("profile", ctx.today, split_weekend),
        lambda: local_hour_profile(ctx, ids, profile_days, "sum", split_weekend))
    summary.profile = _profile(ctx, "hourly", profiles, word)


async def visitors(ctx: Context) -> Summary:
    """People counters: last hour, today so far, usual for this hour on this kind of day."""
    ids = ctx.ids()
    word = ctx.say("unit")
    since = ctx.now - timedelta(hours=1)
    last_hour = 0.0
    if ids:
        last_hour = (await ctx.conn.execute(text(
            "SELECT coalesce(sum(result_number), 0) FROM observations"
            f" WHERE datastream_id IN ({_id_list(ids)}) AND phenomenon_time_start > :t0"
            " AND phenomenon_time_start <= :t1"),
            {"t0": time_param(ctx.conn, since), "t1": time_param(ctx.conn, ctx.now)}
        )).scalar() or 0.0
    summary = await _counts(ctx, split_weekend=True)
    summary.headline = {"value": _round(last_hour), "unit": word,
                        "label": ctx.say("headline")}
    summary.figures.insert(0, figure("last_hour", ctx.say("figure.last_hour"), last_hour, word))
    profile_days = int(ctx.template.thresholds.get("profile_days", 28))
    usual = await ctx.memo.get(ctx.memo_key("usual", ctx.today, ctx.hour),
                               lambda: usual_now(ctx, ids, profile_days))
    summary.figures.append(figure("usual", ctx.say("figure.usual"), usual, word))
    if any(s.fresh for s in ctx.streams):
        busy = float(ctx.template.thresholds.get("busy", 1.3))
        quiet = float(ctx.template.thresholds.get("quiet", 0.7))
        if not usual:
            summary.status = status("ok", ctx.say("status.no_profile", count=last_hour))
        elif last_hour > busy * usual:
            summary.status = status("warn", ctx.say("status.busy", count=last_hour,
                                                    usual=usual))
        elif last_hour < quiet * usual:
            summary.status = status("ok", ctx.say("status.quiet", count=last_hour,
                                                  usual=usual))
        else:
            summary.status = status("ok", ctx.say("status.normal", count=last_hour,
                                                  usual=usual))
    return summary


# ---------------------------------------------------------------------------------------------
# Parking


def _capacity(stream: Stream) -> float | None:
    for props in (stream.properties, stream.thing_properties):
        if isinstance(props, Mapping):
            value = props.get("capacity")
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return float(value)
    return None


def _occupancy_level(ctx: Context, occupancy: float, stream: Stream | None = None) -> str:
    sources = (stream.properties, stream.thing_properties) if stream else ()
    warn = threshold(ctx.template, "occupancy_warn", *sources, default=70)
    alert = threshold(ctx.template, "occupancy_alert", *sources, default=90)
    if occupancy >= alert:
        return "alert"
    if occupancy >= warn:
        return "warn"
    return "ok"


_PARKING_KIND = {"free": 0, "occupied": 1, "occupancy": 2}


def _parking_values(streams: list[Stream]) -> str | None:
    """`VALUES (datastream, capacity, kind), …` of the streams whose capacity is known."""
    rows = []
    for s in streams:
        cap = 1.0 if s.role == "occupied" else _capacity(s)
        if cap is not None:
            rows.append(f"({int(s.id)}, {float(cap)!r}, {_PARKING_KIND.get(s.role or 'free', 0)})")
    return ", ".join(rows) or None


async def _occupancy_by_hour(ctx: Context, streams: list[Stream], start: datetime,
                             end: datetime | None = None) -> list[tuple[datetime, float]]:
    """Per hour: occupied share (%) of the capacity of the streams with data in that hour."""
    values = _parking_values(streams)
    if values is None:
        return []
    params = {"t0": time_param(ctx.conn, start)}
    until = ""
    if end is not None:
        params["t1"] = time_param(ctx.conn, end)
        until = " AND r.bucket_start < :t1"
    mean = "(r.value_sum / r.value_count)"
    # A join with the streams' capacities (not a CASE per stream: hundreds of single spaces).
    rows = (await ctx.conn.execute(text(
        f"WITH caps(ds, cap, kind) AS (VALUES {values}) "
        "SELECT r.bucket_start, CAST(sum(CASE caps.kind"
        f" WHEN 0 THEN caps.cap - {mean} WHEN 1 THEN {mean}"
        f" ELSE caps.cap * {mean} / 100.0 END) AS DOUBLE PRECISION),"
        " CAST(sum(caps.cap) AS DOUBLE PRECISION)"
        " FROM caps JOIN rollups_hourly r ON r.datastream_id = caps.ds"
        f" WHERE r.bucket_start >= :t0{until}"
        " GROUP BY r.bucket_start ORDER BY r.bucket_start"), params)).all()
    return [(as_datetime(r[0]), 100.0 * r[1] / r[2]) for r in rows if r[2]]


async def parking(ctx: Context) -> Summary:
    """Free spaces, occupancy in percent, parking pressure, peak hours."""
    spaces = ctx.say("unit")
    free_total = capacity_total = 0.0
    percent_only: list[float] = []
    summary = Summary(headline={}, status=status("unknown", ctx.t("status.stale")))
    by_station: dict[int, list[float]] = {}
    for s in ctx.streams:
        value = s.current
        if value is None:
            summary.stream_status[s.id] = stale_status(ctx, s)
            continue
        cap = _capacity(s)
        free: float | None = None
        if s.role == "occupied":
            cap, free = 1.0, 0.0 if value >= 0.5 else 1.0
            summary.stream_status[s.id] = (status("alert", ctx.say("space.occupied"))
                                           if free == 0 else status("ok", ctx.say("space.free")))
        elif s.role == "occupancy":
            if cap is not None:
                free = cap * (1 - value / 100.0)
            else:
                percent_only.append(value)
            summary.stream_status[s.id] = status(
                _occupancy_level(ctx, value, s), ctx.say("stream.occupancy", percent=value))
        else:
            free = max(value, 0.0)
            if cap is not None:
                occupancy = 100.0 * (1 - min(free, cap) / cap)
                summary.stream_status[s.id] = status(
                    _occupancy_level(ctx, occupancy, s),
                    ctx.say("stream.free_of", free=free, capacity=cap))
            else:
                summary.stream_status[s.id] = status("ok", ctx.say("stream.free", free=free))
        if free is not None and cap is not None:
            free_total += free
            capacity_total += cap
            station = by_station.setdefault(s.thing_id, [0.0, 0.0])
            station[0] += free
            station[1] += cap
    for thing, (free, cap) in by_station.items():
        occupancy = 100.0 * (1 - free / cap)
        summary.station_status[thing] = status(
            _occupancy_level(ctx, occupancy), ctx.say("stream.free_of", free=free, capacity=cap))
    occupancy_total: float | None = None
    if capacity_total:
        occupancy_total = 100.0 * (1 - free_total / capacity_total)
    elif percent_only:
        occupancy_total = _mean(percent_only)
    if occupancy_total is not None:
        level = _occupancy_level(ctx, occupancy_total)
        summary.status = status(level, ctx.say(f"status.{level}", percent=occupancy_total,
                                               free=free_total))
    summary.headline = {"value": _round(free_total) if capacity_total else None,
                        "unit": spaces, "label": ctx.say("headline")}
    summary.figures = [
        figure("free", ctx.say("figure.free"), free_total if capacity_total else None, spaces),
        figure("capacity", ctx.say("figure.capacity"),
               capacity_total if capacity_total else None, spaces),
        figure("occupancy", ctx.say("figure.occupancy"), occupancy_total, "%"),
    ]
    by_hour = await _occupancy_by_hour(ctx, ctx.streams, ctx.hour - timedelta(hours=23))
    hours = {to_micros(b): v for b, v in by_hour}
    first = to_micros(ctx.hour) - 23 * HOUR_US
    summary.trend = [_round(hours.get(first + i * HOUR_US)) for i in range(24)]
    if ctx.detail:
        days = int(ctx.template.thresholds.get("profile_days", 28))
        profile = await ctx.memo.get(ctx.memo_key("profile", ctx.today),
                                     lambda: _parking_profile(ctx, days))
        summary.profile = _profile(ctx, "occupancy", {"all": profile}, "%")
        ranked = sorted((v, h) for h, v in enumerate(profile) if v is not None)
        peaks = sorted(h for _, h in ranked[-int(ctx.template.thresholds.get("peak_hours", 3)):])
        summary.records.append({"key": "peak_hours", "label": ctx.say("figure.peak_hours"),
                                "value": peaks, "unit": "h", "time": None})
        summary.averages.append({"key": "occupancy_average",
                                 "label": ctx.say("figure.occupancy_average", days=days),
                                 "value": _round(_mean(profile)), "unit": "%"})
    return summary


async def _parking_profile(ctx: Context, days: int) -> list[float | None]:
    start = ctx.calendar.midnight(ctx.calendar.local_date(ctx.now) - timedelta(days=days))
    sums, counts_ = [0.0] * 24, [0] * 24
    for bucket, occupancy in await _occupancy_by_hour(ctx, ctx.streams, start, ctx.today):
        hour = bucket.astimezone(ctx.calendar.zone).hour
        sums[hour] += occupancy
        counts_[hour] += 1
    return [_round(sums[h] / counts_[h]) if counts_[h] else None for h in range(24)]


# ---------------------------------------------------------------------------------------------
# Water level


_LENGTH_CM = {"m": 100.0, "dm": 10.0, "cm": 1.0, "mm": 0.1}


def _level_thresholds(ctx: Context, s: Stream) -> tuple[float | None, float | None, float]:
    """(warn, alert, rise per hour) in the Datastream's own unit."""
    own = None
    for props in (s.properties, s.thing_properties):
        if isinstance(props, Mapping) and isinstance(props.get("thresholds"), Mapping):
            own = props["thresholds"]
            break
    factor = 1.0
    template_unit = str(ctx.template.thresholds.get("unit", "cm"))
    if s.unit_symbol in _LENGTH_CM and template_unit in _LENGTH_CM:
        factor = _LENGTH_CM[template_unit] / _LENGTH_CM[s.unit_symbol]
    defaults = ctx.template.thresholds

    def pick(key: str) -> float | None:
        if own is not None and isinstance(own.get(key), int | float):
            return float(own[key])
        if own is not None and key in ("warn", "alert"):
            return None  # the gauge has its own levels; do not mix in defaults
        value = defaults.get(key)
        return None if value is None else float(value) * factor

    return pick("warn"), pick("alert"), pick("rise_warn_per_hour") or math.inf


async def level(ctx: Context) -> Summary:
    """Gauges: current level against warning levels, rise per hour, 48-hour chart."""
    ids = ctx.ids()
    before = await values_at(ctx, ids, ctx.now - timedelta(hours=1))
    summary = Summary(headline={}, status=status("unknown", ctx.t("status.stale")))
    ranked: list[tuple[float, Stream, float | None]] = []
    for s in ctx.streams:
        value = s.current
        if value is None:
            summary.stream_status[s.id] = stale_status(ctx, s)
            continue
        warn, alert, rise_limit = _level_thresholds(ctx, s)
        rate = None
        earlier = before.get(s.id)
        if earlier is not None and s.latest is not None:
            hours = (s.latest.start - earlier[0]).total_seconds() / 3600
            if 0.25 <= hours <= 3:
                rate = (value - earlier[1]) / hours
        unit = ctx.t.unit(s.unit)
        params = {"value": value, "unit": unit, "warn": warn, "alert": alert,
                  "rate": rate if rate is not None else 0.0}
        if alert is not None and value >= alert:
            st = status("alert", ctx.say("status.alert", **params))
        elif warn is not None and value >= warn:
            st = status("warn", ctx.say("status.warn", **params))
        elif rate is not None and rate >= rise_limit:
            st = status("warn", ctx.say("status.rising", **params))
        else:
            st = status("ok", ctx.say("status.ok", **params))
        summary.stream_status[s.id] = st
        ratio = value / warn if warn else 0.0
        ranked.append((_RANK[st["level"]] * 1000 + ratio, s, rate))
    if ranked:
        _, top, rate = max(ranked, key=lambda item: item[0])
        warn, alert, _ = _level_thresholds(ctx, top)
        unit = ctx.t.unit(top.unit)
        summary.status = summary.stream_status[top.id]
        summary.headline = {"value": _round(top.current), "unit": unit,
                            "label": ctx.say("headline", station=top.thing_name)}
        summary.figures = [
            figure("level", ctx.say("figure.level"), top.current, unit),
            figure("rise", ctx.say("figure.rise"), rate, f"{unit}/h"),
            figure("warn", ctx.say("figure.warn"), warn, unit),
            figure("alert", ctx.say("figure.alert"), alert, unit),
        ]
        summary.trend = await hourly_trend(ctx, [top.id], "mean")
    else:
        summary.headline = {"value": None, "unit": "", "label": ctx.say("headline_none")}
    if ctx.detail:
        highest = await ctx.memo.get(ctx.memo_key("highest", ctx.today, ctx.hour),
                                     lambda: stream_records(ctx, ids, "value_max"))
        month = await stream_totals(ctx.conn, "rollups_daily", ids,
                                    ctx.now - timedelta(days=30))
        for s in ctx.streams:
            unit = ctx.t.unit(s.unit)
            if s.id in highest:
                day, value = highest[s.id]
                summary.records.append({
                    "key": "highest", "label": ctx.say("figure.highest", station=s.thing_name),
                    "value": _round(value), "unit": unit, "time": iso(day),
                    "datastream_id": s.id})
            if s.id in month and month[s.id][0]:
                n, total, _lo, _hi = month[s.id]
                summary.averages.append({
                    "key": "mean_30d", "label": ctx.say("figure.mean_30d", station=s.thing_name),
                    "value": _round(total / n), "unit": unit, "datastream_id": s.id})
    return summary


# ---------------------------------------------------------------------------------------------
# Soil moisture at trees


def _soil_state(ctx: Context, s: Stream, value: float) -> str:
    sources = (s.properties, s.thing_properties)
    if s.role == "tension":
        kpa = value / 10 if s.unit_symbol == "hPa" else value
        if kpa > threshold(ctx.template, "tension_dry", *sources, default=60):
            return "dry"
        if kpa < threshold(ctx.template, "tension_wet", *sources, default=10):
            return "wet"
        return "moist"
    if value < threshold(ctx.template, "moisture_dry", *sources, default=15):
        return "dry"
    if value > threshold(ctx.template, "moisture_wet", *sources, default=35):
        return "wet"
    return "moist"


_SOIL_LEVEL = {"dry": "alert", "moist": "ok", "wet": "ok"}


async def soil(ctx: Context) -> Summary:
    """Trees: dry / moist / wet per tree, with a watering hint."""
    summary = Summary(headline={}, status=status("unknown", ctx.t("status.stale")))
    trees: dict[int, str] = {}
    order = {"dry": 2, "wet": 1, "moist": 0}
    for s in ctx.streams:
        value = s.current
        if value is None:
            summary.stream_status[s.id] = stale_status(ctx, s)
            continue
        state = _soil_state(ctx, s, value)
        summary.stream_status[s.id] = status(_SOIL_LEVEL[state], ctx.say(f"state.{state}"))
        if s.thing_id not in trees or order[state] > order[trees[s.thing_id]]:
            trees[s.thing_id] = state
    for thing, state in trees.items():
        summary.station_status[thing] = status(_SOIL_LEVEL[state], ctx.say(f"hint.{state}"))
    dry = sum(1 for v in trees.values() if v == "dry")
    wet = sum(1 for v in trees.values() if v == "wet")
    total = len({s.thing_id for s in ctx.streams})
    tree_word = ctx.say("unit")
    summary.headline = {"value": dry, "unit": tree_word, "label": ctx.say("headline")}
    if trees:
        summary.status = (status("alert", ctx.say("status.dry", n=dry, total=total)) if dry
                          else status("ok", ctx.say("status.ok", total=total)))
    summary.figures = [
        figure("dry", ctx.say("figure.dry"), dry, tree_word),
        figure("moist", ctx.say("figure.moist"), len(trees) - dry - wet, tree_word),
        figure("wet", ctx.say("figure.wet"), wet, tree_word),
        figure("trees", ctx.say("figure.trees"), total, tree_word),
    ]
    moisture = [s.id for s in ctx.streams if s.role == "moisture"] or ctx.ids()
    summary.trend = await hourly_trend(ctx, moisture, "mean")
    if ctx.detail:
        week = await stream_totals(ctx.conn, "rollups_daily", ctx.ids(),
                                   ctx.now - timedelta(days=7))
        for s in ctx.streams:
            if s.id in week and week[s.id][0]:
                n, total_value, _lo, _hi = week[s.id]
                summary.averages.append({
                    "key": "mean_7d", "label": ctx.say("figure.mean_7d", station=s.thing_name),
                    "value": _round(total_value / n), "unit": ctx.t.unit(s.unit),
                    "datastream_id": s.id})
        driest = await ctx.memo.get(
            ctx.memo_key("driest", ctx.today),
            lambda: stream_records(ctx, moisture, "value_min", descending=False,
                                   since=ctx.now - timedelta(days=365)))
        for sid, (day, value) in sorted(driest.items()):
            s = next(x for x in ctx.streams if x.id == sid)
            summary.records.append({
                "key": "driest", "label": ctx.say("figure.driest", station=s.thing_name),
                "value": _round(value), "unit": ctx.t.unit(s.unit), "time": iso(day),
                "datastream_id": sid})
    return summary


# ---------------------------------------------------------------------------------------------
# Air quality


_AIR_LEVEL = ("ok", "ok", "warn", "alert", "alert")
_POLLUTANTS = ("pm10", "pm25", "no2")


def air_band(template: UseCase, role: str, value: float) -> int:
    """Index class 0 (sehr gut) … 4 (sehr schlecht) of an hourly mean in µg/m³."""
    bands = template.thresholds.get("bands", {}).get(role)
    if not bands:
        return 0
    rounded = math.floor(value + 0.5)
    for i, upper in enumerate(bands):
        if rounded <= upper:
            return i
    return len(bands)


async def air(ctx: Context) -> Summary:
    """PM10, PM2.5 and NO₂ hourly means with the index band of the worst pollutant."""
    means = await newest_hour_means(ctx, [s.id for s in ctx.streams if s.fresh])
    summary = Summary(headline={}, status=status("unknown", ctx.t("status.stale")))
    by_role: dict[str, list[float]] = {}
    worst_band, worst_role, worst_value = -1, None, None
    for s in ctx.streams:
        value = means.get(s.id, s.current) if s.fresh else None
        if value is None or s.role not in _POLLUTANTS:
            summary.stream_status[s.id] = stale_status(ctx, s)
            continue
        band = air_band(ctx.template, s.role, value)
        band_text = ctx.say(f"band.{band}")
        summary.stream_status[s.id] = status(
            _AIR_LEVEL[band], ctx.say("stream", pollutant=ctx.say(f"pollutant.{s.role}"),
                                      band=band_text, value=value))
        by_role.setdefault(s.role, []).append(value)
        if band > worst_band:
            worst_band, worst_role, worst_value = band, s.role, value
    unit = ctx.t.unit({"symbol": "ug/m3"})
    if worst_role is not None:
        band_text = ctx.say(f"band.{worst_band}")
        summary.status = status(_AIR_LEVEL[worst_band], ctx.say(
            f"status.{worst_band}", band=band_text,
            pollutant=ctx.say(f"pollutant.{worst_role}")))
        summary.headline = {"value": band_text, "unit": "", "label": ctx.say("headline"),
                            "band": worst_band, "pollutant": worst_role,
                            "pollutant_value": _round(worst_value)}
    else:
        summary.headline = {"value": None, "unit": "", "label": ctx.say("headline")}
    summary.figures = [figure(role, ctx.say(f"pollutant.{role}"), _mean(by_role.get(role, ())),
                              unit) for role in _POLLUTANTS
                       if any(s.role == role for s in ctx.streams)]
    trend_role = next((r for r in _POLLUTANTS if any(s.role == r for s in ctx.streams)), None)
    if trend_role is not None:
        summary.trend = await hourly_trend(ctx, ctx.ids(trend_role), "mean")
        summary.figures.append({"key": "trend_pollutant", "label": ctx.say("figure.trend"),
                                "value": ctx.say(f"pollutant.{trend_role}"), "unit": ""})
    if ctx.detail:
        day = await stream_totals(ctx.conn, "rollups_hourly", ctx.ids(),
                                  ctx.now - timedelta(hours=24))
        for role in _POLLUTANTS:
            ids = [s.id for s in ctx.streams if s.role == role and s.id in day]
            if ids:
                n = sum(day[i][0] for i in ids)
                total = sum(day[i][1] for i in ids)
                summary.averages.append({"key": f"{role}_24h",
                                         "label": ctx.say("figure.mean_24h",
                                                          pollutant=ctx.say(f"pollutant.{role}")),
                                         "value": _round(total / n), "unit": unit})
        highest = await ctx.memo.get(
            ctx.memo_key("highest", ctx.today),
            lambda: stream_records(ctx, ctx.ids(), "value_sum / value_count",
                                   since=ctx.now - timedelta(days=365)))
        for s in ctx.streams:
            if s.id in highest and s.role in _POLLUTANTS:
                day_start, value = highest[s.id]
                summary.records.append({
                    "key": "highest_daily_mean",
                    "label": ctx.say("figure.highest_day", station=s.thing_name,
                                     pollutant=ctx.say(f"pollutant.{s.role}")),
                    "value": _round(value), "unit": unit, "time": iso(day_start),
                    "datastream_id": s.id})
    return summary


# ---------------------------------------------------------------------------------------------
# Weather


def _wind_ms(s: Stream, value: float) -> float:
    return value / 3.6 if s.unit_symbol in ("km/h", "km.h-1") else value


async def weather(ctx: Context) -> Summary:
    """Per station temperature, humidity, wind, rain and pressure; heat, frost and storm."""
    th = ctx.template.thresholds
    summary = Summary(headline={}, status=status("unknown", ctx.t("status.stale")))
    temps, humid, winds, pressure = [], [], [], []
    alerts: list[dict[str, str]] = []
    for s in ctx.streams:
        value = s.current
        if value is None:
            summary.stream_status[s.id] = stale_status(ctx, s)
            continue
        st = status("ok", ctx.say("stream.ok"))
        if s.role == "temperature":
            temps.append(value)
            if value >= th.get("heat", 30):
                st = status("warn", ctx.say("status.heat", value=value))
            elif value <= th.get("frost", 0):
                st = status("warn", ctx.say("status.frost", value=value))
        elif s.role == "wind_speed":
            ms = _wind_ms(s, value)
            winds.append(ms)
            if ms >= th.get("severe_storm", 24.5):
                st = status("alert", ctx.say("status.severe_storm", value=ms))
            elif ms >= th.get("storm", 17.2):
                st = status("warn", ctx.say("status.storm", value=ms))
        elif s.role == "humidity":
            humid.append(value)
        elif s.role == "pressure":
            pressure.append(value)
        summary.stream_status[s.id] = st
        if st["level"] != "ok":
            alerts.append(st)
    if any(s.fresh for s in ctx.streams):
        summary.status = worst(alerts) or status("ok", ctx.say("status.ok"))
    temperature = _mean(temps)
    celsius = ctx.t.unit({"symbol": "Cel"})
    summary.headline = {"value": _round(temperature), "unit": celsius,
                        "label": ctx.say("headline")}
    rain_ids = ctx.ids("precipitation")
    temp_ids = ctx.ids("temperature")
    today_rain = await stream_totals(ctx.conn, "rollups_daily", rain_ids, ctx.today)
    today_temp = await stream_totals(ctx.conn, "rollups_daily", temp_ids, ctx.today)
    rain = _mean(v[1] for v in today_rain.values()) if today_rain else None
    summary.figures = [figure("temperature", ctx.say("figure.temperature"), temperature,
                              celsius)]
    if today_temp:
        summary.figures.append(figure("temperature_min", ctx.say("figure.temperature_min"),
                                      min(v[2] for v in today_temp.values()), celsius))
        summary.figures.append(figure("temperature_max", ctx.say("figure.temperature_max"),
                                      max(v[3] for v in today_temp.values()), celsius))
    if humid:
        summary.figures.append(figure("humidity", ctx.say("figure.humidity"), _mean(humid), "%"))
    if winds:
        summary.figures.append(figure("wind", ctx.say("figure.wind"), max(winds), "m/s"))
    if rain_ids:
        summary.figures.append(figure("rain_today", ctx.say("figure.rain_today"), rain,
                                      ctx.t.unit({"symbol": "mm"})))
    if pressure:
        summary.figures.append(figure("pressure", ctx.say("figure.pressure"), _mean(pressure),
                                      "hPa"))
    summary.trend = await hourly_trend(ctx, temp_ids, "mean")
    if ctx.detail:
        extremes = await ctx.memo.get(ctx.memo_key("extremes", ctx.today), lambda: _weather_records(
            ctx, temp_ids))
        summary.records.extend(extremes)
        month = await stream_totals(ctx.conn, "rollups_daily", temp_ids + rain_ids,
                                    ctx.now - timedelta(days=30))
        t_rows = [month[i] for i in temp_ids if i in month]
        if t_rows and sum(r[0] for r in t_rows):
            summary.averages.append({
                "key": "temperature_30d", "label": ctx.say("figure.temperature_30d"),
                "value": _round(sum(r[1] for r in t_rows) / sum(r[0] for r in t_rows)),
                "unit": celsius})
        r_rows = [month[i] for i in rain_ids if i in month]
        if r_rows:
            summary.averages.append({
                "key": "rain_30d", "label": ctx.say("figure.rain_30d"),
                "value": _round(sum(r[1] for r in r_rows) / len(r_rows)),
                "unit": ctx.t.unit({"symbol": "mm"})})
    return summary


async def _weather_records(ctx: Context, temp_ids: list[int]) -> list[dict[str, Any]]:
    out = []
    celsius = ctx.t.unit({"symbol": "Cel"})
    since = ctx.now - timedelta(days=365)
    for key, column, descending in (("temperature_highest", "value_max", True),
                                    ("temperature_lowest", "value_min", False)):
        per_stream = await stream_records(ctx, temp_ids, column, descending, since)
        if per_stream:
            pick = max if descending else min
            day, value = pick(per_stream.values(), key=lambda item: item[1])
            out.append({"key": key, "label": ctx.say(f"figure.{key}"), "value": _round(value),
                        "unit": celsius, "time": iso(day)})
    return out


# ---------------------------------------------------------------------------------------------
# Noise


async def energy_means(ctx: Context, ids: list[int], start: datetime, end: datetime
                       ) -> dict[int, float]:
    """Per Datastream the energy-equivalent mean level (LAeq) of its values in [start, end)."""
    if not ids or end <= start:
        return {}
    params = {"t0": time_param(ctx.conn, start), "t1": time_param(ctx.conn, end)}
    try:
        rows = (await ctx.conn.execute(text(
            "SELECT datastream_id, 10 * log10(avg(power(10, result_number / 10.0)))"
            f" FROM observations WHERE datastream_id IN ({_id_list(ids)})"
            " AND phenomenon_time_start >= :t0 AND phenomenon_time_start < :t1"
            " AND result_number IS NOT NULL GROUP BY datastream_id"), params)).all()
        return {r[0]: r[1] for r in rows if r[1] is not None}
    except DBAPIError:
        # An SQLite built without its math functions: sum the energies here instead.
        rows = (await ctx.conn.execute(text(
            "SELECT datastream_id, result_number FROM observations"
            f" WHERE datastream_id IN ({_id_list(ids)}) AND phenomenon_time_start >= :t0"
            " AND phenomenon_time_start < :t1 AND result_number IS NOT NULL"), params)).all()
        energy: dict[int, list[float]] = {}
        for sid, value in rows:
            energy.setdefault(sid, []).append(10 ** (value / 10))
        return {sid: 10 * math.log10(sum(v) / len(v)) for sid, v in energy.items()}


def noise_periods(ctx: Context) -> tuple[tuple[datetime, datetime], tuple[datetime, datetime],
                                         bool]:
    """(current or last day period, current or last night period, is it night now)."""
    th = ctx.template.thresholds
    day_hour, night_hour = int(th.get("day_start_hour", 6)), int(th.get("night_start_hour", 22))
    zone = ctx.calendar.zone
    local = ctx.now.astimezone(zone)
    today = local.date()

    def at(day, hour):
        return datetime.combine(day, datetime.min.time(), tzinfo=zone).replace(
            hour=hour).astimezone(UTC)

    night_now = local.hour >= night_hour or local.hour < day_hour
    if local.hour < day_hour:
        day_period = (at(today - timedelta(days=1), day_hour),
                      at(today - timedelta(days=1), night_hour))
        night_period = (at(today - timedelta(days=1), night_hour), ctx.now)
    elif local.hour < night_hour:
        day_period = (at(today, day_hour), ctx.now)
        night_period = (at(today - timedelta(days=1), night_hour), at(today, day_hour))
    else:
        day_period = (at(today, day_hour), at(today, night_hour))
        night_period = (at(today, night_hour), ctx.now)
    return day_period, night_period, night_now


async def noise(ctx: Context) -> Summary:
    """LAeq now against day/night limits, LAeq of the (current or last) day and night."""
    th = ctx.template.thresholds
    ids = ctx.ids()
    day_period, night_period, night_now = noise_periods(ctx)

    async def levels(period: tuple[datetime, datetime]) -> dict[int, float]:
        if period[1] >= ctx.now:
            return await energy_means(ctx, ids, *period)  # the running period
        # A completed period does not change any more.
        return await ctx.memo.get(ctx.memo_key("laeq", period[0]),
                                  lambda: energy_means(ctx, ids, *period))

    day_levels = await levels(day_period)
    night_levels = await levels(night_period)
    period = "night" if night_now else "day"
    summary = Summary(headline={}, status=status("unknown", ctx.t("status.stale")))
    loudest: tuple[float, Stream] | None = None
    for s in ctx.streams:
        value = s.current
        if value is None:
            summary.stream_status[s.id] = stale_status(ctx, s)
            continue
        sources = (s.properties, s.thing_properties)
        warn = threshold(ctx.template, f"{period}_warn", *sources, default=th.get("day_warn"))
        alert = threshold(ctx.template, f"{period}_alert", *sources, default=th.get("day_alert"))
        level_ = "alert" if value >= alert else "warn" if value >= warn else "ok"
        summary.stream_status[s.id] = status(level_, ctx.say(f"status.{level_}.{period}",
                                                             value=value))
        if loudest is None or value > loudest[0]:
            loudest = (value, s)
    unit = ctx.t.unit({"symbol": "dB(A)"})
    if loudest is not None:
        summary.status = summary.stream_status[loudest[1].id]
        summary.headline = {"value": _round(loudest[0]), "unit": unit,
                            "label": ctx.say("headline", station=loudest[1].thing_name)}
    else:
        summary.headline = {"value": None, "unit": unit, "label": ctx.say("headline_none")}
    summary.figures = [
        figure("laeq_day", ctx.say("figure.laeq_day"), max(day_levels.values(), default=None),
               unit),
        figure("laeq_night", ctx.say("figure.laeq_night"),
               max(night_levels.values(), default=None), unit),
    ]
    summary.trend = await hourly_trend(ctx, ids, "mean")
    if ctx.detail:
        for s in ctx.streams:
            for key, levels, (start, _end) in (("laeq_day", day_levels, day_period),
                                               ("laeq_night", night_levels, night_period)):
                if s.id in levels:
                    summary.averages.append({
                        "key": key, "label": ctx.say(f"figure.{key}_station",
                                                     station=s.thing_name),
                        "value": _round(levels[s.id]), "unit": unit, "time": iso(start),
                        "datastream_id": s.id})
        profile = await ctx.memo.get(ctx.memo_key("profile", ctx.today),
                                     lambda: local_hour_profile(ctx, ids, 14, "mean"))
        summary.profile = _profile(ctx, "hourly", profile, unit)
    return summary


# ---------------------------------------------------------------------------------------------
# Generic tile


async def generic(ctx: Context) -> Summary:
    """Any other Datastream: its newest value, fresh or not."""
    summary = Summary(headline={}, status=status("unknown", ctx.t("status.stale")))
    for s in ctx.streams:
        summary.stream_status[s.id] = (status("ok", ctx.t("status.current")) if s.fresh
                                       else stale_status(ctx, s))
    if any(s.fresh for s in ctx.streams):
        summary.status = status("ok", ctx.say("status.ok", n=len(ctx.streams)))
    if len(ctx.streams) == 1:
        only = ctx.streams[0]
        value = only.latest.value if only.latest is not None else None
        summary.headline = {"value": _round(value), "unit": ctx.t.unit(only.unit),
                            "label": only.name}
    else:
        summary.headline = {"value": len(ctx.streams), "unit": "",
                            "label": ctx.say("headline", n=len(ctx.streams))}
    # Units differ between the streams here: the trend is that of the first numeric one.
    first = next((s for s in ctx.streams if s.number is not None), None)
    summary.trend = await hourly_trend(ctx, [first.id] if first else [], "mean")
    return summary


SUMMARISERS: dict[str, Callable[[Context], Awaitable[Summary]]] = {
    "counts": counts,
    "visitors": visitors,
    "parking": parking,
    "level": level,
    "soil": soil,
    "air": air,
    "weather": weather,
    "noise": noise,
    "generic": generic,
}
