"""The admin UI's pages and form handlers (server-rendered, complete without JavaScript).

Every page needs a login session; every form sends the session's CSRF token and answers with a
redirect (or, where a secret is shown once, with the page itself). Roles are checked per tenant:
viewers see the data overview, editors change visibility, sharing and use cases, admins manage
users, API keys, identity providers, integrations, settings and read the audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, insert, select, update
from starlette.requests import Request
from starlette.responses import Response

from ortspuls.admin.render import (
    Form,
    FormError,
    check_csrf,
    login_csrf,
    page_context,
    read_form,
    redirect,
    render,
    set_login_csrf,
)
from ortspuls.db.schema import api_keys, entity_tables
from ortspuls.sta.http import external_base
from ortspuls.tenancy import accounts, apikeys, audit, oidc
from ortspuls.tenancy.sessions import COOKIE, Session, clear_cookie, set_cookie
from ortspuls.tenancy.tables import ROLES, stream_shares
from ortspuls.tenancy.tenants import Tenant, TenantError, create_tenant, set_default_public
from ortspuls.timeseries.events import EntityEvent
from ortspuls.web.render import PageContext

log = logging.getLogger(__name__)

THINGS = entity_tables["Thing"]
DATASTREAMS = entity_tables["Datastream"]
MULTI_DATASTREAMS = entity_tables["MultiDatastream"]
THINGS_PER_PAGE = 25
AUDIT_PER_PAGE = 50
# The sections of a tenant's admin area and the role each needs.
SECTIONS = (("data", "", "viewer"), ("users", "users", "admin"), ("keys", "keys", "admin"),
            ("identity", "identity", "admin"), ("integrations", "integrations", "admin"),
            ("audit", "audit", "admin"), ("settings", "settings", "admin"))


# ---------------------------------------------------------------------------------------------
# Sessions and page frame


async def current_session(request: Request) -> Session | None:
    return await request.app.state.sessions.load(request.cookies.get(COOKIE))


def _safe_next(value: str | None) -> str:
    """Only paths of the admin UI itself (no open redirect)."""
    if not value or not value.startswith("/admin") or value.startswith("//") or "\\" in value:
        return "/admin/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/admin/"
    return value


def _login_redirect(ctx: PageContext, request: Request) -> Response:
    here = request.url.path
    if request.url.query:
        here += "?" + request.url.query
    return redirect(ctx.url("/admin/login", next=_safe_next(here)))


def _error(ctx: PageContext, status: int, key: str, session: Session | None = None,
           **params: Any) -> Response:
    return render(ctx, "admin_error.html", status=status, code=status, message_key=key,
                  params=params, account=session.account if session else None,
                  csrf=session.csrf_token if session else "")


@dataclass(slots=True)
class Page:
    request: Request
    ctx: PageContext
    session: Session
    tenant: Tenant
    form: Form | None
    tenants: list[Tenant] = field(default_factory=list)

    @property
    def state(self) -> Any:
        return self.request.app.state

    @property
    def account(self) -> accounts.Account:
        return self.session.account

    def url(self, path: str = "", **query: Any) -> str:
        return self.ctx.url(f"/admin/t/{self.tenant.slug}/{path}", **query)

    def may(self, role: str) -> bool:
        return self.account.may(self.tenant.id, role)

    @property
    def actor(self) -> audit.Actor:
        return audit.Actor("user", self.account.id, self.account.email)

    def frame(self, section: str) -> dict[str, Any]:
        """What every tenant page's template needs."""
        return {
            "account": self.account, "tenant": self.tenant, "csrf": self.session.csrf_token,
            "section": section, "single": len(self.tenants) <= 1,
            "sections": [(key, self.url(path)) for key, path, role in SECTIONS
                         if self.may(role)],
            "switch": [t for t in self.tenants if t.id != self.tenant.id
                       and self.account.role_in(t.id) is not None],
            "role": self.account.role_in(self.tenant.id),
            "done": self.request.query_params.get("done"),
        }

    def show(self, template: str, section: str, status: int = 200, **values: Any) -> Response:
        return render(self.ctx, template, status=status, **self.frame(section), **values)


