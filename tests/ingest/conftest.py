"""Fixtures for the ingest tests: uplinks in the real JSON shapes of The Things Stack v3 and
ChirpStack v4 (built from their field tables), the CLI, and readers for what was stored.

Every test uses its own DevEUIs, integrations and codec names, so tests on the shared server
never see each other's data.
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.conftest import Server, run_cli
from tests.sta.conftest import read_database

CODECS = Path(__file__).parent / "codecs"


def new_eui() -> str:
    return secrets.token_hex(8).upper()


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"  # nanoseconds


def tts_uplink(eui: str, *, f_port: int | None = 2, f_cnt: int = 1, payload: bytes = b"",
               decoded: dict | None = None, received_at: datetime | None = None,
               device_id: str | None = None, brand: str | None = None,
               model: str | None = None, location: dict | None = None,
               gateway_location: dict | None = None, simulated: bool = False,
               frequency: Any = "867700000", attributes: dict | None = None,
               correlation: str | None = None, normalized: list | None = None) -> dict:
    """A TTS v3 uplink message as a webhook or the MQTT integration sends it."""
    received = received_at or datetime.now(UTC)
    uplink: dict[str, Any] = {
        "session_key_id": "AWNbm/4zfqx0jZ5q1NlBmw==",
        "f_cnt": f_cnt,
        "rx_metadata": [
            {"gateway_ids": {"gateway_id": "gw-feuerwehr", "eui": "58A0CBFFFE800001"},
             "time": iso(received), "timestamp": 3895211423, "rssi": -112,
             "channel_rssi": -112, "snr": -3.25, "uplink_token": "ChIKEAoOZ3ctZmV1ZXJ3ZWhy",
             "channel_index": 2, "received_at": iso(received)},
            {"gateway_ids": {"gateway_id": "gw-rathaus", "eui": "58A0CBFFFE800000"},
             "time": iso(received), "timestamp": 1234567, "rssi": -97, "channel_rssi": -97,
             "snr": 7.5, "channel_index": 2, "received_at": iso(received),
             **({"location": {**gateway_location, "source": "SOURCE_REGISTRY"}}
                if gateway_location else {})},
        ],
        "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 9,
                                            "coding_rate": "4/5"}},
                     "frequency": frequency, "timestamp": 3895211423},
        "received_at": iso(received),
        "consumed_airtime": "0.185344s",
        "network_ids": {"net_id": "000013", "ns_id": "EC656E0000000181", "tenant_id": "ttn",
                        "cluster_id": "eu1", "cluster_address": "eu1.cloud.thethings.network"},
    }
    if f_port is not None:  # TTS leaves out empty fields: no f_port means 0
        uplink["f_port"] = f_port
    if payload:
        uplink["frm_payload"] = b64(payload)
    if decoded is not None:
        uplink["decoded_payload"] = decoded
    if normalized is not None:
        uplink["normalized_payload"] = normalized
    if brand:
        uplink["version_ids"] = {"brand_id": brand, "model_id": model, "hardware_version": "1.0",
                                 "firmware_version": "1.0", "band_id": "EU_863_870"}
    if location:
        uplink["locations"] = {"user": {**location, "source": "SOURCE_REGISTRY"}}
    if attributes:
        uplink["attributes"] = attributes
    message: dict[str, Any] = {
        "end_device_ids": {"device_id": device_id or f"eui-{eui.lower()}",
                           "application_ids": {"application_id": "kommune-test"},
                           "dev_eui": eui, "join_eui": "0000000000000000",
                           "dev_addr": "260B1234"},
        "correlation_ids": [correlation or f"as:up:{secrets.token_hex(13).upper()}",
                            f"gs:uplink:{secrets.token_hex(13).upper()}"],
        "received_at": iso(received),
        "uplink_message": uplink,
    }
    if simulated:
        message["simulated"] = True
    return message


def chirpstack_uplink(eui: str, *, f_port: int = 2, f_cnt: int = 1, payload: bytes = b"",
                      obj: dict | None = None, received_at: datetime | None = None,
                      device_name: str | None = None, profile: str = "Pegelsensor",
                      gateway_location: dict | None = None, frequency: Any = 868100000,
                      dedup: str | None = None, tags: dict | None = None) -> dict:
    """A ChirpStack v4 `up` event (protobuf JSON mapping: camelCase, base64 bytes)."""
    received = received_at or datetime.now(UTC)
    rx = {"gatewayId": "0016c001ff10a235", "uplinkId": 4711, "gwTime": iso(received),
          "nsTime": iso(received), "rssi": -101, "snr": 5.8, "channel": 3, "rfChain": 1,
          "board": 0, "antenna": 0, "context": "EFwMtA==",
          "metadata": {"region_config_id": "eu868"}, "crcStatus": "CRC_OK"}
    if gateway_location:
        rx["location"] = gateway_location
    event: dict[str, Any] = {
        "deduplicationId": dedup or str(uuid.uuid4()),
        "time": iso(received),
        "deviceInfo": {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "Stadtwerke",
            "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
            "applicationName": "kommune", "deviceProfileId": str(uuid.uuid4()),
            "deviceProfileName": profile, "deviceName": device_name or f"cs-{eui.lower()}",
            "devEui": eui.lower(), "deviceClassEnabled": "CLASS_A", "tags": tags or {},
        },
        "devAddr": "00189440", "adr": True, "dr": 5, "fCnt": f_cnt, "fPort": f_port,
        "confirmed": False, "data": b64(payload) if payload else "",
        "rxInfo": [rx],
        "txInfo": {"frequency": frequency,
                   "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7,
                                           "codeRate": "CR_4_5"}}},
    }
    if obj is not None:
        event["object"] = obj
    return event


class Ingest:
    """The ingest side of a running test server: CLI, webhooks, and what got stored."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=30)
        self.sta = httpx.Client(base_url=server.sta, timeout=30)

    def cli(self, *args: str, check: bool = True):
        return run_cli(*args, *self.server.database_args, check=check)

    def integration(self, kind: str = "ttn", *options: str) -> str:
        result = self.cli("integration", "add", kind, "--name", unique(kind), *options)
        return result.stdout.strip().splitlines()[-1]

    def add_codec(self, file: str, *scope: str) -> str:
        name = unique(Path(file).stem)
        self.cli("codecs", "add", "--name", name, "--file", str(CODECS / file), *scope)
        return name

    def ttn(self, token: str, message: Any, **kwargs: Any) -> httpx.Response:
        return self.http.post("/ingest/ttn", content=orjson.dumps(message),
                              headers={"Authorization": f"Bearer {token}",
                                       "Content-Type": "application/json"}, **kwargs)

    def chirpstack(self, token: str, message: Any, event: str = "up") -> httpx.Response:
        return self.http.post(f"/ingest/chirpstack?event={event}", content=orjson.dumps(message),
                              headers={"Authorization": f"Bearer {token}",
                                       "Content-Type": "application/json"})

    def devices(self) -> dict[str, dict]:
        rows = orjson.loads(self.cli("devices", "list", "--json").stdout)
        return {r["dev_eui"]: r for r in rows}

    def device(self, eui: str) -> dict | None:
        return self.devices().get(eui)

    def raw_log(self, eui: str) -> list[dict]:
        return orjson.loads(self.cli("devices", "log", eui, "--json").stdout)

    def count(self, sql: str) -> int:
        return read_database(self.server, sql)[0][0]

    def raw_rows(self, eui: str) -> int:
        return self.count(f"SELECT count(*) FROM ingest_raw_uplinks WHERE dev_eui = '{eui}'")

    def thing(self, eui: str) -> dict:
        device = self.device(eui)
        assert device is not None, f"device {eui} not registered"
        assert device["thing_id"] is not None, f"device {eui} has no Thing: {device}"
        return self.sta.get(f"/Things({device['thing_id']})").json()

    def datastreams(self, eui: str) -> dict[str, dict]:
        """The device's Datastreams by decoded field, with ObservedProperty, Sensor and
        Observations (oldest first)."""
        thing = self.thing(eui)
        out = {}
        for ds in self.sta.get(f"/Things({thing['@iot.id']})/Datastreams",
                               params={"$top": 1000}).json()["value"]:
            ident = ds["@iot.id"]
            ds["ObservedProperty"] = self.sta.get(f"/Datastreams({ident})/ObservedProperty").json()
            ds["Sensor"] = self.sta.get(f"/Datastreams({ident})/Sensor").json()
            ds["Observations"] = self.sta.get(
                f"/Datastreams({ident})/Observations",
                params={"$orderby": "phenomenonTime asc", "$top": 1000}).json()["value"]
            out[ds["properties"]["ingest"]["field"]] = ds
        return out

    def observation_count(self, eui: str) -> int:
        return self.count(
            "SELECT count(*) FROM observations o JOIN ingest_device_fields f "
            "ON f.datastream_id = o.datastream_id JOIN ingest_devices d ON d.id = f.device_id "
            f"WHERE d.dev_eui = '{eui}'")


@pytest.fixture
def ingest(server: Server) -> Iterator[Ingest]:
    helper = Ingest(server)
    yield helper
    helper.http.close()
    helper.sta.close()


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll until `check()` returns something truthy (background work: MQTT, pollers)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.3)
