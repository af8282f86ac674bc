"""Conversion of SensorThings JSON values to stored values and back.

Times are ISO 8601 strings in the API and aware UTC datetimes inside; intervals are
`start/end`; results are split into typed columns so numbers compare as numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import shapely
from shapely.geometry import shape

from ortspuls.sta.errors import BadRequest

GEOJSON_ENCODINGS = frozenset({"application/geo+json", "application/vnd.geo+json"})

# Observation.result storage: result_type says which column holds the value.
RESULT_NULL, RESULT_FLOAT, RESULT_INT, RESULT_BOOL, RESULT_STRING, RESULT_JSON = range(6)
# Beyond this an integer result is not exact as a float: its digits are kept as text too.
MAX_EXACT_INT = 2**53


def parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be an ISO 8601 time string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRequest(
            f"{name}: {value!r} is not an ISO 8601 time (example: 2024-05-01T12:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_interval(value: Any, name: str) -> tuple[datetime, datetime]:
    if not isinstance(value, str) or "/" not in value:
        raise BadRequest(f"{name} must be an ISO 8601 interval 'start/end', got {value!r}")
    start_text, _, end_text = value.partition("/")
    start, end = parse_time(start_text, name), parse_time(end_text, name)
    if end < start:
        raise BadRequest(f"{name}: the interval {value!r} ends before it starts")
    return start, end


def parse_time_or_interval(value: Any, name: str) -> tuple[datetime, datetime | None]:
    if isinstance(value, str) and "/" in value:
        return parse_interval(value, name)
    return parse_time(value, name), None


def format_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    micro = value.microsecond
    if micro == 0:
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if micro % 1000 == 0:
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{micro // 1000:03d}Z"
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_interval(start: datetime | None, end: datetime | None) -> str | None:
    if start is None:
        return None
    if end is None:
        return format_time(start)
    return f"{format_time(start)}/{format_time(end)}"


def encode_result(value: Any) -> tuple[int, float | None, str | None, Any]:
    """JSON result -> (result_type, result_number, result_string, result_json)."""
    if value is None:
        return RESULT_NULL, None, None, None
    if isinstance(value, bool):
        return RESULT_BOOL, 1.0 if value else 0.0, None, None
    if isinstance(value, int):
        if -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
            return RESULT_INT, float(value), None, None
        # Beyond 2**53 a float is not exact: the digits are kept as text, the float still
        # serves filtering and ordering.
        return RESULT_INT, float(value), str(value), None
    if isinstance(value, float):
        return RESULT_FLOAT, value, None, None
    if isinstance(value, str):
        return RESULT_STRING, None, value, None
    return RESULT_JSON, None, None, value


def decode_result(kind: int, number: float | None, string: str | None, other: Any) -> Any:
    if kind == RESULT_FLOAT:
        return number
    if kind == RESULT_INT:
        return int(string) if string is not None else int(number)
    if kind == RESULT_STRING:
        return string
    if kind == RESULT_BOOL:
        return bool(number)
    if kind == RESULT_JSON:
        return other
    return None


def contains_nul(value: Any) -> bool:
    """True if any string (or object key) in a JSON value contains the NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(contains_nul(v) for v in value)
    return False


def geometry_of(value: Any, encoding: str | None, name: str):
    """The shapely geometry of a GeoJSON location/feature, or None for other encodings."""
    if encoding is not None and encoding not in GEOJSON_ENCODINGS:
        return None
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be a GeoJSON object with encodingType {encoding!r}")
    geo = value
    if geo.get("type") == "Feature":
        geo = geo.get("geometry")
        if not isinstance(geo, dict):
            raise BadRequest(f"{name}: the GeoJSON Feature has no geometry")
    try:
        geometry = shape(geo)
    except Exception as exc:  # shapely raises several types for broken GeoJSON
        raise BadRequest(f"{name} is not valid GeoJSON: {exc}") from None
    if geometry.is_empty:
        raise BadRequest(f"{name} is an empty geometry")
    return geometry


def geometry_to_geojson(geometry) -> dict | None:
    if geometry is None:
        return None
    return shapely.geometry.mapping(geometry)
