"""Errors of the SensorThings API, each with the HTTP status and a message a user can act on."""

from __future__ import annotations

from typing import ClassVar

import orjson
from starlette.responses import Response


class StaError(Exception):
    status = 400
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def response(self) -> Response:
        return error_response(self.status, self.message, headers=self.headers)


class BadRequest(StaError):
    status = 400


class Unauthorized(StaError):
    status = 401
    # RFC 9110: a 401 names the schemes that are accepted.
    headers: ClassVar[dict[str, str] | None] = {
        "WWW-Authenticate": 'Bearer realm="ortspuls", Basic realm="ortspuls"'}


class Forbidden(StaError):
    status = 403


class NotFound(StaError):
    status = 404


class MethodNotAllowed(StaError):
    status = 405


class Conflict(StaError):
    status = 409


class PayloadTooLarge(StaError):
    status = 413


class Unprocessable(StaError):
    status = 422


_TYPES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
          415: "Unsupported Media Type", 422: "Unprocessable Entity", 500: "Internal Server Error",
          503: "Service Unavailable"}


def error_body(status: int, message: str) -> bytes:
    return orjson.dumps({"code": status, "type": "error", "error": _TYPES.get(status, "Error"),
                         "message": message})


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(status, message), status_code=status,
                    media_type="application/json", headers=headers)
