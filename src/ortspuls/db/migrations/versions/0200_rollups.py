"""rollups: hourly and daily aggregates of numeric observations per Datastream

The tables start empty; the server fills them from existing observations at its next start
(`ortspuls.timeseries.rollups.ensure_rollups`, which knows the configured time zone).

Revision ID: 0200
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

import ortspuls.db.types

revision = "0200"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _rollup_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("datastream_id", Id, nullable=False),
        sa.Column("bucket_start", ortspuls.db.types.Timestamp(), nullable=False),
        sa.Column("value_count", sa.BigInteger(), nullable=False),
        sa.Column("value_sum", sa.Float(), nullable=False),
        sa.Column("value_min", sa.Float(), nullable=False),
        sa.Column("value_max", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["datastream_id"], ["datastreams.id"],
                                name=f"fk_{name}_datastream_id_datastreams", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("datastream_id", "bucket_start", name=f"pk_{name}"),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    _rollup_table("rollups_hourly")
    _rollup_table("rollups_daily")
    op.create_table(
        "rollup_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_rollup_state"),
    )


def downgrade() -> None:
    op.drop_table("rollup_state")
    op.drop_table("rollups_daily")
    op.drop_table("rollups_hourly")
