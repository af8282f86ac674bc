"""Database engines: SQLite (WAL) by default, PostgreSQL/PostGIS when configured.

`Database.read()` gives a connection inside a read transaction (one consistent snapshot for all
statements of a request); `Database.write()` gives one write transaction. On SQLite, writers of
one process queue on an asyncio lock and take the database lock up front (`BEGIN IMMEDIATE`), so
concurrent writers in several processes wait (busy timeout) instead of failing half-way.

Reads have a time limit (`query_timeout`, like Datasette's `sql_time_limit_ms`), so that a few
expensive anonymous queries cannot occupy the database for everyone. Writes, migrations, rollup
rebuilds and background work are never limited: only `read()` is, and not in an
`unlimited_reads()` context (the app's lifespan, whose tasks are the background jobs). SQLite: a
progress handler on every connection interrupts statements once the connection's deadline, set
by `read()` for the whole read transaction, has passed. PostgreSQL: `SET LOCAL
statement_timeout` at the start of each read transaction limits each of its statements. Either
way the read raises `QueryTimeout`, and the connection goes back to the pool clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from pathlib import Path

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import await_only

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
    "PRAGMA cache_size=-65536",
    "PRAGMA mmap_size=268435456",
    "PRAGMA temp_store=MEMORY",
)


# SQLite calls the progress handler every this many virtual-machine instructions: about 20 ms
# of a plain scan (~140 million instructions per second), longer where each row calls Python
# (spatial functions); a read overshoots its limit by about one interval, and a statement of
# fewer instructions is never stopped. Each call takes the GIL in aiosqlite's thread and waits
# while the event loop computes (up to the 5 ms switch interval). A count over 3 million rows,
# median of 12: idle loop, no difference for any interval; loop busy in 1-5 ms stretches
# (50-83 %): +20-46 % with 1,000 (Datasette's), +15-28 % with 100,000, +7-15 % with 1,000,000,
# +1-3 % with 3,000,000.
PROGRESS_INSTRUCTIONS = 3_000_000

# The connection record's info key of an SQLite connection's `_Deadline`.
_DEADLINE = "ortspuls_read_deadline"

# True in contexts whose reads are never limited (see `unlimited_reads`).
_UNLIMITED: ContextVar[bool] = ContextVar("ortspuls_unlimited_reads", default=False)


class DatabaseUrlError(ValueError):
    pass


class QueryTimeout(Exception):
    """A read transaction ran longer than the query time limit and the database stopped it.

    The HTTP layer answers it with a 400 and a message saying how to narrow the query; the
    connection it ran on has been rolled back and is usable again."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the query was stopped after {seconds:g} s (query_timeout)")
        self.seconds = seconds


def is_query_timeout(exc: BaseException) -> bool:
    """Whether `exc` (SQLAlchemy's wrapper or the driver's own error) is a statement stopped by
    the time limit: SQLite's "interrupted" (our progress handler) or PostgreSQL's statement
    timeout (SQLSTATE 57014, asyncpg's QueryCanceledError)."""
    if isinstance(exc, QueryTimeout):
        return True
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, sqlite3.OperationalError):
        return str(orig) == "interrupted"
    # SQLAlchemy's asyncpg adapter raises its own Error with the asyncpg error as the cause.
    for candidate in (orig, orig.__cause__ if orig is not None else None):
        if candidate is not None and getattr(candidate, "sqlstate", None) == "57014":
            # 57014 is also a cancel on request (pg_cancel_backend); only the timeout is ours.
            return "statement timeout" in str(candidate)
    return False


def restart_time_limit(conn: AsyncConnection) -> None:
    """Give the read transaction on `conn` its whole time limit again, from now.

    For answers streamed in chunks from one cursor: each chunk gets the limit, so a long
    export or a slow client is not cut off, a chunk that takes too long is (PostgreSQL's
    statement_timeout already applies to each fetch). No-op without a limit."""
    deadline = conn.info.get(_DEADLINE)
    if deadline is not None and deadline.at is not None:
        deadline.at = time.monotonic() + deadline.limit


@contextlib.contextmanager
def unlimited_reads() -> Iterator[None]:
    """Reads in this context, and in the tasks started from it, have no time limit.

    The app's lifespan runs in it: the start (migration check, rollup rebuild, caches) and the
    background jobs it starts (latest-value refresh, ingest pollers, MQTT, the demo) are never
    interrupted, while the server runs requests in tasks of their own, outside it."""
    token = _UNLIMITED.set(True)
    try:
        yield
    finally:
        _UNLIMITED.reset(token)


class _Deadline:
    """The monotonic time after which an SQLite connection's statements are interrupted (None:
    no limit). `read()` sets it and clears it on the event loop's thread; the progress handler
    reads it in aiosqlite's thread (one attribute read, atomic under the GIL)."""

    __slots__ = ("at", "limit")

    def __init__(self) -> None:
        self.at: float | None = None
        self.limit = 0.0

    def passed(self) -> bool:
        """The progress handler: a true result makes SQLite stop the statement."""
        at = self.at
        return at is not None and time.monotonic() > at


