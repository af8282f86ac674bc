"""Batch requests (`POST /v1.1/$batch`): several SensorThings requests in one.

Two formats, chosen by the request's Content-Type:

- `multipart/mixed` (OData 4.0, as in OGC 18-088 clause 12): each part is one HTTP request;
  a nested `multipart/mixed` part is a change set. The answer is `multipart/mixed` with one
  response per part; a change set that fails is answered by the single failing response.
- `application/json` (OData 4.01 JSON batch): `{"requests": [{id, method, url, headers?,
  body?, atomicityGroup?, dependsOn?}]}`, answered by `{"responses": [{id, status, headers,
  body}]}`.

Every part goes through the same endpoint code as a plain HTTP request (`sta.http.resource`,
`sta.dataarray.create_observations`), so validation, links and errors are identical. A part
outside a change set is its own transaction; a failing one does not stop the others. A change
set (atomicity group) runs in ONE transaction: the endpoints see a state whose database,
observation writer and event bus are bound to that transaction, events are published only after
its commit, and the first failing part rolls everything back. `$<id>` at the start of a URL (or
as an `@iot.id` value in a body) refers to the entity created by an earlier part.

The whole body is parsed before anything runs: a malformed batch is a 400 and changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import uuid4

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ortspuls.db.engine import QueryTimeout
from ortspuls.sta.errors import (
    BadRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    StaError,
    error_body,
)
from ortspuls.timeseries.events import EntityEvent

log = logging.getLogger(__name__)

_METHODS = {"GET", "POST", "PATCH", "PUT", "DELETE"}
_VERSION_PATH = re.compile(r"/(v1\.[01])/(.*)$")
_REFERENCE = re.compile(r"^\$([A-Za-z0-9_.\-]+)(.*)$")
_LOCATION_ID = re.compile(r"\((\d+)\)$")
# Request headers of the batch that its parts inherit (where the client sits, who asks).
_INHERITED = ("host", "authorization", "x-forwarded-proto", "x-forwarded-host",
              "x-forwarded-port", "x-forwarded-prefix")


class _Rollback(Exception):
    """A part of a change set failed; the change set's transaction is rolled back."""


# ---------------------------------------------------------------------------------------------
# The parsed batch


@dataclass(slots=True)
class Part:
    method: str
    url: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    id: str | None = None  # Content-ID (multipart) or id (JSON)
    depends_on: tuple[str, ...] = ()


@dataclass(slots=True)
class Unit:
    """One request, or a change set / atomicity group of requests run in one transaction."""

    parts: list[Part]
    atomic: bool = False
    group: str | None = None


@dataclass(slots=True)
class Outcome:
    status: int
    headers: dict[str, str]
    body: bytes
    media_type: str | None

    @property
    def ok(self) -> bool:
        return self.status < 400


@dataclass(slots=True)
class Batch:
    units: list[Unit]
    json: bool
    outcomes: dict[str, Outcome] = field(default_factory=dict)


def _failure(status: int, message: str) -> Outcome:
    return Outcome(status, {}, error_body(status, message), "application/json")


# ---------------------------------------------------------------------------------------------
# Parsing: multipart/mixed


