"""Background ingest on the real server: MQTT mode against our own Mosquitto, and the HTTP
poller against a local HTTP server (both started by the test on free ports)."""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import orjson
import pytest
from paho.mqtt import publish as paho_publish
from tests.conftest import free_port
from tests.ingest.conftest import Ingest, chirpstack_uplink, new_eui, tts_uplink, unique, wait_for


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[int]:
    """A Mosquitto broker of our own on a free port, stopped after the test."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("mosquitto did not start") from None
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)


def publish(port: int, topic: str, message: dict) -> None:
    """Publish retained, so the server's subscriber gets it whenever it connects."""
    paho_publish.single(topic, orjson.dumps(message), qos=1, retain=True,
                        hostname="127.0.0.1", port=port)


def test_tts_mqtt_mode(ingest: Ingest, mosquitto: int):
    app = unique("kommune")
    ingest.integration("ttn", "--mqtt-url", f"mqtt://127.0.0.1:{mosquitto}",
                       "--mqtt-topic", f"v3/{app}@ttn/devices/+/up")
    eui = new_eui()
    message = tts_uplink(eui, decoded={"temperature": 17.25, "humidity": 61})
    publish(mosquitto, f"v3/{app}@ttn/devices/eui-{eui.lower()}/up", message)
    wait_for(lambda: ingest.observation_count(eui) == 2, "the MQTT uplink to be stored")
    streams = ingest.datastreams(eui)
    assert streams["temperature"]["Observations"][0]["result"] == 17.25
    # Messages of other types and the same uplink again add nothing.
    publish(mosquitto, f"v3/{app}@ttn/devices/eui-{eui.lower()}/up", message)
    publish(mosquitto, f"v3/{app}@ttn/devices/eui-{eui.lower()}/join",
            {"end_device_ids": message["end_device_ids"], "join_accept": {}})
    marker = new_eui()
    publish(mosquitto, f"v3/{app}@ttn/devices/marker/up",
            tts_uplink(marker, decoded={"temperature": 1.0}))
    wait_for(lambda: ingest.observation_count(marker) == 1, "a later uplink to be stored")
    assert ingest.observation_count(eui) == 2


def test_chirpstack_mqtt_mode_with_status_event(ingest: Ingest, mosquitto: int):
    app = unique("app")
    ingest.integration("chirpstack", "--mqtt-url", f"mqtt://127.0.0.1:{mosquitto}",
                       "--mqtt-topic", f"application/{app}/device/+/event/+")
    eui = new_eui()
    publish(mosquitto, f"application/{app}/device/{eui.lower()}/event/up",
            chirpstack_uplink(eui, obj={"co2": 950}))
    info = chirpstack_uplink(eui)["deviceInfo"]
    publish(mosquitto, f"application/{app}/device/{eui.lower()}/event/status",
            {"deduplicationId": "s1", "time": datetime.now(UTC).isoformat(),
             "deviceInfo": info, "margin": 9, "batteryLevel": 55.0})
    wait_for(lambda: ingest.observation_count(eui) == 1, "the ChirpStack MQTT uplink")
    wait_for(lambda: (ingest.device(eui) or {}).get("health", {}).get("margin") == 9,
             "the status event")
    assert ingest.device(eui)["health"]["battery"] == {"value": 55.0, "unit": "%"}


class _Source(http.server.BaseHTTPRequestHandler):
    """A car park operator's API: JSON with the free spaces of each car park."""

    body: bytes = b"{}"
    status: int = 200
    requests: ClassVar[list[dict]] = []

    def do_GET(self) -> None:
        type(self).requests.append(dict(self.headers))
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def json_source() -> Iterator[tuple[str, type[_Source]]]:
    handler = type("Source", (_Source,), {"requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/parkhaeuser", handler
    server.shutdown()
    server.server_close()


def _carparks(updated: str, free: int) -> bytes:
    return json.dumps({"updated": updated, "carparks": [
        {"id": "P1", "name": "Parkhaus Markt", "free": free, "capacity": 320, "open": True},
        {"id": "P2", "name": "Parkhaus Bahnhof", "free": 12, "capacity": 150, "open": False},
    ]}).encode()


def test_http_poller_stores_values_deduplicates_and_backs_off(ingest: Ingest, json_source):
    url, source = json_source
    source.body = _carparks("2025-05-01T10:00:00Z", 117)
    name = unique("parkhaus-markt")
    ingest.cli("poller", "add", "--name", name, "--url", url, "--interval", "1",
               "--field", "free=$.carparks[?(@.id == 'P1')].free",
               "--field", "capacity=$.carparks[?(@.id == 'P1')].capacity",
               "--field", "open=$.carparks[?(@.id == 'P1')].open",
               "--header", "X-Api-Key: geheim", "--time-path", "$.updated")
    eui = f"HTTP:{name}"
    wait_for(lambda: ingest.observation_count(eui) == 3, "the first poll to be stored")
    streams = ingest.datastreams(eui)
    assert streams["free"]["Observations"][0]["result"] == 117
    assert streams["free"]["Observations"][0]["phenomenonTime"] == "2025-05-01T10:00:00Z"
    assert streams["free"]["unitOfMeasurement"]["definition"] is None  # listed for mapping
    assert streams["open"]["Observations"][0]["result"] is True
    assert source.requests[0]["X-Api-Key"] == "geheim"
    # Polling the same document again stores nothing new (same time, same key).
    polled = len(source.requests)
    wait_for(lambda: len(source.requests) >= polled + 2, "two more polls")
    assert ingest.observation_count(eui) == 3
    # A new reading is stored.
    source.body = _carparks("2025-05-01T10:05:00Z", 98)
    wait_for(lambda: ingest.observation_count(eui) == 6, "the next reading")
    assert [o["result"] for o in ingest.datastreams(eui)["free"]["Observations"]] == [117, 98]
    # Errors are recorded on the poller and retried (with backoff, see test_parts).
    source.status = 500
    wait_for(lambda: "HTTP 500" in ingest.cli("poller", "list").stdout, "the error")
    line = next(x for x in ingest.cli("poller", "list").stdout.splitlines()
                if x.startswith(name))
    assert "Fehler/failures 0" not in line
    source.status = 200
    source.body = _carparks("2025-05-01T10:10:00Z", 80)
    wait_for(lambda: ingest.observation_count(eui) == 9, "recovery after the error")