Handler = Callable[[Page], Awaitable[Response]]


def tenant_page(role: str, section: str, template: str | None = None
                ) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wraps a handler: session, tenant, role, form parsing and CSRF check. A FormError raised
    by the handler shows `template` again with the error (or an error page)."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            ctx = page_context(request)
            session = await current_session(request)
            if session is None:
                if request.method == "POST":
                    return _error(ctx, 403, "admin.error.session")
                return _login_redirect(ctx, request)
            directory = request.app.state.tenants
            tenant = await directory.by_slug(request.path_params["tenant"])
            account = session.account
            if tenant is None or account.role_in(tenant.id) is None:
                return _error(ctx, 404, "admin.error.no_tenant", session=session)
            if not account.may(tenant.id, role):
                return _error(ctx, 403, "admin.error.role", session=session,
                              role=ctx.t(f"admin.role.{role}"))
            page = Page(request, ctx, session, tenant, None, await directory.all())
            try:
                if request.method == "POST":
                    page.form = await read_form(request)
                    check_csrf(session.csrf_token, page.form)
                return await handler(page)
            except FormError as exc:
                if template is None or exc.status in (403, 413, 415):
                    return _error(ctx, exc.status, exc.key, session=session, **exc.params)
                # Show the page again, with the message at the top.
                page.form = page.form or Form([])
                return await _GETS[section](page, status=exc.status,
                                            error=(exc.key, exc.params))

        return endpoint

    return wrap


# ---------------------------------------------------------------------------------------------
# Login, logout, identity providers


def _client_ip(request: Request) -> str:
    settings = request.app.state.settings
    if settings.trust_forwarded_headers:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.client.host if request.client else "unknown"