def _boundary(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary":
            return value.strip().strip('"') or None
    return None


def _split_multipart(body: bytes, boundary: str, where: str) -> list[bytes]:
    """The parts between `--boundary` lines; the closing `--boundary--` must be there."""
    delimiter = re.compile(rb"(?:^|\r?\n)--" + re.escape(boundary.encode()) + rb"(--)?[ \t]*")
    pieces = delimiter.split(body)
    # split() yields: preamble, then per delimiter its "--" group and the text after it.
    parts, closed = [], False
    for index in range(1, len(pieces), 2):
        closing, text = pieces[index], pieces[index + 1]
        if closing:
            closed = True
            break
        if not text.startswith((b"\r\n", b"\n")):
            raise BadRequest(f"{where}: malformed multipart delimiter line")
        parts.append(text[2:] if text.startswith(b"\r\n") else text[1:])
    if not closed:
        raise BadRequest(f"{where}: the multipart body has no closing --{boundary}-- line")
    return parts


def _headers_and_body(block: bytes, where: str) -> tuple[dict[str, str], bytes]:
    if block.startswith((b"\r\n", b"\n")):  # no headers at all
        return {}, block[2:] if block.startswith(b"\r\n") else block[1:]
    match = re.search(rb"\r?\n\r?\n", block)
    if match is None:
        head, rest = block, b""
    else:
        head, rest = block[: match.start()], block[match.end():]
    headers: dict[str, str] = {}
    for line in re.split(rb"\r?\n", head):
        if not line.strip():
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise BadRequest(f"{where}: malformed header line {line[:80]!r}")
        try:
            headers[name.decode("ascii").strip().lower()] = value.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise BadRequest(f"{where}: header {name[:40]!r} is not valid text") from None
    return headers, rest


def _http_part(block: bytes, mime: dict[str, str], where: str) -> Part:
    content_type = mime.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/http":
        raise BadRequest(f"{where}: each part needs Content-Type: application/http (or "
                         "multipart/mixed for a change set)")
    match = re.match(rb"[ \t]*(\S+)[ \t]+(\S+)(?:[ \t]+HTTP/\d\.\d)?[ \t]*\r?\n", block)
    if match is None:
        raise BadRequest(f"{where}: the part does not start with a request line like "
                         "'POST Things HTTP/1.1'")
    method = match.group(1).decode("ascii", "replace").upper()
    if method not in _METHODS:
        raise BadRequest(f"{where}: method {method} is not supported in a batch")
    headers, body = _headers_and_body(block[match.end():], where)
    # The blank line before the next delimiter belongs to the delimiter; JSON ignores the rest.
    body = body.rstrip(b"\r\n")
    content_id = mime.get("content-id") or headers.get("content-id")
    return Part(method, match.group(2).decode("utf-8", "replace"), headers, body,
                content_id.strip() if content_id else None)


def parse_multipart(body: bytes, content_type: str) -> list[Unit]:
    boundary = _boundary(content_type)
    if not boundary:
        raise BadRequest("a multipart/mixed batch needs a boundary parameter in Content-Type")
    units: list[Unit] = []
    for number, block in enumerate(_split_multipart(body, boundary, "$batch"), start=1):
        where = f"$batch part {number}"
        mime, rest = _headers_and_body(block, where)
        kind = mime.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/mixed":
            inner = _boundary(mime["content-type"])
            if not inner:
                raise BadRequest(f"{where}: the change set needs a boundary parameter")
            parts = []
            for sub, sub_block in enumerate(_split_multipart(rest, inner, where), start=1):
                sub_where = f"{where}, change set part {sub}"
                sub_mime, sub_rest = _headers_and_body(sub_block, sub_where)
                if sub_mime.get("content-type", "").lower().startswith("multipart/"):
                    raise BadRequest(f"{sub_where}: change sets cannot be nested")
                parts.append(_http_part(sub_rest, sub_mime, sub_where))
            if not parts:
                raise BadRequest(f"{where}: the change set is empty")
            units.append(Unit(parts, atomic=True))
        else:
            units.append(Unit([_http_part(rest, mime, where)]))
    if not units:
        raise BadRequest("the $batch request contains no parts")
    return units


# ---------------------------------------------------------------------------------------------
# Parsing: JSON batch (OData 4.01)


def parse_json(body: bytes) -> list[Unit]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the JSON batch is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("requests"), list):
        raise BadRequest("a JSON batch is an object with a \"requests\" array")
    if not data["requests"]:
        raise BadRequest("the JSON batch contains no requests")
    units: list[Unit] = []
    seen: set[str] = set()
    groups_done: set[str] = set()
    for number, item in enumerate(data["requests"]):
        where = f"$batch request {number}"
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be a JSON object")
        ident, method, url = item.get("id"), item.get("method"), item.get("url")
        if not isinstance(ident, str) or not ident:
            raise BadRequest(f"{where} needs an \"id\" string")
        if ident in seen:
            raise BadRequest(f"{where}: the id {ident!r} is used twice")
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise BadRequest(f"{where}: method must be one of get, post, patch, put, delete")
        if not isinstance(url, str) or not url:
            raise BadRequest(f"{where} needs a \"url\"")
        raw_headers = item.get("headers") or {}
        if not isinstance(raw_headers, dict) or not all(
                isinstance(v, str) for v in raw_headers.values()):
            raise BadRequest(f"{where}: headers must be an object of strings")
        headers = {k.lower(): v for k, v in raw_headers.items()}
        body = b""
        if "body" in item and item["body"] is not None:
            value = item["body"]
            if isinstance(value, str) and "json" not in headers.get("content-type", "json"):
                body = value.encode()
            else:
                body = orjson.dumps(value)
                headers.setdefault("content-type", "application/json")
        depends = item.get("dependsOn") or []
        if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
            raise BadRequest(f"{where}: dependsOn must be an array of request ids")
        group = item.get("atomicityGroup")
        if group is not None and (not isinstance(group, str) or not group):
            raise BadRequest(f"{where}: atomicityGroup must be a string")
        current = units[-1] if units else None
        if current is not None and current.group is not None and current.group != group:
            groups_done.add(current.group)
        for dep in depends:
            if dep not in seen and dep not in groups_done:
                raise BadRequest(f"{where}: dependsOn names {dep!r}, which is not an earlier "
                                 "request or atomicity group")
        _check_reference(url, seen, where)
        part = Part(method.upper(), url, headers, body, ident, tuple(depends))
        if group is not None and current is not None and current.group == group:
            current.parts.append(part)
        else:
            if group is not None and group in groups_done:
                raise BadRequest(f"{where}: the requests of atomicity group {group!r} must be "
                                 "adjacent")
            units.append(Unit([part], atomic=group is not None, group=group))
        seen.add(ident)
    return units


