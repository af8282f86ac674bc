"""The dashboard's JSON endpoints under `/api/v1`, and its start and stop in the app lifespan.

    GET /api/v1/usecases?lang=de|en            one tile per use case
    GET /api/v1/usecases/{slug}?lang=de|en     one use case in detail
    GET /api/v1/latest?thing=&observed_property=&usecase=
    GET /api/v1/datastreams/{id}/series?from=&to=&interval=&stats=
    GET /api/v1/live?usecase=&datastream=      Server-Sent Events
    GET /api/v1/openapi.json                   the OpenAPI document

The same endpoints answer under `/t/<slug>/api/v1/…` (routes in `ortspuls.web.tenant_pages`)
for one tenant's dashboard: only that tenant's data (a county: with its member towns'), links
within the prefix; an unknown slug is a 404.

Plain Starlette endpoints returning orjson bytes; errors are the SensorThings JSON error bodies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ortspuls.dashboard import openapi, service, sta_extension
from ortspuls.dashboard.live import LiveHub
from ortspuls.dashboard.summaries import Memo
from ortspuls.dashboard.texts import LANGUAGES
from ortspuls.dashboard.usecase import usecases
from ortspuls.db.engine import QueryTimeout
from ortspuls.sta.errors import BadRequest, NotFound, StaError
from ortspuls.sta.http import external_base, query_timeout_response, tenant_view
from ortspuls.tenancy.http import caller_visibility
from ortspuls.timeseries.rollups import LocalCalendar

JSON = "application/json"
_NO_STORE = {"Cache-Control": "no-cache"}


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type=JSON, headers=_NO_STORE)


# What a caller of the dashboard API can change when a read is stopped by the time limit.
TIMEOUT_HINT = "ask for a shorter period (from, to) or a coarser interval (e.g. interval=P1D)"


def _handled(endpoint: Callable[[Request], Awaitable[Response]]):
    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except StaError as exc:
            return exc.response()
        except QueryTimeout as exc:
            return query_timeout_response(request, exc, TIMEOUT_HINT)
    run.__name__ = endpoint.__name__
    run.__doc__ = endpoint.__doc__
    return run


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang", "de")
    if lang not in LANGUAGES:
        raise BadRequest(f"lang: {lang!r} is not offered; use {' or '.join(LANGUAGES)}")
    return lang


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name}: {raw!r} is not an integer id") from None


def _only(request: Request, allowed: tuple[str, ...]) -> None:
    for key in request.query_params:
        if key not in allowed:
            raise BadRequest(f"unknown parameter {key!r}; this endpoint takes "
                             f"{', '.join(allowed) or 'none'}")


def _tenant(request: Request) -> str | None:
    """The slug of a `/t/<slug>/api/v1/…` request (the service checks that it exists)."""
    return request.path_params.get("tenant")


@_handled
async def usecase_list(request: Request) -> Response:
    _only(request, ("lang",))
    tiles = await service.usecase_overview(request.app.state, _lang(request),
                                           tenant=_tenant(request))
    return _json({"usecases": tiles})


@_handled
async def usecase_detail(request: Request) -> Response:
    _only(request, ("lang",))
    lang = _lang(request)
    detail = await service.usecase_detail(request.app.state, request.path_params["slug"], lang,
                                          tenant=_tenant(request))
    return _json(detail)


@_handled
async def latest_values(request: Request) -> Response:
    _only(request, ("thing", "observed_property", "usecase"))
    values = await service.latest(
        request.app.state, thing=_int_param(request, "thing"),
        observed_property=_int_param(request, "observed_property"),
        usecase=request.query_params.get("usecase") or None,
        visibility=await caller_visibility(request))
    return _json({"value": values})


@_handled
async def datastream_series(request: Request) -> Response:
    _only(request, ("from", "to", "interval", "stats"))
    raw_id = request.path_params["id"]
    if not raw_id.isdigit():
        raise NotFound(f"no public Datastream with id {raw_id!r}")
    params = request.query_params
    body = await service.series(request.app.state, int(raw_id), params.get("from"),
                                params.get("to"), params.get("interval", "PT1H"),
                                params.get("stats"),
                                visibility=await caller_visibility(request))
    return _json(body)


@_handled
async def live(request: Request) -> Response:
    _only(request, ("usecase", "datastream"))
    usecase = request.query_params.get("usecase") or None
    if usecase is not None and usecase not in usecases():
        raise BadRequest(f"usecase: unknown use case {usecase!r}")
    # A tenant's stream carries only that tenant's (a county: its members') observations.
    view = await tenant_view(request)
    hub: LiveHub = request.app.state.live
    client = hub.connect(usecase, _int_param(request, "datastream"), view)
    return StreamingResponse(hub.stream(client), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def openapi_document(request: Request) -> Response:
    return Response(orjson.dumps(openapi.document(external_base(request))), media_type=JSON)


def routes() -> list[Route]:
    """The dashboard API routes; they go before the SensorThings catch-all."""
    return [
        Route("/api/v1/usecases", usecase_list),
        Route("/api/v1/usecases/{slug}", usecase_detail),
        Route("/api/v1/latest", latest_values),
        Route("/api/v1/datastreams/{id}/series", datastream_series),
        Route("/api/v1/live", live),
        Route("/api/v1/openapi.json", openapi_document),
    ]


async def start(app: Any) -> None:
    """Lifespan start (after the writer and the latest-value cache): the dashboard's state,
    the live hub and the SensorThings `$aggregate` extension."""
    state = app.state
    settings = state.settings
    state.dashboard = service.DashboardState(
        calendar=LocalCalendar(settings.timezone), memo=Memo(),
        base_url=settings.public_base_url.rstrip("/"),
        metadata=service.MetadataCache(max_age=settings.latest_refresh_seconds or 5.0))
    state.bus.subscribe(state.dashboard.metadata.on_events)
    state.live = LiveHub(state.db, state.bus)
    await state.live.start()
    extensions = list(getattr(state, "sta_read_extensions", ()))
    if sta_extension.aggregate not in extensions:
        extensions.append(sta_extension.aggregate)
    state.sta_read_extensions = extensions
    if sta_extension.AGGREGATE_URI not in state.conformance:
        state.conformance.append(sta_extension.AGGREGATE_URI)
    state.server_settings_extra[sta_extension.AGGREGATE_URI] = \
        sta_extension.server_settings(settings.timezone)


async def stop(app: Any) -> None:
    live_hub = getattr(app.state, "live", None)
    if live_hub is not None:
        await live_hub.stop()
