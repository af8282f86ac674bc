"""The SQL schema, derived from the declarative model plus a few platform tables.

Entity tables get one column per stored field (see `Field.columns`), a foreign key column per
to-one relation, a `tenant_id`, and link tables for many-to-many relations. Timestamps and
geometries use the dialect-aware types of `ortspuls.db.types`.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ortspuls.db.types import Geometry, Id, Json, Timestamp
from ortspuls.model import ENTITY_TYPES, EntityType, FieldKind

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

DEFAULT_TENANT_ID = 1

tenants = Table(
    "tenants",
    metadata,
    Column("id", Id, primary_key=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("parent_id", Id, ForeignKey("tenants.id"), nullable=True),
    Column("ags", String(12), nullable=True),
    Column("created_at", Timestamp, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("scope", String(16), nullable=False),
    # SHA-256 of the key: keys are 256 random bits, so a fast hash is enough and allows lookup.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp, nullable=True),
    Column("last_used_at", Timestamp, nullable=True),
    UniqueConstraint("tenant_id", "name", name="uq_api_keys_tenant_name"),
)


def _field_columns(entity: EntityType) -> list[Column]:
    cols: list[Column] = []
    for f in entity.fields:
        nullable = not f.required
        match f.kind:
            case FieldKind.STRING:
                cols.append(Column(f.column, Text, nullable=nullable))
            case FieldKind.JSON | FieldKind.OBJECT | FieldKind.ARRAY:
                cols.append(Column(f.column, Json, nullable=True))
            case FieldKind.TIME:
                cols.append(Column(f.column, Timestamp, nullable=nullable))
            case FieldKind.INTERVAL | FieldKind.TIME_OR_INTERVAL:
                start, end = f.columns
                cols.append(Column(start, Timestamp, nullable=True))
                cols.append(Column(end, Timestamp, nullable=True))
            case FieldKind.GEOMETRY:
                raw, geom = f.columns
                cols.append(Column(raw, Json, nullable=nullable))
                cols.append(Column(geom, Geometry, nullable=True))
            case FieldKind.RESULT:
                cols.append(Column("result_type", SmallInteger, nullable=False))
                cols.append(Column("result_number", Float, nullable=True))
                cols.append(Column("result_string", Text, nullable=True))
                cols.append(Column("result_json", Json, nullable=True))
    return cols


def _entity_table(entity: EntityType) -> Table:
    columns: list = [
        Column("id", Id, primary_key=True),
        Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False, index=True),
    ]
    columns += _field_columns(entity)
    for rel in entity.to_one:
        target = ENTITY_TYPES[rel.target]
        columns.append(
            Column(rel.fk, Id, ForeignKey(f"{target.table}.id", ondelete="CASCADE"),
                   nullable=not rel.required)
        )
    if entity.name == "FeatureOfInterest":
        # Set when the server generated this feature from a Thing's Location, so it is reused.
        columns.append(Column("generated_from_location_id", Id, nullable=True, index=True))
    if entity.name in ("Thing", "Datastream", "MultiDatastream"):
        columns.append(Column("is_public", Boolean, nullable=False, server_default="1"))
    if entity.name == "Observation":
        # The partition key on PostgreSQL (see db/partitions.py); the writer always sets it.
        next(c for c in columns if c.name == "phenomenon_time_start").nullable = False
    return Table(entity.table, metadata, *columns)


entity_tables: dict[str, Table] = {name: _entity_table(e) for name, e in ENTITY_TYPES.items()}


def _link_tables() -> dict[str, Table]:
    links: dict[str, Table] = {}
    for entity in ENTITY_TYPES.values():
        for rel in entity.relations:
            if rel.link_table is None or rel.link_table in links:
                continue
            here, there = rel.link_columns
            target = ENTITY_TYPES[rel.target]
            extra = []
            if rel.link_table == "multi_datastream_observed_properties":
                # The order of a MultiDatastream's ObservedProperties is the order of its
                # result components.
                extra.append(Column("position", SmallInteger, nullable=False, server_default="0"))
            links[rel.link_table] = Table(
                rel.link_table,
                metadata,
                Column(here, Id, ForeignKey(f"{entity.table}.id", ondelete="CASCADE"),
                       primary_key=True),
                Column(there, Id, ForeignKey(f"{target.table}.id", ondelete="CASCADE"),
                       primary_key=True),
                *extra,
                Index(f"ix_{rel.link_table}_{there}", there),
            )
    return links


link_tables = _link_tables()

# Indexes the read paths need: foreign keys, and the time-window index on observations.
Index("ix_datastreams_thing_id", entity_tables["Datastream"].c.thing_id)
Index("ix_datastreams_sensor_id", entity_tables["Datastream"].c.sensor_id)
Index("ix_datastreams_observed_property_id", entity_tables["Datastream"].c.observed_property_id)
Index("ix_historical_locations_thing_id", entity_tables["HistoricalLocation"].c.thing_id)
Index(
    "ix_observations_datastream_time",
    entity_tables["Observation"].c.datastream_id,
    entity_tables["Observation"].c.phenomenon_time_start,
    entity_tables["Observation"].c.id,
)
Index("ix_observations_feature_id", entity_tables["Observation"].c.feature_id)
# All Datastreams' Observations in the default order (phenomenonTime, id): the first page of
# `GET /Observations` without a Datastream is an index range read, not a sort of the table.
Index(
    "ix_observations_time",
    entity_tables["Observation"].c.phenomenon_time_start,
    entity_tables["Observation"].c.id,
)
Index(
    "ix_observations_multi_datastream_time",
    entity_tables["Observation"].c.multi_datastream_id,
    entity_tables["Observation"].c.phenomenon_time_start,
    entity_tables["Observation"].c.id,
)
Index("ix_multi_datastreams_thing_id", entity_tables["MultiDatastream"].c.thing_id)
Index("ix_multi_datastreams_sensor_id", entity_tables["MultiDatastream"].c.sensor_id)


def table_of(entity: EntityType) -> Table:
    return entity_tables[entity.name]
