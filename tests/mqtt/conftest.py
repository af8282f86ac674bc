"""Fixtures for the MQTT tests: real MQTT clients (paho) against the real server's broker, and
a private Mosquitto for the external-broker mode.

`Subscriber` collects the messages of its subscriptions in a queue; `expect` waits (bounded) for
the next message on a topic and returns it decoded. Nothing here asserts on timing.
"""

from __future__ import annotations

import json
import queue
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from tests.conftest import Server, free_port
from tests.sta.conftest import Make

WAIT = 10.0  # seconds a test waits for a message before it fails


class Subscriber:
    def __init__(self, host: str, port: int, transport: str = "tcp",
                 password: str | None = None, protocol: int = paho.MQTTv311) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.granted: queue.Queue[list[int]] = queue.Queue()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=f"test-{uuid.uuid4().hex[:10]}",
                                  transport=transport, protocol=protocol)
        if password is not None:
            self.client.username_pw_set("test", password)
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.granted.put(
            [getattr(code, "value", code) for code in codes])
        self.connected: queue.Queue[Any] = queue.Queue()
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.put(rc)
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        self.connect_result = self.connected.get(timeout=WAIT)

    def subscribe(self, *topics: str, qos: int = 1) -> list[int]:
        """Subscribe and wait for the SUBACK; returns the granted QoS (128: refused) per topic."""
        self.client.subscribe([(t, qos) for t in topics])
        return self.granted.get(timeout=WAIT)

    def expect(self, topic: str, predicate: Callable[[Any], bool] = lambda _: True,
               timeout: float = WAIT) -> Any:
        """The next message on `topic` whose JSON payload satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching message on {topic} within {timeout} s")
            try:
                got_topic, payload = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            if got_topic != topic:
                continue
            value = json.loads(payload)
            if predicate(value):
                return value

    def drain(self, seconds: float = 0.5) -> list[tuple[str, Any]]:
        """Everything that arrives within `seconds` (for "nothing else came" checks)."""
        out, deadline = [], time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                topic, payload = self.messages.get(timeout=remaining)
            except queue.Empty:
                break
            out.append((topic, json.loads(payload)))
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Publisher:
    def __init__(self, host: str, port: int, password: str | None,
                 transport: str = "tcp") -> None:
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=f"pub-{uuid.uuid4().hex[:10]}", transport=transport)
        if password is not None:
            self.client.username_pw_set("sensor", password)
        self.connected: queue.Queue[Any] = queue.Queue()
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.put(rc)
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        self.connect_result = self.connected.get(timeout=WAIT)

    def send(self, topic: str, payload: Any, qos: int = 1) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(topic, data, qos=qos).wait_for_publish(timeout=WAIT)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def make(api) -> Make:
    return Make(api)


@pytest.fixture
def subscriber(server: Server) -> Iterator[Callable[..., Subscriber]]:
    opened: list[Subscriber] = []

    def open_(transport: str = "tcp", password: str | None = None) -> Subscriber:
        port = server.mqtt_ws_port if transport == "websockets" else server.mqtt_port
        sub = Subscriber("127.0.0.1", port, transport, password)
        opened.append(sub)
        return sub

    yield open_
    for sub in opened:
        sub.close()


@pytest.fixture
def publisher(server: Server) -> Iterator[Callable[..., Publisher]]:
    opened: list[Publisher] = []

    def open_(scope: str | None = "write") -> Publisher:
        pub = Publisher("127.0.0.1", server.mqtt_port, server.keys[scope] if scope else None)
        opened.append(pub)
        return pub

    yield open_
    for pub in opened:
        pub.close()


def wait_until(check: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll `check` until it returns something truthy (bounded); returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached within the time limit")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory) -> Iterator[tuple[str, int]]:
    """A private Mosquitto on a free port (anonymous access, MQTT 5), stopped after the session."""
    folder: Path = tmp_path_factory.mktemp("mosquitto")
    port = free_port()
    config = folder / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                      "user root\n")
    log = (folder / "mosquitto.log").open("w")
    process = subprocess.Popen(["mosquitto", "-c", str(config)], stdout=log,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            probe = Subscriber("127.0.0.1", port)
            probe.close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError((folder / "mosquitto.log").read_text()) from None
            time.sleep(0.1)
    yield "127.0.0.1", port
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()
