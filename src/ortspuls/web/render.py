"""Rendering of the dashboard pages: Jinja2 environment, language choice and the page frame.

Every page gets the same context: the translator `t` for the chosen language, URL helpers that
respect a reverse proxy's path prefix, the asset URLs of the browser bundle (absent when it was
not built) and a JSON configuration block for the browser code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ortspuls.sta.http import external_base
from ortspuls.web import assets
from ortspuls.web.i18n import LANG_COOKIE, Translator, negotiate, unit_symbol
from ortspuls.web.sparkline import sparkline_points, trend_direction

TEMPLATE_DIR = Path(__file__).parent / "templates"
DEFAULT_TIMEZONE = "Europe/Berlin"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600

ENV = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["unit"] = unit_symbol
ENV.globals["sparkline_points"] = sparkline_points
ENV.globals["trend_direction"] = trend_direction


def _json_script(value: Any) -> Markup:
    """JSON safe inside <script type="application/json"> (no "</" can end the element)."""
    text = orjson.dumps(value).decode().replace("<", "\\u003c").replace(">", "\\u003e")
    return Markup(text.replace("&", "\\u0026"))


ENV.filters["json_script"] = _json_script


def town_timezone(settings: Any) -> ZoneInfo:
    return ZoneInfo(settings.timezone or DEFAULT_TIMEZONE)


@dataclass(slots=True)
class PageContext:
    request: Request
    lang: str
    t: Translator
    prefix: str  # path prefix under which the app is reached ("" or e.g. "/daten")
    set_cookie: bool  # `?lang=` was given: remember the choice
    # A tenant's dashboard at /t/<slug>/ (ortspuls.web.tenant_pages): the tenant and, for a
    # county, its member towns. Page links and API calls then stay inside /t/<slug>.
    tenant: Any = None
    members: tuple[Any, ...] = ()

    @property
    def base(self) -> str:
        """Where the dashboard's own paths start: the prefix, plus /t/<slug> for a tenant."""
        return f"{self.prefix}/t/{self.tenant.slug}" if self.tenant else self.prefix

    @property
    def county(self) -> bool:
        """A county's roll-up: stations name the town they belong to."""
        return bool(self.members)

    def url(self, path: str, **query: Any) -> str:
        params = {k: v for k, v in query.items() if v is not None}
        return f"{self.base}{path}" + (f"?{urlencode(params)}" if params else "")

    def here(self, **query: Any) -> str:
        """The current page (its path as requested) with other query parameters."""
        params = {k: v for k, v in query.items() if v is not None}
        return f"{self.prefix}{self.request.url.path}" + (
            f"?{urlencode(params)}" if params else "")

    def static(self, name: str) -> str:
        return f"{self.prefix}/static/{name}?v={assets.static_version(name)}"

    def bundle(self, name: str) -> str | None:
        """URL of a bundled file (e.g. "detail.js"), or None when the bundle was not built."""
        digest = assets.bundle_files().get(name)
        return f"{self.prefix}/static/dist/{name}?v={digest}" if digest else None

    def switch_language_url(self, lang: str) -> str:
        """The current page in another language, keeping its other query parameters."""
        params = [(k, v) for k, v in self.request.query_params.multi_items() if k != "lang"]
        params.append(("lang", lang))
        return f"{self.prefix}{self.request.url.path}?{urlencode(params)}"


def page_context(request: Request) -> PageContext:
    query_lang = request.query_params.get("lang")
    lang = negotiate(query_lang, request.cookies.get(LANG_COOKIE))
    settings = request.app.state.settings
    prefix = urlsplit(external_base(request)).path.rstrip("/")
    return PageContext(request, lang, Translator(lang, town_timezone(settings)), prefix,
                       set_cookie=query_lang == lang,
                       tenant=getattr(request.state, "tenant", None),
                       members=tuple(getattr(request.state, "tenant_members", ())))


def browser_config(ctx: PageContext, **extra: Any) -> dict[str, Any]:
    """What the browser code needs: language, locale, time zone, URLs and its texts."""
    return {
        "lang": ctx.lang,
        "locale": ctx.t("format.locale"),
        "timezone": ctx.t.timezone.key,
        "prefix": ctx.prefix,
        "live": ctx.url("/api/v1/live"),
        "texts": ctx.t.subset("js") | {f"time.{k}": v for k, v in ctx.t.subset("time").items()},
        **extra,
    }


def render(ctx: PageContext, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    settings = ctx.request.app.state.settings
    town = ctx.tenant.name if ctx.tenant else settings.town_name
    html = ENV.get_template(template).render(
        ctx=ctx, t=ctx.t, lang=ctx.lang, town=town,
        site_name=ctx.t("site.name_town", town=town) if town else ctx.t("site.name"),
        **values,
    )
    response = HTMLResponse(html, status_code=status, headers={
        # The same URL answers in the language of the cookie; live data must not be cached.
        "Vary": "Cookie",
        "Cache-Control": "no-cache",
        "Content-Language": ctx.lang,
    })
    if ctx.set_cookie:
        response.set_cookie(LANG_COOKIE, ctx.lang, max_age=LANG_COOKIE_MAX_AGE,
                            path=ctx.prefix or "/", samesite="lax")
    return response
