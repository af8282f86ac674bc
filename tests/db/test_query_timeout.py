"""The time limit of reads (`Database(query_timeout=…)`), in-process against real databases of
both kinds: reads are stopped with `QueryTimeout`, the connection is usable (and unlimited for
writes) afterwards, writes and `unlimited_reads()` are never stopped, 0 means no limit.

No assertion is about elapsed time. Where a statement must outlast the limit whatever the
machine's speed, PostgreSQL sleeps (`pg_sleep`); SQLite, which cannot sleep in SQL, sleeps in
Python inside the transaction first: its deadline covers the whole read transaction, so a
statement of many instructions started after that would be stopped if a deadline were set.
"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from ortspuls.db.engine import (
    Database,
    QueryTimeout,
    is_query_timeout,
    restart_time_limit,
    unlimited_reads,
)

# Fixtures run on the session loop (pyproject); the tests must share it.
session_loop = pytest.mark.asyncio(loop_scope="session")

LIMIT = 0.05
# Minutes of work on either database: only a time limit ends it.
ENDLESS = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000)"
           " SELECT count(*) FROM c")
# Some ten progress-handler intervals of work on SQLite, a fraction of a second.
MODERATE_ROWS = 2_000_000
MODERATE = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
            f"WHERE x < {MODERATE_ROWS}) SELECT count(*) FROM c")


async def outlast_limit(conn, db: Database) -> int:
    """Run past LIMIT in the current transaction and return MODERATE's count."""
    if db.is_sqlite:
        await asyncio.sleep(3 * LIMIT)
    else:
        await conn.exec_driver_sql(f"SELECT pg_sleep({3 * LIMIT})")
    return (await conn.exec_driver_sql(MODERATE)).scalar_one()


async def driver_connection(conn):
    return (await conn.get_raw_connection()).driver_connection


@session_loop
async def test_a_read_past_the_limit_is_stopped_and_the_connection_is_reused(db_url):
    db = Database(db_url, query_timeout=LIMIT)
    try:
        with pytest.raises(QueryTimeout) as caught:
            async with db.read() as conn:
                first = await driver_connection(conn)
                await conn.exec_driver_sql(ENDLESS)
        assert caught.value.seconds == LIMIT
        assert is_query_timeout(caught.value.__cause__)
        # The pool hands out the same connection again, in working order.
        async with db.read() as conn:
            assert await driver_connection(conn) is first
            assert (await conn.exec_driver_sql("SELECT 1")).scalar_one() == 1
        # Without the deadline of the stopped read: a write on it runs past the limit.
        async with db.write() as conn:
            assert await driver_connection(conn) is first
            assert await outlast_limit(conn, db) == MODERATE_ROWS
            if not db.is_sqlite:
                timeout = (await conn.exec_driver_sql("SHOW statement_timeout")).scalar_one()
                assert timeout == "0"
    finally:
        await db.close()


@session_loop
async def test_every_read_gets_its_own_limit(db_url):
    db = Database(db_url, query_timeout=LIMIT)
    try:
        for _ in range(3):
            with pytest.raises(QueryTimeout):
                async with db.read() as conn:
                    await outlast_limit(conn, db)
        async with db.read(primary=True) as conn:
            assert (await conn.exec_driver_sql("SELECT 2")).scalar_one() == 2
    finally:
        await db.close()


@session_loop
async def test_writes_are_never_stopped(db_url):
    db = Database(db_url, query_timeout=LIMIT)
    try:
        async with db.write() as conn:
            assert await outlast_limit(conn, db) == MODERATE_ROWS
        # Also right after a stopped read, on the same connection.
        with pytest.raises(QueryTimeout):
            async with db.read() as conn:
                await conn.exec_driver_sql(ENDLESS)
        async with db.write() as conn:
            assert await outlast_limit(conn, db) == MODERATE_ROWS
    finally:
        await db.close()


@session_loop
async def test_zero_means_no_limit(db_url):
    db = Database(db_url, query_timeout=0)
    try:
        async with db.read() as conn:
            assert await outlast_limit(conn, db) == MODERATE_ROWS
    finally:
        await db.close()


@session_loop
async def test_background_work_reads_without_limit(db_url):
    db = Database(db_url, query_timeout=LIMIT)

    async def job() -> int:
        async with db.read() as conn:
            return await outlast_limit(conn, db)

    try:
        with unlimited_reads():
            assert await job() == MODERATE_ROWS
            # Tasks started in the context (the app's background jobs) inherit it.
            assert await asyncio.create_task(job()) == MODERATE_ROWS
        with pytest.raises(QueryTimeout):
            await job()
    finally:
        await db.close()


