"""Hourly and daily rollups of numeric observations, and the time series read from them.

For every Datastream, `rollups_hourly` holds count, sum, minimum and maximum of the numeric
results (`result_number`: numbers, and booleans as 0/1) per UTC hour, and `rollups_daily` the
same per *local* day of the town (`settings.timezone`, daylight saving included: a day is 23, 24
or 25 hours long). A bucket is stored as the UTC instant it starts at; an observation belongs to
the bucket of its `phenomenonTime` start. The mean is sum/count.

They are kept current in three ways:

- the observation writer calls `RollupKeeper.on_batch` inside each batch transaction with the
  stored columns; the buckets are slices of the time-ordered columns (C loops for count, sum,
  min and max), and one upsert statement per table adds them;
- updates and deletes of Observations (and deletes of FeaturesOfInterest, which take their
  Observations along) call `RollupKeeper.on_change` inside their transaction; the touched buckets
  are recomputed from the raw rows;
- `rebuild_rollups` fills everything from the raw rows with INSERT … SELECT (bulk loads, a
  changed time zone, a database that had observations before the rollups existed).

`series` answers PT1H, P1D and P1M (months grouped from the daily rollups) without reading raw
observations, and PT10M from the raw rows (an index range scan of one Datastream).

SQLite has no time zones, so local days are computed there by a CASE expression over the
zone's offset periods in the time range concerned (built from `zoneinfo`); PostgreSQL uses
`date_trunc(…, time zone)`.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import logging
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from ortspuls.db.schema import metadata
from ortspuls.db.types import EPOCH, Id, Timestamp, from_micros, to_micros

log = logging.getLogger(__name__)

MINUTE_US = 60_000_000
TEN_MINUTES_US = 10 * MINUTE_US
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US
# Every UTC offset in use is a multiple of 15 minutes: a local midnight never falls inside one.
QUARTER_US = 15 * MINUTE_US
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*")


def _rollup_table(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("datastream_id", Id, ForeignKey("datastreams.id", ondelete="CASCADE"),
               primary_key=True),
        Column("bucket_start", Timestamp, primary_key=True),
        Column("value_count", BigInteger, nullable=False),
        Column("value_sum", Float, nullable=False),
        Column("value_min", Float, nullable=False),
        Column("value_max", Float, nullable=False),
        # Clustered by (datastream, time) in SQLite: a year of one stream is one range read.
        sqlite_with_rowid=False,
    )


rollups_hourly = _rollup_table("rollups_hourly")
rollups_daily = _rollup_table("rollups_daily")
# What the rollups were built for (the time zone of the daily buckets).
rollup_state = Table(
    "rollup_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", Text, nullable=False),
)

INTERVALS = ("PT10M", "PT1H", "P1D", "P1M")
STATS = ("mean", "min", "max", "sum", "count")
# PostgreSQL sums bigints as numeric (Decimal in Python): keep counts integers.
_COUNT_SUM = "CAST(sum(value_count) AS BIGINT)"
_STAT_SQL = {"mean": "value_sum / value_count", "min": "value_min", "max": "value_max",
             "sum": "value_sum", "count": "value_count"}


# ---------------------------------------------------------------------------------------------
# Local calendar


class LocalCalendar:
    """Local days and months of one time zone, as UTC instants (and as SQL for SQLite)."""

    def __init__(self, timezone: str) -> None:
        if not _ZONE_NAME.fullmatch(timezone):
            raise ValueError(f"not a time zone name: {timezone!r}")
        self.name = timezone  # safe to put into SQL text (checked above)
        self.zone = ZoneInfo(timezone)
        self._day_of_quarter: dict[int, int] = {}

    # -- Python ---------------------------------------------------------------------------------

    def midnight(self, day: date) -> datetime:
        """The UTC instant local `day` begins."""
        return datetime.combine(day, time(0), tzinfo=self.zone).astimezone(UTC)

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def day_start(self, moment: datetime) -> datetime:
        return self.midnight(self.local_date(moment))

    def next_day(self, day_start: datetime) -> datetime:
        return self.midnight(self.local_date(day_start) + timedelta(days=1))

    def day_start_us(self, t_us: int) -> int:
        """Local day start (epoch µs) of an instant (epoch µs); cached per quarter hour."""
        quarter = t_us // QUARTER_US
        start = self._day_of_quarter.get(quarter)
        if start is None:
            if len(self._day_of_quarter) > 200_000:
                self._day_of_quarter.clear()
            start = to_micros(self.day_start(from_micros(quarter * QUARTER_US)))
            self._day_of_quarter[quarter] = start
        return start

    def month_start(self, moment: datetime) -> datetime:
        local = self.local_date(moment)
        return self.midnight(local.replace(day=1))

    def next_month(self, month_start: datetime) -> datetime:
        local = self.local_date(month_start)
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        return self.midnight(date(year, month, 1))

    def whole_hour_offsets(self, start: datetime, end: datetime) -> bool:
        """Whether every local midnight in [start, end] is a full UTC hour (then a local day is
        a union of UTC hours and daily rollups can be summed from hourly ones)."""
        day = self.local_date(start) - timedelta(days=1)
        last = self.local_date(end) + timedelta(days=1)
        while day <= last:
            if to_micros(self.midnight(day)) % HOUR_US:
                return False
            day += timedelta(days=1)
        return True

    # -- SQL (SQLite) ---------------------------------------------------------------------------

    def sqlite_day_sql(self, column: str, first_us: int, last_us: int) -> str:
        """SQL for the local day start (epoch µs) of `column` (epoch µs) in [first, last].

        Runs of ordinary days with the same UTC offset `o` share the formula
        ((t + o) / day) * day - o; a day of 23 or 25 hours is its own constant branch.
        """
        segments: list[list[Any]] = []  # [end_us (exclusive), expression]
        day = self.local_date(from_micros(first_us))
        while True:
            begin = to_micros(self.midnight(day))
            if begin > last_us:
                break
            end = to_micros(self.midnight(day + timedelta(days=1)))
            if end - begin == DAY_US:
                offset = (day - EPOCH.date()).days * DAY_US - begin
                expr = f"((({column}) + {offset}) / {DAY_US}) * {DAY_US} - {offset}"
            else:
                expr = str(begin)
            if segments and segments[-1][1] == expr:
                segments[-1][0] = end
            else:
                segments.append([end, expr])
            day += timedelta(days=1)
        if not segments:
            return str(self.day_start_us(first_us))
        if len(segments) == 1:
            return segments[0][1]
        branches = " ".join(f"WHEN ({column}) < {end} THEN {expr}" for end, expr in segments[:-1])
        return f"(CASE {branches} ELSE {segments[-1][1]} END)"

    def sqlite_month_sql(self, column: str, first_us: int, last_us: int) -> str:
        """SQL for the local month start (epoch µs) of a day start `column` in [first, last]."""
        month = self.month_start(from_micros(first_us))
        starts = [to_micros(month)]
        while True:
            month = self.next_month(month)
            if to_micros(month) > last_us:
                break
            starts.append(to_micros(month))
        if len(starts) == 1:
            return str(starts[0])
        branches = " ".join(f"WHEN ({column}) < {nxt} THEN {cur}"
                            for cur, nxt in itertools.pairwise(starts))
        return f"(CASE {branches} ELSE {starts[-1]} END)"


# ---------------------------------------------------------------------------------------------
# Dialect helpers


def _is_sqlite(conn: AsyncConnection | Connection) -> bool:
    return conn.dialect.name == "sqlite"


def _time_param(conn, value: datetime | int) -> Any:
    """A bound time value as the driver takes it: epoch µs on SQLite, datetime on PostgreSQL."""
    if _is_sqlite(conn):
        return value if isinstance(value, int) else to_micros(value)
    return from_micros(value) if isinstance(value, int) else value


def _to_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return from_micros(int(value))


def _upsert_sql(conn, table: str) -> str:
    if _is_sqlite(conn):
        low, high = "min", "max"
    else:
        low, high = "least", "greatest"
    return (
        f"INSERT INTO {table} (datastream_id, bucket_start, value_count, value_sum, value_min,"
        f" value_max) VALUES (:ds, :bucket, :n, :s, :lo, :hi)"
        f" ON CONFLICT (datastream_id, bucket_start) DO UPDATE SET"
        f" value_count = {table}.value_count + excluded.value_count,"
        f" value_sum = {table}.value_sum + excluded.value_sum,"
        f" value_min = {low}({table}.value_min, excluded.value_min),"
        f" value_max = {high}({table}.value_max, excluded.value_max)"
    )


def _hour_sql(conn, column: str) -> str:
    if _is_sqlite(conn):
        return f"(({column}) / {HOUR_US}) * {HOUR_US}"
    return f"date_trunc('hour', {column}, 'UTC')"


# ---------------------------------------------------------------------------------------------
# Maintenance


Span = tuple[int, datetime, datetime]  # (Datastream id, first time, last time)


class RollupKeeper:
    """Keeps the rollups of one database current; its hooks run inside the writers'
    transactions."""

    def __init__(self, timezone: str) -> None:
        self.calendar = LocalCalendar(timezone)

    def install(self, writer: Any) -> None:
        """Register with an ObservationWriter (`batch_hooks`, `change_hooks`)."""
        if self.on_batch not in writer.batch_hooks:
            writer.batch_hooks.append(self.on_batch)
        if self.on_change not in writer.change_hooks:
            writer.change_hooks.append(self.on_change)

    async def on_batch(self, conn: AsyncConnection, batches: Sequence[Any]) -> None:
        """Add freshly inserted observations (the writer's stored `ObservationColumns`): the
        buckets are computed from the columns, then one upsert per table."""
        hourly: dict[tuple[int, int], list] = {}
        daily: dict[tuple[int, int], list] = {}
        for batch in batches:
            stream, values = batch.datastream_id, batch.result_number
            if stream is None or values is None:
                continue
            times = batch.start_us
            if None in values:  # strings, JSON, nulls: not in numeric rollups
                keep = [i for i, v in enumerate(values) if v is not None]
                times, values = [times[i] for i in keep], [values[i] for i in keep]
            _add_buckets(hourly, daily, stream, times, values, self.calendar.day_start_us)
        for table, groups in (("rollups_hourly", hourly), ("rollups_daily", daily)):
            if groups:
                # In key order: concurrent writers (PostgreSQL, several workers) then lock the
                # same bucket rows in the same order and wait for each other instead of
                # deadlocking.
                params = [{"ds": ds, "bucket": _time_param(conn, bucket), "n": n, "s": s,
                           "lo": lo, "hi": hi}
                          for (ds, bucket), (n, s, lo, hi) in sorted(groups.items())]
                await conn.execute(text(_upsert_sql(conn, table)), params)

    async def on_change(self, conn: AsyncConnection, spans: Iterable[Span]) -> None:
        """Observations in these (Datastream, first, last) spans were changed or deleted:
        recompute the buckets they touch from the raw rows."""
        merged: dict[int, list[datetime]] = {}
        for stream, first_raw, last_raw in spans:
            # Aggregates over time columns come back as epoch µs on SQLite.
            first, last = _to_datetime(first_raw), _to_datetime(last_raw)
            if stream is None or first is None:
                continue
            last = last or first
            span = merged.get(stream)
            if span is None:
                merged[stream] = [first, last]
            else:
                span[0], span[1] = min(span[0], first), max(span[1], last)
        for stream, (first, last) in merged.items():
            await conn.run_sync(_recompute, self.calendar, [stream], first, last)


def _add_buckets(hourly: dict, daily: dict, stream: int, times: list[int],
                 values: list[float], day_start_us: Callable[[int], int]) -> None:
    """Add one Datastream's (time µs, value) columns to hourly and daily aggregates
    ([count, sum, min, max] per (stream, bucket start)).

    Rows are put in time order (they almost always come so); then each bucket is one slice of
    the columns, found by bisection at its start, and count, sum, min and max are C loops over
    the slice. Python work per row is one pass that finds the distinct quarter hours (every
    local midnight is a quarter hour, so they give hours and local days alike).
    """
    if not times:
        return
    if any(map(operator.gt, times, itertools.islice(times, 1, None))):
        order = sorted(range(len(times)), key=times.__getitem__)
        times, values = [times[i] for i in order], [values[i] for i in order]
    quarters = sorted({t // QUARTER_US for t in times})
    hours = sorted({q * QUARTER_US - q * QUARTER_US % HOUR_US for q in quarters})
    days = sorted({day_start_us(q * QUARTER_US) for q in quarters})
    for groups, starts in ((hourly, hours), (daily, days)):
        edges = [bisect.bisect_left(times, start) for start in starts]
        edges.append(len(times))
        for start, lo, hi in zip(starts, edges[:-1], edges[1:], strict=True):
            part = values[lo:hi]
            count, total, low, high = hi - lo, sum(part), min(part), max(part)
            agg = groups.get((stream, start))
            if agg is None:
                groups[(stream, start)] = [count, total, low, high]
            else:
                agg[0] += count
                agg[1] += total
                agg[2] = min(agg[2], low)
                agg[3] = max(agg[3], high)


def _recompute(conn: Connection, calendar: LocalCalendar, streams: Sequence[int] | None,
               first: datetime | None, last: datetime | None) -> None:
    """Replace the hourly and daily rollups of `streams` (None: all) covering [first, last]
    (None: everything) with aggregates of the raw rows."""
    sqlite = _is_sqlite(conn)
    where_stream = "" if streams is None else \
        f" AND datastream_id IN ({', '.join(str(int(s)) for s in streams)})"
    if first is None or last is None:
        first, last = _data_range(conn, streams)
        if first is None:
            conn.execute(text(f"DELETE FROM rollups_hourly WHERE 1 = 1{where_stream}"))
            conn.execute(text(f"DELETE FROM rollups_daily WHERE 1 = 1{where_stream}"))
            return
        window_all = True
    else:
        window_all = False
    hour_from = to_micros(first) - to_micros(first) % HOUR_US
    hour_to = to_micros(last) - to_micros(last) % HOUR_US + HOUR_US
    day_from = to_micros(calendar.day_start(first))
    day_to = to_micros(calendar.next_day(calendar.day_start(last)))
    # Whole days: the hourly range covers every hour of the days touched.
    hour_from, hour_to = min(hour_from, day_from), max(hour_to, day_to)
    params = {"h0": _time_param(conn, hour_from), "h1": _time_param(conn, hour_to),
              "d0": _time_param(conn, day_from), "d1": _time_param(conn, day_to)}

    if window_all:
        conn.execute(text(f"DELETE FROM rollups_hourly WHERE 1 = 1{where_stream}"))
        conn.execute(text(f"DELETE FROM rollups_daily WHERE 1 = 1{where_stream}"))
    else:
        conn.execute(text("DELETE FROM rollups_hourly WHERE bucket_start >= :h0 AND "
                          f"bucket_start < :h1{where_stream}"), params)
        conn.execute(text("DELETE FROM rollups_daily WHERE bucket_start >= :d0 AND "
                          f"bucket_start < :d1{where_stream}"), params)

    hour = _hour_sql(conn, "phenomenon_time_start")
    stream_list = list(streams) if streams is not None else _all_streams(conn)
    # One statement per Datastream: each an index range scan with a small sort, so memory
    # stays bounded however many observations there are.
    hourly_sql = text(
        "INSERT INTO rollups_hourly (datastream_id, bucket_start, value_count, value_sum,"
        " value_min, value_max)"
        f" SELECT datastream_id, {hour}, count(*), sum(result_number), min(result_number),"
        " max(result_number) FROM observations"
        " WHERE datastream_id = :ds AND phenomenon_time_start >= :h0"
        " AND phenomenon_time_start < :h1 AND result_number IS NOT NULL"
        f" GROUP BY datastream_id, {hour}")
    for stream in stream_list:
        conn.execute(hourly_sql, {**params, "ds": stream})

    if calendar.whole_hour_offsets(from_micros(day_from), from_micros(day_to)):
        # Local days are unions of UTC hours: sum the hourly rollups just written.
        source, column, lo, hi = "rollups_hourly", "bucket_start", ":h0", ":h1"
        count, total, low, high = (_COUNT_SUM, "sum(value_sum)", "min(value_min)",
                                   "max(value_max)")
    else:
        source, column, lo, hi = "observations", "phenomenon_time_start", ":d0", ":d1"
        count, total, low, high = ("count(*)", "sum(result_number)", "min(result_number)",
                                   "max(result_number)")
    if sqlite:
        day = calendar.sqlite_day_sql(column, day_from, day_to)
    else:
        day = f"date_trunc('day', {column}, '{calendar.name}')"
    not_null = " AND result_number IS NOT NULL" if source == "observations" else ""
    daily_sql = text(
        "INSERT INTO rollups_daily (datastream_id, bucket_start, value_count, value_sum,"
        " value_min, value_max)"
        f" SELECT datastream_id, {day}, {count}, {total}, {low}, {high} FROM {source}"
        f" WHERE datastream_id = :ds AND {column} >= {lo} AND {column} < {hi}{not_null}"
        f" GROUP BY datastream_id, {day}")
    for stream in stream_list:
        conn.execute(daily_sql, {**params, "ds": stream})


def _all_streams(conn: Connection) -> list[int]:
    return list(conn.execute(text("SELECT id FROM datastreams ORDER BY id")).scalars())


def _data_range(conn: Connection, streams: Sequence[int] | None
                ) -> tuple[datetime | None, datetime | None]:
    """First and last phenomenonTime of the streams' observations: two index seeks each."""
    where = "" if streams is None else \
        f" WHERE d.id IN ({', '.join(str(int(s)) for s in streams)})"
    row = conn.execute(text(
        "SELECT min(first), max(last) FROM (SELECT"
        " (SELECT o.phenomenon_time_start FROM observations o WHERE o.datastream_id = d.id"
        "  ORDER BY o.phenomenon_time_start LIMIT 1) AS first,"
        " (SELECT o.phenomenon_time_start FROM observations o WHERE o.datastream_id = d.id"
        "  ORDER BY o.phenomenon_time_start DESC LIMIT 1) AS last"
        f" FROM datastreams d{where}) AS bounds")).first()
    return _to_datetime(row[0]), _to_datetime(row[1])


def rebuild_rollups_sync(conn: Connection, timezone: str = "Europe/Berlin",
                         datastream_ids: Sequence[int] | None = None) -> None:
    """Fill the rollups from the raw observations (inside the caller's transaction) and
    remember the time zone they were built for."""
    calendar = LocalCalendar(timezone)
    _recompute(conn, calendar, datastream_ids, None, None)
    if datastream_ids is None:
        conn.execute(text("DELETE FROM rollup_state WHERE name = 'timezone'"))
        conn.execute(text("INSERT INTO rollup_state (name, value) VALUES ('timezone', :tz)"),
                     {"tz": timezone})


async def rebuild_rollups(conn: AsyncConnection, timezone: str = "Europe/Berlin",
                          datastream_ids: Sequence[int] | None = None) -> None:
    """`rebuild_rollups_sync` for an async connection (bulk loads, demo seeding)."""
    await conn.run_sync(rebuild_rollups_sync, timezone, datastream_ids)


async def ensure_rollups(db: Any, timezone: str) -> bool:
    """At start: rebuild the rollups if they were never built or built for another time zone
    (in one write transaction, so one of several starting workers does it). True if rebuilt."""
    async with db.write() as conn:
        built_for = (await conn.execute(
            text("SELECT value FROM rollup_state WHERE name = 'timezone'"))).scalar()
        if built_for == timezone:
            return False
        log.info("building observation rollups for time zone %s (was %s)", timezone, built_for)
        await rebuild_rollups(conn, timezone)
        return True


# ---------------------------------------------------------------------------------------------
# Reading series


@dataclass(frozen=True, slots=True)
class SeriesRequest:
    datastream_id: int
    start: datetime
    end: datetime
    interval: str
    stats: tuple[str, ...]


def bucket_floor(calendar: LocalCalendar, interval: str, moment: datetime) -> datetime:
    """The start of the bucket containing `moment`."""
    if interval == "PT10M":
        t = to_micros(moment)
        return from_micros(t - t % TEN_MINUTES_US)
    if interval == "PT1H":
        t = to_micros(moment)
        return from_micros(t - t % HOUR_US)
    if interval == "P1D":
        return calendar.day_start(moment)
    return calendar.month_start(moment)


def bucket_count_estimate(interval: str, start: datetime, end: datetime) -> int:
    seconds = (end - start).total_seconds()
    per = {"PT10M": 600, "PT1H": 3600, "P1D": 86_400, "P1M": 28 * 86_400}[interval]
    return int(seconds // per) + 1


async def series(conn: AsyncConnection, calendar: LocalCalendar,
                 req: SeriesRequest) -> list[dict[str, Any]]:
    """The buckets of one Datastream that start in [bucket of start, end), each whole, with
    data: dicts with `start`, `end` (ISO 8601 UTC) and the requested statistics. Empty buckets
    are left out."""
    sqlite = _is_sqlite(conn)
    start = bucket_floor(calendar, req.interval, req.start)
    params = {"ds": req.datastream_id, "t0": _time_param(conn, start),
              "t1": _time_param(conn, req.end)}
    if req.interval in ("PT10M", "PT1H"):
        step_us = TEN_MINUTES_US if req.interval == "PT10M" else HOUR_US
        if req.interval == "PT10M":
            # Whole buckets, as from the rollups: the last one starting before `end` included.
            end_us = to_micros(req.end)
            params["t1"] = _time_param(conn, end_us - (end_us - 1) % step_us - 1 + step_us)
            # From the raw rows: one index range scan, grouped by ten minutes.
            if sqlite:
                bucket = f"(phenomenon_time_start / {step_us}) * {step_us}"
            else:
                bucket = ("date_bin('10 minutes', phenomenon_time_start,"
                          " TIMESTAMPTZ '2000-01-01 00:00:00+00')")
            inner = (
                f"SELECT {bucket} AS b, count(*) AS value_count, sum(result_number) AS value_sum,"
                " min(result_number) AS value_min, max(result_number) AS value_max"
                " FROM observations WHERE datastream_id = :ds"
                " AND phenomenon_time_start >= :t0 AND phenomenon_time_start < :t1"
                f" AND result_number IS NOT NULL GROUP BY {bucket}")
        else:
            inner = ("SELECT bucket_start AS b, value_count, value_sum, value_min, value_max"
                     " FROM rollups_hourly WHERE datastream_id = :ds"
                     " AND bucket_start >= :t0 AND bucket_start < :t1")
        stats_sql = ", ".join(_STAT_SQL[s] for s in req.stats)
        sql = f"SELECT b, {stats_sql} FROM ({inner}) AS buckets ORDER BY b"
        # Thousands of buckets: plain driver rows, and times formatted from a per-day cache
        # (SQLAlchemy row objects and SQLite's strftime would cost more than the query).
        rows = await _fetch_plain(conn, sql, params)
        times = [r[0] for r in rows] if sqlite else [to_micros(r[0]) for r in rows]
        starts, ends = _BucketFormatter(step_us).bounds(times)
        return _bucket_builder(req.stats)(rows, starts, ends)

    # Local days and months: at most a few thousand buckets, ends computed per bucket.
    stats_sql = ", ".join(_STAT_SQL[s] for s in req.stats)
    if req.interval == "P1D":
        sql = (f"SELECT bucket_start, {stats_sql} FROM rollups_daily WHERE datastream_id = :ds"
               " AND bucket_start >= :t0 AND bucket_start < :t1 ORDER BY bucket_start")
        next_start = calendar.next_day
    else:
        if sqlite:
            month = calendar.sqlite_month_sql("bucket_start", to_micros(start),
                                              to_micros(req.end))
        else:
            month = f"date_trunc('month', bucket_start, '{calendar.name}')"
        sql = (
            f"SELECT m, {stats_sql} FROM (SELECT {month} AS m, {_COUNT_SUM} AS value_count,"
            " sum(value_sum) AS value_sum, min(value_min) AS value_min,"
            " max(value_max) AS value_max FROM rollups_daily WHERE datastream_id = :ds"
            f" AND bucket_start >= :t0 AND bucket_start < :t1 GROUP BY {month}) AS months"
            " ORDER BY m")
        next_start = calendar.next_month
    out = []
    for row in (await conn.execute(text(sql), params)).all():
        begin = _to_datetime(row[0])
        item = {"start": _iso(begin), "end": _iso(next_start(begin))}
        item.update(zip(req.stats, row[1:], strict=True))
        out.append(item)
    return out


@functools.cache
def _bucket_builder(stats: tuple[str, ...]) -> Callable[[list, list, list], list[dict[str, Any]]]:
    """A function (rows, start texts, end texts) -> bucket dicts for these statistics, where a
    row is (bucket start, *statistics). One generated comprehension with dict displays: no
    Python call per bucket, which counts for a year of hourly buckets. The source is built only
    from the fixed statistic names."""
    if not set(stats) <= set(STATS):
        raise ValueError(f"unknown statistics {stats!r}")
    fields = "".join(f", {stat!r}: r[{i + 1}]" for i, stat in enumerate(stats))
    source = (f"lambda rows, starts, ends: [{{'start': s, 'end': e{fields}}}"
              " for s, e, r in zip(starts, ends, rows)]")
    return eval(source, {"__builtins__": {"zip": zip}})


class _BucketFormatter:
    """ISO 8601 UTC text of bucket starts (epoch µs) aligned to `step_us` (≤ one hour)."""

    def __init__(self, step_us: int) -> None:
        per_day = DAY_US // step_us
        self._suffix = [
            "T" + (EPOCH + timedelta(microseconds=i * step_us)).strftime("%H:%M:%SZ")
            for i in range(per_day)]
        self._step = step_us
        self._days: dict[int, str] = {}

    def __call__(self, t_us: int) -> str:
        day, rest = divmod(t_us, DAY_US)
        text_ = self._days.get(day)
        if text_ is None:
            text_ = self._days[day] = (EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")
        return text_ + self._suffix[rest // self._step]

    def bounds(self, times: list[int]) -> tuple[list[str], list[str]]:
        """The start and end texts of buckets starting at `times` (ascending). A bucket's end
        is the next one's start when they touch, so contiguous data formats each instant
        once; the day texts come from a per-call cache."""
        if not times:
            return [], []
        days, suffix, step = self._days, self._suffix, self._step
        for day in range(times[0] // DAY_US, (times[-1] + step) // DAY_US + 1):
            if day not in days:
                days[day] = (EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")
        starts = [days[t // DAY_US] + suffix[t % DAY_US // step] for t in times]
        following = times[1:]
        following.append(None)  # type: ignore[arg-type]
        nexts = starts[1:]
        nexts.append("")
        ends = [n if t2 == t + step else self(t + step)
                for t, t2, n in zip(times, following, nexts, strict=True)]
        return starts, ends


# A bind parameter `:name` (not `::type` casts, not the `:00` of a time literal).
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


async def _fetch_plain(conn: AsyncConnection, sql: str, params: dict[str, Any]) -> list:
    """Rows as plain driver tuples/records, in the caller's transaction (named :params)."""
    names = _PARAM.findall(sql)
    raw = (await conn.get_raw_connection()).driver_connection
    if _is_sqlite(conn):
        cursor = await raw.execute(_PARAM.sub("?", sql), [params[n] for n in names])
        try:
            return await cursor.fetchall()
        finally:
            await cursor.close()
    counter = iter(range(1, len(names) + 1))
    numbered = _PARAM.sub(lambda _m: f"${next(counter)}", sql)
    return await raw.fetch(numbered, *[params[n] for n in names])


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# Aggregates over many Datastreams (dashboard tiles)


async def _totals(conn: AsyncConnection, table: str, streams: Sequence[int], start: datetime,
                  end: datetime | None, group: str, extra: str = "") -> list:
    """count, sum, min, max of `table`'s buckets of `streams` in [start, end), grouped by
    `group` (a column name), which leads each row; `extra` adds columns after them."""
    ids = ", ".join(str(int(s)) for s in streams)
    params = {"t0": _time_param(conn, start)}
    until = ""
    if end is not None:
        params["t1"] = _time_param(conn, end)
        until = " AND bucket_start < :t1"
    return (await conn.execute(text(
        f"SELECT {group}, {_COUNT_SUM}, sum(value_sum), min(value_min), max(value_max){extra}"
        f" FROM {table} WHERE datastream_id IN ({ids}) AND bucket_start >= :t0{until}"
        f" GROUP BY {group} ORDER BY {group}"), params)).all()


async def bucket_totals(conn: AsyncConnection, table: str, streams: Sequence[int],
                        start: datetime, end: datetime | None = None
                        ) -> list[tuple[datetime, int, float, float, float, int]]:
    """Per bucket of `table` in [start, end): count, sum, min, max over all `streams`, and how
    many of the streams have data in it. Ordered by bucket."""
    if not streams:
        return []
    rows = await _totals(conn, table, streams, start, end, "bucket_start", ", count(*)")
    return [(_to_datetime(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows]


async def stream_totals(conn: AsyncConnection, table: str, streams: Sequence[int],
                        start: datetime, end: datetime | None = None
                        ) -> dict[int, tuple[int, float, float, float]]:
    """Per Datastream: count, sum, min, max of `table`'s buckets in [start, end)."""
    if not streams:
        return {}
    rows = await _totals(conn, table, streams, start, end, "datastream_id")
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def time_param(conn: AsyncConnection, value: datetime) -> Any:
    """Public form of `_time_param` for other modules' raw SQL."""
    return _time_param(conn, value)


def as_datetime(value: Any) -> datetime | None:
    """A time column read through raw SQL (epoch µs on SQLite) as an aware datetime."""
    return _to_datetime(value)