def _check_reference(url: str, seen: set[str], where: str) -> None:
    match = _REFERENCE.match(url)
    if match and match.group(1) not in seen:
        raise BadRequest(f"{where}: {url!r} refers to ${match.group(1)}, which is not an "
                         "earlier request")


def _check_multipart_references(units: list[Unit]) -> None:
    seen: set[str] = set()
    for unit in units:
        for part in unit.parts:
            _check_reference(part.url, seen, f"$batch part {part.id or part.url}")
            if part.id is not None:
                if part.id in seen:
                    raise BadRequest(f"$batch: Content-ID {part.id} is used twice")
                seen.add(part.id)


# ---------------------------------------------------------------------------------------------
# A state bound to one transaction (change sets)


class _TxDatabase:
    """The Database interface, answered by one open transaction."""

    def __init__(self, db, conn) -> None:
        self._db = db
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    @contextlib.asynccontextmanager
    async def read(self, primary: bool = False) -> AsyncIterator[Any]:
        yield self._conn

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[Any]:
        yield self._conn


class _CollectingBus:
    """Holds events until the change set commits."""

    def __init__(self) -> None:
        self.events: list[EntityEvent] = []

    def publish(self, events) -> None:
        self.events.extend(events)


class _TxWriter:
    """The observation writer, writing inside the change set's transaction."""

    def __init__(self, writer, conn, bus: _CollectingBus) -> None:
        self._writer = writer
        self._conn = conn
        self._bus = bus

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)

    async def submit(self, record) -> dict[str, Any]:
        rows, events = await self._writer.insert(self._conn, [record])
        self._bus.publish(events)
        return rows[0]

    async def submit_many(self, records) -> list[dict[str, Any]]:
        # Atomic: one bad row fails the part, and so the change set.
        rows, events = await self._writer.insert(self._conn, records)
        self._bus.publish(events)
        return rows

    async def submit_columns(self, batches) -> list[list[int]]:
        # Atomic, as submit_many.
        ids, events = await self._writer.insert_columns(self._conn, batches)
        self._bus.publish(events)
        return ids

    async def settle(self) -> None:
        # New partitions wait for the change set's transaction to end: a part waiting for them
        # inside it would wait for itself. The change set settles after its commit.
        return None


