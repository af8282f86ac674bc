"""The demo devices' payloads: raw bytes as the simulated devices send them, and the values
their codecs (`repository/vendor/ortspuls-demo/*.js`) and the demo's mapping rules make of them.

`encode` builds one uplink's bytes from the model's integers. `decoded` is the same arithmetic
as the JavaScript codecs, vectorised, so the seeded history holds exactly the values (and JSON
number types) live uplinks produce; the tests run the real codecs to check this.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ortspuls.demo.town import KINDS, Device
from ortspuls.sta.values import RESULT_BOOL, RESULT_FLOAT, RESULT_INT

MEASUREMENT_PORT = 1
STATUS_PORT = 2

# Per kind: (field, struct code, divisor); the payload is big-endian in this order.
LAYOUTS: dict[str, tuple[tuple[str, str, int], ...]] = {
    "bike": (("count", "H", 1),),
    "visitors": (("count", "H", 1),),
    "carpark": (("free", "H", 1),),
    "space": (("occupied", "B", 0),),  # divisor 0: a flag (bit 0)
    "gauge_ultrasonic": (("distance", "H", 1),),
    "gauge_pressure": (("water_level", "H", 10),),
    "soil": (("soil_moisture", "H", 10),),
    "tension": (("water_tension", "H", 10),),
    "air": (("pm10", "H", 10), ("pm2_5", "H", 10), ("no2", "H", 10)),
    "air_pm": (("pm10", "H", 10), ("pm2_5", "H", 10)),
    "weather_full": (("air_temperature", "h", 100), ("humidity", "B", 2),
                     ("pressure", "H", 10), ("wind_speed", "H", 10),
                     ("wind_direction", "H", 1), ("rain", "B", 5)),
    "weather_small": (("air_temperature", "h", 100), ("humidity", "B", 2),
                      ("wind_speed", "H", 10), ("rain", "B", 5)),
    "noise": (("laeq", "H", 10),),
}
for _kind, _layout in LAYOUTS.items():
    assert tuple(f for f, _, _ in _layout) == tuple(sorted(KINDS[_kind].fields, key=[
        f for f, _, _ in _layout].index))
_LIMITS = {"H": (0, 65535), "h": (-32768, 32767), "B": (0, 255)}


def encode(kind: str, raw: dict[str, int]) -> bytes:
    """The fPort 1 payload of one measurement."""
    layout = LAYOUTS[kind]
    values = []
    for field, code, _ in layout:
        lo, hi = _LIMITS[code]
        values.append(min(max(int(raw[field]), lo), hi))
    return struct.pack(">" + "".join(code for _, code, _ in layout), *values)


def encode_status(battery_mv: int) -> bytes:
    """The fPort 2 status payload: battery voltage in millivolts."""
    return struct.pack(">H", min(max(int(battery_mv), 0), 65535))


@dataclass(slots=True)
class Column:
    """Decoded (and mapped) values of one field: numbers and their SensorThings result type."""

    numbers: np.ndarray  # float64
    types: np.ndarray  # int8: RESULT_INT, RESULT_FLOAT or RESULT_BOOL


def _number_column(values: np.ndarray, force_float: bool = False) -> Column:
    values = values.astype(np.float64)
    if force_float:
        types = np.full(values.shape, RESULT_FLOAT, dtype=np.int8)
    else:
        # JSON has one number type: a whole number decodes as an integer.
        types = np.where(values == np.floor(values), RESULT_INT, RESULT_FLOAT).astype(np.int8)
    return Column(values, types)


def decoded(kind: str, raw: dict[str, np.ndarray]) -> dict[str, Column]:
    """What the kind's codec makes of the raw values (clamped as the payload carries them)."""
    out = {}
    for field, code, divisor in LAYOUTS[kind]:
        lo, hi = _LIMITS[code]
        value = np.clip(np.asarray(raw[field], dtype=np.int64), lo, hi)
        if divisor == 0:
            flag = (value & 1).astype(np.float64)
            out[field] = Column(flag, np.full(flag.shape, RESULT_BOOL, dtype=np.int8))
        elif divisor == 1:
            out[field] = _number_column(value)
        else:
            out[field] = _number_column(value / divisor)
    return out


def decoded_status(battery_mv: np.ndarray) -> dict[str, Column]:
    return {"battery_voltage": _number_column(
        np.clip(np.asarray(battery_mv, dtype=np.int64), 0, 65535) / 1000)}


def mapped(device: Device, columns: dict[str, Column]) -> dict[str, Column]:
    """The demo's mapping rules (`town.PROFILE_RULES`) applied as the ingest pipeline does:
    the ultrasonic gauge's distance becomes a water level, everything else keeps its value."""
    if device.kind == "gauge_ultrasonic":
        distance = columns["distance"].numbers
        level = (device.param("mounting_height") - distance) / 10
        return {"water_level": _number_column(level, force_float=True)}
    return dict(columns)


def device_variables(device: Device) -> dict[str, int]:
    """Device variables the mapping rules use (`ortspuls devices set --var`)."""
    if device.kind == "gauge_ultrasonic":
        return {"mounting_height": int(device.param("mounting_height"))}
    return {}
