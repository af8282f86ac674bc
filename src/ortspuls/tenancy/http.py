"""One tenant's view of the SensorThings API: `/t/<slug>/v1.1/…`.

The same endpoints as `/v1.1`, routed under `/t/{tenant}`: `sta.http.service_root` puts the
prefix into every link, and `sta.http.reader` narrows the visibility to the tenant (a county:
itself and its member towns). An unknown slug is a 404.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ortspuls.sta import batch as sta_batch
from ortspuls.sta import dataarray as sta_dataarray
from ortspuls.sta import http as sta_http
from ortspuls.sta.errors import StaError
from ortspuls.tenancy.visibility import Visibility, visibility_for

STA_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]


async def tenant_root(request: Request) -> Response:
    try:
        await sta_http.tenant_view(request)
    except StaError as exc:
        return exc.response()
    return await sta_http.root(request)


def tenant_routes() -> list[BaseRoute]:
    """Plain routes (not a Mount, whose root_path would end up in every link twice)."""
    prefix = "/t/{tenant}/{version:sta_version}"
    return [
        Route(prefix, tenant_root),
        Route(prefix + "/", tenant_root),
        Route(prefix + "/$batch", sta_batch.endpoint, methods=STA_METHODS),
        Route(prefix + "/CreateObservations", sta_dataarray.create_observations,
              methods=STA_METHODS),
        Route(prefix + "/{path:path}", sta_http.resource, methods=STA_METHODS),
    ]


async def caller_visibility(request: Request) -> Visibility | None:
    """For the dashboard's JSON API and downloads: None for anonymous callers (their public
    rule applies), else the visibility of the API key or logged-in user (401 for a bad key),
    within the request's tenant view if it has one."""
    principal = await sta_http.authenticate(request, session=True)
    view = await sta_http.tenant_view(request)
    if principal is None and view is None:
        return None
    return visibility_for(principal, view)
