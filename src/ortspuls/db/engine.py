"""Database engines: SQLite (WAL) by default, PostgreSQL/PostGIS when configured.

`Database.read()` gives a connection inside a read transaction (one consistent snapshot for all
statements of a request); `Database.write()` gives one write transaction. On SQLite, writers of
one process queue on an asyncio lock and take the database lock up front (`BEGIN IMMEDIATE`), so
concurrent writers in several processes wait (busy timeout) instead of failing half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
    "PRAGMA cache_size=-65536",
    "PRAGMA mmap_size=268435456",
    "PRAGMA temp_store=MEMORY",
)


class DatabaseUrlError(ValueError):
    pass


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
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised via the engine
        # Let SQLAlchemy decide when transactions begin (see "begin" below), not the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()
        from ortspuls.db.sqlite_functions import register

        register(dbapi_connection)

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn):  # pragma: no cover - exercised via the engine
        mode = "BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN"
        conn.exec_driver_sql(mode)


class Database:
    """One engine for writes and one (possibly the same) for reads."""

    def __init__(self, url: str, read_url: str | None = None) -> None:
        self.url = url
        self.dialect = make_url(async_url(url)).get_backend_name()
        self.engine = self._create_engine(url)
        self.read_engine = self._create_engine(read_url) if read_url else self.engine
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

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
        must see the caller's own recent writes (checks before a write)."""
        engine = self.engine if primary else self.read_engine
        async with engine.connect() as conn, conn.begin():
            yield conn

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