async def login(request: Request) -> Response:
    ctx = page_context(request)
    state = request.app.state
    next_url = _safe_next(request.query_params.get("next"))
    async with state.db.read() as conn:
        providers = await oidc.list_providers(conn, enabled_only=True)
    status, error, email = 200, None, ""
    token = login_csrf(request)
    if request.method == "POST":
        try:
            form = await read_form(request)
        except FormError as exc:
            return _error(ctx, exc.status, exc.key)
        email = form.get("email").strip()[:254]
        next_url = _safe_next(form.get("next"))
        try:
            check_csrf(request.cookies.get("ortspuls_login_csrf"), form)
            user_id = await accounts.password_login(state.db, state.settings, email,
                                                    form.get("password"), _client_ip(request))
        except FormError:
            status, error = 400, ("admin.login.expired", {})
        except accounts.LoginRateLimited as exc:
            minutes = max(1, (exc.retry_after + 59) // 60)
            status, error = 429, ("admin.login.rate_limited", {"n": minutes})
        except accounts.LoginRefused:
            status, error = 401, ("admin.login.wrong", {})
        else:
            return await _logged_in(request, ctx, user_id, "password", next_url)
    response = render(ctx, "login.html", status=status, csrf=token, next=next_url,
                      providers=providers, error=error, email=email, account=None,
                      expired=request.query_params.get("expired") == "1",
                      logged_out=request.query_params.get("done") == "logout")
    if status == 429:
        response.headers["Retry-After"] = "60"
    set_login_csrf(response, token, (ctx.prefix or "") + "/admin")
    return response


async def _logged_in(request: Request, ctx: PageContext, user_id: int, method: str,
                     next_url: str) -> Response:
    state = request.app.state
    token, _ = await state.sessions.create(user_id, method)
    async with state.db.write() as conn:
        account = await accounts.load_account(conn, user_id)
        actor = audit.Actor("user", user_id, account.email if account else str(user_id))
        for membership in account.memberships if account else ():
            await audit.record(conn, actor, membership.tenant_id, "login", "User", user_id,
                               {"method": method})
    response = redirect(ctx.prefix + _safe_next(next_url))
    set_cookie(response, token, ctx.prefix or "/")
    return response


async def logout(request: Request) -> Response:
    ctx = page_context(request)
    session = await current_session(request)
    if session is not None:
        try:
            check_csrf(session.csrf_token, await read_form(request))
        except FormError as exc:
            return _error(ctx, exc.status, exc.key)
        await request.app.state.sessions.end(request.cookies.get(COOKIE))
    response = redirect(ctx.url("/admin/login", done="logout"))
    clear_cookie(response, ctx.prefix or "/")
    return response


def _callback_url(request: Request, slug: str) -> str:
    return f"{external_base(request)}/admin/oidc/{slug}/callback"


async def _enabled_provider(request: Request) -> tuple[Any, str, Any]:
    """(page context, provider slug, the enabled provider or None) of an OIDC login URL."""
    ctx = page_context(request)
    slug = request.path_params["provider"]
    async with request.app.state.db.read() as conn:
        provider = await oidc.provider_by_slug(conn, slug)
    return ctx, slug, provider if provider is not None and provider.enabled else None


async def oidc_start(request: Request) -> Response:
    ctx, slug, provider = await _enabled_provider(request)
    state = request.app.state
    if provider is None:
        return _error(ctx, 404, "admin.error.no_provider")
    try:
        url, browser = await state.oidc.start(
            state.db, provider, _callback_url(request, slug),
            _safe_next(request.query_params.get("next")))
    except oidc.OidcError as exc:
        log.warning("OpenID Connect login with %s could not start: %s", slug, exc)
        return _error(ctx, 502, "admin.error.oidc")
    response = redirect(url)
    response.set_cookie(oidc.BROWSER_COOKIE, browser, max_age=oidc.LOGIN_MINUTES * 60,
                        path=(ctx.prefix or "") + "/admin/oidc", httponly=True, secure=True,
                        samesite="lax")
    return response


async def oidc_callback(request: Request) -> Response:
    ctx, slug, provider = await _enabled_provider(request)
    state = request.app.state
    if provider is None:
        return _error(ctx, 404, "admin.error.no_provider")
    try:
        user_id, next_url = await state.oidc.finish(
            state.db, provider, dict(request.query_params),
            request.cookies.get(oidc.BROWSER_COOKIE), _callback_url(request, slug))
    except oidc.OidcError as exc:
        log.warning("OpenID Connect login with %s failed: %s", slug, exc)
        return _error(ctx, 401, "admin.error.oidc_login", reason=str(exc))
    response = await _logged_in(request, ctx, user_id, f"oidc:{slug}", next_url)
    response.delete_cookie(oidc.BROWSER_COOKIE, path=(ctx.prefix or "") + "/admin/oidc",
                           httponly=True, secure=True, samesite="lax")
    return response


# ---------------------------------------------------------------------------------------------
# Home: the tenants of the account; operators add tenants


async def home(request: Request) -> Response:
    ctx = page_context(request)
    session = await current_session(request)
    if session is None:
        return _login_redirect(ctx, request)
    account = session.account
    tenants = await request.app.state.tenants.all()
    mine = [t for t in tenants if account.role_in(t.id) is not None]
    if len(mine) == 1 and not account.is_operator:
        return redirect(ctx.url(f"/admin/t/{mine[0].slug}/"))
    return _home_page(ctx, session, tenants, mine)


def _home_page(ctx: PageContext, session: Session, tenants: list[Tenant], mine: list[Tenant],
               status: int = 200, error: tuple | None = None, values: dict | None = None
               ) -> Response:
    names = {t.id: t.name for t in tenants}
    return render(ctx, "home.html", status=status, account=session.account,
                  csrf=session.csrf_token, tenants=mine, names=names,
                  county_options=[(t.slug, t.name) for t in tenants if t.parent_id is None],
                  error=error,
                  values=values or {}, done=ctx.request.query_params.get("done"))


async def add_tenant(request: Request) -> Response:
    ctx = page_context(request)
    state = request.app.state
    session = await current_session(request)
    if session is None:
        return _error(ctx, 403, "admin.error.session")
    if not session.account.is_operator:
        return _error(ctx, 403, "admin.error.operator", session=session)
    try:
        form = await read_form(request)
        check_csrf(session.csrf_token, form)
    except FormError as exc:
        return _error(ctx, exc.status, exc.key, session=session)
    values = {k: form.get(k).strip() for k in ("slug", "name", "parent", "ags")}
    try:
        tenant = await create_tenant(state.db, values["slug"], values["name"],
                                     values["parent"] or None, values["ags"] or None,
                                     default_public=form.get("default_public") != "internal")
    except TenantError as exc:
        state.tenants.invalidate()
        tenants = await state.tenants.all()
        mine = [t for t in tenants if session.account.role_in(t.id) is not None]
        return _home_page(ctx, session, tenants, mine, 400,
                          ("admin.home.tenant_error", {"reason": str(exc)}), values)
    async with state.db.write() as conn:
        await audit.record(conn, audit.Actor("user", session.account.id, session.account.email),
                           tenant.id, "create", "Tenant", tenant.id,
                           {"slug": tenant.slug, "name": tenant.name})
    state.tenants.invalidate()
    return redirect(ctx.url("/admin/", done="tenant"))


# ---------------------------------------------------------------------------------------------
# Data: Things and (Multi)Datastreams with visibility, sharing and use case


def _related(page: Page) -> list[Tenant]:
    """Whom a stream can be shared with: the county, the neighbours in it, the members."""
    tenant = page.tenant
    out = []
    for other in page.tenants:
        if other.id == tenant.id:
            continue
        if (other.id == tenant.parent_id or other.parent_id == tenant.id
                or (tenant.parent_id is not None and other.parent_id == tenant.parent_id)):
            out.append(other)
    return out


async def data_get(page: Page, status: int = 200, error: tuple | None = None) -> Response:
    from ortspuls.dashboard.texts import Texts
    from ortspuls.dashboard.usecase import usecases

    number = max(1, _int(page.request.query_params.get("page"), 1))
    tenant_id = page.tenant.id
    t, d, m = THINGS, DATASTREAMS, MULTI_DATASTREAMS
    async with page.state.db.read() as conn:
        total = (await conn.execute(select(func.count()).select_from(t).where(
            t.c.tenant_id == tenant_id))).scalar_one()
        things = [dict(r._mapping) for r in await conn.execute(
            select(t.c.id, t.c.name, t.c.is_public).where(t.c.tenant_id == tenant_id)
            .order_by(t.c.name, t.c.id).limit(THINGS_PER_PAGE)
            .offset((number - 1) * THINGS_PER_PAGE))]
        ids = [x["id"] for x in things]
        streams = [dict(r._mapping, kind="datastream") for r in await conn.execute(
            select(d.c.id, d.c.name, d.c.thing_id, d.c.is_public, d.c.properties)
            .where(d.c.thing_id.in_(ids)).order_by(d.c.name, d.c.id))] if ids else []
        streams += [dict(r._mapping, kind="multidatastream") for r in await conn.execute(
            select(m.c.id, m.c.name, m.c.thing_id, m.c.is_public, m.c.properties)
            .where(m.c.thing_id.in_(ids)).order_by(m.c.name, m.c.id))] if ids else []
        shares: dict[tuple[str, int], set[int]] = {}
        ds_ids = [s["id"] for s in streams if s["kind"] == "datastream"]
        md_ids = [s["id"] for s in streams if s["kind"] == "multidatastream"]
        if ds_ids or md_ids:
            s = stream_shares
            for row in await conn.execute(select(s).where(
                    s.c.tenant_id == tenant_id,
                    s.c.datastream_id.in_(ds_ids) | s.c.multi_datastream_id.in_(md_ids))):
                key = (("datastream", row.datastream_id) if row.datastream_id is not None
                       else ("multidatastream", row.multi_datastream_id))
                shares.setdefault(key, set()).add(row.shared_with_id)
    by_thing: dict[int, list[dict]] = {}
    for stream in streams:
        stream["usecase"] = _usecase_of(stream)
        stream["shared"] = shares.get((stream["kind"], stream["id"]), set())
        by_thing.setdefault(stream["thing_id"], []).append(stream)
    texts = Texts(page.ctx.lang)
    choices = [(slug, texts.get(f"usecase.{slug}.title") or slug) for slug in usecases()]
    pages = max(1, (total + THINGS_PER_PAGE - 1) // THINGS_PER_PAGE)
    return page.show("data.html", "data", status=status, things=things, streams=by_thing,
                     related=_related(page), usecases=choices, page_number=number, pages=pages,
                     total=total, error=error, editable=page.may("editor"),
                     page_url=lambda **q: page.url("", **q))


def _usecase_of(row: dict[str, Any]) -> str:
    props = row.get("properties")
    value = props.get("usecase") if isinstance(props, dict) else None
    return value if isinstance(value, str) else ""


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


async def _owned(conn, table, ident: int, tenant_id: int) -> dict[str, Any]:
    row = (await conn.execute(select(table).where(table.c.id == ident))).mappings().first()
    if row is None or row["tenant_id"] != tenant_id:
        raise FormError("admin.error.not_found", 404)
    return dict(row)


def _visibility(form: Form) -> bool:
    value = form.get("visibility")
    if value not in ("public", "internal"):
        raise FormError("admin.data.bad_visibility")
    return value == "public"


async def thing_post(page: Page) -> Response:
    ident = page.request.path_params["id"]
    public = _visibility(page.form)
    async with page.state.db.write() as conn:
        before = await _owned(conn, THINGS, ident, page.tenant.id)
        await conn.execute(update(THINGS).where(THINGS.c.id == ident).values(is_public=public))
        await audit.record(conn, page.actor, page.tenant.id, "visibility", "Thing", ident,
                           {"name": before["name"], "public": public})
        row = {**before, "is_public": public}
    page.state.bus.publish([EntityEvent("update", "Thing", ident, page.tenant.id, row)])
    return redirect(page.url("", done="saved", page=page.request.query_params.get("page")))


async def stream_post(page: Page) -> Response:
    kind = page.request.path_params["kind"]
    ident = page.request.path_params["id"]
    if kind not in ("datastream", "multidatastream"):
        raise FormError("admin.error.not_found", 404)
    entity = "Datastream" if kind == "datastream" else "MultiDatastream"
    table = DATASTREAMS if kind == "datastream" else MULTI_DATASTREAMS
    public = _visibility(page.form)
    allowed = {t.id: t for t in _related(page)}
    wanted = set()
    for value in page.form.getlist("share"):
        target = _int(value, 0)
        if target not in allowed:
            raise FormError("admin.data.bad_share")
        wanted.add(target)
    usecase = page.form.get("usecase", "")
    if usecase:
        from ortspuls.dashboard.usecase import usecases

        if usecase not in usecases():
            raise FormError("admin.data.bad_usecase")
    column = stream_shares.c.datastream_id if kind == "datastream" \
        else stream_shares.c.multi_datastream_id
    async with page.state.db.write() as conn:
        before = await _owned(conn, table, ident, page.tenant.id)
        props = dict(before["properties"]) if isinstance(before["properties"], dict) else {}
        if usecase:
            props["usecase"] = usecase
        else:
            props.pop("usecase", None)
        values = {"is_public": public, "properties": props or None}
        await conn.execute(update(table).where(table.c.id == ident).values(values))
        existing = set((await conn.execute(select(stream_shares.c.shared_with_id).where(
            column == ident))).scalars())
        if existing - wanted:
            await conn.execute(delete(stream_shares).where(
                column == ident, stream_shares.c.shared_with_id.in_(sorted(existing - wanted))))
        now = datetime.now(UTC)
        for target in sorted(wanted - existing):
            await conn.execute(insert(stream_shares).values(
                tenant_id=page.tenant.id, shared_with_id=target, created_at=now,
                **{column.name: ident}))
        changes: dict[str, Any] = {"name": before["name"]}
        if bool(before["is_public"]) != public:
            changes["public"] = public
        if wanted != existing:
            changes["shared_with"] = sorted(allowed[i].slug for i in wanted)
        if (props.get("usecase") or "") != _usecase_of(before):
            changes["usecase"] = usecase or None
        await audit.record(conn, page.actor, page.tenant.id, "settings", entity, ident, changes)
        row = {**before, **values}
    page.state.bus.publish([EntityEvent("update", entity, ident, page.tenant.id, row)])
    return redirect(page.url("", done="saved", page=page.request.query_params.get("page")))


# ---------------------------------------------------------------------------------------------
# Users


async def users_get(page: Page, status: int = 200, error: tuple | None = None) -> Response:
    async with page.state.db.read() as conn:
        members = await accounts.tenant_members(conn, page.tenant.id)
    values = {k: page.form.get(k) for k in ("email", "name", "role")} if page.form else {}
    t = page.ctx.t
    return page.show("users.html", "users", status=status, members=members, roles=ROLES,
                     role_options=[(r, t(f"admin.role.{r}")) for r in ROLES], error=error,
                     values=values)


async def users_post(page: Page) -> Response:
    form = page.form
    role = form.get("role")
    if role not in ROLES:
        raise FormError("admin.users.bad_role")
    password = form.get("password")
    try:
        email = accounts.normalize_email(form.get("email"))
        hashed = await accounts.hash_password(password) if password else None
    except accounts.AccountError as exc:
        raise FormError("admin.users.invalid", reason=str(exc)) from None
    async with page.state.db.write() as conn:
        existing = await accounts.user_id_by_email(conn, email)
        # An existing account keeps its password: only its owner changes it.
        ident, created = await accounts.add_user(
            conn, email, tenant_id=page.tenant.id, role=role,
            password_hash=hashed if existing is None else None,
            display_name=form.get("name") if existing is None else "")
        await audit.record(conn, page.actor, page.tenant.id, "create" if created else "member",
                           "User", ident, {"email": email, "role": role})
    return redirect(page.url("users", done="user_added"))


async def user_post(page: Page) -> Response:
    ident = page.request.path_params["id"]
    action = page.form.get("action")
    async with page.state.db.write() as conn:
        members = {m["id"]: m for m in await accounts.tenant_members(conn, page.tenant.id)}
        member = members.get(ident)
        if member is None:
            raise FormError("admin.error.not_found", 404)
        role = page.form.get("role") if action == "role" else None
        if action == "role" and role not in ROLES:
            raise FormError("admin.users.bad_role")
        if action not in ("role", "remove"):
            raise FormError("admin.error.form_type")
        losing_admin = member["role"] == "admin" and (action == "remove" or role != "admin")
        if losing_admin and await accounts.admin_count(conn, page.tenant.id) <= 1:
            raise FormError("admin.users.last_admin")
        if action == "remove":
            await accounts.remove_membership(conn, ident, page.tenant.id)
        else:
            await accounts.set_role(conn, ident, page.tenant.id, role)
        await audit.record(conn, page.actor, page.tenant.id,
                           "remove" if action == "remove" else "role", "User", ident,
                           {"email": member["email"], "role": role})
    return redirect(page.url("users", done="user_" + action))


# ---------------------------------------------------------------------------------------------
# API keys


async def keys_get(page: Page, status: int = 200, error: tuple | None = None,
                   new_key: str | None = None, new_name: str | None = None) -> Response:
    keys = await apikeys.list_keys(page.state.db, page.tenant.id)
    t = page.ctx.t
    return page.show("keys.html", "keys", status=status, keys=keys,
                     scope_options=[(s, t(f"admin.scope.{s}")) for s in apikeys.SCOPES],
                     error=error, new_key=new_key, new_name=new_name,
                     values={"name": page.form.get("name")} if page.form and not new_key
                     else {})


async def keys_post(page: Page) -> Response:
    name, scope = page.form.get("name").strip(), page.form.get("scope")
    if scope not in apikeys.SCOPES:
        raise FormError("admin.keys.bad_scope")
    try:
        key = await apikeys.create_key(page.state.db, name, scope, page.tenant.id)
    except apikeys.ApiKeyError as exc:
        raise FormError("admin.keys.invalid", reason=str(exc)) from None
    async with page.state.db.write() as conn:
        ident = (await conn.execute(select(api_keys.c.id).where(
            api_keys.c.tenant_id == page.tenant.id, api_keys.c.name == name))).scalar()
        await audit.record(conn, page.actor, page.tenant.id, "create", "ApiKey", ident,
                           {"name": name, "scope": scope})
    # Shown once, in this answer only (never stored in clear, never in a URL).
    return await keys_get(page, status=201, new_key=key, new_name=name)


async def key_revoke(page: Page) -> Response:
    ident = page.request.path_params["id"]
    async with page.state.db.write() as conn:
        row = (await conn.execute(select(api_keys.c.name).where(
            api_keys.c.id == ident, api_keys.c.tenant_id == page.tenant.id,
            api_keys.c.revoked_at.is_(None)))).first()
        if row is None:
            raise FormError("admin.error.not_found", 404)
        await conn.execute(update(api_keys).where(api_keys.c.id == ident)
                           .values(revoked_at=datetime.now(UTC)))
        await audit.record(conn, page.actor, page.tenant.id, "revoke", "ApiKey", ident,
                           {"name": row.name})
    return redirect(page.url("keys", done="key_revoked"))


# ---------------------------------------------------------------------------------------------
# Identity providers (OpenID Connect)


async def identity_get(page: Page, status: int = 200, error: tuple | None = None) -> Response:
    async with page.state.db.read() as conn:
        providers = await oidc.list_providers(conn, page.tenant.id)
    values = {k: page.form.get(k) for k in ("display_name", "slug", "issuer", "client_id",
                                            "default_role")} if page.form else {}
    t = page.ctx.t
    return page.show("identity.html", "identity", status=status, providers=providers,
                     role_options=[("", t("admin.identity.no_role")),
                                   *((r, t(f"admin.role.{r}")) for r in ROLES)],
                     error=error, values=values,
                     callback=lambda slug: _callback_url(page.request, slug))


async def identity_post(page: Page) -> Response:
    form = page.form
    try:
        async with page.state.db.write() as conn:
            ident = await oidc.add_provider(
                conn, page.tenant.id, slug=form.get("slug").strip(),
                display_name=form.get("display_name"), issuer=form.get("issuer"),
                client_id=form.get("client_id"), client_secret=form.get("client_secret"),
                default_role=form.get("default_role") or None)
            await audit.record(conn, page.actor, page.tenant.id, "create", "IdentityProvider",
                               ident, {"slug": form.get("slug").strip(),
                                       "issuer": form.get("issuer").strip()})
    except (accounts.AccountError, TenantError) as exc:
        raise FormError("admin.identity.invalid", reason=str(exc)) from None
    return redirect(page.url("identity", done="provider_added"))


async def identity_remove(page: Page) -> Response:
    ident = page.request.path_params["id"]
    async with page.state.db.write() as conn:
        if not await oidc.remove_provider(conn, page.tenant.id, ident):
            raise FormError("admin.error.not_found", 404)
        await audit.record(conn, page.actor, page.tenant.id, "delete", "IdentityProvider", ident)
    return redirect(page.url("identity", done="provider_removed"))


# ---------------------------------------------------------------------------------------------
# LoRaWAN integrations and devices (ingest)


async def integrations_get(page: Page, status: int = 200, error: tuple | None = None,
                           new_token: str | None = None, new_url: str | None = None) -> Response:
    from ortspuls.ingest import admin as ingest_admin

    items = [i for i in await ingest_admin.list_integrations(page.state.db)
             if i["tenant_id"] == page.tenant.id]
    devices = await ingest_admin.list_devices(page.state.db, page.tenant.slug)
    return page.show("integrations.html", "integrations", status=status, integrations=items,
                     devices=devices, error=error, new_token=new_token, new_url=new_url,
                     values={"name": page.form.get("name")} if page.form and not new_token
                     else {})


async def integrations_post(page: Page) -> Response:
    from ortspuls.ingest import admin as ingest_admin

    kind, name = page.form.get("kind"), page.form.get("name").strip()
    try:
        ident, token = await ingest_admin.create_integration(page.state.db, kind, name,
                                                             page.tenant.slug)
    except ingest_admin.AdminError as exc:
        raise FormError("admin.integrations.invalid", reason=str(exc)) from None
    async with page.state.db.write() as conn:
        await audit.record(conn, page.actor, page.tenant.id, "create", "Integration", ident,
                           {"name": name, "kind": kind})
    url = f"{external_base(page.request)}/ingest/{'ttn' if kind == 'ttn' else 'chirpstack'}"
    return await integrations_get(page, status=201, new_token=token, new_url=url)


async def integration_revoke(page: Page) -> Response:
    from ortspuls.ingest import admin as ingest_admin

    name = page.request.path_params["name"]
    try:
        await ingest_admin.revoke_integration(page.state.db, name, page.tenant.slug)
    except ingest_admin.AdminError:
        raise FormError("admin.error.not_found", 404) from None
    async with page.state.db.write() as conn:
        await audit.record(conn, page.actor, page.tenant.id, "revoke", "Integration", None,
                           {"name": name})
    return redirect(page.url("integrations", done="integration_revoked"))


# ---------------------------------------------------------------------------------------------
# Audit log and settings


async def audit_get(page: Page, status: int = 200, error: tuple | None = None) -> Response:
    number = max(1, _int(page.request.query_params.get("page"), 1))
    async with page.state.db.read() as conn:
        entries, total = await audit.entries(conn, page.tenant.id, AUDIT_PER_PAGE,
                                             (number - 1) * AUDIT_PER_PAGE)
    pages = max(1, (total + AUDIT_PER_PAGE - 1) // AUDIT_PER_PAGE)
    return page.show("audit.html", "audit", status=status, entries=entries, total=total,
                     page_number=number, pages=pages, error=error,
                     page_url=lambda **q: page.url("audit", **q))


async def settings_get(page: Page, status: int = 200, error: tuple | None = None) -> Response:
    return page.show("settings.html", "settings", status=status, error=error)


async def settings_post(page: Page) -> Response:
    public = page.form.get("default_visibility")
    if public not in ("public", "internal"):
        raise FormError("admin.data.bad_visibility")
    async with page.state.db.write() as conn:
        await set_default_public(conn, page.tenant.id, public == "public")
        await audit.record(conn, page.actor, page.tenant.id, "settings", "Tenant",
                           page.tenant.id, {"default_public": public == "public"})
    page.state.tenants.invalidate()
    return redirect(page.url("settings", done="saved"))


_GETS: dict[str, Callable[..., Awaitable[Response]]] = {
    "data": data_get, "users": users_get, "keys": keys_get, "identity": identity_get,
    "integrations": integrations_get, "audit": audit_get, "settings": settings_get,
}
