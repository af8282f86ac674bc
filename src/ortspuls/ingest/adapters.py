"""Network-server messages -> one normalized uplink record.

The Things Stack v3 sends snake_case JSON (`end_device_ids.dev_eui` in upper case, `frequency`
as a string, empty fields left out, so a missing `f_port` means 0); ChirpStack v4 sends the
protobuf JSON mapping in camelCase (`deviceInfo.devEui` in lower case, `frequency` as a number).
Both carry the payload as base64. The adapters accept both spellings of what varies, normalize the
DevEUI to upper case, and compute the key that makes a replayed uplink recognisable.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ortspuls.sta.errors import BadRequest

_HEX_EUI = re.compile(r"^[0-9A-Fa-f]{16}$")


@dataclass(slots=True)
class Uplink:
    """One uplink, whatever network server or poller it came from."""

    network: str  # ttn | chirpstack | http
    dev_eui: str  # upper-case hex, or "<application>:<device id>" without a DevEUI
    received_at: datetime
    dedup_key: str | None
    f_port: int = 0
    f_cnt: int | None = None
    payload: bytes = b""
    decoded: dict | None = None  # decoded by the network server
    normalized: Any = None
    device_name: str | None = None
    ids: dict[str, Any] = field(default_factory=dict)  # application/device ids at the NS
    brand: str | None = None  # Device Repository vendor (TTS version_ids.brand_id)
    model: str | None = None
    firmware: str | None = None
    profile_name: str | None = None  # ChirpStack device profile
    tags: dict[str, Any] = field(default_factory=dict)
    simulated: bool = False
    rssi: float | None = None
    snr: float | None = None
    gateway: str | None = None
    gateways: int = 0
    frequency: int | None = None
    spreading_factor: int | None = None
    battery_percent: float | None = None
    location: dict | None = None  # {latitude, longitude, altitude?, source}
    # Filled while processing.
    time_override: datetime | None = None


@dataclass(slots=True)
class DeviceEvent:
    """A non-uplink event that updates a device's metadata (ChirpStack status/location/join)."""

    network: str
    kind: str  # status | location | join
    dev_eui: str
    at: datetime
    device_name: str | None = None
    battery_percent: float | None = None
    margin: int | None = None
    external_power: bool | None = None
    location: dict | None = None
    dev_addr: str | None = None


