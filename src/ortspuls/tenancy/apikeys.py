"""API keys: created once, shown once, stored as a SHA-256 hash.

Keys carry 256 random bits, so a fast hash is safe and lets a request find its key with one index
lookup. Verified keys are cached for a few seconds; a revoked key stops working within that time.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update

from ortspuls.db.engine import Database
from ortspuls.db.schema import DEFAULT_TENANT_ID, api_keys

SCOPES = ("read", "ingest", "write", "admin")
# What each scope may do; write includes ingest, admin includes everything.
_RANK = {"read": 0, "ingest": 1, "write": 2, "admin": 3}
KEY_PREFIX = "ops_"
CACHE_SECONDS = 5.0


class ApiKeyError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: an API key (its name, tenant and scope) or a logged-in user.

    `tenant_ids` are the tenants whose internal data the caller may read: a key's own tenant,
    a user's memberships. Writes always go to `tenant_id`.
    """

    name: str
    tenant_id: int
    scope: str
    tenant_ids: frozenset[int] = frozenset()
    key_id: int | None = None
    user_id: int | None = None

    def allows(self, scope: str) -> bool:
        return _RANK[self.scope] >= _RANK[scope]

    @property
    def own_tenants(self) -> frozenset[int]:
        return self.tenant_ids or frozenset((self.tenant_id,))

    @property
    def actor_kind(self) -> str:
        """For the audit log: "user", "key" or "system" (anonymous writes in local setups)."""
        if self.user_id is not None:
            return "user"
        return "key" if self.key_id is not None else "system"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


async def create_key(db: Database, name: str, scope: str,
                     tenant_id: int = DEFAULT_TENANT_ID) -> str:
    if scope not in SCOPES:
        raise ApiKeyError(f"unknown scope {scope!r}; choose one of {', '.join(SCOPES)}")
    if not name or len(name) > 128:
        raise ApiKeyError("a key needs a name of 1 to 128 characters")
    key = new_key()
    async with db.write() as conn:
        exists = (await conn.execute(select(api_keys.c.id).where(
            api_keys.c.tenant_id == tenant_id, api_keys.c.name == name))).first()
        if exists:
            raise ApiKeyError(f"a key named {name!r} exists already; revoke it or choose "
                              "another name")
        await conn.execute(insert(api_keys).values(
            tenant_id=tenant_id, name=name, scope=scope, key_hash=hash_key(key),
            prefix=key[:8], created_at=datetime.now(UTC)))
    return key


async def list_keys(db: Database, tenant_id: int | None = None) -> list[dict]:
    stmt = select(api_keys.c.id, api_keys.c.name, api_keys.c.scope, api_keys.c.prefix,
                  api_keys.c.created_at, api_keys.c.revoked_at, api_keys.c.tenant_id
                  ).order_by(api_keys.c.id)
    if tenant_id is not None:
        stmt = stmt.where(api_keys.c.tenant_id == tenant_id)
    async with db.read() as conn:
        return [dict(r._mapping) for r in await conn.execute(stmt)]


async def revoke_key(db: Database, name: str, tenant_id: int = DEFAULT_TENANT_ID) -> bool:
    async with db.write() as conn:
        result = await conn.execute(update(api_keys).where(
            api_keys.c.name == name, api_keys.c.tenant_id == tenant_id,
            api_keys.c.revoked_at.is_(None)).values(revoked_at=datetime.now(UTC)))
        return result.rowcount > 0


class KeyVerifier:
    """Turns a presented key into a Principal (or None), with a short cache."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def verify(self, key: str) -> Principal | None:
        digest = hash_key(key)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.db.read() as conn:
            row = (await conn.execute(select(
                api_keys.c.id, api_keys.c.name, api_keys.c.tenant_id, api_keys.c.scope,
                api_keys.c.revoked_at
            ).where(api_keys.c.key_hash == digest))).first()
        principal = None
        if row is not None and row.revoked_at is None:
            principal = Principal(row.name, row.tenant_id, row.scope, key_id=row.id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + CACHE_SECONDS, principal)
        return principal
