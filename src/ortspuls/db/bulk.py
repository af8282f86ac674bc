"""The fastest way each database takes a batch of observation rows, inside the caller's
transaction.

- PostgreSQL: ids for the whole batch from the sequence in one query, then binary COPY through
  the asyncpg connection underneath SQLAlchemy (same connection, same transaction). Small
  batches (group commit) use one `INSERT … SELECT FROM unnest(arrays) RETURNING id` instead:
  one round trip where COPY needs two.
- SQLite: the write transaction holds the database lock (BEGIN IMMEDIATE), so the next ids are
  known (max(id) + 1 …); the rows go in with the driver's executemany, with no per-row SQL text.

Values are converted to what the driver takes here, once per value, instead of through
SQLAlchemy's per-column bind processors.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ortspuls.db.schema import entity_tables
from ortspuls.db.types import to_micros

OBSERVATIONS = entity_tables["Observation"]
# Below this many rows one INSERT … unnest (one round trip) beats nextval + COPY (two); group
# commit batches stay below it, bulk inputs (CreateObservations, DataArray) go above.
COPY_MIN_ROWS = 256

COLUMNS = (
    "id", "tenant_id", "datastream_id", "feature_id", "phenomenon_time_start",
    "phenomenon_time_end", "result_time", "result_type", "result_number", "result_string",
    "result_json", "result_quality", "valid_time_start", "valid_time_end", "parameters",
    "multi_datastream_id",
)
_JSON_COLUMNS = frozenset(("result_json", "result_quality", "parameters"))
_SQLITE_INSERT = (f"INSERT INTO observations ({', '.join(COLUMNS)}) "
                  f"VALUES ({', '.join('?' * len(COLUMNS))})")


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _micros(value) -> int | None:
    return None if value is None else to_micros(value)


async def insert_observations(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert observation rows (dicts keyed by column, without id); returns their new ids."""
    dialect = conn.dialect.name
    if dialect == "postgresql" and len(rows) >= COPY_MIN_ROWS:
        return await _copy_postgresql(conn, rows)
    if dialect == "sqlite":
        return await _executemany_sqlite(conn, rows)
    if dialect == "postgresql":
        return await _unnest_postgresql(conn, rows)
    stmt = insert(OBSERVATIONS).returning(OBSERVATIONS.c.id, sort_by_parameter_order=True)
    return list((await conn.execute(stmt, rows)).scalars().all())


_PG_TYPES = {
    "tenant_id": "bigint", "datastream_id": "bigint", "feature_id": "bigint",
    "phenomenon_time_start": "timestamptz", "phenomenon_time_end": "timestamptz",
    "result_time": "timestamptz", "result_type": "smallint", "result_number": "float8",
    "result_string": "text", "result_json": "jsonb", "result_quality": "jsonb",
    "valid_time_start": "timestamptz", "valid_time_end": "timestamptz", "parameters": "jsonb",
    "multi_datastream_id": "bigint",
}
# One statement, one round trip, the same text for every batch size (asyncpg keeps it prepared).
_PG_UNNEST = (
    f"INSERT INTO observations ({', '.join(COLUMNS[1:])}) "
    f"SELECT {', '.join(COLUMNS[1:])} FROM unnest("
    + ", ".join(f"${i + 1}::{_PG_TYPES[c]}[]" for i, c in enumerate(COLUMNS[1:]))
    + f") AS u({', '.join(COLUMNS[1:])}) RETURNING id"
)


async def _unnest_postgresql(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
    columns: list[list[Any]] = [[] for _ in COLUMNS[1:]]
    for r in rows:
        for values, name in zip(columns, COLUMNS[1:], strict=True):
            value = r.get(name)
            values.append(_json(value) if name in _JSON_COLUMNS else value)
    raw = await conn.get_raw_connection()
    records = await raw.driver_connection.fetch(_PG_UNNEST, *columns)
    # The rows are inserted in the order of the arrays and take ascending ids from the sequence,
    # so the sorted ids are the ids of the rows in order, whatever order RETURNING uses.
    return sorted(r[0] for r in records)


async def _copy_postgresql(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
    ids = list((await conn.execute(
        text("SELECT nextval('observations_id_seq') FROM generate_series(1, :n)"),
        {"n": len(rows)})).scalars())
    records = [
        (id_, r["tenant_id"], r["datastream_id"], r["feature_id"], r["phenomenon_time_start"],
         r["phenomenon_time_end"], r["result_time"], r["result_type"], r["result_number"],
         r["result_string"], _json(r["result_json"]), _json(r["result_quality"]),
         r["valid_time_start"], r["valid_time_end"], _json(r["parameters"]),
         r.get("multi_datastream_id"))
        for id_, r in zip(ids, rows, strict=True)
    ]
    raw = await conn.get_raw_connection()
    # The asyncpg connection under SQLAlchemy's adapter; its transaction is the caller's.
    await raw.driver_connection.copy_records_to_table(
        "observations", records=records, columns=COLUMNS)
    return ids


async def _executemany_sqlite(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
    first = (await conn.execute(text("SELECT coalesce(max(id), 0) + 1 FROM observations"))
             ).scalar_one()
    ids = list(range(first, first + len(rows)))
    records = [
        (id_, r["tenant_id"], r["datastream_id"], r["feature_id"],
         _micros(r["phenomenon_time_start"]), _micros(r["phenomenon_time_end"]),
         _micros(r["result_time"]), r["result_type"], r["result_number"], r["result_string"],
         _json(r["result_json"]), _json(r["result_quality"]), _micros(r["valid_time_start"]),
         _micros(r["valid_time_end"]), _json(r["parameters"]), r.get("multi_datastream_id"))
        for id_, r in zip(ids, rows, strict=True)
    ]
    raw = await conn.get_raw_connection()
    await raw.driver_connection.executemany(_SQLITE_INSERT, records)
    return ids
