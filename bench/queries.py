"""Queries: time window, latest per Datastream, expand and count, through the API and as the
same SQL sent straight to the database, on SQLite and PostgreSQL.

Data sets (1,000 Datastreams, one observation per Datastream every 10 minutes, written in time
order) are built once per size with set-based SQL (generate_series / a recursive CTE) and kept
for later runs: PostgreSQL databases `ortspuls_benchq_<size>`, SQLite files under
$ORTSPULS_BENCH_DATA (default /var/tmp/ortspuls-bench). The time-window query asks for the same
one-day window (144 rows) at every size, so its latency should not grow with the table.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from bench.common import Target, cli, pg_exists, pg_url, running_server, save, table

DATASTREAMS = 1000
THINGS = 100
STEP = timedelta(minutes=10)
END = datetime(2026, 1, 1, tzinfo=UTC)
DS = 17  # the Datastream the single-stream queries ask for
RUNS, WARMUP = 30, 5
DATA_DIR = Path(os.environ.get("ORTSPULS_BENCH_DATA", "/var/tmp/ortspuls-bench"))


def _micros(value: datetime) -> int:
    return int(value.timestamp() * 1_000_000)


def window() -> tuple[datetime, datetime]:
    return END - timedelta(days=2), END - timedelta(days=1)


# ---------------------------------------------------------------------------------------------
# data sets

METADATA_SQL = [
    "INSERT INTO sensors (id, tenant_id, name, description, encoding_type) "
    "VALUES (1, 1, 'Sensor', 'bench', 'text/plain')",
    "INSERT INTO observed_properties (id, tenant_id, name, definition, description) "
    "VALUES (1, 1, 'Temperatur', 'ucum:Cel', 'bench')",
]


def _build_sqlite(path: Path, size: int) -> None:
    per_ds = size // DATASTREAMS
    cli("migrate", "--database-url", f"sqlite:///{path}", "--data-dir", str(path.parent))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    for sql in METADATA_SQL:
        conn.execute(sql)
    conn.executemany(
        "INSERT INTO things (id, tenant_id, name, description) VALUES (?, 1, ?, 'bench')",
        [(t, f"Station {t}") for t in range(1, THINGS + 1)])
    conn.executemany(
        "INSERT INTO features (id, tenant_id, name, description, encoding_type, feature) "
        "VALUES (?, 1, ?, 'bench', 'application/geo+json', ?)",
        [(t, f"Ort {t}", '{"type":"Point","coordinates":[9.1,48.7]}')
         for t in range(1, THINGS + 1)])
    conn.executemany(
        "INSERT INTO datastreams (id, tenant_id, name, description, observation_type, "
        "unit_of_measurement, thing_id, sensor_id, observed_property_id) "
        "VALUES (?, 1, ?, 'bench', 'OM_Measurement', '{\"symbol\":\"°C\"}', ?, 1, 1)",
        [(d, f"Temperatur {d}", (d - 1) % THINGS + 1) for d in range(1, DATASTREAMS + 1)])
    conn.execute("COMMIT")
    first = _micros(END - per_ds * STEP)
    step = int(STEP.total_seconds() * 1_000_000)
    chunk = max(1, 100_000 // DATASTREAMS)
    for k0 in range(0, per_ds, chunk):
        k1 = min(per_ds, k0 + chunk)
        conn.execute("BEGIN")
        conn.execute(
            "WITH RECURSIVE k(v) AS (SELECT ? UNION ALL SELECT v + 1 FROM k WHERE v + 1 < ?), "
            "d(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM d WHERE v < ?) "
            "INSERT INTO observations (tenant_id, datastream_id, feature_id, "
            "phenomenon_time_start, result_type, result_number) "
            "SELECT 1, d.v, (d.v - 1) % ? + 1, ? + k.v * ?, 1, (abs(random()) % 3000) / 100.0 "
            "FROM k, d ORDER BY k.v, d.v",
            (k0, k1, DATASTREAMS, THINGS, first, step))
        conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("CREATE TABLE bench_meta (size INTEGER)")
    conn.execute("INSERT INTO bench_meta VALUES (?)", (size,))
    conn.close()


async def _build_postgresql(url: str, size: int) -> None:
    from ortspuls.db.engine import Database
    from ortspuls.db.partitions import ensure_months, months_between

    per_ds = size // DATASTREAMS
    cli("migrate", "--database-url", url, "--data-dir", str(DATA_DIR))
    db = Database(url)
    try:
        await ensure_months(db, months_between(END - per_ds * STEP, END))
    finally:
        await db.close()
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            for sql in METADATA_SQL:
                await conn.execute(sql)
            await conn.execute(
                "INSERT INTO things (id, tenant_id, name, description) "
                f"SELECT t, 1, 'Station ' || t, 'bench' FROM generate_series(1, {THINGS}) t")
            await conn.execute(
                "INSERT INTO features (id, tenant_id, name, description, encoding_type, "
                "feature, feature_geom) SELECT t, 1, 'Ort ' || t, 'bench', "
                "'application/geo+json', '{\"type\":\"Point\",\"coordinates\":[9.1,48.7]}', "
                f"ST_SetSRID(ST_MakePoint(9.1, 48.7), 4326) FROM generate_series(1, {THINGS}) t")
            await conn.execute(
                "INSERT INTO datastreams (id, tenant_id, name, description, observation_type, "
                "unit_of_measurement, thing_id, sensor_id, observed_property_id) "
                "SELECT d, 1, 'Temperatur ' || d, 'bench', 'OM_Measurement', "
                f"'{{\"symbol\":\"°C\"}}', (d - 1) % {THINGS} + 1, 1, 1 "
                f"FROM generate_series(1, {DATASTREAMS}) d")
            for name in ("things", "features", "datastreams", "sensors", "observed_properties"):
                await conn.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                   f"(SELECT max(id) FROM {name}))")
        first = END - per_ds * STEP
        # Generated rows reference existing ids by construction: skip the per-row foreign key
        # triggers while loading (superuser only; the API path keeps them, of course).
        await conn.execute("SET session_replication_role = replica")
        chunk = max(1, 1_000_000 // DATASTREAMS)
        began = time.perf_counter()
        for k0 in range(0, per_ds, chunk):
            k1 = min(per_ds, k0 + chunk)
            await conn.execute(
                "INSERT INTO observations (tenant_id, datastream_id, feature_id, "
                "phenomenon_time_start, result_type, result_number) "
                "SELECT 1, d, (d - 1) % $1 + 1, $2::timestamptz + k * interval '10 minutes', 1, "
                "round((random() * 30)::numeric, 2) "
                "FROM generate_series($3::int, $4::int) k, generate_series(1, $5::int) d "
                "ORDER BY k, d", THINGS, first, k0, k1 - 1, DATASTREAMS)
            done = k1 * DATASTREAMS
            rate = done / (time.perf_counter() - began)
            print(f"  {done:,} of {size:,} observations ({rate:,.0f}/s)", flush=True)
        await conn.execute("VACUUM ANALYZE observations")
        await conn.execute("CREATE TABLE bench_meta (size bigint)")
        await conn.execute("INSERT INTO bench_meta VALUES ($1)", size)
    finally:
        await conn.close()


def dataset(kind: str, size: int) -> tuple[Target, float | None]:
    """The data set of `size` observations (built now if missing) and its build time in s."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    if kind == "sqlite":
        path = DATA_DIR / f"q{size}.sqlite3"
        target = Target(kind, f"sqlite:///{path}", DATA_DIR)
        if path.exists():
            with sqlite3.connect(path) as conn:
                try:
                    conn.execute("SELECT size FROM bench_meta").fetchone()
                    return target, None
                except sqlite3.OperationalError:
                    pass
            path.unlink()
        print(f"building the SQLite data set of {size:,} observations …", flush=True)
        _build_sqlite(path, size)
        return target, round(time.perf_counter() - began, 1)
    name = f"ortspuls_benchq_{size}"
    target = Target(kind, pg_url(name), DATA_DIR)
    if pg_exists(name):
        async def ready() -> bool:
            conn = await asyncpg.connect(target.url)
            try:
                return bool(await conn.fetchval("SELECT to_regclass('bench_meta') IS NOT NULL"))
            finally:
                await conn.close()

        if asyncio.run(ready()):
            return target, None
        from bench.common import drop_pg

        drop_pg(name)
    from bench.common import create_pg

    create_pg(name)
    print(f"building the PostgreSQL data set of {size:,} observations …", flush=True)
    asyncio.run(_build_postgresql(target.url, size))
    return target, round(time.perf_counter() - began, 1)


