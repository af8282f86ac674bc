"""What the visibility rules cost on the read path (SQLite, in process).

Builds a database with three tenants (one Thing, Datastream and N Observations each; one
Datastream internal), then times the same SensorThings reads (`sta/read.py`, the server's own
code path) without visibility, as an anonymous reader and as the owner's API key:

    python bench/visibility.py [--observations 200000] [--repeat 30]

Prints median milliseconds per read and writes bench/results/visibility-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from ortspuls.db.engine import Database
from ortspuls.db.migrate import upgrade
from ortspuls.db.schema import entity_tables, link_tables, tenants
from ortspuls.query import parse_query_options
from ortspuls.query.compile import QueryCompiler
from ortspuls.sta import read as reading
from ortspuls.sta.paths import parse_path
from ortspuls.sta.serialize import Serializer
from ortspuls.tenancy.apikeys import Principal
from ortspuls.tenancy.visibility import visibility_for

RESULTS = Path(__file__).parent / "results"
READS = {
    "page of a Datastream's Observations": ("Datastreams(1)/Observations", {"$top": "100"}),
    "count of a Datastream's Observations": ("Datastreams(1)/Observations",
                                             {"$count": "true", "$top": "1"}),
    "all Observations, filter on result": ("Observations",
                                           {"$filter": "result gt 100", "$top": "100"}),
    "Things with expanded Datastreams": ("Things", {"$expand": "Datastreams"}),
    "FeaturesOfInterest": ("FeaturesOfInterest", {}),
    "filter through navigation": ("Things", {"$filter": "Datastreams/Observations/result gt 5"}),
}


async def build(db: Database, per_stream: int) -> None:
    t = entity_tables
    now = datetime.now(UTC)
    async with db.write() as conn:
        for tenant in (2, 3):
            await conn.execute(insert(tenants).values(id=tenant, slug=f"t{tenant}",
                                                      name=f"T{tenant}", created_at=now))
        for n, tenant in ((1, 1), (2, 2), (3, 3)):
            await conn.execute(insert(t["Thing"]).values(id=n, tenant_id=tenant, name=f"T{n}",
                                                         description="d"))
            await conn.execute(insert(t["Location"]).values(
                id=n, tenant_id=tenant, name=f"L{n}", description="d",
                encoding_type="application/geo+json",
                location={"type": "Point", "coordinates": [9, 50]}))
            await conn.execute(insert(link_tables["thing_locations"]).values(
                thing_id=n, location_id=n))
            await conn.execute(insert(t["Sensor"]).values(id=n, tenant_id=tenant, name="s",
                                                          description="d", encoding_type="x",
                                                          metadata="m"))
            await conn.execute(insert(t["ObservedProperty"]).values(
                id=n, tenant_id=tenant, name="p", definition="d", description="d"))
            await conn.execute(insert(t["Datastream"]).values(
                id=n, tenant_id=tenant, name=f"D{n}", description="d", unit_of_measurement={},
                observation_type="x", thing_id=n, sensor_id=n, observed_property_id=n,
                is_public=n != 3))
            await conn.execute(insert(t["FeatureOfInterest"]).values(
                id=n, tenant_id=tenant, name="f", description="d", encoding_type="x",
                feature={"type": "Point", "coordinates": [9, 50]}))
            rows = [{"tenant_id": tenant, "datastream_id": n, "feature_id": n,
                     "phenomenon_time_start": now - timedelta(seconds=i), "result_type": 1,
                     "result_number": float(i % 1000)} for i in range(per_stream)]
            for start in range(0, len(rows), 20_000):
                await conn.execute(insert(t["Observation"]), rows[start:start + 20_000])


async def measure(db: Database, repeat: int) -> dict[str, dict[str, float]]:
    callers = {"no visibility (before)": None,
               "anonymous": visibility_for(None),
               "owner's API key": visibility_for(Principal("k", 1, "read"))}
    out: dict[str, dict[str, float]] = {}
    for label, (raw_path, params) in READS.items():
        path, options = parse_path(raw_path), parse_query_options(params)
        out[label] = {}
        for caller, visible in callers.items():
            times = []
            for _ in range(repeat):
                async with db.read() as conn:
                    ctx = reading.ReadContext(conn, db.dialect, Serializer("http://b/v1.1"), 100,
                                              10_000, QueryCompiler(db.dialect, visible),
                                              visible)
                    started = time.perf_counter()
                    await reading.read_collection(ctx, path, options, "http://b", params)
                    times.append((time.perf_counter() - started) * 1000)
            out[label][caller] = round(statistics.median(times), 3)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--observations", type=int, default=200_000,
                        help="observations per Datastream")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{folder}/bench.sqlite3")
        await upgrade(db)
        await build(db, args.observations)
        results = await measure(db, args.repeat)
        await db.close()
    width = max(len(k) for k in READS)
    for label, by_caller in results.items():
        print(f"{label:<{width}}  " + "  ".join(f"{c}: {ms:8.2f} ms"
                                                 for c, ms in by_caller.items()))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (RESULTS / f"visibility-{stamp}.json").write_text(json.dumps({
        "observations_per_datastream": args.observations, "repeat": args.repeat,
        "median_ms": results}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
