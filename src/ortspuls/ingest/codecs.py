"""Payload codecs: JavaScript payload formatters run in an embedded QuickJS engine.

Codecs follow the TTN Device Repository convention: `decodeUplink(input)` receives
`{bytes, fPort, recvTime, variables}` and returns `{data, warnings, errors}`; an optional
`normalizeUplink({data})` maps the result to the normalized payload schema. The legacy
signatures `Decoder(bytes, port)` (TTN v2) and `Decode(fPort, bytes, variables)` (ChirpStack v3)
are accepted too. QuickJS (via python-quickjs-ng) understands ES2020, so Device Repository codecs
written with `let`, arrow functions, template literals or destructuring run as they are.

Each codec gets its own JavaScript context, compiled once. Every call runs under a time limit
(100 ms by default) and a memory limit; a codec that breaks a limit gets a fresh context, and one
that breaks limits repeatedly is suspended for a while so that it cannot stall the server. A call
costs a few microseconds: the input and output cross the boundary as one JSON string each.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import quickjs

log = logging.getLogger(__name__)

# Runs once per context, before the codec: harmless stand-ins some vendor codecs expect.
_PRELUDE = """
var console = {log: function () {}, warn: function () {}, error: function () {},
               info: function () {}, debug: function () {}};
"""

# Runs once per context, after the codec. Input and output cross as JSON strings.
_WRAPPER = """
(function (request) {
  var input = JSON.parse(request);
  input.recvTime = new Date(input.recvTime);
  var out;
  if (typeof decodeUplink === 'function') {
    out = decodeUplink(input);
  } else if (typeof Decoder === 'function') {
    out = {data: Decoder(input.bytes, input.fPort)};
  } else if (typeof Decode === 'function') {
    out = {data: Decode(input.fPort, input.bytes, input.variables)};
  } else {
    return JSON.stringify({errors: ['the codec defines no decodeUplink(input) function']});
  }
  if (out === null || typeof out !== 'object') {
    return JSON.stringify({errors: ['decodeUplink returned ' + typeof out + ', not an object']});
  }
  var result = {data: out.data, warnings: out.warnings, errors: out.errors};
  if (typeof normalizeUplink === 'function' && !(out.errors && out.errors.length)) {
    try {
      var norm = normalizeUplink({data: out.data});
      if (norm && !(norm.errors && norm.errors.length)) {
        result.normalized = norm.data;
      } else if (norm && norm.errors) {
        result.normalizeErrors = norm.errors;
      }
    } catch (e) {
      result.normalizeErrors = [String(e)];
    }
  }
  return JSON.stringify(result);
})
"""


class CodecError(Exception):
    """The codec could not decode this payload; the message says why (shown to the clerk)."""


@dataclass(frozen=True, slots=True)
class Codec:
    id: int
    name: str
    script: str
    digest: str

    @classmethod
    def of(cls, id: int, name: str, script: str) -> Codec:
        return cls(id, name, script, script_digest(script))


def script_digest(script: str) -> str:
    return hashlib.sha256(script.encode()).hexdigest()


@dataclass(slots=True)
class Decoded:
    data: dict[str, Any]
    normalized: Any = None
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Context:
    ctx: Any
    call: Any
    strikes: int = 0
    suspended_until: float = 0.0


class CodecRunner:
    """Runs codecs with limits; one compiled context per codec version."""

    def __init__(self, time_limit_ms: float = 100.0, memory_limit_mb: float = 16.0,
                 suspend_after: int = 3, suspend_seconds: float = 60.0) -> None:
        self.time_limit = time_limit_ms / 1000
        self.memory_limit = int(memory_limit_mb * 1024 * 1024)
        self.suspend_after = suspend_after
        self.suspend_seconds = suspend_seconds
        self._contexts: dict[tuple[int, str], _Context] = {}
        self._strikes: dict[tuple[int, str], tuple[int, float]] = {}
        # Decode cost, for benchmarks and the status page.
        self.calls = 0
        self.seconds = 0.0

    def _context(self, codec: Codec) -> _Context:
        key = (codec.id, codec.digest)
        found = self._contexts.get(key)
        if found is not None:
            return found
        _, until = self._strikes.get(key, (0, 0.0))
        if until > time.monotonic():
            raise CodecError(f"Decoder ausgesetzt nach wiederholten Grenzüberschreitungen "
                             f"(codec suspended after repeated limit breaches) until "
                             f"{int(until - time.monotonic())} s from now")
        ctx = quickjs.Context()
        ctx.set_time_limit(self.time_limit)
        ctx.set_max_stack_size(512 * 1024)
        try:
            ctx.eval(_PRELUDE)
            ctx.eval(codec.script)
            call = ctx.eval(_WRAPPER)
        except quickjs.JSException as exc:
            self._strike(key, exc)
            raise CodecError(f"Decoder kann nicht geladen werden (codec does not load): "
                             f"{_first_line(exc)}") from None
        # The limit covers what one call may allocate on top of the compiled codec.
        ctx.gc()
        ctx.set_memory_limit(ctx.memory()["memory_used_size"] + self.memory_limit)
        # Older versions of this codec are not needed any more.
        for old in [k for k in self._contexts if k[0] == codec.id]:
            del self._contexts[old]
        found = _Context(ctx, call)
        self._contexts[key] = found
        return found

    def _strike(self, key: tuple[int, str], exc: BaseException) -> None:
        """A limit breach: drop the context; suspend the codec after repeated breaches."""
        self._contexts.pop(key, None)
        strikes, _ = self._strikes.get(key, (0, 0.0))
        strikes += 1
        until = time.monotonic() + self.suspend_seconds if strikes >= self.suspend_after else 0.0
        if until:
            log.warning("codec %s suspended for %.0f s after %d limit breaches", key[0],
                        self.suspend_seconds, strikes)
            strikes = 0
        self._strikes[key] = (strikes, until)

    def decode(self, codec: Codec, payload: bytes, f_port: int, received_at: datetime,
               variables: dict[str, Any] | None = None) -> Decoded:
        """Decode one payload; raises CodecError with a message for the device status."""
        request = orjson.dumps({
            "bytes": list(payload), "fPort": f_port,
            "recvTime": received_at.isoformat().replace("+00:00", "Z"),
            "variables": variables or {},
        }).decode()
        context = self._context(codec)
        key = (codec.id, codec.digest)
        started = time.perf_counter()
        try:
            raw = context.call(request)
        except quickjs.StackOverflow:
            self._strike(key, RecursionError())
            raise CodecError("Decoder-Fehler: Stapelüberlauf (codec error: stack overflow)"
                             ) from None
        except quickjs.JSException as exc:
            text = _first_line(exc)
            if "interrupted" in text:
                self._strike(key, exc)
                raise CodecError(f"Zeitlimit überschritten (codec exceeded its time limit of "
                                 f"{self.time_limit * 1000:.0f} ms)") from None
            # QuickJS throws null when even the "out of memory" error cannot be allocated.
            if "out of memory" in text or text == "null":
                self._strike(key, exc)
                raise CodecError(f"Speicherlimit überschritten (codec exceeded its memory limit "
                                 f"of {self.memory_limit // (1024 * 1024)} MiB)") from None
            raise CodecError(f"Decoder-Fehler (codec error): {text}") from None
        finally:
            self.calls += 1
            self.seconds += time.perf_counter() - started
        self._strikes.pop(key, None)
        try:
            result = orjson.loads(raw) if isinstance(raw, str) else None
        except orjson.JSONDecodeError:
            result = None
        if not isinstance(result, dict):
            raise CodecError("Decoder-Fehler: Ergebnis ist kein Objekt (codec error: the result "
                             "is not an object)")
        errors = result.get("errors")
        if errors:
            text = "; ".join(str(e) for e in errors) if isinstance(errors, list) else str(errors)
            raise CodecError(f"Decoder meldet Fehler (codec reported errors): {text[:500]}")
        data = result.get("data")
        if not isinstance(data, dict):
            raise CodecError("Decoder-Fehler: 'data' fehlt oder ist kein Objekt (codec error: "
                             "'data' is missing or not an object)")
        warnings = [str(w) for w in (result.get("warnings") or []) if w is not None]
        if result.get("normalizeErrors"):
            warnings.append("normalizeUplink: " + "; ".join(
                str(e) for e in result["normalizeErrors"]))
        return Decoded(data, result.get("normalized"), warnings)

    def check(self, codec: Codec) -> None:
        """Compile a codec now (for `codecs add`/`import`); raises CodecError."""
        self._context(codec)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
