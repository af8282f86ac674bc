"""Login through the municipality's identity provider (OpenID Connect, authorization code flow
with PKCE).

A tenant admin registers the provider (issuer URL, client id and secret) in the admin UI. The
flow: `start` stores a one-time `state` (hashed), the `nonce` and the PKCE verifier, binds them
to the browser with a short-lived cookie and sends the browser to the provider; `finish` checks
the state and the cookie, exchanges the code (authlib's OAuth 2 client), verifies the ID token's
signature against the provider's published keys and its issuer, audience, nonce and times
(joserfc), and maps the identity to an account:

1. an identity seen before (provider, `sub`) logs in its account;
2. else a verified e-mail address of an account that is a member of the provider's tenant links
   the identity to that account (a provider can never take over accounts of other tenants);
3. else, if the provider has a default role, a new account is created in its tenant;
4. else the login is refused.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from authlib.deprecate import AuthlibDeprecationWarning
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ortspuls.db.engine import Database
from ortspuls.tenancy import accounts
from ortspuls.tenancy.tables import memberships, oidc_logins, oidc_providers, user_identities

with warnings.catch_warnings():
    # authlib announces a move to another HTTP package; httpx is what this project uses.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

BROWSER_COOKIE = "ortspuls_oidc"
LOGIN_MINUTES = 10  # a started login must come back within this time
METADATA_SECONDS = 600
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")


class OidcError(Exception):
    """The login through the identity provider failed; the message says why (in English,
    for the log; the page shows a translated summary)."""


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Provider:
    id: int
    tenant_id: int
    slug: str
    display_name: str
    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    default_role: str | None
    enabled: bool


def _provider(row: Any) -> Provider:
    return Provider(row.id, row.tenant_id, row.slug, row.display_name, row.issuer.rstrip("/"),
                    row.client_id, row.client_secret, row.scopes, row.default_role,
                    bool(row.enabled))


async def list_providers(conn: AsyncConnection, tenant_id: int | None = None,
                         enabled_only: bool = False) -> list[Provider]:
    stmt = select(oidc_providers).order_by(oidc_providers.c.display_name)
    if tenant_id is not None:
        stmt = stmt.where(oidc_providers.c.tenant_id == tenant_id)
    if enabled_only:
        stmt = stmt.where(oidc_providers.c.enabled)
    return [_provider(r) for r in await conn.execute(stmt)]


async def provider_by_slug(conn: AsyncConnection, slug: str) -> Provider | None:
    row = (await conn.execute(select(oidc_providers).where(oidc_providers.c.slug == slug))).first()
    return _provider(row) if row is not None else None


async def add_provider(conn: AsyncConnection, tenant_id: int, *, slug: str, display_name: str,
                       issuer: str, client_id: str, client_secret: str,
                       scopes: str = "openid email profile",
                       default_role: str | None = None) -> int:
    from ortspuls.tenancy.tenants import check_slug

    check_slug(slug)
    issuer = issuer.strip().rstrip("/")
    if not issuer.startswith(("https://", "http://")):
        raise accounts.AccountError("the issuer must be an https:// URL")
    if not client_id.strip() or not display_name.strip():
        raise accounts.AccountError("name, issuer and client id are needed")
    if default_role:
        accounts.check_role(default_role)
    scopes = " ".join(dict.fromkeys(["openid", *scopes.split()]))
    if await provider_by_slug(conn, slug) is not None:
        raise accounts.AccountError(f"an identity provider {slug!r} exists already")
    return (await conn.execute(insert(oidc_providers).values(
        tenant_id=tenant_id, slug=slug, display_name=display_name.strip()[:200], issuer=issuer,
        client_id=client_id.strip(), client_secret=client_secret, scopes=scopes,
        default_role=default_role or None, enabled=True, created_at=datetime.now(UTC),
    ).returning(oidc_providers.c.id))).scalar_one()


async def remove_provider(conn: AsyncConnection, tenant_id: int, provider_id: int) -> bool:
    result = await conn.execute(delete(oidc_providers).where(
        oidc_providers.c.id == provider_id, oidc_providers.c.tenant_id == tenant_id))
    return result.rowcount > 0


class OidcClient:
    """Discovery documents and signing keys of providers, cached for a few minutes."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._cache: dict[str, tuple[float, Any]] = {}

    async def _get_json(self, url: str) -> Any:
        hit = self._cache.get(url)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(url, headers={"Accept": "application/json"})
                response.raise_for_status()
                data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError(f"the identity provider could not be reached at {url}: {exc}") \
                from None
        self._cache[url] = (time.monotonic() + METADATA_SECONDS, data)
        return data

    async def metadata(self, provider: Provider) -> dict[str, Any]:
        meta = await self._get_json(f"{provider.issuer}/.well-known/openid-configuration")
        if not isinstance(meta, dict) or meta.get("issuer", "").rstrip("/") != provider.issuer:
            raise OidcError(f"the discovery document of {provider.issuer} names another issuer")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(meta.get(key), str):
                raise OidcError(f"the discovery document of {provider.issuer} lacks {key}")
        return meta

    async def start(self, db: Database, provider: Provider, redirect_uri: str,
                    next_url: str) -> tuple[str, str]:
        """(URL to send the browser to, value of the browser-binding cookie)."""
        meta = await self.metadata(provider)
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier, browser = secrets.token_urlsafe(64), secrets.token_urlsafe(32)
        client = AsyncOAuth2Client(provider.client_id, provider.client_secret,
                                   scope=provider.scopes, redirect_uri=redirect_uri,
                                   code_challenge_method="S256")
        url, _ = client.create_authorization_url(meta["authorization_endpoint"], state=state,
                                                 nonce=nonce, code_verifier=verifier)
        now = datetime.now(UTC)
        async with db.write() as conn:
            await conn.execute(delete(oidc_logins).where(
                oidc_logins.c.created_at < now - timedelta(minutes=LOGIN_MINUTES)))
            await conn.execute(insert(oidc_logins).values(
                state_hash=_hash(state), browser_hash=_hash(browser), provider_id=provider.id,
                nonce=nonce, code_verifier=verifier, next_url=next_url[:2000], created_at=now))
        return url, browser

    async def finish(self, db: Database, provider: Provider, params: dict[str, str],
                     browser: str | None, redirect_uri: str) -> tuple[int, str]:
        """The account id of a successful login and where to go next."""
        if params.get("error"):
            raise OidcError(f"the identity provider refused: {params.get('error')} "
                            f"{params.get('error_description', '')}".strip())
        state, code = params.get("state") or "", params.get("code") or ""
        if not state or not code:
            raise OidcError("the answer of the identity provider lacks state or code")
        async with db.write() as conn:
            row = (await conn.execute(select(oidc_logins).where(
                oidc_logins.c.state_hash == _hash(state)))).first()
            # One use only, whatever happens next.
            await conn.execute(delete(oidc_logins).where(
                oidc_logins.c.state_hash == _hash(state)))
        now = datetime.now(UTC)
        if row is None or row.provider_id != provider.id:
            raise OidcError("unknown or already used login state")
        if row.created_at < now - timedelta(minutes=LOGIN_MINUTES):
            raise OidcError("the login took too long; start again")
        if not browser or not secrets.compare_digest(_hash(browser), row.browser_hash):
            raise OidcError("the login was started in another browser")
        meta = await self.metadata(provider)
        try:
            async with AsyncOAuth2Client(provider.client_id, provider.client_secret,
                                         redirect_uri=redirect_uri,
                                         code_challenge_method="S256",
                                         timeout=self.timeout) as client:
                token = await client.fetch_token(meta["token_endpoint"], code=code,
                                                 code_verifier=row.code_verifier,
                                                 grant_type="authorization_code")
        except (OAuthError, httpx.HTTPError, ValueError) as exc:
            raise OidcError(f"the code could not be exchanged for tokens: {exc}") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("the identity provider sent no ID token")
        claims = await self._verify(provider, meta, id_token, row.nonce)
        async with db.write() as conn:
            user_id = await _account_for(conn, provider, claims)
        return user_id, row.next_url

    async def _verify(self, provider: Provider, meta: dict[str, Any], id_token: str,
                      nonce: str) -> dict[str, Any]:
        keys = await self._get_json(meta["jwks_uri"])
        try:
            keyset = KeySet.import_key_set(keys)
            token = jwt.decode(id_token, keyset, algorithms=list(ALGORITHMS))
            jwt.JWTClaimsRegistry(
                leeway=60,
                iss={"essential": True, "value": provider.issuer},
                aud={"essential": True, "value": provider.client_id},
                nonce={"essential": True, "value": nonce},
                sub={"essential": True},
                exp={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise OidcError(f"the ID token is not valid: {exc}") from None
        return dict(token.claims)


async def _account_for(conn: AsyncConnection, provider: Provider, claims: dict[str, Any]) -> int:
    subject = str(claims["sub"])[:255]
    found = (await conn.execute(select(user_identities.c.user_id).where(
        user_identities.c.provider_id == provider.id,
        user_identities.c.subject == subject))).scalar()
    if found is not None:
        if await accounts.load_account(conn, found) is None:
            raise OidcError("the account of this identity is deactivated")
        return found
    email = claims.get("email")
    verified = claims.get("email_verified") in (True, "true")
    if not isinstance(email, str) or not verified:
        raise OidcError("the identity provider sent no verified e-mail address, and this "
                        "identity is not linked to an account")
    user_id = await accounts.user_id_by_email(conn, email)
    if user_id is not None:
        member = (await conn.execute(select(memberships.c.role).where(
            memberships.c.user_id == user_id,
            memberships.c.tenant_id == provider.tenant_id))).scalar()
        if member is None:
            raise OidcError("an account with this address exists, but not in the municipality "
                            "of this identity provider; an admin there can add it")
    elif provider.default_role:
        name = claims.get("name") if isinstance(claims.get("name"), str) else ""
        user_id, _ = await accounts.add_user(conn, email, tenant_id=provider.tenant_id,
                                             role=provider.default_role, display_name=name)
    else:
        raise OidcError("there is no account for this address; ask an admin of the "
                        "municipality to create one")
    await conn.execute(insert(user_identities).values(
        user_id=user_id, provider_id=provider.id, subject=subject, created_at=datetime.now(UTC)))
    return user_id
