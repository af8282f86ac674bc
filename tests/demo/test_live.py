"""`ortspuls serve --demo`: the simulated devices' uplinks arrive through the real webhooks
(The Things Stack and ChirpStack shapes), are decoded by the demo's codecs and continue the
seeded Datastreams; the values are the model's."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import numpy as np
import orjson
from tests.conftest import start_server, stop_server
from tests.demo.conftest import NO_MQTT, seed_demo

from ortspuls.demo import model, payloads
from ortspuls.demo.town import DEVICES, DEVICES_BY_KEY


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_live_uplinks_arrive_through_the_webhooks(tmp_path):
    seeded = seed_demo(tmp_path / "live", None, 1)
    seeded_end = seeded.sql("SELECT max(phenomenon_time_start) FROM observations")[0][0]
    streams_before = seeded.sql("SELECT id, name FROM datastreams ORDER BY id")
    srv = start_server(seeded.data_dir, seeded.args, {**NO_MQTT, "ORTSPULS_DEMO_SPEED": "300"},
                       ("--demo",))
    try:
        deadline = time.monotonic() + 120
        while True:
            latest = httpx.get(f"{srv.url}/api/v1/latest", timeout=30).json()["value"]
            fresh = [e for e in latest
                     if _when(e["time"]).timestamp() * 1e6 > seeded_end]
            if len(fresh) == len(latest):
                break
            assert time.monotonic() < deadline, (
                f"{len(latest) - len(fresh)} Datastreams got no live value:\n{srv.log()[-3000:]}")
            time.sleep(1)
        for entry in latest:
            assert entry["stale"] is False
    finally:
        stop_server(srv)
    # Nothing new was provisioned: the uplinks continued the seeded Datastreams.
    assert seeded.sql("SELECT id, name FROM datastreams ORDER BY id") == streams_before
    uplinks = seeded.sql(
        "SELECT dev_eui, status, meta FROM ingest_raw_uplinks WHERE received_at > ?",
        (seeded_end,))
    networks = {orjson.loads(meta)["network"] for _, _, meta in uplinks}
    assert networks == {"ttn", "chirpstack"}
    assert {eui for eui, _, _ in uplinks} == {d.dev_eui for d in DEVICES}
    assert {status for _, status, _ in uplinks} == {"stored"}
    chirpstack = {d.dev_eui for d in DEVICES if d.network == "chirpstack"}
    assert chirpstack and chirpstack <= {eui for eui, _, _ in uplinks}

    # The live values are the model's (same seed, same anchor): the weather station's
    # temperature went through the payload, the codec and the writer unchanged.
    options = orjson.loads(seeded.sql(
        "SELECT options FROM ingest_integrations WHERE kind = 'ttn'")[0][0])["demo"]
    station = DEVICES_BY_KEY["wetter-rathaus"]
    entry = next(e for e in latest if e["name"] == f"{station.name} – Lufttemperatur")
    moment = int(_when(entry["time"]).timestamp())
    env = model.Environment(options["seed"], options["anchor"], moment + 3600)
    raw = model.sample(env, station, np.array([moment]), 2)
    expected = payloads.decoded(station.kind, raw)["air_temperature"].numbers[0]
    assert entry["value"] == expected
    assert datetime.fromtimestamp(moment, UTC) > datetime.fromtimestamp(seeded_end / 1e6, UTC)
