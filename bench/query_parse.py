"""Micro-benchmark: microseconds per ``parse_filter`` call on typical SensorThings filters.

Cold: the parser itself (the cache of recent options bypassed). Cached: a repeated filter, as
dashboards and next links send them. Both as wall time and as CPU time of this process (the
latter stays meaningful on a busy machine).

Run with ``python bench/query_parse.py``; writes ``bench/results/query_parse.json``.
"""

from __future__ import annotations

import json
import os
import platform
import time
import timeit
from pathlib import Path

from ortspuls.query import parse_filter
from ortspuls.query.parser import _parse_uncached

FILTERS = {
    "thing_name_time_result": (
        "Datastream/Thing/name eq 'Pegel Mühlbach' and phenomenonTime ge 2024-01-01T00:00:00Z "
        "and result gt 5"
    ),
    "simple_eq": "name eq 'Temperatur'",
    "time_window": (
        "phenomenonTime ge 2024-01-01T00:00:00+01:00 and phenomenonTime lt 2024-02-01T00:00:00Z"
    ),
    "functions": "startswith(tolower(name), 'pegel') or substringof('wasser', description)",
    "spatial": (
        "st_within(location, geography'POLYGON((7.5 51.5, 7.5 53.5, 8.5 53.5, 8.5 51.5, "
        "7.5 51.5))') and properties/kind eq 'gauge'"
    ),
}


def measure(fn, text: str) -> dict[str, float]:
    """Best of 7 repeats: wall and CPU microseconds per call."""
    fn(text)  # warm up
    runs, _ = timeit.Timer(lambda: fn(text)).autorange()
    wall, cpu = [], []
    for _ in range(7):
        w, c = time.perf_counter(), time.process_time()
        for _ in range(runs):
            fn(text)
        wall.append((time.perf_counter() - w) / runs * 1e6)
        cpu.append((time.process_time() - c) / runs * 1e6)
    return {"wall_us": round(min(wall), 1), "cpu_us": round(min(cpu), 1)}


def cold(text: str):
    return _parse_uncached(text, "$filter")


def main() -> None:
    results: dict[str, dict] = {}
    print(f"{'filter':24s} {'cold wall':>10s} {'cold CPU':>10s} {'cached':>8s}  (µs/parse)")
    for label, text in FILTERS.items():
        results[label] = {"cold": measure(cold, text), "cached": measure(parse_filter, text)}
        r = results[label]
        print(f"{label:24s} {r['cold']['wall_us']:10.1f} {r['cold']['cpu_us']:10.1f} "
              f"{r['cached']['wall_us']:8.1f}")
    mean = {key: round(sum(r["cold"][key] for r in results.values()) / len(results), 1)
            for key in ("wall_us", "cpu_us")}
    print(f"{'mean (cold)':24s} {mean['wall_us']:10.1f} {mean['cpu_us']:10.1f}")
    out = Path(__file__).resolve().parent / "results" / "query_parse.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "unit": "microseconds per parse_filter call (best of 7); cold = uncached",
        "python": platform.python_version(),
        "loadavg": os.getloadavg()[0],
        "filters": FILTERS,
        "results": results,
        "mean_cold": mean,
    }
    out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
