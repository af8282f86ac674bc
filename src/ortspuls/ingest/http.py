"""The ingest endpoints: `POST /ingest/ttn` (The Things Stack webhooks) and
`POST /ingest/chirpstack?event=…` (ChirpStack HTTP integration).

The token of an integration may come as `Authorization: Bearer <token>`, as the password of HTTP
Basic authentication (TTS "request authentication"), in a configurable header
(`X-Ortspuls-Token` by default) or as the first path segment (`/ingest/ttn/<token>`) for network
servers that cannot set headers. A request is authenticated before its body is read: a wrong
token gets 401 and nothing is stored.

A codec error is answered with 200 and recorded on the device: network servers disable webhooks
that fail repeatedly, and one broken device must not cut off all others.
"""

from __future__ import annotations

import base64
import logging

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ortspuls.ingest.adapters import (
    chirpstack_device_event,
    chirpstack_uplink,
    tts_message_kind,
    tts_uplink,
)
from ortspuls.ingest.pipeline import Overloaded
from ortspuls.ingest.registry import TOKEN_PREFIX, Integration
from ortspuls.sta.errors import BadRequest, StaError, error_response

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
CHIRPSTACK_DEVICE_EVENTS = ("status", "location", "join")
KIND_NAMES = {"ttn": "The Things Stack", "chirpstack": "ChirpStack"}
ENDPOINTS = {"ttn": "/ingest/ttn", "chirpstack": "/ingest/chirpstack"}


def _json(body: dict, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=headers)


def presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        kind, _, credential = header.partition(" ")
        kind = kind.lower()
        if kind == "bearer" and credential.strip():
            return credential.strip()
        if kind == "basic":
            try:
                user, _, password = base64.b64decode(credential.strip(), validate=True
                                                     ).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            return password or user
    custom = request.app.state.settings.ingest_token_header
    if custom and request.headers.get(custom):
        return request.headers[custom].strip()
    rest = request.path_params.get("rest") or ""
    first = rest.strip("/").split("/", 1)[0]
    if first.startswith(TOKEN_PREFIX):
        return first
    return None


async def _authenticate(request: Request, kind: str) -> Integration:
    token = presented_token(request)
    header = request.app.state.settings.ingest_token_header
    if token is None:
        raise StaError(f"Token fehlt (missing token): send 'Authorization: Bearer <token>', a "
                       f"'{header}: <token>' header, or use {ENDPOINTS[kind]}/<token>", 401)
    integration = await request.app.state.ingest.registry.integration_for_token(
        request.app.state.db, token)
    if integration is None:
        raise StaError("Token ungültig oder widerrufen (the ingest token is not valid or has "
                       "been revoked)", 401)
    if integration.kind != kind:
        raise StaError(f"this token belongs to the {KIND_NAMES[integration.kind]} integration "
                       f"{integration.name!r}; send it to {ENDPOINTS[integration.kind]}", 403)
    return integration


async def _body(request: Request) -> dict:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/octet-stream", "application/protobuf",
                        "application/x-protobuf"):
        raise StaError("Protobuf is not supported: set the integration's payload encoding to "
                       "JSON", 415)
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY:
        raise StaError(f"the request body is larger than {MAX_BODY} bytes", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise StaError(f"the request body is larger than {MAX_BODY} bytes", 413)
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise BadRequest("the request body is empty; send the network server's JSON message")
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise BadRequest("the request body must be a JSON object")
    return message


async def _submit(request: Request, integration: Integration, **item) -> Response:
    pipeline = request.app.state.ingest.pipeline
    try:
        result = await pipeline.submit(integration.tenant_id, integration, **item)
    except Overloaded as exc:
        log.warning("ingest overloaded: %s", exc)
        return error_response(503, "überlastet, bitte später erneut senden (overloaded; retry "
                                   "later)", headers={"Retry-After": "5"})
    except Exception:
        log.exception("ingest failed for integration %s", integration.name)
        return error_response(503, "vorübergehend nicht speicherbar (cannot store right now; "
                                   "retry later)", headers={"Retry-After": "5"})
    return _json(result)


async def ttn(request: Request) -> Response:
    try:
        integration = await _authenticate(request, "ttn")
        message = await _body(request)
        kind = tts_message_kind(message)
        if kind != "uplink_message":
            return _json({"status": "ignored", "message": kind})
        uplink = tts_uplink(message)
    except StaError as exc:
        return exc.response()
    return await _submit(request, integration, uplink=uplink)


async def chirpstack(request: Request) -> Response:
    try:
        integration = await _authenticate(request, "chirpstack")
        message = await _body(request)
        event = request.query_params.get("event") or ("up" if "deduplicationId" in message
                                                      and "fCnt" in message else "")
        if event == "up":
            return await _submit(request, integration, uplink=chirpstack_uplink(message))
        if event in CHIRPSTACK_DEVICE_EVENTS:
            return await _submit(request, integration,
                                 event=chirpstack_device_event(event, message))
        return _json({"status": "ignored", "event": event or None})
    except StaError as exc:
        return exc.response()


routes = [
    Route("/ttn", ttn, methods=["POST"]),
    Route("/ttn/{rest:path}", ttn, methods=["POST"]),
    Route("/chirpstack", chirpstack, methods=["POST"]),
    Route("/chirpstack/{rest:path}", chirpstack, methods=["POST"]),
]
