"""Musterstadt on PostgreSQL: the COPY path and monthly partitions give the very values the
SQLite seeding gives for the same seed and period."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import asyncpg
from tests.conftest import database_args_for, run_cli
from tests.demo.conftest import SEED, seed_demo

START = date(2025, 3, 30)  # across a month's end and the change to summer time


def test_postgresql_seeding_matches_sqlite(tmp_path):
    sqlite = seed_demo(tmp_path / "sqlite", START, 3)
    expected = [(name, datetime.fromtimestamp(us / 1e6, UTC), kind, number)
                for name, us, kind, number in sqlite.sql(
                    "SELECT s.name, o.phenomenon_time_start, o.result_type, o.result_number "
                    "FROM observations o JOIN datastreams s ON s.id = o.datastream_id "
                    "ORDER BY s.name, o.phenomenon_time_start")]
    with database_args_for("postgresql", tmp_path / "pg") as args:
        run_cli("demo", "seed", "--days", "3", "--start", START.isoformat(), "--seed", str(SEED),
                *args)
        url = args[args.index("--database-url") + 1]

        async def read() -> tuple[list, list, int]:
            conn = await asyncpg.connect(url)
            try:
                rows = await conn.fetch(
                    "SELECT s.name, o.phenomenon_time_start, o.result_type, o.result_number "
                    "FROM observations o JOIN datastreams s ON s.id = o.datastream_id "
                    "ORDER BY s.name, o.phenomenon_time_start")
                partitions = await conn.fetch(
                    "SELECT relname FROM pg_class WHERE relname LIKE 'observations_y%' "
                    "ORDER BY relname")
                in_default = await conn.fetchval("SELECT count(*) FROM observations_default")
                return ([tuple(r) for r in rows], [p["relname"] for p in partitions],
                        in_default)
            finally:
                await conn.close()

        got, partitions, in_default = asyncio.run(read())
    assert len(got) == len(expected) > 5_000
    assert got == expected
    assert {"observations_y2025m03", "observations_y2025m04"} <= set(partitions)
    assert in_default == 0