class _TxState:
    def __init__(self, state, conn) -> None:
        self._state = state
        self.bus = _CollectingBus()
        self.db = _TxDatabase(state.db, conn)
        self.writer = _TxWriter(state.writer, conn, self.bus)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._state, name)


class _TxApp:
    def __init__(self, app, conn) -> None:
        self.state = _TxState(app.state, conn)


# ---------------------------------------------------------------------------------------------
# Running the parts


class _Runner:
    def __init__(self, request: Request, batch: Batch) -> None:
        self.request = request
        self.batch = batch
        self.version = request.path_params.get("version", "v1.1")
        self.inherited = [(k.encode(), v.encode()) for k, v in request.headers.items()
                          if k in _INHERITED]

    def _resolve(self, part: Part) -> tuple[str, str, str, Outcome | None]:
        """(version, path, query) of a part's URL, or the failure of a missing reference."""
        url = part.url
        match = _REFERENCE.match(url)
        if match:
            ref = self.batch.outcomes.get(match.group(1))
            location = ref.headers.get("location") if ref is not None and ref.ok else None
            if location is None:
                return "", "", "", _failure(424, f"${match.group(1)} did not create an entity "
                                                 "to refer to")
            url = location + match.group(2)
        split = urlsplit(url)
        if split.scheme or url.startswith("/"):
            found = _VERSION_PATH.search(split.path)
            if found is None:
                return "", "", "", _failure(400, f"{part.url!r} is not a SensorThings URL "
                                                 "(…/v1.1/…)")
            version, path = found.group(1), found.group(2)
        else:
            version, path = self.version, split.path
            found = re.match(r"(v1\.[01])/(.*)$", path)
            if found is not None:  # "v1.1/Things", relative to the server root
                version, path = found.group(1), found.group(2)
        return version, unquote(path), split.query, None

    def _body(self, part: Part) -> bytes:
        """`"@iot.id": "$1"` in a JSON body becomes the id created by part 1."""
        if b'"$' not in part.body:
            return part.body
        try:
            data = orjson.loads(part.body)
        except orjson.JSONDecodeError:
            return part.body  # the endpoint reports the broken JSON

        def walk(value: Any) -> Any:
            if isinstance(value, dict):
                out = {}
                for key, item in value.items():
                    if key in ("@iot.id", "id") and isinstance(item, str) and item[:1] == "$":
                        ref = self.batch.outcomes.get(item[1:])
                        location = ref.headers.get("location", "") if ref and ref.ok else ""
                        found = _LOCATION_ID.search(location)
                        if found is None:
                            raise StaError(f"{item} did not create an entity to refer to", 424)
                        item = int(found.group(1))
                    out[key] = walk(item)
                return out
            if isinstance(value, list):
                return [walk(v) for v in value]
            return value

        return orjson.dumps(walk(data))

    async def run_part(self, part: Part, app) -> Outcome:
        from ortspuls.sta import http as sta_http
        from ortspuls.sta.dataarray import create_observations

        for dep in part.depends_on:
            failed = self._failed_dependency(dep)
            if failed:
                return _failure(424, f"not run: {failed}")
        version, path, query, failure = self._resolve(part)
        if failure is not None:
            return failure
        try:
            body = self._body(part)
        except StaError as exc:
            return _failure(exc.status, exc.message)
        headers = dict(self.inherited)
        for name, value in part.headers.items():
            headers[name.encode()] = value.encode()
        headers[b"content-length"] = str(len(body)).encode()
        outer = self.request.scope
        scope = {
            "type": "http", "asgi": outer.get("asgi", {"version": "3.0"}), "http_version": "1.1",
            "method": part.method, "scheme": outer.get("scheme", "http"),
            "server": outer.get("server"), "client": outer.get("client"),
            "root_path": outer.get("root_path", ""), "path": f"/{version}/{path}",
            "raw_path": f"/{version}/{path}".encode(), "query_string": query.encode(),
            "headers": list(headers.items()), "app": app, "state": {},
            "path_params": {"version": version, "path": path,
                            # Parts run in the batch's tenant view (/t/<slug>/v1.1/$batch).
                            **{k: v for k, v in self.request.path_params.items()
                               if k == "tenant"}},
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        request = Request(scope, receive)
        try:
            if path.strip("/") == "CreateObservations":
                if part.method != "POST":
                    raise StaError("CreateObservations takes POST", 405)
                response = await create_observations(request)
            elif path.strip("/").startswith("$batch"):
                raise BadRequest("a batch cannot contain another $batch")
            else:
                response = await sta_http.resource(request)
            body = getattr(response, "body", None)
            if body is None:
                # A streamed answer ($resultFormat=CSV or GeoJSON): a part is answered whole.
                body = b"".join([chunk if isinstance(chunk, bytes) else chunk.encode()
                                 async for chunk in response.body_iterator])
        except StaError as exc:
            return _failure(exc.status, exc.message)
        except QueryTimeout as exc:  # http.resource answers its own; CreateObservations' check
            response = sta_http.query_timeout_response(request, exc)
        except Exception:
            log.exception("unhandled error in $batch part %s %s", part.method, part.url)
            return _failure(500, "internal error; the server log has the details")
        out_headers = {k: v for k, v in response.headers.items()
                       if k in ("location", "content-type")}
        return Outcome(response.status_code, out_headers, bytes(body), response.media_type)

    def _failed_dependency(self, dep: str) -> str | None:
        outcome = self.batch.outcomes.get(dep)
        if outcome is not None:
            return None if outcome.ok else f"request {dep} failed"
        group = [u for u in self.batch.units if u.group == dep]
        for unit in group:
            for part in unit.parts:
                result = self.batch.outcomes.get(part.id or "")
                if result is None or not result.ok:
                    return f"atomicity group {dep} failed"
        return None

    async def run_unit(self, unit: Unit) -> list[tuple[Part, Outcome]]:
        app = self.request.app
        if not unit.atomic:
            part = unit.parts[0]
            outcome = await self.run_part(part, app)
            if part.id is not None:
                self.batch.outcomes[part.id] = outcome
            return [(part, outcome)]
        state = app.state
        results: list[tuple[Part, Outcome]] = []
        failed: tuple[Part, Outcome] | None = None
        tx_app = None
        try:
            async with state.db.write() as conn:
                tx_app = _TxApp(app, conn)
                for part in unit.parts:
                    outcome = await self.run_part(part, tx_app)
                    results.append((part, outcome))
                    if part.id is not None:
                        self.batch.outcomes[part.id] = outcome
                    if not outcome.ok:
                        failed = (part, outcome)
                        raise _Rollback
        except _Rollback:
            pass
        except Exception as exc:  # the commit itself failed (constraint, lost connection)
            log.warning("$batch change set failed at commit: %s", exc)
            failed = (unit.parts[-1], _failure(409, "the change set conflicts with existing "
                                                    "data and was rolled back"))
        if failed is None:
            await state.writer.settle()
            state.bus.publish(tx_app.state.bus.events)
            return results
        # All or nothing: every part of the set is reported as not done.
        bad_part, bad = failed
        out = []
        for part in unit.parts:
            outcome = bad if part is bad_part else _failure(
                424, f"rolled back: request {bad_part.id or bad_part.url} of the same "
                     "change set failed")
            if part.id is not None:
                self.batch.outcomes[part.id] = outcome
            out.append((part, outcome))
        return out


# ---------------------------------------------------------------------------------------------
# Answers


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _http_block(outcome: Outcome, content_id: str | None) -> bytes:
    mime = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if content_id is not None:
        mime += f"Content-ID: {content_id}\r\n"
    lines = [f"HTTP/1.1 {outcome.status} {_reason(outcome.status)}"]
    for name, value in outcome.headers.items():
        lines.append(f"{name.title()}: {value}")
    if outcome.body and "content-type" not in outcome.headers:
        lines.append(f"Content-Type: {outcome.media_type or 'application/json'}")
    return (mime + "\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode() + outcome.body


def multipart_answer(results: list[tuple[Unit, list[tuple[Part, Outcome]]]]) -> Response:
    boundary = f"batchresponse_{uuid4()}"
    chunks: list[bytes] = []
    for unit, outcomes in results:
        chunks.append(f"--{boundary}\r\n".encode())
        # The cause of a failed change set first, then parts rolled back for it (424).
        failed = sorted(((p, o) for p, o in outcomes if not o.ok), key=lambda x: x[1].status == 424)
        if unit.atomic and failed:
            # OData 4.0: a failed change set is answered by the single failing response.
            part, outcome = failed[0]
            chunks.append(_http_block(outcome, part.id) + b"\r\n")
        elif unit.atomic:
            inner = f"changesetresponse_{uuid4()}"
            chunks.append(f"Content-Type: multipart/mixed; boundary={inner}\r\n\r\n".encode())
            for part, outcome in outcomes:
                chunks.append(f"--{inner}\r\n".encode() + _http_block(outcome, part.id)
                              + b"\r\n")
            chunks.append(f"--{inner}--\r\n".encode())
        else:
            part, outcome = outcomes[0]
            chunks.append(_http_block(outcome, part.id) + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return Response(b"".join(chunks), status_code=200,
                    media_type=f"multipart/mixed; boundary={boundary}")


def json_answer(results: list[tuple[Unit, list[tuple[Part, Outcome]]]]) -> Response:
    responses = []
    for unit, outcomes in results:
        for part, outcome in outcomes:
            item: dict[str, Any] = {"id": part.id, "status": outcome.status}
            if unit.group is not None:
                item["atomicityGroup"] = unit.group
            if outcome.headers:
                item["headers"] = outcome.headers
            if outcome.body:
                if "json" in (outcome.media_type or outcome.headers.get("content-type", "")):
                    item["body"] = orjson.loads(outcome.body)
                else:
                    item["body"] = outcome.body.decode("utf-8", "replace")
            responses.append(item)
    return Response(orjson.dumps({"responses": responses}), status_code=200,
                    media_type="application/json")


# ---------------------------------------------------------------------------------------------
# The endpoint


async def _read_body(request: Request) -> bytes:
    limit = request.app.state.settings.max_body_bytes
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the batch body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def endpoint(request: Request) -> Response:
    """POST /v1.1/$batch."""
    try:
        if request.method != "POST":
            raise MethodNotAllowed("$batch takes POST")
        content_type = request.headers.get("content-type", "")
        kind = content_type.split(";")[0].strip().lower()
        body = await _read_body(request)
        if not body.strip():
            raise BadRequest("the $batch body is empty")
        if kind == "multipart/mixed":
            units = parse_multipart(body, content_type)
            _check_multipart_references(units)
            batch = Batch(units, json=False)
        elif kind == "application/json":
            batch = Batch(parse_json(body), json=True)
        else:
            raise StaError("a $batch body is multipart/mixed (OData 4.0) or application/json "
                           "(OData 4.01 JSON batch)", 415)
    except StaError as exc:
        return exc.response()
    runner = _Runner(request, batch)
    results = [(unit, await runner.run_unit(unit)) for unit in batch.units]
    return json_answer(results) if batch.json else multipart_answer(results)