def _json_dumps(value) -> str:
    return orjson.dumps(value).decode()


def _json_loads(value):
    # SQLite gives a JSON column NUMERIC affinity: a bare JSON number is stored, and returned,
    # as an SQLite number rather than as text.
    if isinstance(value, int | float):
        return value
    return orjson.loads(value)


def async_url(url: str) -> str:
    """Map a user-facing URL (sqlite:///…, postgresql://…) to the async driver we use."""
    try:
        parsed = make_url(url)
    except Exception:
        raise DatabaseUrlError(
            f"database URL {url!r} is not valid; use sqlite:///path or postgresql://user@host/db"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise DatabaseUrlError(f"unsupported database {backend!r}: use SQLite or PostgreSQL")


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection, record):  # pragma: no cover - exercised via the engine
        # Let SQLAlchemy decide when transactions begin (see "begin" below), not the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()
        from ortspuls.db.sqlite_functions import register

        register(dbapi_connection)
        # The time limit of reads: installed once, in aiosqlite's thread (where the statements
        # run), through aiosqlite's own call; idle (no deadline) until read() sets one.
        deadline = _Deadline()
        record.info[_DEADLINE] = deadline
        await_only(dbapi_connection.driver_connection.set_progress_handler(
            deadline.passed, PROGRESS_INSTRUCTIONS))

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi_connection, record):  # pragma: no cover - exercised via the engine
        # Never hand out a pooled connection with a deadline left over (read() clears it too).
        deadline = record.info.get(_DEADLINE) if record is not None else None
        if deadline is not None:
            deadline.at = None

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn):  # pragma: no cover - exercised via the engine
        mode = "BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN"
        conn.exec_driver_sql(mode)


class Database:
    """One engine for writes and one (possibly the same) for reads.

    `query_timeout` (seconds, 0: none) limits each `read()` transaction; the server passes its
    setting, the command line's own uses (migrate, seeding, admin commands) keep no limit."""

    def __init__(self, url: str, read_url: str | None = None, query_timeout: float = 0) -> None:
        if not (query_timeout >= 0 and math.isfinite(query_timeout)):
            raise ValueError(f"query_timeout must be 0 or a positive number, not {query_timeout}")
        self.url = url
        self.dialect = make_url(async_url(url)).get_backend_name()
        self.query_timeout = float(query_timeout)
        self.engine = self._create_engine(url)
        self.read_engine = self._create_engine(read_url) if read_url else self.engine
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        # PostgreSQL counts statement_timeout in whole milliseconds; 0 would mean no limit.
        self._statement_timeout = (
            f"SET LOCAL statement_timeout = {max(1, math.ceil(self.query_timeout * 1000))}")

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def _create_engine(self, url: str) -> AsyncEngine:
        full = async_url(url)
        kwargs: dict = {"json_serializer": _json_dumps, "json_deserializer": _json_loads}
        if full.startswith("sqlite"):
            path = make_url(full).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs.update(pool_size=8, max_overflow=8)
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=False)
        engine = create_async_engine(full, **kwargs)
        if full.startswith("sqlite"):
            _install_sqlite_hooks(engine)
        return engine

    @contextlib.asynccontextmanager
    async def read(self, primary: bool = False) -> AsyncIterator[AsyncConnection]:
        """A read transaction on the replica (if configured); `primary=True` for reads that
        must see the caller's own recent writes (checks before a write).

        Limited to `query_timeout` outside `unlimited_reads()`: on SQLite the whole transaction
        (from checkout to commit), on PostgreSQL each of its statements. A statement stopped
        by the limit raises QueryTimeout."""
        engine = self.engine if primary else self.read_engine
        limit = 0.0 if _UNLIMITED.get() else self.query_timeout
        async with engine.connect() as conn:
            deadline = None
            if limit and engine.dialect.name == "sqlite":
                deadline = conn.info.get(_DEADLINE)
                if deadline is not None:
                    deadline.limit = limit
                    deadline.at = time.monotonic() + limit
            try:
                async with conn.begin():
                    if limit and engine.dialect.name != "sqlite":
                        # Ends with the transaction: nothing stays on the connection.
                        await conn.exec_driver_sql(self._statement_timeout)
                    yield conn
            except QueryTimeout:
                raise
            except Exception as exc:  # also the drivers' own, from code that uses them directly
                if limit and is_query_timeout(exc):
                    raise QueryTimeout(limit) from exc
                raise
            finally:
                # After commit or rollback (a few instructions, below the progress handler's
                # interval), before the connection goes back to the pool.
                if deadline is not None:
                    deadline.at = None

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.connect() as conn:
            await conn.execution_options(write=True)
            async with conn.begin():
                yield conn

    async def close(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
