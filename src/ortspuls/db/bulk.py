"""The fastest way each database takes a batch of observation rows, inside the caller's
transaction.

- PostgreSQL: ids for the whole batch from the sequence in one query, then binary COPY through
  the asyncpg connection underneath SQLAlchemy (same connection, same transaction). Small
  batches (group commit) use one `INSERT … SELECT FROM unnest(arrays) RETURNING id` instead:
  one round trip where COPY needs two.
- SQLite: the write transaction holds the database lock (BEGIN IMMEDIATE), so the next ids are
  known (max(id) + 1 …); the rows go in with the driver's executemany, with no per-row SQL text.
  Only the columns that hold a value in some row are bound: binding NULLs costs as much as
  binding values, and a typical batch leaves nine of sixteen columns empty.

Rows come column by column (`insert_columns`: one list per column, None for a column that is
NULL in every row), the form the bulk path builds them in; `insert_observations` takes dicts.
Values are converted to what the driver takes here, once per value, instead of through
SQLAlchemy's per-column bind processors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ortspuls.db.schema import entity_tables
from ortspuls.db.types import EPOCH, to_micros

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
TIME_COLUMNS = frozenset(("phenomenon_time_start", "phenomenon_time_end", "result_time",
                          "valid_time_start", "valid_time_end"))
_US = timedelta(microseconds=1)

# Column name -> one value per row; None (or a missing name) means NULL in every row.
Columns = Mapping[str, Sequence[Any] | None]


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _micros(value) -> int | None:
    return None if value is None else to_micros(value)


def micros(values: Sequence[Any]) -> list[int | None]:
    """Aware datetimes (or None) -> epoch microseconds, exactly; one tight pass."""
    try:
        return [None if v is None else (v - EPOCH) // _US for v in values]
    except TypeError:  # a naive datetime among them: UTC, as to_micros reads it
        return [_micros(v) for v in values]


async def insert_columns(conn: AsyncConnection, columns: Columns, size: int,
                         given_micros: Mapping[str, Sequence[int]] | None = None
                         ) -> Sequence[int]:
    """Insert `size` observation rows given column by column (names of COLUMNS without id;
    times as aware datetimes); returns their new ids in row order.

    `given_micros` may hold time columns already as epoch microseconds (what SQLite stores),
    so a caller that needs them anyway does not pay the conversion twice.
    """
    if size == 0:
        return []
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return await _executemany_sqlite(conn, columns, size, given_micros or {})
    if dialect == "postgresql":
        if size >= COPY_MIN_ROWS:
            return await _copy_postgresql(conn, columns, size)
        return await _unnest_postgresql(conn, columns, size)
    rows = [{name: (None if columns.get(name) is None else columns[name][i])
             for name in COLUMNS[1:]} for i in range(size)]
    stmt = insert(OBSERVATIONS).returning(OBSERVATIONS.c.id, sort_by_parameter_order=True)
    return list((await conn.execute(stmt, rows)).scalars().all())


async def insert_observations(conn: AsyncConnection, rows: list[dict[str, Any]]) -> Sequence[int]:
    """Insert observation rows (dicts keyed by column, without id); returns their new ids."""
    size = len(rows)
    columns: dict[str, list[Any] | None] = {}
    for name in COLUMNS[1:]:
        values = [r.get(name) for r in rows]
        columns[name] = None if values.count(None) == size else values
    return await insert_columns(conn, columns, size)


def _present(columns: Columns) -> tuple[str, ...]:
    return tuple(name for name in COLUMNS[1:] if columns.get(name) is not None)


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


def _driver_values(name: str, values: Sequence[Any]) -> Sequence[Any]:
    """A PostgreSQL column as asyncpg takes it (JSON as text)."""
    return list(map(_json, values)) if name in _JSON_COLUMNS else values


async def _unnest_postgresql(conn: AsyncConnection, columns: Columns, size: int) -> list[int]:
    nulls = [None] * size
    arrays = [nulls if columns.get(name) is None else list(_driver_values(name, columns[name]))
              for name in COLUMNS[1:]]
    raw = await conn.get_raw_connection()
    records = await raw.driver_connection.fetch(_PG_UNNEST, *arrays)
    # The rows are inserted in the order of the arrays and take ascending ids from the sequence,
    # so the sorted ids are the ids of the rows in order, whatever order RETURNING uses.
    return sorted(r[0] for r in records)


async def _copy_postgresql(conn: AsyncConnection, columns: Columns, size: int) -> list[int]:
    ids = list((await conn.execute(
        text("SELECT nextval('observations_id_seq') FROM generate_series(1, :n)"),
        {"n": size})).scalars())
    names = _present(columns)
    values = [_driver_values(name, columns[name]) for name in names]  # type: ignore[arg-type]
    records = list(zip(ids, *values, strict=True))
    raw = await conn.get_raw_connection()
    # The asyncpg connection under SQLAlchemy's adapter; its transaction is the caller's.
    await raw.driver_connection.copy_records_to_table(
        "observations", records=records, columns=("id", *names))
    return ids


_INT_COLUMNS = frozenset(("tenant_id", "datastream_id", "feature_id", "result_type",
                          "multi_datastream_id"))


def _same_int(values: Sequence[Any]) -> int | None:
    """The integer every row holds (a column such as `[tenant] * n`), else None."""
    first = values[0]
    if type(first) is int and values.count(first) == len(values):
        return first
    return None


async def _executemany_sqlite(conn: AsyncConnection, columns: Columns, size: int,
                              given_micros: Mapping[str, Sequence[int]]) -> range:
    first = (await conn.execute(text("SELECT coalesce(max(id), 0) + 1 FROM observations"))
             ).scalar_one()
    ids = range(first, first + size)
    names = _present(columns)
    # An integer column with one value for every row (tenant, Datastream, feature, result type
    # of a typical batch) goes into the statement as a literal: fewer values to bind per row.
    slots: list[str] = ["?"]
    values: list[Sequence[Any]] = [ids]
    for name in names:
        column = columns[name]
        if name in _INT_COLUMNS:
            same = _same_int(column)  # type: ignore[arg-type]
            if same is not None:
                slots.append(str(same))
                continue
        elif name in TIME_COLUMNS:
            column = given_micros.get(name) or micros(column)  # type: ignore[arg-type]
        elif name in _JSON_COLUMNS:
            column = list(map(_json, column))  # type: ignore[arg-type]
        slots.append("?")
        values.append(column)  # type: ignore[arg-type]
    sql = (f"INSERT INTO observations (id, {', '.join(names)}) "
           f"VALUES ({', '.join(slots)})")
    raw = await conn.get_raw_connection()
    # The driver's thread takes the tuples straight from the columns.
    await raw.driver_connection.executemany(sql, zip(*values, strict=True))
    return ids
