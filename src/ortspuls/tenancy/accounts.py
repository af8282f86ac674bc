"""User accounts: argon2id passwords, memberships with roles, rate-limited password login.

Roles per tenant: `admin` (users, keys, integrations, identity providers, audit log), `editor`
(things, datastreams, visibility, sharing, use cases), `viewer` (reads internal data). Operators
run the installation: they add tenants and act as admin of every tenant in the admin UI.

Login attempts are stored, so the limit holds across server processes: after too many wrong
passwords for one address (or from one client address) within the window, every attempt, even
with the right password, is refused until the window has passed.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ortspuls.db.engine import Database
from ortspuls.db.schema import tenants
from ortspuls.db.types import from_micros
from ortspuls.tenancy.apikeys import Principal
from ortspuls.tenancy.tables import ROLES, login_attempts, memberships, users

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
# What each role may do in the admin UI.
_ROLE_RANK = {"viewer": 0, "editor": 1, "admin": 2}

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# Verified against when the address is unknown, so that answer takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("ortspuls-no-such-user-password")


class AccountError(ValueError):
    """A request about accounts that cannot be carried out; the message says why."""


class LoginRefused(Exception):
    """Wrong address or password (one message for both: addresses are not revealed)."""


class LoginRateLimited(Exception):
    """Too many failed attempts; `retry_after` seconds until the next try may succeed."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Membership:
    tenant_id: int
    slug: str
    name: str
    parent_id: int | None
    role: str


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    email: str
    display_name: str
    is_operator: bool
    memberships: tuple[Membership, ...]

    def role_in(self, tenant_id: int) -> str | None:
        """The role in a tenant; operators are admins everywhere."""
        for m in self.memberships:
            if m.tenant_id == tenant_id:
                return "admin" if self.is_operator else m.role
        return "admin" if self.is_operator else None

    def may(self, tenant_id: int, role: str) -> bool:
        have = self.role_in(tenant_id)
        return have is not None and _ROLE_RANK[have] >= _ROLE_RANK[role]

    def principal(self) -> Principal:
        """The account as a reader of the SensorThings API: it sees the internal data of the
        tenants it is a member of (operators included: membership, not operation, gives data)."""
        own = frozenset(m.tenant_id for m in self.memberships)
        first = min(own) if own else 0
        return Principal(self.email, first, "read", tenant_ids=own or frozenset((0,)),
                         user_id=self.id)


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not EMAIL.match(email) or len(email) > 254:
        raise AccountError(f"{email!r} is not an e-mail address")
    return email


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"a password may have at most {MAX_PASSWORD} characters")


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return role


async def hash_password(password: str) -> str:
    check_password(password)
    # argon2 takes tens of milliseconds of CPU: keep it off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(stored: str | None, password: str) -> bool:
    def run() -> bool:
        try:
            return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(run)


# ---------------------------------------------------------------------------------------------
# Accounts and memberships


async def load_account(conn: AsyncConnection, user_id: int) -> Account | None:
    row = (await conn.execute(select(users).where(users.c.id == user_id,
                                                  users.c.is_active))).first()
    if row is None:
        return None
    rows = await conn.execute(
        select(memberships.c.tenant_id, memberships.c.role, tenants.c.slug, tenants.c.name,
               tenants.c.parent_id)
        .join(tenants, tenants.c.id == memberships.c.tenant_id)
        .where(memberships.c.user_id == user_id).order_by(tenants.c.id))
    return Account(row.id, row.email, row.display_name, bool(row.is_operator),
                   tuple(Membership(r.tenant_id, r.slug, r.name, r.parent_id, r.role)
                         for r in rows))


async def user_id_by_email(conn: AsyncConnection, email: str) -> int | None:
    return (await conn.execute(select(users.c.id).where(
        users.c.email == normalize_email(email)))).scalar()


async def add_user(conn: AsyncConnection, email: str, *, tenant_id: int | None, role: str | None,
                   password_hash: str | None = None, display_name: str = "",
                   operator: bool = False) -> tuple[int, bool]:
    """Create the account (or find it by address) and give it `role` in `tenant_id`.
    Returns (user id, created)."""
    email = normalize_email(email)
    if role is not None:
        check_role(role)
    now = datetime.now(UTC)
    ident = await user_id_by_email(conn, email)
    created = ident is None
    if created:
        ident = (await conn.execute(insert(users).values(
            email=email, display_name=display_name.strip()[:200], password_hash=password_hash,
            is_operator=operator, is_active=True, created_at=now,
        ).returning(users.c.id))).scalar_one()
    else:
        values: dict = {}
        if password_hash is not None:
            values["password_hash"] = password_hash
        if operator:
            values["is_operator"] = True
        if display_name:
            values["display_name"] = display_name.strip()[:200]
        if values:
            await conn.execute(update(users).where(users.c.id == ident).values(values))
    if tenant_id is not None and role is not None:
        await set_role(conn, ident, tenant_id, role)
    return ident, created


