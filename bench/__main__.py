"""`python -m bench all` runs every benchmark; `python -m bench <name> [options]` one of them.

Results are printed as tables and written as JSON to bench/results/<name>.json. The load runs
need `wrk` (Debian: apt-get install wrk) and PostgreSQL on 127.0.0.1:5432 as user postgres
(ORTSPULS_BENCH_PG to change it).

    python -m bench all                      # everything, query data set of 2M observations
    python -m bench ingest --duration 20     # single POSTs, CreateObservations, raw insert rate
    python -m bench servers                  # uvicorn against granian
    python -m bench queries --sizes 2000000,50000000   # large sets are built once and kept
    python -m bench query                    # query options: the issue's SQLite targets, keyset
"""

from __future__ import annotations

import argparse
import shutil
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("name", choices=["all", "ingest", "servers", "queries", "query"])
    parser.add_argument("--duration", type=float, default=10, help="seconds per load run")
    parser.add_argument("--sizes", default="2000000",
                        help="query data set sizes (observations), comma-separated, e.g. "
                             "2000000,50000000; large sets are built once and kept")
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    databases = args.databases.split(",")
    if args.name in ("all", "ingest", "servers") and shutil.which("wrk") is None:
        parser.error("the load runs need wrk: apt-get install wrk")

    if args.name in ("all", "ingest"):
        from bench import ingest

        configs = [c for c in ingest.CONFIGS if c[0] in databases]
        ingest.run(args.duration, configs)
    if args.name in ("all", "servers"):
        from bench import servers

        servers.run(args.duration, databases)
    if args.name in ("all", "queries"):
        from bench import queries

        queries.run([int(s) for s in args.sizes.split(",")], databases)
    if args.name in ("all", "query") and "sqlite" in databases:
        from bench import query

        query.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
