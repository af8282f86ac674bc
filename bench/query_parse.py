"""Micro-benchmark: microseconds per ``parse_filter`` call on typical SensorThings filters.

Run with ``python bench/query_parse.py``; writes ``bench/results/query_parse.json``.
"""

from __future__ import annotations

import json
import platform
import timeit
from pathlib import Path

from ortspuls.query import parse_filter

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
        "st_within(location, geography'POLYGON((7.5 51.5, 7.5 53.5, 8.5 53.5, 8.5 51.5, 7.5 51.5))')"
        " and properties/kind eq 'gauge'"
    ),
}


def main() -> None:
    results: dict[str, float] = {}
    for label, text in FILTERS.items():
        parse_filter(text)  # warm up
        runs, total = timeit.Timer(lambda t=text: parse_filter(t)).autorange()
        best = min(timeit.repeat(lambda t=text: parse_filter(t), number=runs, repeat=5))
        results[label] = round(best / runs * 1e6, 1)
        print(f"{label:28s} {results[label]:8.1f} µs/parse")
    mean = round(sum(results.values()) / len(results), 1)
    print(f"{'mean':28s} {mean:8.1f} µs/parse")
    out = Path(__file__).resolve().parent / "results" / "query_parse.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "unit": "microseconds per parse_filter call (best of 5)",
        "python": platform.python_version(),
        "filters": FILTERS,
        "results": results,
        "mean": mean,
    }
    out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