# ---------------------------------------------------------------------------------------------
# the queries


def api_queries() -> dict[str, tuple[str, dict]]:
    start, end = window()
    iso = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    return {
        "time_window": (f"/Datastreams({DS})/Observations", {
            "$filter": f"phenomenonTime ge {iso(start)} and phenomenonTime lt {iso(end)}",
            "$orderby": "phenomenonTime asc", "$top": "1000"}),
        "latest_per_datastream": ("/Datastreams", {
            "$top": "100", "$expand": "Observations($orderby=phenomenonTime desc;$top=1)"}),
        "expand": (f"/Datastreams({DS})/Observations", {
            "$top": "100", "$orderby": "phenomenonTime desc",
            "$expand": "FeatureOfInterest,Datastream"}),
        "count": (f"/Datastreams({DS})/Observations", {
            "$count": "true", "$top": "1", "$filter": "result gt 15"}),
    }


OBS_COLUMNS = ("id, phenomenon_time_start, phenomenon_time_end, result_time, result_type, "
               "result_number, result_string, result_json, result_quality, valid_time_start, "
               "valid_time_end, parameters, datastream_id, feature_id")


def raw_queries(kind: str) -> dict[str, list[tuple[str, tuple]]]:
    """The same questions in SQL, as a hand-written client would ask them."""
    start, end = window()
    if kind == "sqlite":
        start, end = _micros(start), _micros(end)
        p = ["?"] * 3
        latest = [(
            f"SELECT {OBS_COLUMNS} FROM observations WHERE id IN (SELECT (SELECT o.id FROM "
            "observations o WHERE o.datastream_id = d.id ORDER BY o.phenomenon_time_start DESC "
            "LIMIT 1) FROM datastreams d ORDER BY d.id LIMIT 100)", ()),
            ("SELECT * FROM datastreams ORDER BY id LIMIT 100", ())]
    else:
        p = ["$1", "$2", "$3"]
        latest = [(
            f"SELECT o.* FROM (SELECT id FROM datastreams ORDER BY id LIMIT 100) d CROSS JOIN "
            f"LATERAL (SELECT {OBS_COLUMNS} FROM observations WHERE datastream_id = d.id "
            "ORDER BY phenomenon_time_start DESC LIMIT 1) o", ()),
            ("SELECT * FROM datastreams ORDER BY id LIMIT 100", ())]
    return {
        "time_window": [(
            f"SELECT {OBS_COLUMNS} FROM observations WHERE datastream_id = {p[0]} AND "
            f"phenomenon_time_start >= {p[1]} AND phenomenon_time_start < {p[2]} "
            "ORDER BY phenomenon_time_start LIMIT 1000", (DS, start, end))],
        "latest_per_datastream": latest,
        "expand": [
            (f"SELECT {OBS_COLUMNS} FROM observations WHERE datastream_id = {p[0]} "
             "ORDER BY phenomenon_time_start DESC LIMIT 100", (DS,)),
            ("SELECT * FROM features WHERE id IN (SELECT feature_id FROM observations WHERE "
             f"datastream_id = {p[0]} ORDER BY phenomenon_time_start DESC LIMIT 100)", (DS,)),
            (f"SELECT * FROM datastreams WHERE id = {p[0]}", (DS,))],
        "count": [
            (f"SELECT count(*) FROM observations WHERE datastream_id = {p[0]} AND "
             "result_number > 15", (DS,)),
            (f"SELECT {OBS_COLUMNS} FROM observations WHERE datastream_id = {p[0]} AND "
             "result_number > 15 ORDER BY id LIMIT 1", (DS,))],
    }


