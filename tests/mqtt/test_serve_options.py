"""`ortspuls serve` and its MQTT options: clear one-line errors, and MQTT switched off."""

from __future__ import annotations

import contextlib
import socket

import httpx
import pytest
from tests.conftest import create_key, free_port, run_cli, start_server, stop_server


@pytest.fixture
def data_args(tmp_path) -> list[str]:
    return ["--data-dir", str(tmp_path / "data")]


def _one_clear_line(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("option", ["--mqtt-port", "--mqtt-ws-port"])
def test_busy_mqtt_port_is_one_clear_line(data_args, option):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        other = "--mqtt-ws-port" if option == "--mqtt-port" else "--mqtt-port"
        result = run_cli("serve", "--port", str(free_port()), option, str(port),
                         other, str(free_port()), *data_args, check=False)
    line = _one_clear_line(result)
    assert str(port) in line and "in use" in line and option in line


def test_default_port_taken_by_another_broker(data_args):
    # On the project machine Mosquitto holds 1883; where nothing does, this test holds it.
    with contextlib.ExitStack() as stack, socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 1883)) != 0:
            holder = stack.enter_context(socket.socket())
            holder.bind(("127.0.0.1", 1883))
            holder.listen()
        result = run_cli("serve", "--port", str(free_port()), "--mqtt-ws-port", "0",
                         *data_args, check=False)
    line = _one_clear_line(result)
    assert "1883" in line and "--mqtt-port" in line


def test_unreachable_external_broker_is_one_clear_line(data_args):
    result = run_cli("serve", "--port", str(free_port()), "--mqtt-url",
                     f"mqtt://127.0.0.1:{free_port()}", *data_args, check=False)
    line = _one_clear_line(result)
    assert "cannot reach the MQTT broker" in line


def test_embedded_broker_with_several_workers_is_refused(data_args):
    result = run_cli("serve", "--port", str(free_port()), "--workers", "2", "--mqtt-port",
                     str(free_port()), *data_args, check=False)
    line = _one_clear_line(result)
    assert "--mqtt-url" in line and "--mqtt-port 0" in line


def test_bad_mqtt_url_is_refused(data_args):
    result = run_cli("serve", "--mqtt-url", "http://broker", *data_args, check=False)
    assert "mqtt://" in _one_clear_line(result)


def test_mqtt_port_zero_switches_mqtt_off(tmp_path):
    args = ["--data-dir", str(tmp_path)]
    key = create_key(args, "admin", "admin")
    srv = start_server(tmp_path, args, extra_args=("--mqtt-port", "0"))
    try:
        body = httpx.get(f"{srv.sta}", headers={"Authorization": f"Bearer {key}"}).json()
        conformance = body["serverSettings"]["conformance"]
        assert not any("mqtt" in uri for uri in conformance)
        assert any(uri.endswith("batch-request/batch-request") for uri in conformance)
        assert not any("mqtt" in key for key in body["serverSettings"])
    finally:
        stop_server(srv)
