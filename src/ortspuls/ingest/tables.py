"""The ingest tables (migration 0100): integrations, codecs, device profiles, devices and their
fields, field mappings, deduplication keys, the raw uplink log, pollers and a config version.

They share `ortspuls.db.schema.metadata`; every row carries its `tenant_id`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ortspuls.db.schema import metadata
from ortspuls.db.types import Id, Json, Timestamp


def _tenant() -> Column:
    return Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False)


# One row (id 1): bumped by every configuration change, so all server processes drop their
# cached devices, profiles, codecs and mappings at their next batch.
ingest_state = Table(
    "ingest_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("config_version", BigInteger, nullable=False, server_default="0"),
)

integrations = Table(
    "ingest_integrations",
    metadata,
    Column("id", Id, primary_key=True),
    _tenant(),
    Column("kind", String(16), nullable=False),  # ttn | chirpstack
    Column("name", String(128), nullable=False),
    # The token is shown once; its first characters find the row, its SHA-256 is compared.
    Column("token_prefix", String(16), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False),
    Column("options", Json, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("last_seen_at", Timestamp, nullable=True),
    Column("revoked_at", Timestamp, nullable=True),
    UniqueConstraint("tenant_id", "name", name="uq_ingest_integrations_tenant_name"),
)

codecs = Table(
    "ingest_codecs",
    metadata,
    Column("id", Id, primary_key=True),
    _tenant(),
    Column("name", String(200), nullable=False),
    Column("source", String(16), nullable=False),  # repository | upload
    Column("script", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("examples", Json, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    UniqueConstraint("tenant_id", "name", name="uq_ingest_codecs_tenant_name"),
)

device_profiles = Table(
    "ingest_device_profiles",
    metadata,
    Column("id", Id, primary_key=True),
    _tenant(),
    Column("name", String(200), nullable=False),
    # TTS `version_ids.brand_id` / `model_id` (Device Repository vendor and device ids).
    Column("vendor_id", String(100), nullable=True),
    Column("model_id", String(100), nullable=True),
    Column("codec_id", Id, ForeignKey("ingest_codecs.id", ondelete="SET NULL"), nullable=True),
    Column("sensor", Json, nullable=True),  # name, description, productURL, dataSheetURL
    Column("options", Json, nullable=True),  # firmware_codecs: {version: codec id}
    Column("created_at", Timestamp, nullable=False),
    UniqueConstraint("tenant_id", "name", name="uq_ingest_device_profiles_tenant_name"),
    Index("ix_ingest_device_profiles_model", "tenant_id", "vendor_id", "model_id"),
)

devices = Table(
    "ingest_devices",
    metadata,
    Column("id", Id, primary_key=True),
    _tenant(),
    Column("integration_id", Id, ForeignKey("ingest_integrations.id", ondelete="SET NULL"),
           nullable=True),
    # The DevEUI in upper-case hex; devices without one use "<application>:<device id>".
    Column("dev_eui", String(128), nullable=False),
    Column("name", Text, nullable=False),
    Column("network", Json, nullable=True),  # ids at the network server, brand/model, tags
    Column("profile_id", Id, ForeignKey("ingest_device_profiles.id", ondelete="SET NULL"),
           nullable=True),
    Column("codec_id", Id, ForeignKey("ingest_codecs.id", ondelete="SET NULL"), nullable=True),
    Column("thing_id", Id, ForeignKey("things.id", ondelete="SET NULL"), nullable=True),
    Column("sensor_id", Id, ForeignKey("sensors.id", ondelete="SET NULL"), nullable=True),
    Column("feature_id", Id, ForeignKey("features.id", ondelete="SET NULL"), nullable=True),
    Column("variables", Json, nullable=True),  # e.g. mounting_height for derived values
    Column("health", Json, nullable=True),  # rssi, snr, gateway, battery, frequency, …
    Column("status", String(16), nullable=False, server_default="new"),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", Timestamp, nullable=True),
    Column("last_seen_at", Timestamp, nullable=True),
    Column("last_f_cnt", BigInteger, nullable=True),
    Column("uplink_count", BigInteger, nullable=False, server_default="0"),
    Column("error_count", BigInteger, nullable=False, server_default="0"),
    Column("unmapped", Json, nullable=True),  # decoded fields without a known unit
    Column("created_at", Timestamp, nullable=False),
    UniqueConstraint("tenant_id", "dev_eui", name="uq_ingest_devices_tenant_dev_eui"),
)

device_fields = Table(
    "ingest_device_fields",
    metadata,
    Column("id", Id, primary_key=True),
    _tenant(),
    Column("device_id", Id, ForeignKey("ingest_devices.id", ondelete="CASCADE"), nullable=False),
    Column("field", String(200), nullable=False),
    Column("datastream_id", Id, ForeignKey("datastreams.id", ondelete="CASCADE"), nullable=False),
    Column("unit_known", Boolean, nullable=False, server_default="1"),
    Column("created_at", Timestamp, nullable=False),
    UniqueConstraint("device_id", "field", name="uq_ingest_device_fields_device_field"),
    Index("ix_ingest_device_fields_datastream_id", "datastream_id"),
)

field_mappings = Table(
    "ingest_field_mappings",
    metadata,
    Column("id", Id, primary_key=True),
    _tenant(),
    # Scope: one device, one device profile, or (both NULL) every device of the tenant.
    Column("device_id", Id, ForeignKey("ingest_devices.id", ondelete="CASCADE"), nullable=True),
    Column("profile_id", Id, ForeignKey("ingest_device_profiles.id", ondelete="CASCADE"),
           nullable=True),
    Column("field", String(200), nullable=False),
    Column("ignore", Boolean, nullable=False, server_default="0"),
    Column("name", Text, nullable=True),
    Column("definition", Text, nullable=True),
    Column("unit", Json, nullable=True),
    Column("scale", Float, nullable=True),
    Column("offset", Float, nullable=True),
    Column("expression", Text, nullable=True),  # derived field: arithmetic over other fields
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Index("ix_ingest_field_mappings_scope", "tenant_id", "device_id", "profile_id"),
)

uplink_keys = Table(
    "ingest_uplink_keys",
    metadata,
    Column("tenant_id", Id, ForeignKey("tenants.id"), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("received_at", Timestamp, nullable=False),
    Index("ix_ingest_uplink_keys_received_at", "received_at"),
)

raw_uplinks = Table(
    "ingest_raw_uplinks",
    metadata,
    Column("id", Id, primary_key=True),
    _tenant(),
    Column("integration_id", Id, nullable=True),
    Column("device_id", Id, ForeignKey("ingest_devices.id", ondelete="CASCADE"), nullable=True),
    Column("dev_eui", String(128), nullable=False),
    Column("received_at", Timestamp, nullable=False),
    Column("f_port", Integer, nullable=True),
    Column("f_cnt", BigInteger, nullable=True),
    Column("payload", Text, nullable=True),  # hex
    Column("decoded", Json, nullable=True),
    Column("status", String(24), nullable=False),
    Column("error", Text, nullable=True),
    Column("meta", Json, nullable=True),
    Index("ix_ingest_raw_uplinks_device", "device_id", "id"),
    Index("ix_ingest_raw_uplinks_received_at", "received_at"),
)

pollers = Table(
    "ingest_pollers",
    metadata,
    Column("id", Id, primary_key=True),
    _tenant(),
    Column("name", String(128), nullable=False),
    Column("url", Text, nullable=False),
    Column("interval_s", Float, nullable=False),
    Column("headers", Json, nullable=True),
    Column("fields", Json, nullable=False),  # [{"key": …, "path": "$.…"}]
    Column("time_path", Text, nullable=True),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("created_at", Timestamp, nullable=False),
    Column("last_run_at", Timestamp, nullable=True),
    Column("last_ok_at", Timestamp, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("failures", Integer, nullable=False, server_default="0"),
    UniqueConstraint("tenant_id", "name", name="uq_ingest_pollers_tenant_name"),
)