def _stats(samples: list[float]) -> dict:
    samples = sorted(samples)
    return {"median_ms": round(statistics.median(samples) * 1000, 2),
            "p95_ms": round(samples[int(len(samples) * 0.95) - 1] * 1000, 2)}


def time_api(client: httpx.Client, path: str, params: dict) -> dict:
    samples = []
    for i in range(WARMUP + RUNS):
        began = time.perf_counter()
        response = client.get(path, params=params)
        elapsed = time.perf_counter() - began
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} {params}: {response.status_code} {response.text}")
        if i >= WARMUP:
            samples.append(elapsed)
    body = response.json()
    return {**_stats(samples), "rows": len(body.get("value", []))}


def time_raw(target: Target, statements: list[tuple[str, tuple]]) -> dict:
    samples = []
    if target.kind == "sqlite":
        conn = sqlite3.connect(target.url.removeprefix("sqlite:///"))
        try:
            for i in range(WARMUP + RUNS):
                began = time.perf_counter()
                for sql, args in statements:
                    conn.execute(sql, args).fetchall()
                if i >= WARMUP:
                    samples.append(time.perf_counter() - began)
        finally:
            conn.close()
        return _stats(samples)

    async def run() -> None:
        conn = await asyncpg.connect(target.url)
        try:
            for i in range(WARMUP + RUNS):
                began = time.perf_counter()
                for sql, args in statements:
                    await conn.fetch(sql, *args)
                if i >= WARMUP:
                    samples.append(time.perf_counter() - began)
        finally:
            await conn.close()

    asyncio.run(run())
    return _stats(samples)


