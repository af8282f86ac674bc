"""The tenancy tables (migration 0300): tenant settings, users, memberships, sessions, login
attempts, OpenID Connect providers and pending logins, stream sharing and the audit log.

They share `ortspuls.db.schema.metadata`. The audit log has no foreign keys to entities or users,
so its rows outlive what they describe.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ortspuls.db.schema import metadata
from ortspuls.db.types import Id, Json, Timestamp

ROLES = ("admin", "editor", "viewer")

tenant_settings = Table(
    "tenant_settings",
    metadata,
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    # Visibility of new Things, Datastreams and MultiDatastreams of this tenant.
    Column("default_public", Boolean, nullable=False, server_default="1"),
    Column("updated_at", Timestamp, nullable=True),
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(254), nullable=False, unique=True),  # stored lower-case
    Column("display_name", Text, nullable=False, server_default=""),
    # argon2id hash; NULL for accounts that log in through an identity provider only.
    Column("password_hash", Text, nullable=True),
    # Operators run the installation: they add tenants and see every tenant's admin pages.
    Column("is_operator", Boolean, nullable=False, server_default="0"),
    Column("is_active", Boolean, nullable=False, server_default="1"),
    Column("created_at", Timestamp, nullable=False),
    Column("last_login_at", Timestamp, nullable=True),
)

memberships = Table(
    "memberships",
    metadata,
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Index("ix_memberships_tenant_id", "tenant_id"),
)

oidc_providers = Table(
    "oidc_providers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("slug", String(64), nullable=False, unique=True),
    Column("display_name", Text, nullable=False),
    Column("issuer", Text, nullable=False),
    Column("client_id", Text, nullable=False),
    # The client secret must be presented to the provider, so it cannot be hashed; it is never
    # shown again after it was entered and never logged.
    Column("client_secret", Text, nullable=False, server_default=""),
    Column("scopes", Text, nullable=False, server_default="openid email profile"),
    # Set: unknown users of this provider get an account in its tenant with this role.
    Column("default_role", String(16), nullable=True),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("created_at", Timestamp, nullable=False),
)

user_identities = Table(
    "user_identities",
    metadata,
    Column("id", Id, primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("provider_id", Id, ForeignKey("oidc_providers.id", ondelete="CASCADE"),
           nullable=False),
    Column("subject", String(255), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    UniqueConstraint("provider_id", "subject", name="uq_user_identities_provider_subject"),
)

sessions = Table(
    "sessions",
    metadata,
    # SHA-256 of the cookie value: a stolen database does not give usable sessions.
    Column("id", String(64), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("auth_method", String(16), nullable=False),  # "password" or "oidc:<slug>"
    Column("created_at", Timestamp, nullable=False),
    Column("last_seen_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Index("ix_sessions_user_id", "user_id"),
)

login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(254), nullable=False),
    Column("ip", String(64), nullable=False),
    Column("at", Timestamp, nullable=False),
    Column("success", Boolean, nullable=False),
    Index("ix_login_attempts_email_at", "email", "at"),
    Index("ix_login_attempts_ip_at", "ip", "at"),
)

oidc_logins = Table(
    "oidc_logins",
    metadata,
    # SHA-256 of the `state` parameter; the browser also holds a cookie bound to it.
    Column("state_hash", String(64), primary_key=True),
    Column("browser_hash", String(64), nullable=False),
    Column("provider_id", Id, ForeignKey("oidc_providers.id", ondelete="CASCADE"),
           nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    Column("next_url", Text, nullable=False, server_default=""),
    Column("created_at", Timestamp, nullable=False),
)

stream_shares = Table(
    "stream_shares",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    # Exactly one of the two is set.
    Column("datastream_id", Id, ForeignKey("datastreams.id", ondelete="CASCADE"), nullable=True),
    Column("multi_datastream_id", Id, ForeignKey("multi_datastreams.id", ondelete="CASCADE"),
           nullable=True),
    Column("shared_with_id", Id, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    UniqueConstraint("datastream_id", "shared_with_id", name="uq_stream_shares_datastream"),
    UniqueConstraint("multi_datastream_id", "shared_with_id",
                     name="uq_stream_shares_multi_datastream"),
    Index("ix_stream_shares_shared_with_id", "shared_with_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True),
    # NULL: an installation-wide event (a tenant was added).
    Column("tenant_id", Id, nullable=True),
    Column("at", Timestamp, nullable=False),
    Column("actor_kind", String(8), nullable=False),  # user, key, system
    Column("actor_id", BigInteger, nullable=True),
    Column("actor_name", Text, nullable=False),
    Column("action", String(32), nullable=False),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", BigInteger, nullable=True),
    Column("detail", Json, nullable=True),
    Index("ix_audit_log_tenant_at", "tenant_id", "at"),
)
