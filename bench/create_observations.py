"""CreateObservations (DataArray bulk path): 10,000 observations per request into a fresh SQLite
database, printed beside the raw batched-insert rate of the same database in the same run.

The server runs as users run it (embedded MQTT broker on, no subscribers). Requests are sent one
after the other by one client, each with one Datastream group of 10,000 rows
(phenomenonTime, result). The raw baseline (`bench.ingest.raw_insert_rate`) is the sqlite3
driver alone writing 10,000-row transactions into the same table with the same indexes.

Run: python -m bench.create_observations [requests]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

import orjson

from bench.common import (
    free_port,
    fresh_database,
    make_datastreams,
    running_server,
    save,
    table,
)
from bench.ingest import raw_insert_rate

ROWS = 10_000


def payload(datastream: int, index: int) -> bytes:
    start = datetime(2025, 3, 1, tzinfo=UTC) + timedelta(seconds=index * ROWS)
    rows = [[(start + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"), 15 + (i % 100) / 10]
            for i in range(ROWS)]
    return orjson.dumps([{"Datastream": {"@iot.id": datastream},
                          "components": ["phenomenonTime", "result"],
                          "dataArray@iot.count": ROWS, "dataArray": rows}])


def run(requests: int = 10) -> dict:
    with fresh_database("sqlite") as target:
        env = {"ORTSPULS_MQTT_PORT": str(free_port()), "ORTSPULS_MQTT_WS_PORT": "0"}
        with running_server(target, env=env) as server:
            (datastream,) = make_datastreams(server, 1)
            bodies = [payload(datastream, i) for i in range(requests + 1)]
            times = []
            with server.client() as client:
                for index, body in enumerate(bodies):
                    began = time.perf_counter()
                    response = client.post("/CreateObservations", content=body,
                                           headers={"Content-Type": "application/json"})
                    elapsed = time.perf_counter() - began
                    answer = response.json()
                    if response.status_code != 201 or len(answer) != ROWS or "error" in answer:
                        raise RuntimeError(f"request {index} failed: {response.text[:300]}")
                    if index:  # the first request warms the server up
                        times.append(elapsed)
        raw = raw_insert_rate(target, datastream, rows=requests * ROWS, batch=ROWS)
    total = sum(times)
    result = {
        "rows_per_request": ROWS, "requests": requests,
        "obs_per_s": round(requests * ROWS / total, 1),
        "median_request_ms": round(statistics.median(times) * 1000, 1),
        "raw_batched_insert_rows_per_s": raw,
    }
    result["share_of_raw"] = round(result["obs_per_s"] / raw, 3)
    # Another process on the machine skews both rates: keep the load beside them.
    result["load_average_1min"] = round(os.getloadavg()[0], 2)
    print(table(f"CreateObservations into SQLite, {ROWS:,} observations per request, "
                f"{requests} requests",
                ["obs/s", "median request ms", "raw batched rows/s", "share of raw", "load"],
                [[result["obs_per_s"], result["median_request_ms"], raw,
                  f"{100 * result['share_of_raw']:.0f}%", result["load_average_1min"]]]))
    save("create_observations", result)
    return result


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
