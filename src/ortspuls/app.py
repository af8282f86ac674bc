"""Builds the ASGI application from settings and wires the components together."""

from __future__ import annotations

import contextlib
import gc
import logging

from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from ortspuls import __version__, mqtt, web
from ortspuls.admin import routes as admin_routes
from ortspuls.dashboard import api as dashboard_api
from ortspuls.db.engine import Database, QueryTimeout, unlimited_reads
from ortspuls.db.migrate import check
from ortspuls.ingest import http as ingest_http
from ortspuls.ingest.service import IngestService
from ortspuls.query.compile import QueryCompiler
from ortspuls.settings import Settings, load_settings
from ortspuls.sta import batch as sta_batch
from ortspuls.sta import dataarray as sta_dataarray
from ortspuls.sta import http as sta_http
from ortspuls.sta.errors import error_response
from ortspuls.tenancy import http as tenancy_http
from ortspuls.tenancy.apikeys import KeyVerifier
from ortspuls.tenancy.oidc import OidcClient
from ortspuls.tenancy.sessions import SessionStore
from ortspuls.tenancy.tenants import TenantDirectory
from ortspuls.timeseries.events import EventBus
from ortspuls.timeseries.latest import LatestValues
from ortspuls.timeseries.rollups import RollupKeeper, ensure_rollups
from ortspuls.timeseries.writer import ObservationWriter
from ortspuls.web import tenant_pages

log = logging.getLogger(__name__)


class StaVersionConvertor(Convertor):
    regex = r"v1\.[01]"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("sta_version", StaVersionConvertor())

STA_VERSIONS = ("v1.1", "v1.0")
STA_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]
# SensorThings 1.1 classes beyond the core (the two MQTT classes are added when MQTT runs).
EXTENSION_CONFORMANCE = [
    sta_http.CONFORMANCE_BASE + "batch-request/batch-request",
    sta_http.CONFORMANCE_BASE + "data-array/data-array",
    sta_http.CONFORMANCE_BASE + "multi-datastream",
]


async def index(request: Request) -> Response:
    base = sta_http.external_base(request)
    return JSONResponse({
        "name": "Ortspuls",
        "version": __version__,
        "links": [{"rel": "sensorthings", "href": f"{base}/{v}"} for v in STA_VERSIONS],
    })


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _http_error(request: Request, exc: HTTPException) -> Response:
    messages = {404: f"nothing at {request.url.path}", 405: f"{request.method} is not allowed here"}
    return error_response(exc.status_code, messages.get(exc.status_code, str(exc.detail)),
                          headers=getattr(exc, "headers", None))


async def _query_timeout(request: Request, exc: QueryTimeout) -> Response:
    """A read stopped by the time limit outside the API endpoints (which answer it with 400
    themselves): dashboard pages, CSV downloads, admin. Their queries are the server's own
    choice, so the client has nothing to narrow: 503, the server could not answer in time."""
    return sta_http.query_timeout_response(
        request, exc, "the server is busy or this view covers too much data; try again later, "
                      "and tell the operator if it persists", status=503)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error; the server log has the details")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        # The start (migration check, rollup rebuild, caches) and the background jobs started
        # here read without a time limit; requests run in tasks of their own, outside this.
        with unlimited_reads():
            async with components(app):
                yield

    @contextlib.asynccontextmanager
    async def components(app: Starlette):
        # Reads for requests stop after query_timeout (0: never); writes are never limited.
        db = Database(settings.effective_database_url, settings.read_database_url or None,
                      query_timeout=settings.query_timeout)
        await check(db)
        state = app.state
        state.db = db
        state.bus = EventBus()
        state.keys = KeyVerifier(db)
        # Tenants (/t/<slug>/ views, default visibility) and login sessions (admin UI).
        state.tenants = TenantDirectory(db)
        state.sessions = SessionStore(db, settings)
        state.oidc = OidcClient()
        state.compiler = QueryCompiler(db.dialect)
        state.writer = ObservationWriter(db, state.bus, settings.writer_max_delay_ms,
                                         settings.writer_max_batch)
        # Rollups change inside the writer's transactions; the latest values follow the bus.
        state.rollups = RollupKeeper(settings.timezone)
        state.rollups.install(state.writer)
        await ensure_rollups(db, settings.timezone)
        state.latest = LatestValues(db, state.bus, settings.latest_refresh_seconds)
        await state.latest.start()
        await dashboard_api.start(app)
        state.writer.start()
        state.ingest = IngestService(settings, db, state.writer, state.bus)
        await state.ingest.start()
        state.mqtt = None
        if mqtt.enabled(settings):
            state.mqtt = mqtt.MqttService(settings, state)
            await state.mqtt.start()
            for uri in (mqtt.CONFORMANCE_CREATE, mqtt.CONFORMANCE_RECEIVE):
                if uri not in state.conformance:
                    state.conformance.append(uri)
                state.server_settings_extra[uri] = state.mqtt.endpoints
        state.demo = None
        if settings.demo:
            # Musterstadt's simulated devices send their uplinks to this server's webhooks.
            from ortspuls.demo.simulator import DemoSimulator

            state.demo = DemoSimulator(settings, db)
            await state.demo.start()
        # The objects of the started server live as long as the process: keep them out of the
        # cyclic garbage collector's full passes. Otherwise every few bulk requests (whose
        # temporaries get promoted to the oldest generation) pay a full pass over the whole
        # heap, about 70 ms.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if state.demo is not None:
                await state.demo.stop()
            if state.mqtt is not None:
                await state.mqtt.stop()
            await state.ingest.stop()
            await dashboard_api.stop(app)
            await state.latest.stop()
            await state.writer.stop()
            await db.close()

    routes = [
        Route("/api", index),
        Route("/healthz", health),
        *dashboard_api.routes(),
        # The public dashboard pages (overview at "/"), their CSV download and static files.
        *web.routes(),
        Mount("/ingest", routes=ingest_http.routes),
        # The admin UI (accounts, keys, visibility, sharing, audit log) and one tenant's view
        # of the SensorThings API at /t/<slug>/v1.1.
        *admin_routes(),
        # One tenant's dashboard pages and dashboard API at /t/<slug>/ (a county: roll-up).
        *tenant_pages.routes(),
        *tenancy_http.tenant_routes(),
        Route("/{version:sta_version}", sta_http.root),
        Route("/{version:sta_version}/", sta_http.root),
        # Before the catch-all: their GET (or other methods) is a 405, not "no entity set".
        Route("/{version:sta_version}/$batch", sta_batch.endpoint, methods=STA_METHODS),
        Route("/{version:sta_version}/CreateObservations", sta_dataarray.create_observations,
              methods=STA_METHODS),
        Route("/{version:sta_version}/{path:path}", sta_http.resource, methods=STA_METHODS),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: _http_error,
                                        QueryTimeout: _query_timeout,
                                        Exception: _server_error})
    app.state.settings = settings
    app.state.conformance = [*sta_http.CONFORMANCE, *EXTENSION_CONFORMANCE]
    app.state.server_settings_extra = {}
    return app


def app_from_env() -> Starlette:
    """Factory for the ASGI server's worker processes: settings come from ORTSPULS_* variables."""
    return create_app(load_settings())
