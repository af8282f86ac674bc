"""Logins: passwords (argon2), the rate limit, session cookies and their expiry, CSRF tokens on
admin forms, and OpenID Connect against a local provider."""

from __future__ import annotations

import itertools
from urllib.parse import urlsplit

import httpx
import pytest
from tests.tenancy.conftest import PASSWORD, cli

_numbers = itertools.count(1)


def _account(county, role: str = "viewer", tenant: str = "nord") -> str:
    email = f"person{next(_numbers)}-{county.database}@{tenant}.example"
    cli("user", "add", email, "--tenant", tenant, "--role", role, "--password-stdin",
        *county.server.database_args, stdin=PASSWORD)
    return email


def _expire(county, column: str) -> None:
    """Move every session's expiry (or last request) into the past."""
    if county.database == "sqlite":
        county.sql(f"UPDATE sessions SET {column} = 0")
    else:
        county.sql(f"UPDATE sessions SET {column} = now() - interval '1 day'")


def test_wrong_password_or_unknown_address_gets_no_session(county):
    browser = county.browser()
    email = _account(county)
    for address, password in ((email, "falsches-passwort-123"), ("niemand@nord.example",
                                                                PASSWORD)):
        answer = browser.login(address, password)
        assert answer.status_code == 401
        assert "E-Mail-Adresse oder Passwort ist falsch." in answer.text
        assert "ortspuls_session" not in browser.cookies
    assert browser.get("/admin/t/nord/").status_code == 303
    browser.close()


def test_session_cookie_is_httponly_secure_samesite_and_reads_internal_data(county):
    browser = county.browser()
    answer = browser.login("admin@nord.example")
    assert answer.status_code == 303
    cookie = next(h for h in answer.headers.get_list("set-cookie")
                  if h.startswith("ortspuls_session="))
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= flags
    assert browser.get("/admin/t/nord/").status_code == 200
    # The session reads the SensorThings API like a key of its town (reads only).
    observations = browser.get("/v1.1/Observations?$top=1000")
    assert "GEHEIM-nord" in observations.text and "GEHEIM-sued" not in observations.text
    write = browser.http.post("/v1.1/Things", json={"name": "x", "description": "y"},
                              headers=browser._headers())
    assert write.status_code == 401
    browser.close()


def test_rate_limit_refuses_even_the_right_password(county):
    browser = county.browser()
    email = _account(county)
    for _ in range(5):
        assert browser.login(email, "falsches-passwort-123").status_code == 401
    limited = browser.login(email, PASSWORD)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert "Zu viele fehlgeschlagene Versuche" in limited.text
    assert "ortspuls_session" not in browser.cookies
    # Other accounts are not locked out.
    other = county.browser()
    assert other.login(_account(county)).status_code == 303
    browser.close()
    other.close()


@pytest.mark.parametrize("column", ["expires_at", "last_seen_at"])
def test_sessions_expire(county, column):
    browser = county.browser()
    assert browser.login(_account(county)).status_code == 303
    assert browser.get("/admin/t/nord/").status_code == 200
    _expire(county, column)
    answer = browser.get("/admin/t/nord/")
    assert answer.status_code == 303
    assert urlsplit(answer.headers["location"]).path == "/admin/login"
    browser.close()


def test_logout_ends_the_session(county):
    browser = county.browser()
    assert browser.login(_account(county)).status_code == 303
    token = browser.cookies["ortspuls_session"]
    csrf = browser.csrf("/admin/t/nord/")
    answer = browser.post("/admin/logout", {"csrf": csrf})
    assert answer.status_code == 303
    assert "ortspuls_session" not in browser.cookies
    browser.cookies["ortspuls_session"] = token  # the old cookie is worthless now
    assert browser.get("/admin/t/nord/").status_code == 303
    browser.close()


def test_admin_forms_need_the_sessions_csrf_token(county):
    ids = county.ids
    thing = ids["nord:thing"]

    def visibility() -> bool:
        return bool(county.sql(f"SELECT is_public FROM things WHERE id = {thing}")[0][0])

    editor = county.browser()
    assert editor.login("redaktion@nord.example").status_code == 303
    other = county.browser()
    assert other.login(_account(county, "editor")).status_code == 303
    foreign_token = other.csrf("/admin/t/nord/")
    for fields in ({"visibility": "internal"},
                   {"visibility": "internal", "csrf": "erfunden"},
                   {"visibility": "internal", "csrf": foreign_token}):
        answer = editor.post(f"/admin/t/nord/things/{thing}", fields)
        assert answer.status_code == 403, fields
        assert "Formular ist abgelaufen" in answer.text
        assert visibility() is True
    # A cross-site form carries the cookie but not the token: the same 403.
    plain = httpx.post(f"{county.url}/admin/t/nord/things/{thing}",
                       data={"visibility": "internal"}, timeout=30,
                       headers={"Cookie": f"ortspuls_session={editor.cookies['ortspuls_session']}",
                                "Origin": "https://boese.example"})
    assert plain.status_code == 403 and visibility() is True
    # The login form has its own token (a cookie of the login page).
    login = httpx.post(f"{county.url}/admin/login", timeout=30,
                       data={"email": "admin@nord.example", "password": PASSWORD})
    assert login.status_code == 400 and "ortspuls_session" not in login.headers.get(
        "set-cookie", "")
    # Viewers may not change data at all.
    viewer = county.browser()
    assert viewer.login(_account(county, "viewer")).status_code == 303
    answer = viewer.post(f"/admin/t/nord/things/{thing}",
                         {"visibility": "internal", "csrf": viewer.csrf("/admin/t/nord/")})
    assert answer.status_code == 403 and visibility() is True
    for browser in (editor, other, viewer):
        browser.close()


