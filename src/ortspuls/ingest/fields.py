"""Decoded payloads -> flat fields: `{"air": {"temperature": 21.5}}` becomes `air.temperature`.

Numbers, booleans and numeric strings (some codecs return `"21.50"` from `toFixed`) become
fields; other strings, nulls and arrays are left out. Objects of the form
`{"value": 3.1, "unit": "V"}` (Decentlab) become one field carrying the codec's unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ortspuls.sta.values import parse_time

# Keys that describe the message, not a measurement.
META_KEYS = frozenset({"time", "timestamp", "ts", "date", "datetime", "utc", "received_at"})
# Keys that name the device or its software, at any level ("1.2" is a version, not a value).
IDENTITY_KEYS = frozenset({"firmware", "firmware_version", "fw", "fw_version", "version",
                           "hardware_version", "hw_version", "sw_version", "software_version",
                           "serial", "serial_number", "sn", "id", "device_id", "deveui",
                           "dev_eui", "model", "type", "protocol_version"})
MAX_FIELDS = 200
MAX_DEPTH = 6


@dataclass(slots=True)
class FieldValue:
    value: float | int | bool
    unit_hint: str | None = None


def _scalar(value: Any) -> float | int | bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 40:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def flatten(data: Any) -> dict[str, FieldValue]:
    """All numeric and boolean leaves of a decoded object, by dotted key."""
    out: dict[str, FieldValue] = {}
    if isinstance(data, dict):
        _walk(data, "", out, 0)
    return out


def _walk(obj: dict, prefix: str, out: dict[str, FieldValue], depth: int) -> None:
    for key, value in obj.items():
        if len(out) >= MAX_FIELDS:
            return
        if not isinstance(key, str) or not key or (not prefix and key.lower() in META_KEYS):
            continue
        if key.lower() in IDENTITY_KEYS:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if "value" in value and ("unit" in value or "displayName" in value):
                scalar = _scalar(value.get("value"))
                if scalar is not None:
                    unit = value.get("unit")
                    out[name] = FieldValue(scalar, unit if isinstance(unit, str) else None)
                continue
            if depth < MAX_DEPTH:
                _walk(value, name + ".", out, depth + 1)
            continue
        scalar = _scalar(value)
        if scalar is not None:
            out[name] = FieldValue(scalar)


def normalized_groups(normalized: Any) -> list[tuple[datetime | None, dict[str, FieldValue]]]:
    """A normalized payload (one object or a list of them, each with an optional `time`)."""
    items = normalized if isinstance(normalized, list) else [normalized]
    groups = []
    for item in items:
        if not isinstance(item, dict):
            continue
        when = None
        if isinstance(item.get("time"), str):
            try:
                when = parse_time(item["time"], "time")
            except Exception:
                when = None
        fields = flatten(item)
        if fields:
            groups.append((when, fields))
    return groups
