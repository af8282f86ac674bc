"""One tenant's public dashboard at `/t/<slug>/`, and the county roll-up.

The same pages as `/` (overview, use-case detail, map, accessibility, Leichte Sprache, tile
fragments) and the same JSON API (`/t/<slug>/api/v1/…`: use cases, latest values, series, CSV,
live events), routed under `/t/{tenant}`. The handlers in `pages.py` and
`ortspuls.dashboard.api` read the tenant from the request:

- pages: `request.state.tenant` (set here) makes `PageContext.url` put `/t/<slug>` before every
  link and every API URL the browser code calls, and the tiles come from the tenant's view;
- API: the `tenant` path parameter narrows the data to the tenant's view
  (`TenantDirectory.view`: a town itself; a county itself and its member towns), and the live
  stream to that view's public observations.

Only public data is shown, as on `/`. A county's pages aggregate its members' public
Datastreams in the tiles and name each station's town. An unknown slug is a 404 page (pages) or
a JSON 404 (API). A single-town installation never links here; `/` stays as it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ortspuls.dashboard import api
from ortspuls.sta.http import external_base
from ortspuls.web import downloads, pages
from ortspuls.web.render import browser_config, page_context, render

Endpoint = Callable[[Request], Awaitable[Response]]


def tenant_page(endpoint: Endpoint) -> Endpoint:
    """Resolve `/t/<slug>/` to its tenant (and a county's members) before the page handler;
    the 404 page for an unknown slug."""

    async def run(request: Request) -> Response:
        slug = request.path_params["tenant"]
        directory = request.app.state.tenants
        tenant = await directory.by_slug(slug)
        if tenant is None:
            ctx = page_context(request)
            return render(ctx, "error.html", status=404, page="error", code=404,
                          message=ctx.t("error.no_tenant", slug=slug),
                          config=browser_config(ctx))
        request.state.tenant = tenant
        request.state.tenant_members = await directory.members(tenant.id)
        return await endpoint(request)

    run.__name__ = endpoint.__name__
    run.__doc__ = endpoint.__doc__
    return run


async def to_overview(request: Request) -> Response:
    """`/t/<slug>` without the slash: the overview's address ends with one."""
    return RedirectResponse(f"{request.url.path}/", status_code=308)


async def api_index(request: Request) -> Response:
    """The tenant's APIs: its SensorThings view and its dashboard API."""
    slug = request.path_params["tenant"]
    if await request.app.state.tenants.by_slug(slug) is None:
        return JSONResponse({"code": 404, "type": "error",
                             "message": f"no municipality {slug!r} at /t/{slug}/"},
                            status_code=404)
    base = f"{external_base(request)}/t/{slug}"
    return JSONResponse({"name": "Ortspuls", "tenant": slug, "links": [
        {"rel": "sensorthings", "href": f"{base}/v1.1"},
        {"rel": "dashboard", "href": f"{base}/api/v1/usecases"},
    ]})


def routes() -> list[BaseRoute]:
    """Routes for `ortspuls.app`, before the tenant SensorThings routes and the catch-all."""
    prefix = "/t/{tenant}"
    return [
        Route(prefix, to_overview),
        Route(prefix + "/", tenant_page(pages.overview)),
        Route(prefix + "/usecase/{slug}", tenant_page(pages.usecase_detail)),
        Route(prefix + "/map", tenant_page(pages.map_page)),
        Route(prefix + "/barrierefreiheit", tenant_page(pages.accessibility)),
        Route(prefix + "/leichte-sprache", tenant_page(pages.easy_read)),
        Route(prefix + "/_fragments/tiles", tenant_page(pages.tile_fragments)),
        Route(prefix + "/api", api_index),
        Route(prefix + "/api/v1/usecases", api.usecase_list),
        Route(prefix + "/api/v1/usecases/{slug}", api.usecase_detail),
        Route(prefix + "/api/v1/latest", api.latest_values),
        Route(prefix + "/api/v1/datastreams/{id:int}/series.csv", downloads.series_csv),
        Route(prefix + "/api/v1/datastreams/{id}/series", api.datastream_series),
        Route(prefix + "/api/v1/live", api.live),
    ]
