"""Rendering of the admin pages on the dashboard's frame.

The admin templates extend the public pages' `base.html` (header, skip link, language switch,
footer, styles) through a template loader that looks in `admin/templates` first and then in
`web/templates`. Texts come from `admin/catalogues/<lang>.toml`, merged over the public pages'
catalogue, with the same translator and language choice (`?lang=`, cookie, German).
"""

from __future__ import annotations

import functools
import hmac
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ortspuls.web.i18n import LANG_COOKIE, Translator, _flatten, catalogue, negotiate
from ortspuls.web.render import (
    LANG_COOKIE_MAX_AGE,
    PageContext,
    _json_script,
    town_timezone,
)
from ortspuls.web.render import (
    TEMPLATE_DIR as WEB_TEMPLATES,
)

HERE = Path(__file__).parent
CATALOGUE_DIR = HERE / "catalogues"
STATIC_DIR = HERE / "static"
LOGIN_CSRF_COOKIE = "ortspuls_login_csrf"
MAX_FORM_BYTES = 64 * 1024

ENV = Environment(
    loader=ChoiceLoader([FileSystemLoader(HERE / "templates"), FileSystemLoader(WEB_TEMPLATES)]),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["json_script"] = _json_script

# Admin pages are personal and change state: never cached, never framed, no third parties.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}


@functools.cache
def admin_catalogue(lang: str) -> dict[str, Any]:
    with (CATALOGUE_DIR / f"{lang}.toml").open("rb") as fh:
        return _flatten(tomllib.load(fh))


@functools.cache
def merged_catalogue(lang: str) -> dict[str, Any]:
    return {**catalogue(lang), **admin_catalogue(lang)}


@dataclass(frozen=True, slots=True)
class AdminTranslator(Translator):
    """The public pages' translator with the admin texts added."""

    @property
    def messages(self) -> dict[str, Any]:
        return merged_catalogue(self.lang)


def page_context(request: Request) -> PageContext:
    from ortspuls.web.render import page_context as web_page_context

    base = web_page_context(request)
    query_lang = request.query_params.get("lang")
    lang = negotiate(query_lang, request.cookies.get(LANG_COOKIE))
    translator = AdminTranslator(lang, town_timezone(request.app.state.settings))
    return PageContext(request, lang, translator, base.prefix, base.set_cookie)


def render(ctx: PageContext, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    settings = ctx.request.app.state.settings
    town = settings.town_name
    html = ENV.get_template(template).render(
        ctx=ctx, t=ctx.t, lang=ctx.lang, town=town, config={"lang": ctx.lang},
        site_name=ctx.t("site.name_town", town=town) if town else ctx.t("site.name"),
        page="admin", **values,
    )
    response = HTMLResponse(html, status_code=status,
                            headers={**SECURITY_HEADERS, "Content-Language": ctx.lang})
    if ctx.set_cookie:
        response.set_cookie(LANG_COOKIE, ctx.lang, max_age=LANG_COOKIE_MAX_AGE,
                            path=ctx.prefix or "/", samesite="lax")
    return response


def redirect(url: str) -> Response:
    # 303: the browser follows a POST's answer with a GET.
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


# ---------------------------------------------------------------------------------------------
# Forms


class FormError(Exception):
    """A form that cannot be processed; `key` names the catalogue text shown to the user."""

    def __init__(self, key: str, status: int = 400, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.status = status
        self.params = params


@dataclass(slots=True)
class Form:
    fields: list[tuple[str, str]]

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.fields:
            if key == name:
                return value
        return default

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self.fields if key == name]


async def read_form(request: Request) -> Form:
    """An `application/x-www-form-urlencoded` body (the only kind the admin forms send)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise FormError("admin.error.form_type", 415)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError("admin.error.form_size", 413)
    try:
        fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                           max_num_fields=500)
    except (UnicodeDecodeError, ValueError):
        raise FormError("admin.error.form_type") from None
    return Form(fields)


def check_csrf(expected: str | None, form: Form) -> None:
    """The form's `csrf` field must be the session's (or the login page's) token."""
    given = form.get("csrf")
    if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise FormError("admin.error.csrf", 403)


def login_csrf(request: Request) -> str:
    """The login form's token: the value of its (Strict, HttpOnly) cookie, new if absent."""
    value = request.cookies.get(LOGIN_CSRF_COOKIE)
    return value if value and 20 <= len(value) <= 100 else secrets.token_urlsafe(32)


def set_login_csrf(response: Response, value: str, path: str) -> None:
    response.set_cookie(LOGIN_CSRF_COOKIE, value, path=path, httponly=True, secure=True,
                        samesite="strict")
