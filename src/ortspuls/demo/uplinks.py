"""Network-server messages of the simulated devices: The Things Stack v3 webhook uplinks and,
for the devices behind the Stadtwerke's ChirpStack, ChirpStack v4 `up` events.

Both carry the raw payload as base64 (no decoded object), so Ortspuls decodes them with the
demo's codecs. Identifiers, frame counters and radio values are derived from device and time,
so a message sent twice is recognised as a replay.
"""

from __future__ import annotations

import base64
import hashlib
import math
import uuid
from datetime import UTC, datetime
from typing import Any

from ortspuls.demo.town import (
    APPLICATION,
    CHIRPSTACK_TENANT,
    GATEWAYS,
    VENDOR,
    Device,
    to_lat_lon,
)

FCNT_EPOCH = 1_704_067_200  # 2024-01-01: frame counters count cadence steps from here
_FREQUENCIES = (868_100_000, 868_300_000, 868_500_000, 867_100_000, 867_300_000,
                867_500_000, 867_700_000, 867_900_000)


def _digest(*parts: Any) -> bytes:
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).digest()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def f_cnt(device: Device, t: int, port: int) -> int:
    step = device.spec.cadence_s if port == 1 else 86_400
    return max(int(t) - FCNT_EPOCH, 0) // step + (0 if port == 1 else 10_000_000)


def radio(device: Device, t: int) -> dict[str, Any]:
    """Signal of one uplink at the device's gateway: from the distance, with some fading."""
    ge, gn, _alt = GATEWAYS[device.gateway]
    distance = max(math.hypot(device.east_m - ge, device.north_m - gn), 15.0)
    fade = _digest("fade", device.dev_eui, t)
    rssi = -52.0 - 24.0 * math.log10(distance / 10) - fade[0] % 9
    snr = round(11.0 - distance / 140 - (fade[1] % 40) / 10, 1)
    sf = 7 if rssi > -100 else 8 if rssi > -110 else 9
    return {"rssi": round(rssi), "snr": snr, "sf": sf,
            "frequency": _FREQUENCIES[fade[2] % len(_FREQUENCIES)]}


def tts_uplink(device: Device, t: int, port: int, payload: bytes) -> dict[str, Any]:
    """A The Things Stack v3 webhook message (`uplink_message`) with the raw payload."""
    lat, lon = device.lat_lon
    r = radio(device, t)
    digest = _digest("tts", device.dev_eui, t, port)
    ulid = "01" + base64.b32encode(digest).decode()[:24]
    received = _iso(t)
    gw_lat, gw_lon = to_lat_lon(*GATEWAYS[device.gateway][:2])
    return {
        "end_device_ids": {
            "device_id": device.key,
            "application_ids": {"application_id": APPLICATION},
            "dev_eui": device.dev_eui,
            "join_eui": "70B3D57ED0000000",
            "dev_addr": f"260B{device.index:04X}",
        },
        "correlation_ids": [f"as:up:{ulid}", f"gs:uplink:{ulid}"],
        "received_at": received,
        "uplink_message": {
            "session_key_id": base64.b64encode(digest[:8]).decode(),
            "f_port": port,
            "f_cnt": f_cnt(device, t, port),
            "frm_payload": base64.b64encode(payload).decode(),
            "rx_metadata": [{
                "gateway_ids": {"gateway_id": device.gateway},
                "time": received,
                "rssi": r["rssi"],
                "channel_rssi": r["rssi"],
                "snr": r["snr"],
                "location": {"latitude": gw_lat, "longitude": gw_lon,
                             "altitude": GATEWAYS[device.gateway][2], "source": "SOURCE_REGISTRY"},
                "received_at": received,
            }],
            "settings": {
                "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": r["sf"],
                                       "coding_rate": "4/5"}},
                "frequency": str(r["frequency"]),
            },
            "received_at": received,
            "consumed_airtime": "0.061696s",
            "locations": {"user": {"latitude": lat, "longitude": lon,
                                   "altitude": device.param("altitude", 150),
                                   "source": "SOURCE_REGISTRY"}},
            "version_ids": {"brand_id": VENDOR, "model_id": device.spec.model,
                            "hardware_version": "1.0", "firmware_version": "1.0",
                            "band_id": "EU_863_870"},
            "network_ids": {"net_id": "000013", "tenant_id": "stadtwerke-musterstadt",
                            "cluster_id": "eu1"},
        },
    }


def chirpstack_uplink(device: Device, t: int, port: int, payload: bytes) -> dict[str, Any]:
    """A ChirpStack v4 `up` event (HTTP integration, JSON encoding) with the raw payload."""
    r = radio(device, t)
    dedup = uuid.UUID(bytes=_digest("cs", device.dev_eui, t, port), version=4)
    application = uuid.UUID(bytes=_digest("cs-app", APPLICATION), version=4)
    return {
        "deduplicationId": str(dedup),
        "time": _iso(t),
        "deviceInfo": {
            "tenantId": str(uuid.UUID(bytes=_digest("cs-tenant"), version=4)),
            "tenantName": CHIRPSTACK_TENANT,
            "applicationId": str(application),
            "applicationName": APPLICATION,
            "deviceProfileId": str(uuid.UUID(bytes=_digest("cs-profile", device.spec.model),
                                             version=4)),
            "deviceProfileName": f"{VENDOR}/{device.spec.model}",
            "deviceName": device.key,
            "devEui": device.dev_eui.lower(),
            "deviceClassEnabled": "CLASS_A",
            "tags": {"ort": device.name},
        },
        "devAddr": f"260b{device.index:04x}",
        "adr": True,
        "dr": 12 - r["sf"],
        "fCnt": f_cnt(device, t, port),
        "fPort": port,
        "confirmed": False,
        "data": base64.b64encode(payload).decode(),
        # No gateway location here: the device's own position comes from the device registry.
        "rxInfo": [{"gatewayId": "a84041ffff" + device.gateway[-6:].encode().hex()[:6],
                    "uplinkId": int.from_bytes(dedup.bytes[:4], "big") % 65536,
                    "rssi": r["rssi"], "snr": r["snr"], "channel": 0, "context": "AAAAAA==",
                    "crcStatus": "CRC_OK"}],
        "txInfo": {"frequency": r["frequency"],
                   "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": r["sf"],
                                           "codeRate": "CR_4_5"}}},
    }


def message(device: Device, t: int, port: int, payload: bytes) -> tuple[str, dict[str, Any]]:
    """(ingest path, JSON body) of one uplink of `device` at `t`."""
    if device.network == "chirpstack":
        return "/ingest/chirpstack?event=up", chirpstack_uplink(device, t, port, payload)
    return "/ingest/ttn", tts_uplink(device, t, port, payload)