def _obj(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be a JSON object")
    return value


def _time(value: Any, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{where} must be an RFC 3339 time string")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRequest(f"{where}: {value!r} is not an RFC 3339 time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _int(value: Any, where: str, default: int | None = None) -> int | None:
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        raise BadRequest(f"{where} must be a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise BadRequest(f"{where} must be an integer, got {value!r}")


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _base64(value: Any, where: str) -> bytes:
    if value in (None, ""):
        return b""
    if not isinstance(value, str):
        raise BadRequest(f"{where} must be a base64 string")
    try:
        return binascii.a2b_base64(value.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise BadRequest(f"{where} is not valid base64") from None


def _eui(value: Any, where: str) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _HEX_EUI.match(value.strip()):
        raise BadRequest(f"{where} must be 16 hexadecimal digits, got {value!r}")
    return value.strip().upper()


def _location(value: Any) -> dict | None:
    if not isinstance(value, dict):
        return None
    lat, lon = _float(value.get("latitude")), _float(value.get("longitude"))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    if lat == 0 and lon == 0:
        return None  # "not set" on many gateways
    loc = {"latitude": lat, "longitude": lon}
    alt = _float(value.get("altitude"))
    if alt is not None:
        loc["altitude"] = alt
    return loc


def _tags(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str | int | float | bool)}


# ---------------------------------------------------------------------------------------------
# The Things Stack v3


def tts_message_kind(message: dict) -> str:
    """Which message a TTS webhook or MQTT payload is (only uplinks are stored)."""
    for key in ("uplink_message", "join_accept", "downlink_ack", "downlink_nack",
                "downlink_sent", "downlink_failed", "downlink_queued",
                "downlink_queue_invalidated", "location_solved", "service_data",
                "uplink_normalized"):
        if key in message:
            return key
    return "unknown"


def tts_uplink(message: dict) -> Uplink:
    ids = _obj(message.get("end_device_ids"), "end_device_ids")
    up = _obj(message.get("uplink_message"), "uplink_message")
    app = _obj(ids.get("application_ids"), "end_device_ids.application_ids")
    device_id = ids.get("device_id")
    application_id = app.get("application_id")
    eui = _eui(ids.get("dev_eui"), "end_device_ids.dev_eui")
    if eui is None:
        if not isinstance(device_id, str) or not device_id:
            raise BadRequest("the uplink names no device: end_device_ids.dev_eui or "
                             "end_device_ids.device_id is required")
        eui = f"{application_id or 'app'}:{device_id}"
    received = (_time(up.get("received_at"), "uplink_message.received_at")
                or _time(message.get("received_at"), "received_at")
                or datetime.now(UTC))
    f_cnt = _int(up.get("f_cnt"), "uplink_message.f_cnt", 0)
    correlation = message.get("correlation_ids") or up.get("correlation_ids") or []
    as_up = next((c for c in correlation if isinstance(c, str) and c.startswith("as:up:")), None)
    key = f"tts:{as_up}" if as_up else f"tts:{eui}:{f_cnt}:{received.isoformat()}"
    version = _obj(up.get("version_ids"), "uplink_message.version_ids")
    settings = _obj(up.get("settings"), "uplink_message.settings")
    lora = _obj(_obj(settings.get("data_rate"), "settings.data_rate").get("lora"),
                "settings.data_rate.lora")
    decoded = up.get("decoded_payload")
    uplink = Uplink(
        network="ttn",
        dev_eui=eui,
        received_at=received,
        dedup_key=key[:200],
        f_port=_int(up.get("f_port"), "uplink_message.f_port", 0) or 0,
        f_cnt=f_cnt,
        payload=_base64(up.get("frm_payload"), "uplink_message.frm_payload"),
        decoded=decoded if isinstance(decoded, dict) else None,
        normalized=up.get("normalized_payload"),
        device_name=device_id if isinstance(device_id, str) else None,
        ids={k: v for k, v in (("device_id", device_id), ("application_id", application_id),
                               ("dev_addr", ids.get("dev_addr")),
                               ("join_eui", ids.get("join_eui"))) if v},
        brand=version.get("brand_id") or None,
        model=version.get("model_id") or None,
        firmware=version.get("firmware_version") or None,
        tags=_tags(up.get("attributes") or message.get("attributes")),
        simulated=message.get("simulated") is True,
        frequency=_int(settings.get("frequency"), "uplink_message.settings.frequency"),
        spreading_factor=_int(lora.get("spreading_factor"), "spreading_factor"),
    )
    best = None
    gateways = up.get("rx_metadata") or []
    if isinstance(gateways, list):
        for rx in gateways:
            if not isinstance(rx, dict):
                continue
            uplink.gateways += 1
            rssi = _float(rx.get("rssi", rx.get("channel_rssi")))
            if best is None or (rssi is not None and (best[0] is None or rssi > best[0])):
                best = (rssi, rx)
    if best is not None:
        rx = best[1]
        uplink.rssi = best[0]
        uplink.snr = _float(rx.get("snr"))
        gw = _obj(rx.get("gateway_ids"), "rx_metadata.gateway_ids")
        uplink.gateway = gw.get("gateway_id") or gw.get("eui")
    locations = _obj(up.get("locations"), "uplink_message.locations")
    device_loc = _location(locations.get("user")) or next(
        (_location(v) for v in locations.values() if _location(v)), None)
    if device_loc is not None:
        uplink.location = {**device_loc, "source": "device"}
    elif best is not None and _location(best[1].get("location")):
        uplink.location = {**_location(best[1].get("location")), "source": "gateway",
                           "gateway": uplink.gateway}
    battery = _obj(message.get("last_battery_percentage") or up.get("last_battery_percentage"),
                   "last_battery_percentage")
    uplink.battery_percent = _float(battery.get("value"))
    return uplink


# ---------------------------------------------------------------------------------------------
# ChirpStack v4


def _cs_device(event: dict) -> tuple[str, dict]:
    info = _obj(event.get("deviceInfo"), "deviceInfo")
    eui = _eui(info.get("devEui"), "deviceInfo.devEui")
    if eui is None:
        raise BadRequest("the event names no device: deviceInfo.devEui is required")
    return eui, info


def chirpstack_uplink(event: dict) -> Uplink:
    eui, info = _cs_device(event)
    rx_list = event.get("rxInfo") or []
    received = _time(event.get("time"), "time")
    if received is None and isinstance(rx_list, list):
        for rx in rx_list:
            if isinstance(rx, dict):
                received = _time(rx.get("nsTime"), "rxInfo.nsTime") or _time(
                    rx.get("gwTime"), "rxInfo.gwTime")
                if received:
                    break
    received = received or datetime.now(UTC)
    f_cnt = _int(event.get("fCnt"), "fCnt", 0)
    dedup = event.get("deduplicationId")
    key = f"cs:{dedup}" if isinstance(dedup, str) and dedup else (
        f"cs:{eui}:{f_cnt}:{received.isoformat()}")
    tx = _obj(event.get("txInfo"), "txInfo")
    lora = _obj(_obj(tx.get("modulation"), "txInfo.modulation").get("lora"),
                "txInfo.modulation.lora")
    decoded = event.get("object")
    uplink = Uplink(
        network="chirpstack",
        dev_eui=eui,
        received_at=received,
        dedup_key=key[:200],
        f_port=_int(event.get("fPort"), "fPort", 0) or 0,
        f_cnt=f_cnt,
        payload=_base64(event.get("data"), "data"),
        decoded=decoded if isinstance(decoded, dict) else None,
        device_name=info.get("deviceName") or None,
        ids={k: v for k, v in (("application_id", info.get("applicationId")),
                               ("application_name", info.get("applicationName")),
                               ("tenant_id", info.get("tenantId")),
                               ("dev_addr", event.get("devAddr"))) if v},
        profile_name=info.get("deviceProfileName") or None,
        tags=_tags(info.get("tags")),
        frequency=_int(tx.get("frequency"), "txInfo.frequency"),
        spreading_factor=_int(lora.get("spreadingFactor"), "spreadingFactor"),
    )
    best = None
    if isinstance(rx_list, list):
        for rx in rx_list:
            if not isinstance(rx, dict):
                continue
            uplink.gateways += 1
            rssi = _float(rx.get("rssi"))
            if best is None or (rssi is not None and (best[0] is None or rssi > best[0])):
                best = (rssi, rx)
    if best is not None:
        uplink.rssi = best[0]
        uplink.snr = _float(best[1].get("snr"))
        uplink.gateway = best[1].get("gatewayId") or None
        loc = _location(best[1].get("location"))
        if loc is not None:
            uplink.location = {**loc, "source": "gateway", "gateway": uplink.gateway}
    return uplink


def chirpstack_device_event(kind: str, event: dict) -> DeviceEvent:
    eui, info = _cs_device(event)
    at = _time(event.get("time"), "time") or datetime.now(UTC)
    out = DeviceEvent("chirpstack", kind, eui, at, device_name=info.get("deviceName") or None)
    if kind == "status":
        out.margin = _int(event.get("margin"), "margin")
        out.external_power = bool(event.get("externalPowerSource"))
        if not event.get("batteryLevelUnavailable"):
            out.battery_percent = _float(event.get("batteryLevel"))
    elif kind == "location":
        out.location = _location(event.get("location"))
        if out.location is None:
            raise BadRequest("location event without a valid location.latitude/longitude")
        out.location["source"] = "network"
    elif kind == "join":
        out.dev_addr = event.get("devAddr") or None
    return out
