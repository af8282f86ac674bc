"""ingest: integrations, codecs, device profiles, devices, field mappings, dedup keys, raw
uplink log, pollers

Revision ID: 0100
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import ortspuls.db.types

revision = "0100"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
Timestamp = ortspuls.db.types.Timestamp


def _tenant(table: str) -> list:
    return [
        sa.Column("tenant_id", Id, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name=f"fk_{table}_tenant_id_tenants"),
    ]


def upgrade() -> None:
    op.create_table(
        "ingest_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("config_version", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_state"),
    )
    op.bulk_insert(sa.table("ingest_state", sa.column("id"), sa.column("config_version")),
                   [{"id": 1, "config_version": 0}])

    op.create_table(
        "ingest_integrations",
        sa.Column("id", Id, nullable=False),
        *_tenant("ingest_integrations"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("token_prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("options", Json, nullable=True),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.Column("last_seen_at", Timestamp(), nullable=True),
        sa.Column("revoked_at", Timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_integrations"),
        sa.UniqueConstraint("token_prefix", name="uq_ingest_integrations_token_prefix"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_ingest_integrations_tenant_name"),
    )

    op.create_table(
        "ingest_codecs",
        sa.Column("id", Id, nullable=False),
        *_tenant("ingest_codecs"),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("script", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("examples", Json, nullable=True),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.Column("updated_at", Timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_codecs"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_ingest_codecs_tenant_name"),
    )

    op.create_table(
        "ingest_device_profiles",
        sa.Column("id", Id, nullable=False),
        *_tenant("ingest_device_profiles"),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("vendor_id", sa.String(100), nullable=True),
        sa.Column("model_id", sa.String(100), nullable=True),
        sa.Column("codec_id", Id, nullable=True),
        sa.Column("sensor", Json, nullable=True),
        sa.Column("options", Json, nullable=True),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["codec_id"], ["ingest_codecs.id"], ondelete="SET NULL",
                                name="fk_ingest_device_profiles_codec_id_ingest_codecs"),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_device_profiles"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_ingest_device_profiles_tenant_name"),
    )
    op.create_index("ix_ingest_device_profiles_model", "ingest_device_profiles",
                    ["tenant_id", "vendor_id", "model_id"])

    op.create_table(
        "ingest_devices",
        sa.Column("id", Id, nullable=False),
        *_tenant("ingest_devices"),
        sa.Column("integration_id", Id, nullable=True),
        sa.Column("dev_eui", sa.String(128), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("network", Json, nullable=True),
        sa.Column("profile_id", Id, nullable=True),
        sa.Column("codec_id", Id, nullable=True),
        sa.Column("thing_id", Id, nullable=True),
        sa.Column("sensor_id", Id, nullable=True),
        sa.Column("feature_id", Id, nullable=True),
        sa.Column("variables", Json, nullable=True),
        sa.Column("health", Json, nullable=True),
        sa.Column("status", sa.String(16), server_default="new", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", Timestamp(), nullable=True),
        sa.Column("last_seen_at", Timestamp(), nullable=True),
        sa.Column("last_f_cnt", sa.BigInteger(), nullable=True),
        sa.Column("uplink_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("error_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("unmapped", Json, nullable=True),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["integration_id"], ["ingest_integrations.id"],
                                ondelete="SET NULL",
                                name="fk_ingest_devices_integration_id_ingest_integrations"),
        sa.ForeignKeyConstraint(["profile_id"], ["ingest_device_profiles.id"],
                                ondelete="SET NULL",
                                name="fk_ingest_devices_profile_id_ingest_device_profiles"),
        sa.ForeignKeyConstraint(["codec_id"], ["ingest_codecs.id"], ondelete="SET NULL",
                                name="fk_ingest_devices_codec_id_ingest_codecs"),
        sa.ForeignKeyConstraint(["thing_id"], ["things.id"], ondelete="SET NULL",
                                name="fk_ingest_devices_thing_id_things"),
        sa.ForeignKeyConstraint(["sensor_id"], ["sensors.id"], ondelete="SET NULL",
                                name="fk_ingest_devices_sensor_id_sensors"),
        sa.ForeignKeyConstraint(["feature_id"], ["features.id"], ondelete="SET NULL",
                                name="fk_ingest_devices_feature_id_features"),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_devices"),
        sa.UniqueConstraint("tenant_id", "dev_eui", name="uq_ingest_devices_tenant_dev_eui"),
    )

    op.create_table(
        "ingest_device_fields",
        sa.Column("id", Id, nullable=False),
        *_tenant("ingest_device_fields"),
        sa.Column("device_id", Id, nullable=False),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("datastream_id", Id, nullable=False),
        sa.Column("unit_known", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["ingest_devices.id"], ondelete="CASCADE",
                                name="fk_ingest_device_fields_device_id_ingest_devices"),
        sa.ForeignKeyConstraint(["datastream_id"], ["datastreams.id"], ondelete="CASCADE",
                                name="fk_ingest_device_fields_datastream_id_datastreams"),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_device_fields"),
        sa.UniqueConstraint("device_id", "field", name="uq_ingest_device_fields_device_field"),
    )
    op.create_index("ix_ingest_device_fields_datastream_id", "ingest_device_fields",
                    ["datastream_id"])

    op.create_table(
        "ingest_field_mappings",
        sa.Column("id", Id, nullable=False),
        *_tenant("ingest_field_mappings"),
        sa.Column("device_id", Id, nullable=True),
        sa.Column("profile_id", Id, nullable=True),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("ignore", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("definition", sa.Text(), nullable=True),
        sa.Column("unit", Json, nullable=True),
        sa.Column("scale", sa.Float(), nullable=True),
        sa.Column("offset", sa.Float(), nullable=True),
        sa.Column("expression", sa.Text(), nullable=True),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.Column("updated_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["ingest_devices.id"], ondelete="CASCADE",
                                name="fk_ingest_field_mappings_device_id_ingest_devices"),
        sa.ForeignKeyConstraint(["profile_id"], ["ingest_device_profiles.id"],
                                ondelete="CASCADE",
                                name="fk_ingest_field_mappings_profile_id_ingest_device_profiles"),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_field_mappings"),
    )
    op.create_index("ix_ingest_field_mappings_scope", "ingest_field_mappings",
                    ["tenant_id", "device_id", "profile_id"])

    op.create_table(
        "ingest_uplink_keys",
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("received_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name="fk_ingest_uplink_keys_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("tenant_id", "key", name="pk_ingest_uplink_keys"),
    )
    op.create_index("ix_ingest_uplink_keys_received_at", "ingest_uplink_keys", ["received_at"])

    op.create_table(
        "ingest_raw_uplinks",
        sa.Column("id", Id, nullable=False),
        *_tenant("ingest_raw_uplinks"),
        sa.Column("integration_id", Id, nullable=True),
        sa.Column("device_id", Id, nullable=True),
        sa.Column("dev_eui", sa.String(128), nullable=False),
        sa.Column("received_at", Timestamp(), nullable=False),
        sa.Column("f_port", sa.Integer(), nullable=True),
        sa.Column("f_cnt", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("decoded", Json, nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("meta", Json, nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["ingest_devices.id"], ondelete="CASCADE",
                                name="fk_ingest_raw_uplinks_device_id_ingest_devices"),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_raw_uplinks"),
    )
    op.create_index("ix_ingest_raw_uplinks_device", "ingest_raw_uplinks", ["device_id", "id"])
    op.create_index("ix_ingest_raw_uplinks_received_at", "ingest_raw_uplinks", ["received_at"])

    op.create_table(
        "ingest_pollers",
        sa.Column("id", Id, nullable=False),
        *_tenant("ingest_pollers"),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("interval_s", sa.Float(), nullable=False),
        sa.Column("headers", Json, nullable=True),
        sa.Column("fields", Json, nullable=False),
        sa.Column("time_path", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.Column("last_run_at", Timestamp(), nullable=True),
        sa.Column("last_ok_at", Timestamp(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_pollers"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_ingest_pollers_tenant_name"),
    )


def downgrade() -> None:
    for table in ("ingest_pollers", "ingest_raw_uplinks", "ingest_uplink_keys",
                  "ingest_field_mappings", "ingest_device_fields", "ingest_devices",
                  "ingest_device_profiles", "ingest_codecs", "ingest_integrations",
                  "ingest_state"):
        op.drop_table(table)
