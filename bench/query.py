"""Query options end to end: the issue's targets on SQLite with 2,000,000 Observations.

`python -m bench query` (or `python bench/query.py`). A data set of 1,000 Datastreams (100 Things
with a Location and a FeatureOfInterest each) with 2,000 Observations per Datastream, one every
10 minutes, is generated once straight into an Ortspuls SQLite file with executemany and kept
(`$ORTSPULS_BENCH_DATA/query-2000000.sqlite3`). A real server (`ortspuls serve`) runs on it;
every figure is the median (p50) of sequential HTTP requests, printed beside the time of the very
SQL the read path emits for the same request (captured in-process from the real code, then
replayed with the sqlite3 module), so the API layer's share is visible:

- time window: `Datastreams(17)/Observations?$filter=phenomenonTime ge T1 and phenomenonTime
  lt T2&$top=1000` (1,000 rows; target ≤ 15 ms);
- latest per Datastream: `Datastreams?$expand=Observations($orderby=phenomenonTime desc;$top=1)`
  over all 1,000 Datastreams, paged at 100, per page (target ≤ 50 ms);
- count: `$count=true` on a filtered Observation set of one Datastream (target ≤ 50 ms);
- parse: `parse_filter` of a typical filter (target ≤ 200 µs);
- deep pages: a page at position 1,000,000 by `$skip` and by `$skiptoken` (keyset).

Writes bench/results/query.json.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import statistics
import sys
import time
import timeit
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):  # `python bench/query.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Target, cli, running_server, save, table

OBSERVATIONS = 2_000_000
DATASTREAMS = 1_000
THINGS = 100
PER_STREAM = OBSERVATIONS // DATASTREAMS
STEP = timedelta(minutes=10)
END = datetime(2026, 1, 1, tzinfo=UTC)
DS = 17
RUNS, WARMUP = 50, 5
DATA_DIR = Path(os.environ.get("ORTSPULS_BENCH_DATA", "/var/tmp/ortspuls-bench"))
TARGETS_MS = {"time_window": 15.0, "latest_per_datastream_page": 50.0, "count": 50.0}
TARGET_PARSE_US = 200.0
TYPICAL_FILTER = ("Datastream/Thing/name eq 'Pegel Mühlbach' and phenomenonTime ge "
                  "2024-01-01T00:00:00Z and phenomenonTime lt 2024-02-01T00:00:00Z and result gt 5")


def micros(value: datetime) -> int:
    return int(value.timestamp() * 1_000_000)


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------
# the data set


def build(path: Path) -> float:
    """Generate the data set into a fresh Ortspuls SQLite file; returns seconds taken."""
    began = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    cli("migrate", "--database-url", f"sqlite:///{path}", "--data-dir", str(path.parent))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO sensors (id, tenant_id, name, description, encoding_type, metadata)"
                 " VALUES (1, 1, 'Sonde', 'bench', 'text/plain', '\"none\"')")
    conn.execute("INSERT INTO observed_properties (id, tenant_id, name, definition, description)"
                 " VALUES (1, 1, 'Wasserstand', 'https://example.org/level', 'bench')")
    point = '{{"type":"Point","coordinates":[{:.4f},{:.4f}]}}'
    conn.executemany(
        "INSERT INTO things (id, tenant_id, name, description, properties) "
        "VALUES (?, 1, ?, 'bench', ?)",
        [(t, f"Pegel {t}", f'{{"kind":"pegel","n":{t}}}') for t in range(1, THINGS + 1)])
    conn.executemany(
        "INSERT INTO locations (id, tenant_id, name, description, encoding_type, location) "
        "VALUES (?, 1, ?, 'bench', 'application/geo+json', ?)",
        [(t, f"Ort {t}", point.format(8 + t / 100, 49 + t / 100)) for t in range(1, THINGS + 1)])
    conn.executemany("INSERT INTO thing_locations (thing_id, location_id) VALUES (?, ?)",
                     [(t, t) for t in range(1, THINGS + 1)])
    conn.executemany(
        "INSERT INTO features (id, tenant_id, name, description, encoding_type, feature, "
        "generated_from_location_id) VALUES (?, 1, ?, 'bench', 'application/geo+json', ?, ?)",
        [(t, f"Ort {t}", point.format(8 + t / 100, 49 + t / 100), t)
         for t in range(1, THINGS + 1)])
    first = END - PER_STREAM * STEP
    conn.executemany(
        "INSERT INTO datastreams (id, tenant_id, name, description, observation_type, "
        "unit_of_measurement, thing_id, sensor_id, observed_property_id, "
        "phenomenon_time_start, phenomenon_time_end) "
        "VALUES (?, 1, ?, 'bench', 'OM_Measurement', '{\"symbol\":\"cm\"}', ?, 1, 1, ?, ?)",
        [(d, f"Wasserstand {d}", (d - 1) % THINGS + 1, micros(first),
          micros(END - STEP)) for d in range(1, DATASTREAMS + 1)])
    conn.execute("COMMIT")
    rng = random.Random(4)
    step, start = int(STEP.total_seconds() * 1_000_000), micros(first)
    rows: list[tuple] = []
    ident = 0
    # Time-major, as ingest writes them: every Datastream's value of one moment, then the next.
    for k in range(PER_STREAM):
        moment = start + k * step
        for d in range(1, DATASTREAMS + 1):
            ident += 1
            rows.append((ident, d, (d - 1) % THINGS + 1, moment, round(rng.uniform(0, 30), 2)))
        if len(rows) >= 200_000 or k == PER_STREAM - 1:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO observations (id, tenant_id, datastream_id, feature_id, "
                "phenomenon_time_start, result_type, result_number) VALUES (?, 1, ?, ?, ?, 1, ?)",
                rows)
            conn.execute("COMMIT")
            rows.clear()
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("CREATE TABLE bench_query_meta (observations INTEGER)")
    conn.execute("INSERT INTO bench_query_meta VALUES (?)", (OBSERVATIONS,))
    conn.close()
    return round(time.perf_counter() - began, 1)


def dataset() -> tuple[Target, float | None]:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"query-{OBSERVATIONS}.sqlite3"
    target = Target("sqlite", f"sqlite:///{path}", DATA_DIR)
    if path.exists():
        try:
            with sqlite3.connect(path) as conn:
                if conn.execute("SELECT observations FROM bench_query_meta").fetchone():
                    # Later migrations of the code base, if any.
                    cli("migrate", "--database-url", target.url, "--data-dir", str(DATA_DIR))
                    return target, None
        except sqlite3.OperationalError:
            pass
    print(f"building the SQLite data set of {OBSERVATIONS:,} observations …", flush=True)
    return target, build(path)


# ---------------------------------------------------------------------------------------------
# the SQL the read path emits


def capture_sql(url: str, resource: str, params: dict[str, str]) -> list[tuple[str, Any]]:
    """Run the real read path in-process once, as for an anonymous caller (whose visibility
    rules the server adds too), and record every SELECT it sends."""
    from sqlalchemy import event

    from ortspuls.db.engine import Database
    from ortspuls.query import parse_query_options
    from ortspuls.query.compile import QueryCompiler
    from ortspuls.sta import read as reading
    from ortspuls.sta.paths import parse_path
    from ortspuls.sta.serialize import Serializer

    try:
        from ortspuls.tenancy.visibility import ANONYMOUS as visible
    except ImportError:  # before the visibility rules existed
        visible = None

    async def run() -> list[tuple[str, Any]]:
        db = Database(url)
        captured: list[tuple[str, Any]] = []

        def record(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().upper().startswith(("SELECT", "WITH")):
                captured.append((statement, parameters))

        event.listen(db.read_engine.sync_engine, "before_cursor_execute", record)
        try:
            async with db.read() as conn:
                ctx = reading.ReadContext(conn=conn, dialect=db.dialect,
                                          serializer=Serializer("http://bench/v1.1"),
                                          default_top=100, max_top=10_000,
                                          compiler=QueryCompiler(db.dialect, visible),
                                          visible=visible)
                path = parse_path(resource)
                await reading.read_collection(ctx, path, parse_query_options(params),
                                              "http://bench/v1.1/" + resource, params)
        finally:
            await db.close()
        return captured

    return asyncio.run(run())


def time_raw(path: str, statements: list[tuple[str, Any]], runs: int = RUNS) -> dict:
    from ortspuls.db.engine import SQLITE_PRAGMAS
    from ortspuls.db.sqlite_functions import register

    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        conn.execute(pragma)
    register(conn)
    samples, cpu = [], 0.0
    try:
        for i in range(WARMUP + runs):
            began, began_cpu = time.perf_counter(), time.process_time()
            conn.execute("BEGIN")
            for sql, args in statements:
                conn.execute(sql, args).fetchall()
            conn.execute("COMMIT")
            if i >= WARMUP:
                samples.append(time.perf_counter() - began)
                cpu += time.process_time() - began_cpu
    finally:
        conn.close()
    return {**stats(samples), "cpu_ms": round(cpu / runs * 1000, 2)}


def stats(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 2),
            "samples": len(ordered)}


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_api(client: httpx.Client, url: str, params: dict | None = None,
             runs: int = RUNS, pid: int | None = None) -> tuple[dict, dict]:
    """p50/p95 wall time per request, and the server's CPU time per request: on a busy
    machine the wall time also counts waiting for a CPU, the CPU time does not."""
    samples, body, cpu = [], {}, 0.0
    for i in range(WARMUP + runs):
        if i == WARMUP and pid is not None:
            cpu = process_cpu(pid)
        began = time.perf_counter()
        response = client.get(url, params=params)
        elapsed = time.perf_counter() - began
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} {params}: {response.status_code} {response.text}")
        if i >= WARMUP:
            samples.append(elapsed)
        body = response.json()
    out = stats(samples)
    if pid is not None:
        out["server_cpu_ms"] = round((process_cpu(pid) - cpu) / runs * 1000, 2)
    return out, body


# ---------------------------------------------------------------------------------------------
# the measurements


def measure(target: Target) -> dict[str, dict]:
    path = target.url.removeprefix("sqlite:///")
    t2 = END - STEP
    t1 = t2 - 1000 * STEP  # 1,000 Observations of one Datastream
    window = {"$filter": f"phenomenonTime ge {iso(t1)} and phenomenonTime lt {iso(t2)}",
              "$top": "1000"}
    count = {"$filter": f"result gt 15 and phenomenonTime ge {iso(t1)}", "$count": "true",
             "$top": "1"}
    latest = {"$expand": "Observations($orderby=phenomenonTime desc;$top=1)", "$top": "100"}
    out: dict[str, dict] = {}
    with (running_server(target, workers=1) as server,
          httpx.Client(base_url=server.sta, timeout=60) as client):  # anonymous, as a dashboard
        pid = server.process.pid
        stream = f"Datastreams({DS})/Observations"

        api, body = time_api(client, "/" + stream, window, pid=pid)
        out["time_window"] = {"api": api, "rows": len(body["value"]),
                              "raw_sql": time_raw(path, capture_sql(target.url, stream, window))}

        api, body = time_api(client, "/" + stream, count, pid=pid)
        out["count"] = {"api": api, "count": body["@iot.count"],
                        "raw_sql": time_raw(path, capture_sql(target.url, stream, count))}

        # All 1,000 Datastreams, page by page through the next links, several times over.
        pages, first, cpu = [], None, 0.0
        for walk_number in range(WARMUP + RUNS // 10):
            if walk_number == WARMUP:
                cpu = process_cpu(pid)
            url, params, walk = "/Datastreams", latest, []
            while url:
                began = time.perf_counter()
                response = client.get(url, params=params)
                walk.append(time.perf_counter() - began)
                page = response.json()
                assert all(len(d["Observations"]) == 1 for d in page["value"])
                first = first or page
                url, params = page.get("@iot.nextLink"), None
            pages.append(walk)
        samples = [s for walk in pages[WARMUP:] for s in walk]
        cpu_per_page = (process_cpu(pid) - cpu) / len(samples) * 1000
        out["latest_per_datastream_page"] = {
            "api": {**stats(samples), "server_cpu_ms": round(cpu_per_page, 2)},
            "pages_per_walk": len(pages[-1]),
            "raw_sql": time_raw(path, capture_sql(target.url, "Datastreams", latest))}

        # Deep pages: position 1,000,000 of all Observations by id, by $skip and by keyset.
        with sqlite3.connect(path) as conn:
            (before,) = conn.execute("SELECT id FROM observations ORDER BY id LIMIT 1 "
                                     "OFFSET 999999").fetchone()
        by_skip = {"$orderby": "id", "$top": "100", "$skip": "1000000", "$select": "id,result"}
        by_key = {"$orderby": "id", "$top": "100", "$skiptoken": str(before),
                  "$select": "id,result"}
        api_skip, body_skip = time_api(client, "/Observations", by_skip, runs=RUNS // 5, pid=pid)
        api_key, body_key = time_api(client, "/Observations", by_key, runs=RUNS // 5, pid=pid)
        assert body_skip["value"] == body_key["value"]
        out["deep_page_skip"] = {"api": api_skip, "raw_sql": time_raw(
            path, capture_sql(target.url, "Observations", by_skip), runs=RUNS // 5)}
        out["deep_page_keyset"] = {"api": api_key, "raw_sql": time_raw(
            path, capture_sql(target.url, "Observations", by_key), runs=RUNS // 5)}
        # Within one Datastream (index order phenomenonTime, id), the last page.
        with sqlite3.connect(path) as conn:
            at, ident = conn.execute(
                "SELECT phenomenon_time_start, id FROM observations WHERE datastream_id = ? "
                "ORDER BY phenomenon_time_start, id LIMIT 1 OFFSET ?",
                (DS, PER_STREAM - 101)).fetchone()
        stream_skip = {"$top": "100", "$skip": str(PER_STREAM - 100)}
        stream_key = {"$top": "100", "$skiptoken": f"{at}_{ident}"}
        api_skip, body_skip = time_api(client, "/" + stream, stream_skip, pid=pid)
        api_key, body_key = time_api(client, "/" + stream, stream_key, pid=pid)
        assert body_skip["value"] == body_key["value"]
        out["stream_last_page_skip"] = {"api": api_skip}
        out["stream_last_page_keyset"] = {"api": api_key}
    return out


def measure_parse() -> dict:
    """The parser itself (its cache of recent options bypassed), wall and CPU time; and a
    repeated filter (cached)."""
    from ortspuls.query import parse_filter
    from ortspuls.query.parser import _parse_uncached

    def cold() -> None:
        _parse_uncached(TYPICAL_FILTER, "$filter")

    cold()
    runs, _ = timeit.Timer(cold).autorange()
    wall, cpu = [], []
    for _ in range(7):
        w, c = time.perf_counter(), time.process_time()
        for _ in range(runs):
            cold()
        wall.append((time.perf_counter() - w) / runs * 1e6)
        cpu.append((time.process_time() - c) / runs * 1e6)
    parse_filter(TYPICAL_FILTER)
    cached = min(timeit.repeat(lambda: parse_filter(TYPICAL_FILTER), number=10_000, repeat=5))
    return {"filter": TYPICAL_FILTER, "p50_us": round(statistics.median(wall), 1),
            "cpu_us": round(statistics.median(cpu), 1), "cached_us": round(cached / 10, 2)}


def run() -> dict:
    target, built = dataset()
    results = measure(target)
    parse = measure_parse()
    rows = []
    for name, r in results.items():
        api, raw = r["api"], r.get("raw_sql")
        goal = TARGETS_MS.get(name)
        rows.append([name, api["p50_ms"], api["p95_ms"], api.get("server_cpu_ms"),
                     raw["p50_ms"] if raw else None, raw["cpu_ms"] if raw else None, goal,
                     None if goal is None else api["p50_ms"] <= goal])
    print(table(f"Query options on SQLite, {OBSERVATIONS:,} Observations (ms, sequential; "
                f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)",
                ["query", "API p50", "API p95", "server CPU", "raw SQL p50", "raw SQL CPU",
                 "target", "p50 met"], rows))
    print(f"parse_filter (typical filter): {parse['p50_us']} µs p50, {parse['cpu_us']} µs CPU "
          f"(target ≤ {TARGET_PARSE_US:.0f} µs); repeated (cached): {parse['cached_us']} µs")
    data = {"observations": OBSERVATIONS, "datastreams": DATASTREAMS, "runs": RUNS,
            "build_s": built, "results": results, "parse": parse,
            "targets_ms": TARGETS_MS, "target_parse_us": TARGET_PARSE_US}
    path = save("query", data)
    print(f"wrote {path}")
    return data


if __name__ == "__main__":
    run()
