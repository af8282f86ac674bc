"""observation time index: Observations of all Datastreams in time order

`GET /Observations` (and any filter that is not bound to one Datastream) is ordered by
phenomenonTime and id. Without an index on exactly that, every such request sorted the whole
table: about 20 seconds for the first page of 100 million observations. With it, a page is an
index range read. On PostgreSQL the index is created on the partitioned table, so every monthly
partition gets its own.

Building it reads all observations once; on a large database the upgrade takes minutes.

Revision ID: 0400
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "0400"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_observations_time", "observations", ["phenomenon_time_start", "id"])


def downgrade() -> None:
    op.drop_index("ix_observations_time", table_name="observations")
