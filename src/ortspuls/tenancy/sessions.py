"""Login sessions: a random token in an HttpOnly, Secure, SameSite=Lax cookie, stored hashed.

A session ends `session_hours` after login or `session_idle_minutes` after its last request,
whichever comes first, and at logout. Each session has its own CSRF token, which every form of
the admin UI sends back. SensorThings reads with a session cookie see the internal data of the
user's tenants; those lookups are cached for a few seconds (logout in this process clears the
cache at once).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, update

from ortspuls.db.engine import Database
from ortspuls.tenancy.accounts import Account, load_account
from ortspuls.tenancy.apikeys import Principal
from ortspuls.tenancy.tables import sessions

COOKIE = "ortspuls_session"
CACHE_SECONDS = 5.0
# last_seen_at is written at most this often per session (a write per page view is waste).
TOUCH_SECONDS = 30.0


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    id: str  # the hash
    account: Account
    csrf_token: str
    auth_method: str
    expires_at: datetime


class SessionStore:
    def __init__(self, db: Database, settings) -> None:
        self.db = db
        self.lifetime = timedelta(hours=settings.session_hours)
        self.idle = timedelta(minutes=settings.session_idle_minutes)
        self._principals: dict[str, tuple[float, Principal | None]] = {}

    async def create(self, user_id: int, method: str) -> tuple[str, str]:
        """A new session; returns (cookie token, CSRF token)."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        async with self.db.write() as conn:
            # Ended sessions of anyone go now; there is no other sweeper.
            await conn.execute(delete(sessions).where(sessions.c.expires_at < now))
            await conn.execute(insert(sessions).values(
                id=token_hash(token), user_id=user_id, csrf_token=csrf, auth_method=method[:16],
                created_at=now, last_seen_at=now, expires_at=now + self.lifetime))
        return token, csrf

    async def load(self, token: str | None) -> Session | None:
        """The live session of a cookie token (and its account), or None."""
        if not token or len(token) > 128:
            return None
        digest = token_hash(token)
        now = datetime.now(UTC)
        async with self.db.read(primary=True) as conn:
            row = (await conn.execute(select(sessions).where(sessions.c.id == digest))).first()
            if row is None or row.expires_at <= now or row.last_seen_at + self.idle <= now:
                return None
            account = await load_account(conn, row.user_id)
        if account is None:
            return None
        if (now - row.last_seen_at).total_seconds() > TOUCH_SECONDS:
            async with self.db.write() as conn:
                await conn.execute(update(sessions).where(sessions.c.id == digest)
                                   .values(last_seen_at=now))
        return Session(digest, account, row.csrf_token, row.auth_method, row.expires_at)

    async def end(self, token: str | None) -> None:
        if not token:
            return
        digest = token_hash(token)
        self._principals.pop(digest, None)
        async with self.db.write() as conn:
            await conn.execute(delete(sessions).where(sessions.c.id == digest))

    async def principal(self, token: str) -> Principal | None:
        """The reader behind a session cookie, for the SensorThings API (cached briefly)."""
        digest = token_hash(token)
        now = time.monotonic()
        cached = self._principals.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        session = await self.load(token)
        principal = session.account.principal() if session is not None else None
        if len(self._principals) > 10_000:
            self._principals.clear()
        self._principals[digest] = (now + CACHE_SECONDS, principal)
        return principal


def set_cookie(response, token: str, path: str = "/") -> None:
    # No max_age: the cookie lives with the browser session; the server ends it earlier.
    response.set_cookie(COOKIE, token, path=path or "/", httponly=True, secure=True,
                        samesite="lax")


def clear_cookie(response, path: str = "/") -> None:
    response.delete_cookie(COOKIE, path=path or "/", httponly=True, secure=True, samesite="lax")
