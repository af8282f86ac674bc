"""Builds the ASGI application from settings and wires the components together."""

from __future__ import annotations

import contextlib
import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import Route

from ortspuls import __version__
from ortspuls.db.engine import Database
from ortspuls.db.migrate import check
from ortspuls.query.compile import QueryCompiler
from ortspuls.settings import Settings, load_settings
from ortspuls.sta import http as sta_http
from ortspuls.sta.errors import error_response
from ortspuls.tenancy.apikeys import KeyVerifier
from ortspuls.timeseries.events import EventBus
from ortspuls.timeseries.writer import ObservationWriter

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


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error; the server log has the details")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        db = Database(settings.effective_database_url, settings.read_database_url or None)
        await check(db)
        state = app.state
        state.db = db
        state.bus = EventBus()
        state.keys = KeyVerifier(db)
        state.compiler = QueryCompiler(db.dialect)
        state.writer = ObservationWriter(db, state.bus, settings.writer_max_delay_ms,
                                         settings.writer_max_batch)
        state.writer.start()
        try:
            yield
        finally:
            await state.writer.stop()
            await db.close()

    routes = [
        Route("/", index),
        Route("/healthz", health),
        Route("/{version:sta_version}", sta_http.root),
        Route("/{version:sta_version}/", sta_http.root),
        Route("/{version:sta_version}/{path:path}", sta_http.resource, methods=STA_METHODS),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: _http_error, Exception: _server_error})
    app.state.settings = settings
    app.state.conformance = list(sta_http.CONFORMANCE)
    app.state.server_settings_extra = {}
    return app


def app_from_env() -> Starlette:
    """Factory for the ASGI server's worker processes: settings come from ORTSPULS_* variables."""
    return create_app(load_settings())