async def set_role(conn: AsyncConnection, user_id: int, tenant_id: int, role: str) -> None:
    check_role(role)
    result = await conn.execute(update(memberships).where(
        memberships.c.user_id == user_id, memberships.c.tenant_id == tenant_id
    ).values(role=role))
    if result.rowcount == 0:
        await conn.execute(insert(memberships).values(
            user_id=user_id, tenant_id=tenant_id, role=role, created_at=datetime.now(UTC)))


async def remove_membership(conn: AsyncConnection, user_id: int, tenant_id: int) -> bool:
    result = await conn.execute(delete(memberships).where(
        memberships.c.user_id == user_id, memberships.c.tenant_id == tenant_id))
    return result.rowcount > 0


async def tenant_members(conn: AsyncConnection, tenant_id: int) -> list[dict]:
    rows = await conn.execute(
        select(users.c.id, users.c.email, users.c.display_name, users.c.last_login_at,
               users.c.password_hash.is_not(None).label("has_password"), memberships.c.role)
        .join(memberships, memberships.c.user_id == users.c.id)
        .where(memberships.c.tenant_id == tenant_id, users.c.is_active)
        .order_by(users.c.email))
    return [dict(r._mapping) for r in rows]


async def admin_count(conn: AsyncConnection, tenant_id: int) -> int:
    return (await conn.execute(select(func.count()).select_from(memberships).where(
        memberships.c.tenant_id == tenant_id, memberships.c.role == "admin"))).scalar_one()


# ---------------------------------------------------------------------------------------------
# Password login


async def password_login(db: Database, settings, email: str, password: str, ip: str) -> int:
    """The user id for a correct address and password; LoginRefused or LoginRateLimited."""
    email = (email or "").strip().lower()[:254]
    ip = (ip or "unknown")[:64]
    now = datetime.now(UTC)
    window = timedelta(minutes=settings.login_window_minutes)
    since = now - window
    async with db.read(primary=True) as conn:
        by_email = await _failures(conn, login_attempts.c.email == email, since)
        by_ip = await _failures(conn, login_attempts.c.ip == ip, since)
        row = (await conn.execute(select(users.c.id, users.c.password_hash).where(
            users.c.email == email, users.c.is_active))).first()
    for (count, oldest), limit in ((by_email, settings.login_max_failures),
                                   (by_ip, settings.login_max_failures_per_ip)):
        if count >= limit and oldest is not None:
            wait = (oldest + window - now).total_seconds()
            raise LoginRateLimited(max(1, int(wait) + 1))
    ok = await _verify(row.password_hash if row is not None else None, password or "")
    async with db.write() as conn:
        await conn.execute(insert(login_attempts).values(email=email, ip=ip, at=now, success=ok))
        # Old attempts have no use any more.
        await conn.execute(delete(login_attempts).where(login_attempts.c.at < now - 2 * window))
        if ok:
            values: dict = {"last_login_at": now}
            if _hasher.check_needs_rehash(row.password_hash):
                values["password_hash"] = await asyncio.to_thread(_hasher.hash, password)
            await conn.execute(update(users).where(users.c.id == row.id).values(values))
    if not ok:
        raise LoginRefused()
    return row.id


async def _failures(conn: AsyncConnection, who, since: datetime) -> tuple[int, datetime | None]:
    """Failed attempts since `since` (after the last success) and the oldest of them."""
    last_ok = _as_time((await conn.execute(select(func.max(login_attempts.c.at)).where(
        who, login_attempts.c.success, login_attempts.c.at >= since))).scalar())
    start = max(since, last_ok) if last_ok is not None else since
    row = (await conn.execute(select(func.count(), func.min(login_attempts.c.at)).where(
        who, ~login_attempts.c.success, login_attempts.c.at >= start))).first()
    return row[0], _as_time(row[1])


def _as_time(value):
    """Aggregates over Timestamp columns may come back raw (epoch micros on SQLite)."""
    return from_micros(value) if isinstance(value, int) else value
