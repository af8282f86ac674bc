"""The SensorThings HTTP endpoints: service root, reads, and create/update/delete.

These are plain Starlette endpoints returning pre-serialized bytes (orjson), the hot path of the
API. Every request runs in one database transaction; every error is a JSON body.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response

from ortspuls.db.engine import QueryTimeout
from ortspuls.model import ENTITY_SETS, ENTITY_TYPES
from ortspuls.query import QuerySyntaxError, parse_query_options
from ortspuls.query.ast import QueryOptions
from ortspuls.query.compile import QueryCompiler
from ortspuls.sta import formats
from ortspuls.sta import read as reading
from ortspuls.sta import write as writing
from ortspuls.sta.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    MethodNotAllowed,
    PayloadTooLarge,
    StaError,
    Unauthorized,
)
from ortspuls.sta.paths import ResourcePath, Segment, parse_path
from ortspuls.sta.serialize import Serializer
from ortspuls.sta.values import contains_nul
from ortspuls.tenancy import audit
from ortspuls.tenancy.apikeys import Principal
from ortspuls.tenancy.visibility import ANONYMOUS, Visibility, visibility_for

log = logging.getLogger(__name__)

JSON = "application/json"
CONFORMANCE_BASE = "http://www.opengis.net/spec/iot_sensing/1.1/req/"
CONFORMANCE = [
    CONFORMANCE_BASE + "datamodel",
    CONFORMANCE_BASE + "resource-path/resource-path-to-entities",
    CONFORMANCE_BASE + "request-data",
    CONFORMANCE_BASE + "create-update-delete",
]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None):
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


# ---------------------------------------------------------------------------------------------
# URLs behind proxies


def external_base(request: Request) -> str:
    """Scheme, host and path prefix as the client sees them (public_base_url or X-Forwarded-*)."""
    settings = request.app.state.settings
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    headers = request.headers
    scheme = request.url.scheme
    host = headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    prefix = ""
    if settings.trust_forwarded_headers:
        scheme = headers.get("x-forwarded-proto", scheme).split(",")[0].strip()
        forwarded_host = headers.get("x-forwarded-host")
        if forwarded_host:
            host = forwarded_host.split(",")[0].strip()
        port = headers.get("x-forwarded-port")
        if port:
            port = port.split(",")[0].strip()
            hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            default = (scheme == "https" and port == "443") or (scheme == "http" and port == "80")
            host = hostname if default else f"{hostname}:{port}"
        prefix = headers.get("x-forwarded-prefix", "").split(",")[0].strip().rstrip("/")
        if prefix and not prefix.startswith("/"):
            prefix = "/" + prefix
    return f"{scheme}://{host}{prefix}{request.scope.get('root_path', '')}"


def service_root(request: Request) -> str:
    """The service root the client addressed, e.g. http://h/v1.1 or, in the view of one
    tenant, http://h/t/musterstadt/v1.1 (links then stay within that view)."""
    version = request.path_params.get("version", "v1.1")
    tenant = request.path_params.get("tenant")
    if tenant:
        return f"{external_base(request)}/t/{tenant}/{version}"
    return f"{external_base(request)}/{version}"


# ---------------------------------------------------------------------------------------------
# Credentials


