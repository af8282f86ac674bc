"""tenancy: tenant settings, users, memberships, sessions, login attempts, OpenID Connect
providers and pending logins, stream sharing, audit log

Revision ID: 0300
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import ortspuls.db.types

revision = "0300"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
Timestamp = ortspuls.db.types.Timestamp


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # 0001 inserted tenant 1 with its id given, which leaves the id sequence behind: the
        # next tenant would get id 1 again.
        op.execute("SELECT setval(pg_get_serial_sequence('tenants', 'id'), "
                   "(SELECT coalesce(max(id), 1) FROM tenants))")
    op.create_table(
        "tenant_settings",
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("default_public", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("updated_at", Timestamp(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE",
                                name="fk_tenant_settings_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_tenant_settings"),
    )
    op.create_table(
        "users",
        sa.Column("id", Id, nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("display_name", sa.Text(), server_default="", nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("is_operator", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.Column("last_login_at", Timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", Id, nullable=False),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name="fk_memberships_user_id_users"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE",
                                name="fk_memberships_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("user_id", "tenant_id", name="pk_memberships"),
    )
    op.create_index("ix_memberships_tenant_id", "memberships", ["tenant_id"])
    op.create_table(
        "oidc_providers",
        sa.Column("id", Id, nullable=False),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("client_secret", sa.Text(), server_default="", nullable=False),
        sa.Column("scopes", sa.Text(), server_default="openid email profile", nullable=False),
        sa.Column("default_role", sa.String(16), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE",
                                name="fk_oidc_providers_tenant_id_tenants"),
        sa.PrimaryKeyConstraint("id", name="pk_oidc_providers"),
        sa.UniqueConstraint("slug", name="uq_oidc_providers_slug"),
    )
    op.create_table(
        "user_identities",
        sa.Column("id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("provider_id", Id, nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name="fk_user_identities_user_id_users"),
        sa.ForeignKeyConstraint(["provider_id"], ["oidc_providers.id"], ondelete="CASCADE",
                                name="fk_user_identities_provider_id_oidc_providers"),
        sa.PrimaryKeyConstraint("id", name="pk_user_identities"),
        sa.UniqueConstraint("provider_id", "subject",
                            name="uq_user_identities_provider_subject"),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("auth_method", sa.String(16), nullable=False),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.Column("last_seen_at", Timestamp(), nullable=False),
        sa.Column("expires_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name="fk_sessions_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_table(
        "login_attempts",
        sa.Column("id", Id, nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("at", Timestamp(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_attempts"),
    )
    op.create_index("ix_login_attempts_email_at", "login_attempts", ["email", "at"])
    op.create_index("ix_login_attempts_ip_at", "login_attempts", ["ip", "at"])
    op.create_table(
        "oidc_logins",
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("provider_id", Id, nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("next_url", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["provider_id"], ["oidc_providers.id"], ondelete="CASCADE",
                                name="fk_oidc_logins_provider_id_oidc_providers"),
        sa.PrimaryKeyConstraint("state_hash", name="pk_oidc_logins"),
    )
    op.create_table(
        "stream_shares",
        sa.Column("id", Id, nullable=False),
        sa.Column("tenant_id", Id, nullable=False),
        sa.Column("datastream_id", Id, nullable=True),
        sa.Column("multi_datastream_id", Id, nullable=True),
        sa.Column("shared_with_id", Id, nullable=False),
        sa.Column("created_at", Timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE",
                                name="fk_stream_shares_tenant_id_tenants"),
        sa.ForeignKeyConstraint(["datastream_id"], ["datastreams.id"], ondelete="CASCADE",
                                name="fk_stream_shares_datastream_id_datastreams"),
        sa.ForeignKeyConstraint(["multi_datastream_id"], ["multi_datastreams.id"],
                                ondelete="CASCADE",
                                name="fk_stream_shares_multi_datastream_id_multi_datastreams"),
        sa.ForeignKeyConstraint(["shared_with_id"], ["tenants.id"], ondelete="CASCADE",
                                name="fk_stream_shares_shared_with_id_tenants"),
        sa.PrimaryKeyConstraint("id", name="pk_stream_shares"),
        sa.UniqueConstraint("datastream_id", "shared_with_id",
                            name="uq_stream_shares_datastream"),
        sa.UniqueConstraint("multi_datastream_id", "shared_with_id",
                            name="uq_stream_shares_multi_datastream"),
    )
    op.create_index("ix_stream_shares_shared_with_id", "stream_shares", ["shared_with_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", Id, nullable=False),
        sa.Column("tenant_id", Id, nullable=True),
        sa.Column("at", Timestamp(), nullable=False),
        sa.Column("actor_kind", sa.String(8), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_name", sa.Text(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.BigInteger(), nullable=True),
        sa.Column("detail", Json, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_tenant_at", "audit_log", ["tenant_id", "at"])


def downgrade() -> None:
    for name in ("audit_log", "stream_shares", "oidc_logins", "login_attempts", "sessions",
                 "user_identities", "oidc_providers", "memberships", "users", "tenant_settings"):
        op.drop_table(name)