def run(sizes: list[int], databases=("sqlite", "postgresql")) -> dict:
    results = []
    for kind in databases:
        # The large sizes are for PostgreSQL; SQLite is measured at the smallest.
        for size in (sizes if kind == "postgresql" else sizes[:1]):
            target, built = dataset(kind, size)
            # The first start on a data set may build derived data (rollups) for a while.
            with running_server(target, workers=1, start_timeout=3600) as server, \
                    server.client() as client:
                raw = raw_queries(kind)
                for name, (path, params) in api_queries().items():
                    api = time_api(client, path, params)
                    base = time_raw(target, raw[name])
                    results.append({"database": kind, "observations": size, "query": name,
                                    "api": api, "raw_sql": base, "build_s": built})
    rows = [[r["database"], r["observations"], r["query"], r["api"]["rows"],
             r["api"]["median_ms"], r["api"]["p95_ms"], r["raw_sql"]["median_ms"],
             f"{r['api']['median_ms'] / max(r['raw_sql']['median_ms'], 0.001):.1f}×"]
            for r in results]
    print(table(f"Queries: median of {RUNS} sequential requests (ms)",
                ["database", "observations", "query", "rows", "API", "API p95", "raw SQL",
                 "API/raw"], rows))
    scaling = {}
    pg_windows = {r["observations"]: r["api"]["median_ms"] for r in results
                  if r["database"] == "postgresql" and r["query"] == "time_window"}
    if len(pg_windows) > 1:
        small, large = min(pg_windows), max(pg_windows)
        scaling = {"small": small, "large": large,
                   "ratio": round(pg_windows[large] / pg_windows[small], 2)}
        print(f"PostgreSQL time window: {large:,} vs {small:,} observations: "
              f"{scaling['ratio']}× the latency (target ≤ 2×)")
    data = {"runs": RUNS, "results": results, "time_window_scaling": scaling}
    save("queries", data)
    return data
