"""Tenants: a municipality or the county it cooperates in (a county has member tenants).

The installation starts with one tenant ("default"); a single-town install never needs another.
`TenantDirectory` keeps the small tenant table in memory for a few seconds, so resolving
`/t/<slug>/` and tenant defaults costs no query per request.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ortspuls.db.engine import Database
from ortspuls.db.schema import tenants
from ortspuls.tenancy.tables import tenant_settings

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# Amtlicher Gemeindeschlüssel (8 digits) or Amtlicher Regionalschlüssel (12 digits).
AGS = re.compile(r"^(?:\d{8}|\d{12})$")
CACHE_SECONDS = 5.0


class TenantError(ValueError):
    """A tenant request that cannot be carried out; the message says why."""


@dataclass(frozen=True, slots=True)
class Tenant:
    id: int
    slug: str
    name: str
    parent_id: int | None
    ags: str | None
    default_public: bool = True


def check_slug(slug: str) -> str:
    if not SLUG.match(slug or ""):
        raise TenantError(f"{slug!r} is not a valid short name: use 1 to 64 lower-case letters, "
                          "digits and hyphens, e.g. musterstadt or kreis-x")
    return slug


async def load_tenants(conn: AsyncConnection) -> list[Tenant]:
    rows = await conn.execute(
        select(tenants.c.id, tenants.c.slug, tenants.c.name, tenants.c.parent_id, tenants.c.ags,
               tenant_settings.c.default_public)
        .select_from(tenants.outerjoin(tenant_settings,
                                       tenant_settings.c.tenant_id == tenants.c.id))
        .order_by(tenants.c.id))
    return [Tenant(r.id, r.slug, r.name, r.parent_id, r.ags,
                   True if r.default_public is None else bool(r.default_public)) for r in rows]


async def create_tenant(db: Database, slug: str, name: str, parent: str | None = None,
                        ags: str | None = None, default_public: bool = True) -> Tenant:
    check_slug(slug)
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise TenantError("a tenant needs a name of 1 to 200 characters, e.g. "
                          "\"Stadt Musterstadt\"")
    if ags is not None and ags != "" and not AGS.match(ags):
        raise TenantError(f"{ags!r} is not an official municipality key: give the 8-digit "
                          "AGS or the 12-digit Regionalschlüssel")
    async with db.write() as conn:
        known = {t.slug: t for t in await load_tenants(conn)}
        if slug in known:
            raise TenantError(f"a tenant {slug!r} exists already")
        parent_id = None
        if parent:
            found = known.get(parent)
            if found is None:
                raise TenantError(f"no tenant {parent!r} to be the county of {slug!r}; add it "
                                  "first with `ortspuls tenant add`")
            if found.parent_id is not None:
                raise TenantError(f"{parent!r} is itself a member of a county; a county cannot "
                                  "be a member")
            parent_id = found.id
        now = datetime.now(UTC)
        ident = (await conn.execute(insert(tenants).values(
            slug=slug, name=name, parent_id=parent_id, ags=ags or None, created_at=now,
        ).returning(tenants.c.id))).scalar_one()
        await conn.execute(insert(tenant_settings).values(
            tenant_id=ident, default_public=default_public, updated_at=now))
    return Tenant(ident, slug, name, parent_id, ags or None, default_public)


async def set_default_public(conn: AsyncConnection, tenant_id: int, public: bool) -> None:
    now = datetime.now(UTC)
    result = await conn.execute(update(tenant_settings).where(
        tenant_settings.c.tenant_id == tenant_id).values(default_public=public, updated_at=now))
    if result.rowcount == 0:
        await conn.execute(insert(tenant_settings).values(
            tenant_id=tenant_id, default_public=public, updated_at=now))


async def default_public(conn: AsyncConnection, tenant_id: int) -> bool:
    value = (await conn.execute(select(tenant_settings.c.default_public).where(
        tenant_settings.c.tenant_id == tenant_id))).scalar()
    return True if value is None else bool(value)


class TenantDirectory:
    """All tenants, re-read at most every few seconds (and at once after a local change)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._loaded = 0.0
        self._by_id: dict[int, Tenant] = {}
        self._by_slug: dict[str, Tenant] = {}

    def invalidate(self) -> None:
        self._loaded = 0.0

    async def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._loaded < CACHE_SECONDS:
            return
        async with self.db.read(primary=True) as conn:
            rows = await load_tenants(conn)
        self._by_id = {t.id: t for t in rows}
        self._by_slug = {t.slug: t for t in rows}
        self._loaded = now

    async def all(self) -> list[Tenant]:
        await self._refresh()
        return list(self._by_id.values())

    async def by_slug(self, slug: str) -> Tenant | None:
        await self._refresh()
        return self._by_slug.get(slug)

    async def by_id(self, ident: int) -> Tenant | None:
        await self._refresh()
        return self._by_id.get(ident)

    async def members(self, ident: int) -> list[Tenant]:
        await self._refresh()
        return [t for t in self._by_id.values() if t.parent_id == ident]

    async def view(self, slug: str) -> frozenset[int] | None:
        """The tenant ids a `/t/<slug>/` view shows (a county: itself and its members), or
        None for an unknown slug."""
        tenant = await self.by_slug(slug)
        if tenant is None:
            return None
        return frozenset([tenant.id, *(m.id for m in await self.members(tenant.id))])

    async def is_single(self) -> bool:
        """One tenant: the installation never shows the concept."""
        await self._refresh()
        return len(self._by_id) <= 1
