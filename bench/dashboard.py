"""Dashboard: latest values of all Datastreams, a one-year hourly series, the use-case overview.

Data set: 1,000 Datastreams spread over the eight use cases (and a few generic ones), each with
two years of 10-minute observations up to now — about 105 million rows on SQLite. It is
generated directly in SQLite (set-based INSERT … SELECT over a recursive CTE, one statement per
Datastream, in Datastream order so the observations index grows at its end), the rollups are
then filled by `rebuild_rollups` (INSERT … SELECT), and the file is kept under
$ORTSPULS_BENCH_DATA (default /var/tmp/ortspuls-bench) for later runs, which only append the
observations missing up to now (and recompute those rollups through the same correction path
updates use).

Measured, in process (the service functions the API and the pages call):
- `latest()` for all Datastreams (target ≤ 10 ms) and the cache's start-up seek of all streams;
- `series()` of one Datastream, one year, hourly (target ≤ 20 ms), and for comparison the same
  aggregation straight from the raw observations;
- `usecase_overview()` cold (memoised figures cleared) and warm (target ≤ 50 ms);
- each use case's detail;
and over HTTP against a real `ortspuls serve` on the same file. Results are printed and written
to bench/results/dashboard.json; nothing is asserted.

    python -m bench.dashboard [--streams 1000] [--days 730] [--runs 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import orjson

from bench.common import cli, free_port, save, table

DATA_DIR = Path(os.environ.get("ORTSPULS_BENCH_DATA", "/var/tmp/ortspuls-bench"))
STEP_US = 600_000_000  # ten minutes
TIMEZONE = "Europe/Berlin"
STREAMS_PER_THING = 4

# (ObservedProperty, unit symbol, result type (1 float, 2 integer), base, amplitude,
#  Datastream properties) per kind; the use cases come from the ObservedProperty names.
KINDS: list[tuple[str, str, int, float, float, dict | None]] = [
    ("Radfahrende", "{#}", 2, 0, 60, None),
    ("Freie Stellplätze", "{#}", 2, 0, 200, {"capacity": 200}),
    ("Wasserstand", "cm", 1, 50, 100, {"thresholds": {"warn": 130, "alert": 160}}),
    ("Bodenfeuchte", "%", 1, 8, 35, None),
    ("PM10", "ug/m3", 1, 5, 50, None),
    ("PM2.5", "ug/m3", 1, 2, 30, None),
    ("NO₂", "ug/m3", 1, 5, 60, None),
    ("Lufttemperatur", "Cel", 1, -5, 35, None),
    ("Relative Luftfeuchte", "%", 1, 30, 65, None),
    ("Windgeschwindigkeit", "m/s", 1, 0, 15, None),
    ("Niederschlag", "mm", 1, 0, 2, None),
    ("LAeq", "dB(A)", 1, 40, 35, None),
    ("Passanten", "{#}", 2, 0, 300, None),
    ("CO2", "ppm", 1, 400, 300, None),
    ("Stellplatz belegt", "", 3, 0, 1, None),
]
# How many of every 100 Datastreams are of each kind (sums to 100): the mix of a town that has
# gone beyond pilots — mostly single parking spaces and tree sensors, a few dozen counters,
# gauges, air and weather stations, a handful of noise meters.
SHARES = [5, 3, 3, 20, 2, 2, 2, 3, 3, 3, 3, 2, 4, 5, 40]


def layout(streams: int) -> list[int]:
    """The kind index of each Datastream 1…streams, grouped by kind."""
    kinds: list[int] = []
    for kind, share in enumerate(SHARES):
        kinds += [kind] * round(streams * share / 100)
    kinds = (kinds + [len(KINDS) - 1] * streams)[:streams]
    return kinds


def _now_us() -> int:
    now = int(datetime.now(UTC).timestamp() * 1_000_000)
    return now - now % STEP_US


def _value_sql(kind: int) -> str:
    """A deterministic value from the time index k and the Datastream id d."""
    _name, _symbol, rtype, base, amplitude, _props = KINDS[kind]
    wave = "(((k.v * 7 + :d * 13) % 101) / 100.0)"
    if rtype == 3:  # true/false, stored as 1/0
        return "CAST(((k.v + :d) % 3 = 0) AS REAL)"
    if rtype == 2:
        return f"CAST({base} + {amplitude} * {wave} AS INTEGER)"
    return f"round({base} + {amplitude} * {wave}, 2)"


def _insert_range(conn: sqlite3.Connection, stream: int, feature: int, kind: int,
                  first_us: int, count: int) -> None:
    conn.execute(
        "WITH RECURSIVE k(v) AS (SELECT 0 UNION ALL SELECT v + 1 FROM k WHERE v + 1 < :n) "
        "INSERT INTO observations (tenant_id, datastream_id, feature_id, phenomenon_time_start,"
        " result_type, result_number) "
        f"SELECT 1, :d, :f, :first + k.v * {STEP_US}, :rtype, {_value_sql(kind)} FROM k",
        {"n": count, "d": stream, "f": feature, "first": first_us,
         "rtype": KINDS[kind][2]})


def build(path: Path, streams: int, days: int) -> dict[str, float]:
    """Generate the data set; returns timings in seconds."""
    timings: dict[str, float] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    cli("migrate", "--database-url", f"sqlite:///{path}", "--data-dir", str(path.parent))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    kinds = layout(streams)
    things = (streams + STREAMS_PER_THING - 1) // STREAMS_PER_THING
    conn.execute("BEGIN")
    conn.execute("INSERT INTO sensors (id, tenant_id, name, description, encoding_type) "
                 "VALUES (1, 1, 'Sensor', 'bench', 'text/plain')")
    conn.executemany(
        "INSERT INTO observed_properties (id, tenant_id, name, definition, description) "
        "VALUES (?, 1, ?, '', 'bench')",
        [(i + 1, kind[0]) for i, kind in enumerate(KINDS)])
    point = '{"type":"Point","coordinates":[10.52,52.26]}'
    conn.executemany("INSERT INTO things (id, tenant_id, name, description) "
                     "VALUES (?, 1, ?, 'bench')",
                     [(t, f"Station {t}") for t in range(1, things + 1)])
    conn.executemany("INSERT INTO locations (id, tenant_id, name, description, encoding_type, "
                     "location) VALUES (?, 1, ?, 'bench', 'application/geo+json', ?)",
                     [(t, f"Ort {t}", point) for t in range(1, things + 1)])
    conn.executemany("INSERT INTO thing_locations (thing_id, location_id) VALUES (?, ?)",
                     [(t, t) for t in range(1, things + 1)])
    conn.executemany("INSERT INTO features (id, tenant_id, name, description, encoding_type, "
                     "feature) VALUES (?, 1, ?, 'bench', 'application/geo+json', ?)",
                     [(t, f"Ort {t}", point) for t in range(1, things + 1)])
    conn.executemany(
        "INSERT INTO datastreams (id, tenant_id, name, description, observation_type, "
        "unit_of_measurement, properties, thing_id, sensor_id, observed_property_id) "
        "VALUES (?, 1, ?, 'bench', 'OM_Measurement', ?, ?, ?, 1, ?)",
        [(d, f"{KINDS[k][0]} {d}",
          orjson.dumps({"name": KINDS[k][1], "symbol": KINDS[k][1], "definition": ""}).decode(),
          orjson.dumps(KINDS[k][5]).decode() if KINDS[k][5] else None,
          (d - 1) // STREAMS_PER_THING + 1, k + 1)
         for d, k in zip(range(1, streams + 1), kinds, strict=True)])
    conn.execute("COMMIT")

    per_stream = days * 144
    end_us = _now_us()
    first_us = end_us - (per_stream - 1) * STEP_US
    # The observations' indexes are built after the load (sorted, in one pass each): kept up
    # row by row, the (multi_datastream, time) and feature indexes make the load many times
    # slower.
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                           "tbl_name = 'observations' AND sql IS NOT NULL").fetchall()
    for name, _sql in indexes:
        conn.execute(f"DROP INDEX {name}")
    began = time.perf_counter()
    for d, k in zip(range(1, streams + 1), kinds, strict=True):
        conn.execute("BEGIN")
        _insert_range(conn, d, (d - 1) // STREAMS_PER_THING + 1, k, first_us, per_stream)
        conn.execute("COMMIT")
        if d % 50 == 0:
            rate = d * per_stream / (time.perf_counter() - began)
            print(f"  {d}/{streams} Datastreams, {rate:,.0f} rows/s", flush=True)
    timings["load_s"] = time.perf_counter() - began
    began = time.perf_counter()
    for _name, sql in indexes:
        conn.execute(sql)
    timings["indexes_s"] = time.perf_counter() - began
    conn.execute("UPDATE datastreams SET phenomenon_time_start = ?, phenomenon_time_end = ?",
                 (first_us, end_us))
    began = time.perf_counter()
    conn.execute("ANALYZE")
    timings["analyze_s"] = time.perf_counter() - began
    conn.execute("CREATE TABLE bench_dashboard (streams INTEGER, days INTEGER, end_us INTEGER)")
    conn.execute("INSERT INTO bench_dashboard VALUES (?, ?, ?)", (streams, days, end_us))
    conn.close()
    timings["rollups_s"] = asyncio.run(_rebuild(path))
    return timings


async def _rebuild(path: Path) -> float:
    from ortspuls.db.engine import Database
    from ortspuls.timeseries.rollups import rebuild_rollups

    db = Database(f"sqlite:///{path}")
    try:
        began = time.perf_counter()
        async with db.write() as conn:
            await rebuild_rollups(conn, TIMEZONE)
        return time.perf_counter() - began
    finally:
        await db.close()


def top_up(path: Path) -> int:
    """Append the observations missing up to now; their rollups are corrected afterwards."""
    conn = sqlite3.connect(path, isolation_level=None)
    streams, _days, end_us = conn.execute("SELECT * FROM bench_dashboard").fetchone()
    now_us = _now_us()
    count = (now_us - end_us) // STEP_US
    if count <= 0:
        conn.close()
        return 0
    kinds = layout(streams)
    conn.execute("BEGIN")
    for d, k in zip(range(1, streams + 1), kinds, strict=True):
        _insert_range(conn, d, (d - 1) // STREAMS_PER_THING + 1, k, end_us + STEP_US, count)
    conn.execute("UPDATE datastreams SET phenomenon_time_end = ?", (now_us,))
    conn.execute("UPDATE bench_dashboard SET end_us = ?", (now_us,))
    conn.execute("COMMIT")
    conn.close()
    asyncio.run(_correct(path, streams, end_us + STEP_US, now_us))
    return count * streams


async def _correct(path: Path, streams: int, first_us: int, last_us: int) -> None:
    from ortspuls.db.engine import Database
    from ortspuls.db.types import from_micros
    from ortspuls.timeseries.rollups import RollupKeeper

    db = Database(f"sqlite:///{path}")
    keeper = RollupKeeper(TIMEZONE)
    try:
        async with db.write() as conn:
            await keeper.on_change(conn, [(d, from_micros(first_us), from_micros(last_us))
                                          for d in range(1, streams + 1)])
    finally:
        await db.close()


# ---------------------------------------------------------------------------------------------
# measuring


async def timed(fn: Callable[[], Awaitable[Any]], runs: int, warmup: int = 3,
                before: Callable[[], None] | None = None) -> dict[str, float]:
    for _ in range(warmup):
        if before:
            before()
        await fn()
    samples, cpu = [], []
    for _ in range(runs):
        if before:
            before()
        began, began_cpu = time.perf_counter(), time.process_time()
        await fn()
        samples.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
    samples.sort()
    # CPU time of the whole process (event loop and database threads): what one call costs
    # when it does not wait behind other processes for a core.
    return {"median_ms": statistics.median(samples),
            "p95_ms": samples[min(len(samples) - 1, int(len(samples) * 0.95))],
            "min_ms": samples[0], "cpu_median_ms": statistics.median(cpu)}


async def measure_in_process(path: Path, runs: int) -> dict[str, Any]:
    from sqlalchemy import text

    from ortspuls.dashboard import service
    from ortspuls.dashboard.summaries import Memo
    from ortspuls.dashboard.usecase import usecases
    from ortspuls.db.engine import Database
    from ortspuls.timeseries.events import EventBus
    from ortspuls.timeseries.latest import LatestValues
    from ortspuls.timeseries.rollups import LocalCalendar

    db = Database(f"sqlite:///{path}")
    latest = LatestValues(db, EventBus(), refresh_seconds=0)
    began = time.perf_counter()
    await latest.start()
    first_load_ms = (time.perf_counter() - began) * 1000
    memo = Memo()
    state = SimpleNamespace(db=db, latest=latest, dashboard=service.DashboardState(
        LocalCalendar(TIMEZONE), memo, ""))
    out: dict[str, Any] = {"latest_cache_first_load_ms": first_load_ms}
    try:
        out["latest_cache_reload"] = await timed(latest.reload, max(5, runs // 3))
        values = await service.latest(state)
        out["latest_streams"] = len(values)
        out["latest_all"] = await timed(lambda: service.latest(state), runs)
        out["latest_all_json_bytes"] = len(orjson.dumps({"value": values}))

        async with db.read() as conn:
            stream = (await conn.execute(text(
                "SELECT d.id FROM datastreams d JOIN observed_properties o"
                " ON o.id = d.observed_property_id WHERE o.name = 'Lufttemperatur'"
                " ORDER BY d.id LIMIT 1"))).scalar()
        now = datetime.now(UTC)
        year = (now - timedelta(days=365), now)
        result = await service.series(state, stream, *year, "PT1H", None)
        out["series_year_hourly_buckets"] = len(result["value"])
        out["series_year_hourly"] = await timed(
            lambda: service.series(state, stream, *year, "PT1H", None), runs)
        out["series_year_hourly_json"] = await timed(
            lambda: _series_json(service, state, stream, year), runs)
        out["series_year_daily"] = await timed(
            lambda: service.series(state, stream, *year, "P1D", None), runs)
        out["series_two_years_monthly"] = await timed(
            lambda: service.series(state, stream, now - timedelta(days=730), now, "P1M",
                                   None), runs)
        out["series_day_10min_raw"] = await timed(
            lambda: service.series(state, stream, now - timedelta(days=1), now, "PT10M",
                                   None), runs)

        async def raw_year() -> None:
            async with db.read() as conn:
                await conn.execute(text(
                    "SELECT phenomenon_time_start / 3600000000, count(*), sum(result_number),"
                    " min(result_number), max(result_number) FROM observations"
                    " WHERE datastream_id = :d AND phenomenon_time_start >= :t"
                    " GROUP BY 1 ORDER BY 1"),
                    {"d": stream, "t": int(year[0].timestamp() * 1_000_000)})

        out["raw_year_hourly_reference"] = await timed(raw_year, max(3, runs // 6), warmup=1)

        tiles = await service.usecase_overview(state, "de")
        out["overview_tiles"] = len(tiles)
        out["overview_json_bytes"] = len(orjson.dumps({"usecases": tiles}))
        out["overview_cold"] = await timed(lambda: service.usecase_overview(state, "de"),
                                           max(5, runs // 3), warmup=1, before=memo.clear)
        out["overview_warm"] = await timed(lambda: service.usecase_overview(state, "de"), runs)
        details = {}
        for slug in usecases():
            details[slug] = await timed(lambda s=slug: service.usecase_detail(state, s, "de"),
                                        max(3, runs // 6), warmup=1, before=memo.clear)
        out["detail_cold"] = details
        out["series_stream"] = stream
    finally:
        await latest.stop()
        await db.close()
    return out


async def _series_json(service, state, stream, year) -> bytes:
    return orjson.dumps(await service.series(state, stream, *year, "PT1H", None))


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_http(path: Path, stream: int, runs: int) -> dict[str, Any]:
    import signal
    import subprocess
    import sys

    port = free_port()
    log = path.parent / "dashboard-bench-server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ortspuls", "serve", "--port", str(port),
             "--database-url", f"sqlite:///{path}", "--data-dir", str(path.parent),
             "--mqtt-port", "0", "--mqtt-ws-port", "0", "--log-level", "warning"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        now = datetime.now(UTC)
        urls = {
            "latest_all": "/api/v1/latest",
            "series_year_hourly": (f"/api/v1/datastreams/{stream}/series?interval=PT1H"
                                   f"&from={(now - timedelta(days=365)).isoformat()}"
                                   f"&to={now.isoformat()}").replace("+00:00", "Z"),
            "overview": "/api/v1/usecases",
        }
        with httpx.Client(base_url=base, timeout=60) as client:
            for name, url in urls.items():
                samples, size = [], 0
                for i in range(runs + 3):
                    if i == 3:
                        cpu_before = _process_cpu(process.pid)
                    began = time.perf_counter()
                    response = client.get(url)
                    elapsed = (time.perf_counter() - began) * 1000
                    assert response.status_code == 200, response.text[:300]
                    size = len(response.content)
                    if i >= 3:
                        samples.append(elapsed)
                cpu = (_process_cpu(process.pid) - cpu_before) / runs * 1000
                samples.sort()
                results[name] = {"median_ms": statistics.median(samples),
                                 "p95_ms": samples[int(len(samples) * 0.95) - 1],
                                 "server_cpu_ms": cpu, "bytes": size}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    return results


def run(streams: int, days: int, runs: int) -> dict[str, Any]:
    path = DATA_DIR / f"dashboard-{streams}x{days}d.sqlite3"
    build_timings: dict[str, float] = {}
    if not path.exists():
        print(f"building {path} ({streams} Datastreams, {days} days of 10-minute data)",
              flush=True)
        build_timings = build(path, streams, days)
    appended = top_up(path)
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT max(id) FROM observations").fetchone()[0]
    size_gb = path.stat().st_size / 1e9
    measured = asyncio.run(measure_in_process(path, runs))
    http = measure_http(path, measured["series_stream"], runs)
    result = {"streams": streams, "days": days, "observations": rows,
              "database_gb": round(size_gb, 2), "appended_now": appended,
              "build": build_timings, "in_process": measured, "http": http,
              "targets_ms": {"latest_all": 10, "series_year_hourly": 20, "overview": 50}}
    m = measured

    def row(label: str, entry: dict[str, float], target: int | None = None) -> list:
        return [label, entry["median_ms"], entry["p95_ms"],
                entry.get("cpu_median_ms", entry.get("server_cpu_ms")), target]

    print(table(
        f"Dashboard, SQLite, {streams} Datastreams, {rows:,} observations "
        f"({size_gb:.1f} GB); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        ["measurement", "median ms", "p95 ms", "CPU ms", "target ms"],
        [row("latest(), all Datastreams", m["latest_all"], 10),
         row("latest cache: seek all (start / refresh)", m["latest_cache_reload"]),
         row(f"series(), 1 year hourly ({m['series_year_hourly_buckets']:,} buckets)",
             m["series_year_hourly"], 20),
         row("  … with JSON encoding", m["series_year_hourly_json"]),
         row("  same from raw rows (reference)", m["raw_year_hourly_reference"]),
         row("series(), 1 year daily", m["series_year_daily"]),
         row("series(), 2 years monthly", m["series_two_years_monthly"]),
         row("series(), 1 day 10-minute (raw)", m["series_day_10min_raw"]),
         row("usecase_overview(), cold", m["overview_cold"], 50),
         row("usecase_overview(), warm", m["overview_warm"], 50),
         *[row(f"usecase_detail({slug}), cold", v) for slug, v in m["detail_cold"].items()],
         *[row(f"HTTP GET {name} ({v['bytes']:,} bytes)", v) for name, v in http.items()]]))
    if build_timings:
        print(f"build: load {build_timings['load_s']:.0f} s, indexes "
              f"{build_timings['indexes_s']:.0f} s, rollups {build_timings['rollups_s']:.0f} s")
    path_out = save("dashboard", result)
    print(f"written to {path_out}")
    return result


def data_set_main(prog: str, run_fn: Callable[[int, int, int], Any],
                  argv: list[str] | None = None) -> int:
    """Command line of the benches on this data set: --streams, --days, --runs."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    run_fn(args.streams, args.days, args.runs)
    return 0


def main(argv: list[str] | None = None) -> int:
    return data_set_main("python -m bench.dashboard", run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