# -- OpenID Connect ------------------------------------------------------------------------------


def _register(county, provider, slug: str, default_role: str = "") -> None:
    admin = county.browser()
    assert admin.login("admin@nord.example").status_code == 303
    csrf = admin.csrf("/admin/t/nord/identity")
    answer = admin.post("/admin/t/nord/identity", {
        "csrf": csrf, "display_name": f"Verwaltungskonto {slug}", "slug": slug,
        "issuer": provider.issuer, "client_id": provider.client_id,
        "client_secret": provider.client_secret, "default_role": default_role})
    assert answer.status_code == 303, answer.text
    page = admin.get("/admin/t/nord/identity")
    assert f"{county.url}/admin/oidc/{slug}/callback" in page.text
    assert provider.client_secret not in page.text  # the secret is never shown again
    admin.close()


def _oidc_login(county, provider, slug: str, browser=None, replay: bool = False):
    """Start at Ortspuls, let the provider answer, come back; returns the callback answer."""
    browser = browser or county.browser()
    start = browser.get(f"/admin/oidc/{slug}/start?next=/admin/t/nord/")
    assert start.status_code == 303, start.text
    authorize = httpx.get(start.headers["location"], timeout=30)
    assert authorize.status_code == 302, authorize.text
    callback = urlsplit(authorize.headers["location"])
    assert callback.path == f"/admin/oidc/{slug}/callback"
    answer = browser.get(f"{callback.path}?{callback.query}")
    if replay:
        return browser, browser.get(f"{callback.path}?{callback.query}")
    return browser, answer


@pytest.fixture
def provider_slug(county, oidc_provider):
    slug = f"idp-{county.database}"
    if not county.sql(f"SELECT id FROM oidc_providers WHERE slug = '{slug}'"):
        _register(county, oidc_provider, slug)
    return slug


def test_oidc_login_links_the_existing_account(county, oidc_provider, provider_slug):
    oidc_provider.reset(sub=f"sub-redaktion-{county.database}",
                        email="redaktion@nord.example", email_verified=True, name="Rita")
    browser, answer = _oidc_login(county, oidc_provider, provider_slug)
    assert answer.status_code == 303, answer.text
    assert urlsplit(answer.headers["location"]).path == "/admin/t/nord/"
    page = browser.get("/admin/t/nord/")
    assert page.status_code == 200 and "redaktion@nord.example" in page.text
    # Next time the identity (sub) decides, whatever address the provider sends.
    oidc_provider.reset(sub=f"sub-redaktion-{county.database}",
                        email="neu@nord.example", email_verified=True)
    again, answer = _oidc_login(county, oidc_provider, provider_slug)
    assert answer.status_code == 303
    assert "redaktion@nord.example" in again.get("/admin/t/nord/").text
    browser.close()
    again.close()


@pytest.mark.parametrize("problem", ["wrong_nonce", "foreign_key", "wrong_audience",
                                     "unknown_address", "other_towns_account",
                                     "unverified_address"])
def test_oidc_login_refusals(county, oidc_provider, provider_slug, problem):
    oidc_provider.reset(sub=f"sub-{problem}-{county.database}", email="redaktion@nord.example",
                        email_verified=True)
    if problem in ("wrong_nonce", "foreign_key", "wrong_audience"):
        setattr(oidc_provider, problem, True)
    elif problem == "unknown_address":
        oidc_provider.user["email"] = "fremd@nord.example"
    elif problem == "other_towns_account":
        oidc_provider.user["email"] = "admin@sued.example"  # no takeover across towns
    else:
        oidc_provider.user["email_verified"] = False
    browser, answer = _oidc_login(county, oidc_provider, provider_slug)
    assert answer.status_code == 401, answer.text
    assert "ortspuls_session" not in browser.cookies
    assert browser.get("/admin/t/nord/").status_code == 303
    browser.close()
    oidc_provider.reset()


def test_oidc_state_is_single_use_and_bound_to_the_browser(county, oidc_provider,
                                                           provider_slug):
    oidc_provider.reset(sub=f"sub-replay-{county.database}", email="redaktion@nord.example",
                        email_verified=True)
    browser, replayed = _oidc_login(county, oidc_provider, provider_slug, replay=True)
    assert replayed.status_code == 401
    browser.close()
    # A callback arriving in another browser (without the binding cookie) is refused.
    first = county.browser()
    start = first.get(f"/admin/oidc/{provider_slug}/start")
    authorize = httpx.get(start.headers["location"], timeout=30)
    callback = urlsplit(authorize.headers["location"])
    stranger = county.browser()
    answer = stranger.get(f"{callback.path}?{callback.query}")
    assert answer.status_code == 401 and "ortspuls_session" not in stranger.cookies
    first.close()
    stranger.close()


def test_oidc_provider_with_default_role_creates_accounts(county, oidc_provider):
    slug = f"idp-auto-{county.database}"
    _register(county, oidc_provider, slug, default_role="viewer")
    email = f"neu-{county.database}@nord.example"
    oidc_provider.reset(sub=f"sub-auto-{county.database}", email=email, email_verified=True,
                        name="Neue Person")
    browser, answer = _oidc_login(county, oidc_provider, slug)
    assert answer.status_code == 303, answer.text
    page = browser.get("/admin/t/nord/")
    assert page.status_code == 200 and email in page.text and "Lesen" in page.text
    assert browser.get("/admin/t/nord/keys").status_code == 403  # viewers manage nothing
    browser.close()