async def authenticate(request: Request, session: bool = False) -> Principal | None:
    """The API key's Principal, or None without credentials (401 for a bad key). With
    `session`, a logged-in user's session cookie counts too (for reads only: a cookie is sent
    by the browser on its own, so it must never authorize a write)."""
    header = request.headers.get("authorization")
    if not header:
        if session:
            from ortspuls.tenancy.sessions import COOKIE

            token = request.cookies.get(COOKIE)
            sessions = getattr(request.app.state, "sessions", None)
            if token and sessions is not None:
                return await sessions.principal(token)
        return None
    kind, _, credential = header.partition(" ")
    kind = kind.lower()
    if kind == "bearer":
        key = credential.strip()
    elif kind == "basic":
        try:
            decoded = base64.b64decode(credential.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise Unauthorized("the Basic credentials are not valid base64") from None
        key = decoded.partition(":")[2]
    else:
        raise Unauthorized("use 'Authorization: Bearer <API key>' or HTTP Basic with the key as "
                           "password")
    principal = await request.app.state.keys.verify(key)
    if principal is None:
        raise Unauthorized("the API key is not valid or has been revoked")
    return principal


async def require(request: Request, scope: str) -> Principal:
    principal = await authenticate(request)
    if principal is None:
        if request.app.state.settings.allow_anonymous_write:
            return Principal("anonymous", 1, "admin")
        raise Unauthorized("writing needs an API key: 'Authorization: Bearer <key>' "
                           "(create one with `ortspuls apikey create`)")
    if not principal.allows(scope):
        raise Forbidden(f"the API key {principal.name!r} has scope {principal.scope!r}; "
                        f"this needs {scope!r}")
    view = await tenant_view(request)
    if view is not None and principal.tenant_id not in view:
        raise Forbidden(f"the API key {principal.name!r} belongs to another municipality; "
                        f"write through {external_base(request)}/v1.1 or the view of its own")
    return principal


async def tenant_view(request: Request) -> frozenset[int] | None:
    """The tenant ids of a `/t/<slug>/…` request (404 for an unknown slug), None elsewhere."""
    slug = request.path_params.get("tenant")
    if not slug:
        return None
    view = await request.app.state.tenants.view(slug)
    if view is None:
        from ortspuls.sta.errors import NotFound

        raise NotFound(f"no municipality {slug!r} at /t/{slug}/")
    return view


async def reader(request: Request) -> Visibility:
    """Who reads (API key or session, else anonymous) and in which view: the visibility every
    read of this request applies (kept on the request for `read_context`)."""
    principal = await authenticate(request, session=request.method == "GET")
    visibility = visibility_for(principal, await tenant_view(request))
    request.state.visibility = visibility
    return visibility


def request_visibility(request: Request) -> Visibility:
    """The visibility `reader` decided; anonymous when it did not run (safe by default)."""
    return getattr(request.state, "visibility", ANONYMOUS)


# ---------------------------------------------------------------------------------------------
# Reads stopped by the time limit

# What a SensorThings client can change when a read is stopped.
STA_TIMEOUT_HINT = ("narrow it with a $filter on a Datastream or a time range (e.g. "
                    "Datastreams(1)/Observations?$filter=phenomenonTime ge "
                    "2024-05-01T00:00:00Z), use $top, or leave out $count=true and $orderby on "
                    "anything but phenomenonTime")


def query_timeout_response(request: Request, exc: QueryTimeout, hint: str = STA_TIMEOUT_HINT,
                           status: int = 400) -> Response:
    """The answer to a read the database stopped at the server's time limit (`query_timeout`).

    400, as Datasette answers: the client chose the query (options, period), the same request
    would be stopped again, so it is the client who has to change it, and the message says
    how. A 503 would mean "try again later" and invite clients and proxies to retry on their
    own, bringing back the very load the limit keeps off the database. (Where the client did
    not shape the query, e.g. a dashboard page, the app answers 503 instead.) Not a server
    fault: one warning line with method and path, never a traceback, never the query string
    or a token."""
    log.warning("read stopped at the time limit of %g s: %s %s", exc.seconds, request.method,
                loggable_path(request.url.path))
    return StaError(f"the query was stopped after {exc.seconds:g} s, this server's time limit "
                    f"for one read; {hint}", status).response()


def loggable_path(path: str) -> str:
    """The request path for the log: ingest webhooks may carry their token in the path."""
    if path.startswith("/ingest/"):
        return "/".join(path.split("/")[:3]) + "/…"
    return path


# ---------------------------------------------------------------------------------------------
# Bodies


async def read_json(request: Request) -> Any:
    limit = request.app.state.settings.max_body_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise BadRequest("the request body is empty; send a JSON document")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    # PostgreSQL cannot store NUL in text or jsonb; refuse it on every database alike. The byte
    # search keeps the exact walk off the common path.
    if b"\\u0000" in body and contains_nul(data):
        raise BadRequest("text in the request body must not contain the NUL character (\\u0000)")
    return data


# ---------------------------------------------------------------------------------------------
# Endpoints


async def root(request: Request) -> Response:
    base = service_root(request)
    state = request.app.state
    body = {
        "value": [{"name": name, "url": f"{base}/{name}"} for name in ENTITY_SETS],
        "serverSettings": {"conformance": list(state.conformance)},
    }
    for key, value in state.server_settings_extra.items():
        # A callable entry depends on the request (e.g. MQTT endpoints on the client's host).
        body["serverSettings"][key] = value(request) if callable(value) else value
    return json_response(body)


# $resultFormat: lower-case spelling -> (canonical name, renderer of the whole answer). None:
# the JSON reader (read.py) answers, which also shapes dataArray. New formats register here.
Renderer = Callable[[Request, ResourcePath, QueryOptions, Callable], Awaitable[Response]]
RESULT_FORMATS: dict[str, tuple[str, Renderer | None]] = {
    "json": ("JSON", None),
    "dataarray": ("dataArray", None),
    "geojson": ("GeoJSON", formats.geojson_response),
    "csv": ("CSV", formats.csv_response),
}


def result_format(options: QueryOptions) -> tuple[QueryOptions, Renderer | None]:
    """The options with `$resultFormat` in its canonical spelling, and its renderer."""
    name = options.result_format
    if name is None:
        return options, None
    entry = RESULT_FORMATS.get(name.lower())
    if entry is None:
        known = ", ".join(canonical for canonical, _ in RESULT_FORMATS.values())
        raise BadRequest(f"$resultFormat={name} is not supported; the formats are {known}")
    canonical, renderer = entry
    return replace(options, result_format=None if canonical == "JSON" else canonical), renderer


def parse_options(request: Request) -> QueryOptions:
    try:
        # The multi-dict itself, so a repeated option is refused instead of silently dropped.
        return parse_query_options(request.query_params)
    except QuerySyntaxError as exc:
        raise BadRequest(str(exc)) from None


_ANONYMOUS_MEMO = reading.MemoVisibility(ANONYMOUS, shared=True)


def read_context(request: Request, conn) -> reading.ReadContext:
    state = request.app.state
    rules = request_visibility(request)
    # Anonymous callers share one set of rules: its clauses are built once per process.
    visible = _ANONYMOUS_MEMO if rules is ANONYMOUS else reading.MemoVisibility(rules)
    return reading.ReadContext(
        conn=conn,
        dialect=state.db.dialect,
        serializer=Serializer(service_root(request)),
        default_top=state.settings.default_top,
        max_top=state.settings.max_top,
        # Navigation inside $filter and $orderby sees only what the caller may see.
        compiler=QueryCompiler(state.db.dialect, visible),
        visible=visible,
    )


async def resource(request: Request) -> Response:
    try:
        path = parse_path(request.path_params["path"])
        method = request.method
        await reader(request)
        if method == "GET":
            return await _get(request, path)
        if method == "POST":
            return await _post(request, path)
        if method in ("PATCH", "PUT"):
            return await _update(request, path)
        if method == "DELETE":
            return await _delete(request, path)
        raise MethodNotAllowed(f"{method} is not supported on SensorThings resources")
    except StaError as exc:
        return exc.response()
    except QueryTimeout as exc:
        return query_timeout_response(request, exc)
    except IntegrityError as exc:
        log.info("integrity error: %s", exc.orig)
        return Conflict("the change conflicts with existing data (a linked entity is missing or "
                        "in use)").response()


async def _get(request: Request, path: ResourcePath) -> Response:
    state = request.app.state
    # Read extensions registered at start (e.g. the dashboard's $aggregate) answer first.
    for extension in getattr(state, "sta_read_extensions", ()):
        answer = await extension(request, path)
        if answer is not None:
            return answer
    options, renderer = result_format(parse_options(request))
    if renderer is not None:
        return await renderer(request, path, options, lambda conn: read_context(request, conn))
    async with state.db.read() as conn:
        ctx = read_context(request, conn)
        if path.is_collection:
            next_base = service_root(request) + "/" + request.path_params["path"].strip("/")
            body = await reading.read_collection(ctx, path, options, next_base,
                                                 dict(request.query_params))
            return json_response(body)
        entity, row, value = await reading.read_entity(ctx, path, options)
    if path.ref:
        return json_response({"@iot.selfLink": ctx.serializer.self_link(entity, row["id"])})
    if path.member is not None:
        name = path.member.name
        member = row["id"] if name == "id" else value.get(name)
        if path.member.name != "id" and options.select is not None:
            from ortspuls.sta.serialize import field_value
            member = field_value(entity, name, row)
        if path.value:
            if member is None:
                return Response(status_code=204)
            text = member if isinstance(member, str) else orjson.dumps(member).decode()
            return Response(text, media_type="text/plain; charset=utf-8")
        return json_response({name if name != "id" else "@iot.id": member})
    return json_response(value)


def by_id(entity, ident: int) -> ResourcePath:
    return ResourcePath((Segment(entity, None, ident),))


def _implied_links(path: ResourcePath) -> dict[str, int]:
    """POST to Things(1)/Datastreams links the new Datastream to Thing 1."""
    parent = path.parent
    if parent is None:
        return {}
    if parent.id is None and (parent.via is None or parent.via.many):
        raise BadRequest("POST to a navigation collection needs its parent by id, "
                         "e.g. Things(1)/Datastreams")
    if parent.id is None:
        raise BadRequest("POST needs the parent entity by id, e.g. Datastreams(1)/Observations")
    rel = path.target.via
    return {rel.inverse: parent.id}


async def _post(request: Request, path: ResourcePath) -> Response:
    if path.member is not None or path.ref or not path.is_collection or path.target.id is not None:
        raise MethodNotAllowed("POST creates entities in a collection, e.g. POST /v1.1/Things")
    principal = await require(request, "write")
    data = await read_json(request)
    entity = path.target.entity
    implied = _implied_links(path)
    state = request.app.state
    serializer = Serializer(service_root(request))

    if entity.name == "Observation" and _is_plain_observation(data, implied):
        if path.parent is not None:
            async with state.db.read(primary=True) as conn:
                await reading.check_path_exists(read_context(request, conn), path)
        ctx = writing.WriteContext(conn=None, writer=state.writer,  # type: ignore[arg-type]
                                   tenant_id=principal.tenant_id)
        # The writer refuses (403) a Datastream or feature of another tenant.
        record = await writing.observation_record(ctx, data, implied)
        row = await state.writer.submit(record)
        value = serializer.entity(entity, row)
        return json_response(value, 201, {"Location": value["@iot.selfLink"]})

    async with state.db.write() as conn:
        ctx = writing.WriteContext(conn=conn, writer=state.writer, tenant_id=principal.tenant_id)
        if path.parent is not None:
            await reading.check_path_exists(read_context(request, conn), path)
        ident = await writing.create(ctx, entity, data, implied)
        await audit.record_events(conn, principal, ctx.events)
        rctx = read_context(request, conn)
        _, _, value = await reading.read_entity(rctx, by_id(entity, ident), QueryOptions())
    await state.writer.settle()
    state.bus.publish(ctx.events)
    return json_response(value, 201, {"Location": value["@iot.selfLink"]})


def _is_plain_observation(data: Any, implied: dict[str, int]) -> bool:
    """An Observation that only links its Datastream goes through group commit."""
    if not isinstance(data, dict):
        return False
    for name in ("Datastream", "MultiDatastream"):
        ds = data.get(name)
        if ds is not None and not (isinstance(ds, dict) and ("@iot.id" in ds or "id" in ds)):
            return False
    return True


def _single_target(path: ResourcePath, method: str) -> int:
    target = path.target
    if path.member is not None or path.ref or target.id is None:
        raise MethodNotAllowed(f"{method} needs one entity by id, e.g. "
                               f"{method} /v1.1/{target.entity.set_name}(1)")
    return target.id


async def _update(request: Request, path: ResourcePath) -> Response:
    ident = _single_target(path, request.method)
    principal = await require(request, "write")
    data = await read_json(request)
    entity = path.target.entity
    state = request.app.state
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    async with state.db.write() as conn:
        rctx = read_context(request, conn)
        await reading.check_path_exists(rctx, path)
        await reading.read_entity(rctx, path, QueryOptions())  # 404 if not reachable this way
        ctx = writing.WriteContext(conn=conn, writer=state.writer, tenant_id=principal.tenant_id)
        if content_type == "application/json-patch+json":
            if request.method != "PATCH":
                raise BadRequest("JSON Patch documents are sent with PATCH")
            await writing.json_patch(ctx, entity, ident, data)
        else:
            await writing.update_entity(ctx, entity, ident, data,
                                        replace=request.method == "PUT")
        await audit.record_events(conn, principal, ctx.events)
        _, _, value = await reading.read_entity(rctx, by_id(entity, ident), QueryOptions())
    await state.writer.settle()
    state.bus.publish(ctx.events)
    return json_response(value)


async def _delete(request: Request, path: ResourcePath) -> Response:
    ident = _single_target(path, "DELETE")
    principal = await require(request, "write")
    state = request.app.state
    async with state.db.write() as conn:
        rctx = read_context(request, conn)
        await reading.read_entity(rctx, path, QueryOptions())
        ctx = writing.WriteContext(conn=conn, writer=state.writer, tenant_id=principal.tenant_id)
        await writing.delete_entity(ctx, path.target.entity, ident)
        await audit.record_events(conn, principal, ctx.events)
    await state.writer.settle()
    state.bus.publish(ctx.events)
    return Response(status_code=200)


__all__ = ["CONFORMANCE", "ENTITY_TYPES", "resource", "root"]
