"""Observation ingest over HTTP: single-observation POSTs (group commit) from 32 wrk clients,
per database and worker count, beside the raw batched-insert rate of the same database.

`single_posts` is also used by `servers.py`, `raw_insert_rate` by `create_observations.py`.

Run: python -m bench ingest [--duration 10] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from bench.common import (
    Server,
    Target,
    fresh_database,
    make_datastreams,
    post_script,
    running_server,
    save,
    table,
    wrk,
)

CLIENTS = 32
# (database, API worker processes, how the server is started)
CONFIGS = [("sqlite", 1, "cli"), ("sqlite", 2, "cli"), ("postgresql", 2, "cli")]


def _stored(server: Server) -> int:
    with server.client() as client:
        return client.get("/Observations", params={"$count": "true", "$top": 0}
                          ).json()["@iot.count"]


def single_posts(server: Server, target: Target, datastreams: list[int],
                 duration: float) -> dict:
    """wrk POSTs one observation per request, spread over the Datastreams."""
    bodies = [orjson.dumps({"result": 20 + i / 10, "Datastream": {"@iot.id": ds}}).decode()
              for i, ds in enumerate(datastreams * 10)]
    script = post_script(server.key, "/v1.1/Observations", bodies)
    before = _stored(server)
    wrk(f"{server.sta}/Observations", script, CLIENTS, max(1.0, duration / 4))  # warm-up
    warm = _stored(server)
    result = wrk(f"{server.sta}/Observations", script, CLIENTS, duration)
    result["stored"] = _stored(server) - warm
    result["created_per_s"] = round((result["requests"] - result["non2xx"])
                                    / (result["duration_us"] / 1e6), 1)
    result["warmup_stored"] = warm - before
    return result


def raw_insert_rate(target: Target, datastream: int, rows: int = 50_000,
                    batch: int = 10_000) -> float:
    """The database driver alone: `batch`-row transactions into the observations table (same
    indexes), rows per second. The rows are removed afterwards."""
    start = datetime.now(UTC).replace(microsecond=0)
    if target.kind == "sqlite":
        conn = sqlite3.connect(target.url.removeprefix("sqlite:///"))
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            feature = conn.execute(
                "INSERT INTO features (tenant_id, name, description, encoding_type, feature) "
                "VALUES (1, 'bench', 'bench', 'application/json', '{}') RETURNING id"
            ).fetchone()[0]
            conn.commit()
            base = int(start.timestamp() * 1_000_000)
            began = time.perf_counter()
            for offset in range(0, rows, batch):
                conn.executemany(
                    "INSERT INTO observations (tenant_id, datastream_id, feature_id, "
                    "phenomenon_time_start, result_type, result_number) VALUES (1, ?, ?, ?, 1, ?)",
                    [(datastream, feature, base + (offset + i) * 1_000_000, (offset + i) % 100)
                     for i in range(min(batch, rows - offset))])
                conn.commit()
            elapsed = time.perf_counter() - began
            conn.execute("DELETE FROM observations WHERE feature_id = ?", (feature,))
            conn.execute("DELETE FROM features WHERE id = ?", (feature,))
            conn.commit()
        finally:
            conn.close()
        return round(rows / elapsed, 1)

    async def postgres() -> float:
        conn = await asyncpg.connect(target.url)
        try:
            feature = await conn.fetchval(
                "INSERT INTO features (tenant_id, name, description, encoding_type, feature) "
                "VALUES (1, 'bench', 'bench', 'application/json', '{}') RETURNING id")
            began = time.perf_counter()
            for offset in range(0, rows, batch):
                async with conn.transaction():
                    await conn.executemany(
                        "INSERT INTO observations (tenant_id, datastream_id, feature_id, "
                        "phenomenon_time_start, result_type, result_number) "
                        "VALUES (1, $1, $2, $3, 1, $4)",
                        [(datastream, feature, start + timedelta(seconds=offset + i),
                          float((offset + i) % 100)) for i in range(min(batch, rows - offset))])
            elapsed = time.perf_counter() - began
            await conn.execute("DELETE FROM observations WHERE feature_id = $1", feature)
            await conn.execute("DELETE FROM features WHERE id = $1", feature)
        finally:
            await conn.close()
        return round(rows / elapsed, 1)

    return asyncio.run(postgres())


def run(duration: float = 10, configs=CONFIGS) -> dict:
    results = []
    for kind, workers, http_server in configs:
        with fresh_database(kind) as target:
            with running_server(target, workers=workers, http_server=http_server) as server:
                datastreams = make_datastreams(server, 10)
                posts = single_posts(server, target, datastreams, duration)
            raw = raw_insert_rate(target, datastreams[0])
        results.append({"database": kind, "workers": workers, "http_server": http_server,
                        "single_posts": posts, "create_observations": None,
                        "raw_batched_insert_rows_per_s": raw})
    rows = [[r["database"], r["workers"], r["single_posts"]["created_per_s"],
             r["single_posts"]["p50_ms"], r["single_posts"]["p99_ms"],
             r["single_posts"]["non2xx"], r["raw_batched_insert_rows_per_s"]] for r in results]
    print(table(f"Single-observation POSTs, {CLIENTS} clients, {duration:g} s",
                ["database", "workers", "created/s", "p50 ms", "p99 ms", "non-2xx",
                 "raw batched rows/s"], rows))
    data = {"duration_s": duration, "clients": CLIENTS, "results": results}
    save("ingest", data)
    return data
