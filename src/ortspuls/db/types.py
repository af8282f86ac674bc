"""Column types that store the same Python value differently per database.

- `Timestamp`: aware UTC datetimes; integer epoch microseconds in SQLite (half the size of ISO
  text, exact ordering), `timestamptz` in PostgreSQL.
- `Geometry`: shapely geometries; WKB in SQLite, PostGIS `geometry(Geometry, 4326)` in PostgreSQL.
- `Json`: JSON in SQLite, `jsonb` in PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import shapely
from sqlalchemy import JSON, BigInteger, Integer, LargeBinary, func
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP
from sqlalchemy.types import TypeDecorator, UserDefinedType

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(value: datetime) -> int:
    """Aware datetime -> integer microseconds since the epoch (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


class Timestamp(TypeDecorator):
    """A point in time, always an aware datetime in UTC on the Python side."""

    impl = BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TIMESTAMP(timezone=True))
        return dialect.type_descriptor(BigInteger())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "postgresql":
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int):
            return value
        return to_micros(value)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "postgresql":
            return value.astimezone(UTC)
        return from_micros(value)


class _PostgisGeometry(UserDefinedType):
    cache_ok = True

    def get_col_spec(self, **kw):
        return "geometry(Geometry, 4326)"

    def bind_expression(self, bindvalue):
        return func.ST_GeomFromWKB(bindvalue, 4326)

    def column_expression(self, col):
        # Typed as the column's own type, so results still go through Geometry's processor.
        return func.ST_AsBinary(col, type_=col.type)


class Geometry(TypeDecorator):
    """A shapely geometry in WGS 84 (EPSG:4326), for spatial queries and observedArea."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(_PostgisGeometry())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        # Spatial queries are 2D; an altitude stays in the GeoJSON as the client sent it.
        return shapely.to_wkb(shapely.force_2d(value))

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return shapely.from_wkb(bytes(value))


Json = JSON().with_variant(JSONB(), "postgresql")
Id = BigInteger().with_variant(Integer(), "sqlite")