@session_loop
async def test_the_replica_has_the_same_limit(db_url):
    db = Database(db_url, read_url=db_url, query_timeout=LIMIT)
    try:
        assert db.read_engine is not db.engine
        with pytest.raises(QueryTimeout):
            async with db.read() as conn:
                await conn.exec_driver_sql(ENDLESS)
        async with db.read() as conn:
            assert (await conn.exec_driver_sql("SELECT 3")).scalar_one() == 3
    finally:
        await db.close()


@session_loop
async def test_a_cancelled_read_leaves_a_usable_connection(db_url):
    """A client that hangs up cancels its request's task in the middle of a statement."""
    db = Database(db_url, query_timeout=0.5)

    async def endless() -> None:
        async with db.read() as conn:
            await conn.exec_driver_sql(ENDLESS)

    try:
        task = asyncio.create_task(endless())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises((asyncio.CancelledError, QueryTimeout)):
            await task
        async with db.read() as conn:
            assert (await conn.exec_driver_sql("SELECT 4")).scalar_one() == 4
        async with db.write() as conn:
            assert await outlast_limit(conn, db) == MODERATE_ROWS
    finally:
        await db.close()


@session_loop
async def test_statements_run_on_the_driver_itself_are_stopped_too(db_url):
    """Some fast paths (rollup series) execute on the driver connection, past SQLAlchemy."""
    db = Database(db_url, query_timeout=LIMIT)
    try:
        with pytest.raises(QueryTimeout):
            async with db.read() as conn:
                driver = await driver_connection(conn)
                if db.is_sqlite:
                    await (await driver.execute(ENDLESS)).fetchall()
                else:
                    await driver.fetchval(ENDLESS)
        async with db.read() as conn:
            assert (await conn.exec_driver_sql("SELECT 5")).scalar_one() == 5
    finally:
        await db.close()


@session_loop
async def test_a_stream_restarts_the_limit_for_each_chunk(db_url):
    """restart_time_limit: each chunk of a streamed answer gets the whole limit again."""
    limit = 0.5
    small = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)"
             " SELECT count(*) FROM c")
    db = Database(db_url, query_timeout=limit)
    try:
        async with db.read() as conn:
            await asyncio.sleep(1.5 * limit)
            restart_time_limit(conn)
            assert (await conn.exec_driver_sql(small)).scalar_one() == 100_000
        if db.is_sqlite:  # without the restart, the transaction's deadline has passed
            with pytest.raises(QueryTimeout):
                async with db.read() as conn:
                    await asyncio.sleep(1.5 * limit)
                    await conn.exec_driver_sql(small)
    finally:
        await db.close()


@session_loop
async def test_other_errors_stay_what_they_are(db_url):
    db = Database(db_url, query_timeout=LIMIT)
    try:
        with pytest.raises(DBAPIError) as caught:
            async with db.read() as conn:
                await conn.exec_driver_sql("SELECT * FROM no_such_table")
        assert not isinstance(caught.value, QueryTimeout)
        assert not is_query_timeout(caught.value)
    finally:
        await db.close()


def test_is_query_timeout_knows_the_drivers_errors():
    assert is_query_timeout(sqlite3.OperationalError("interrupted"))
    assert is_query_timeout(OperationalError("SELECT 1", {}, sqlite3.OperationalError(
        "interrupted")))
    assert not is_query_timeout(sqlite3.OperationalError("database is locked"))
    assert not is_query_timeout(ValueError("interrupted"))
    assert is_query_timeout(QueryTimeout(1))


def test_query_timeout_must_be_a_duration():
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            Database("sqlite:///:memory:", query_timeout=bad)


def test_the_setting_from_file_environment_and_command_line(tmp_path):
    from ortspuls.cli import _settings, build_parser
    from ortspuls.settings import Settings, SettingsError, load_settings

    assert Settings().query_timeout == 20
    config = tmp_path / "ortspuls.toml"
    config.write_text("[ortspuls]\nquery_timeout = 5\n", encoding="utf-8")
    assert load_settings(environ={}, config_file=config).query_timeout == 5
    env = {"ORTSPULS_QUERY_TIMEOUT": "0.5"}
    assert load_settings(environ=env, config_file=config).query_timeout == 0.5
    args = build_parser().parse_args(["serve", "--query-timeout", "0", "--config", str(config)])
    assert _settings(args).query_timeout == 0
    for bad in ("-1", "nan", "inf", "soon"):
        with pytest.raises(SettingsError, match="query_timeout"):
            load_settings(environ={"ORTSPULS_QUERY_TIMEOUT": bad})
