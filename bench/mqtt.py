"""SensorThings MQTT: create throughput and notification latency.

1. Create via MQTT, one publisher (paho, its own thread), 10,000 Observations each with QoS 0
   and QoS 1 (at most 100 unacknowledged), into a fresh SQLite database: from the first publish
   until the last Observation is stored (polled with $count). Through the embedded broker, and
   through a private Mosquitto (`--mqtt-url`), where the table also shows Mosquitto's own
   pass-through rate for the same messages (publisher -> subscriber, no server) and the server's
   CPU time per 1,000 Observations (intake + writer + 4 notifications per Observation).
2. Latency: a subscriber on `v1.1/Datastreams(id)/Observations`; 300 sequential HTTP POSTs;
   per Observation the time from the HTTP 201 arriving to the MQTT message arriving (negative:
   the message came first). Median and 95th percentile, embedded and external.

Run: python -m bench.mqtt
"""

from __future__ import annotations

import contextlib
import os
import queue
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import paho.mqtt.client as paho

from bench.common import (
    Server,
    free_port,
    fresh_database,
    make_datastreams,
    running_server,
    save,
    table,
)

MESSAGES = 10_000
INFLIGHT = 100
LATENCY_SAMPLES = 300


@contextlib.contextmanager
def mosquitto() -> Iterator[int]:
    folder = Path(tempfile.mkdtemp(prefix="ortspuls-bench-mosquitto-"))
    port = free_port()
    config = folder / "mosquitto.conf"
    # Mosquitto drops QoS 1 messages beyond 1,000 queued per client by default; a burst of
    # 10,000 needs a longer queue (the README says so for deployments too).
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                      "max_queued_messages 100000\nuser root\n")
    process = subprocess.Popen(["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def client(port: int, password: str | None = None, inflight: int = INFLIGHT) -> paho.Client:
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-{os.urandom(4).hex()}")
    if password:
        c.username_pw_set("bench", password)
    c.max_inflight_messages_set(inflight)
    c.max_queued_messages_set(0)
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    c.connect("127.0.0.1", port, keepalive=60)
    c.loop_start()
    if not connected.wait(10):
        raise RuntimeError(f"no MQTT connection to port {port}")
    return c


def count(server: Server, datastream: int) -> int:
    with server.client() as api:
        url = f"/Datastreams({datastream})/Observations?$top=0&$count=true"
        return api.get(url).json()["@iot.count"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (from /proc, in seconds)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def publish_run(server: Server, mqtt_port: int, datastream: int, qos: int,
                password: str | None) -> dict:
    topic = f"v1.1/Datastreams({datastream})/Observations"
    before = count(server, datastream)
    pub = client(mqtt_port, password)
    bodies = [orjson.dumps({"result": i / 10}) for i in range(MESSAGES)]
    cpu0 = cpu_seconds(server.process.pid)
    began = time.perf_counter()
    infos = [pub.publish(topic, body, qos=qos) for body in bodies]
    for info in infos:
        info.wait_for_publish(timeout=120)
    published = time.perf_counter() - began
    deadline = time.monotonic() + 180
    while (stored := count(server, datastream) - before) < MESSAGES:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - began
    cpu = cpu_seconds(server.process.pid) - cpu0
    pub.disconnect()
    pub.loop_stop()
    return {"qos": qos, "messages": MESSAGES, "stored": stored,
            "publish_s": round(published, 3), "obs_per_s": round(stored / elapsed, 1),
            "server_cpu_ms_per_1000": round(1000 * cpu / max(stored, 1) * 1000, 1)}


def broker_pass_through(mqtt_port: int, qos: int) -> float:
    """Messages/s through the broker alone: one paho publisher -> one paho subscriber."""
    got = threading.Event()
    received = 0
    sub = client(mqtt_port)

    def on_message(*_):
        nonlocal received
        received += 1
        if received == MESSAGES:
            got.set()

    sub.on_message = on_message
    sub.subscribe("bench/pass", qos)
    time.sleep(0.3)
    pub = client(mqtt_port)
    body = orjson.dumps({"result": 1.5})
    began = time.perf_counter()
    for _ in range(MESSAGES):
        pub.publish("bench/pass", body, qos=qos)
    got.wait(120)
    rate = received / (time.perf_counter() - began)
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return round(rate, 1)


def latency_run(server: Server, mqtt_port: int, datastream: int) -> dict:
    topic = f"v1.1/Datastreams({datastream})/Observations"
    arrivals: queue.Queue[tuple[float, int]] = queue.Queue()
    sub = client(mqtt_port)
    sub.on_message = lambda c, u, m: arrivals.put((time.perf_counter(),
                                                   orjson.loads(m.payload)["@iot.id"]))
    sub.subscribe(topic, 0)
    time.sleep(0.5)
    answered: dict[int, float] = {}
    sent: dict[int, float] = {}
    with server.client() as api:
        for i in range(LATENCY_SAMPLES):
            began = time.perf_counter()
            response = api.post(f"/Datastreams({datastream})/Observations", json={"result": i})
            done = time.perf_counter()
            ident = response.json()["@iot.id"]
            answered[ident], sent[ident] = done, began
    seen: dict[int, float] = {}
    deadline = time.monotonic() + 10
    while len(seen) < LATENCY_SAMPLES and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            at, ident = arrivals.get(timeout=0.5)
            seen[ident] = at
    sub.disconnect()
    sub.loop_stop()
    after_201 = sorted(1000 * (seen[i] - answered[i]) for i in seen if i in answered)
    after_post = sorted(1000 * (seen[i] - sent[i]) for i in seen if i in sent)
    return {"samples": LATENCY_SAMPLES, "received": len(seen),
            "median_ms_after_201": round(statistics.median(after_201), 2),
            "p95_ms_after_201": round(after_201[int(0.95 * (len(after_201) - 1))], 2),
            "median_ms_after_request_start": round(statistics.median(after_post), 2)}


def run() -> dict:
    results: dict = {}
    with fresh_database("sqlite") as target:
        port = free_port()
        env = {"ORTSPULS_MQTT_PORT": str(port), "ORTSPULS_MQTT_WS_PORT": "0"}
        with running_server(target, env=env) as server:
            datastreams = make_datastreams(server, 3)
            results["embedded"] = {
                "create": [publish_run(server, port, datastreams[q], q, server.key)
                           for q in (0, 1)],
                "latency": latency_run(server, port, datastreams[2]),
            }
    with mosquitto() as port, fresh_database("sqlite") as target:
        env = {"ORTSPULS_MQTT_URL": f"mqtt://127.0.0.1:{port}", "ORTSPULS_MQTT_PORT": "0"}
        with running_server(target, env=env) as server:
            datastreams = make_datastreams(server, 3)
            results["mosquitto"] = {
                "create": [publish_run(server, port, datastreams[q], q, None) for q in (0, 1)],
                "latency": latency_run(server, port, datastreams[2]),
                "broker_pass_through_msg_per_s": {f"qos{q}": broker_pass_through(port, q)
                                                  for q in (0, 1)},
            }
    rows = []
    for broker, r in results.items():
        for c in r["create"]:
            passing = r.get("broker_pass_through_msg_per_s", {}).get(f"qos{c['qos']}", "")
            rows.append([broker, c["qos"], c["stored"], c["obs_per_s"],
                         c["server_cpu_ms_per_1000"], passing])
    print(table(f"Create via MQTT: one publisher, {MESSAGES:,} Observations, SQLite",
                ["broker", "QoS", "stored", "obs/s", "server CPU ms/1000 obs",
                 "broker alone msg/s"], rows))
    print()
    print(table("Notification latency: HTTP 201 -> message on v1.1/Datastreams(id)/Observations",
                ["broker", "received", "median ms after 201", "p95 ms after 201",
                 "median ms after request start"],
                [[b, r["latency"]["received"], r["latency"]["median_ms_after_201"],
                  r["latency"]["p95_ms_after_201"],
                  r["latency"]["median_ms_after_request_start"]]
                 for b, r in results.items()]))
    save("mqtt", results)
    return results


if __name__ == "__main__":
    run()
