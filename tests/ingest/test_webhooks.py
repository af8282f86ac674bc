"""Webhooks of The Things Stack v3 and ChirpStack v4 against the real server: provisioning,
values and times, replays, tokens, malformed requests, simulated uplinks, device events."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from tests.ingest.conftest import (
    Ingest,
    chirpstack_uplink,
    new_eui,
    tts_uplink,
)

DEVICE_LOCATION = {"latitude": 52.2659, "longitude": 10.5267, "altitude": 75.0}


def test_tts_uplink_provisions_thing_sensor_datastreams_with_units(ingest: Ingest):
    token = ingest.integration("ttn")
    eui = new_eui()
    when = datetime(2025, 4, 16, 11, 54, 13, 995000, tzinfo=UTC)
    message = tts_uplink(eui, device_id="pegel-muehlbach", received_at=when,
                         brand="decentlab", model="dl-mbx", location=DEVICE_LOCATION,
                         decoded={"temperature": 21.5, "humidity": 55, "co2": 612,
                                  "battery": 3.61, "occupied": True, "mystery": 7,
                                  "status": "ok"})
    response = ingest.ttn(token, message)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "stored", "device": eui, "observations": 6}

    thing = ingest.thing(eui)
    assert thing["name"] == "pegel-muehlbach"
    assert thing["properties"]["devEui"] == eui
    locations = ingest.sta.get(f"/Things({thing['@iot.id']})/Locations").json()["value"]
    assert locations[0]["location"] == {"type": "Point", "coordinates": [10.5267, 52.2659]}
    assert locations[0]["properties"] == {"source": "device", "altitude": 75.0}

    streams = ingest.datastreams(eui)
    assert set(streams) == {"temperature", "humidity", "co2", "battery", "occupied", "mystery"}
    units = {field: ds["unitOfMeasurement"] for field, ds in streams.items()}
    assert units["temperature"] == {"name": "Grad Celsius (degree Celsius)", "symbol": "°C",
                                    "definition": "ucum:Cel"}
    assert units["humidity"]["definition"] == "ucum:%"
    assert units["co2"]["definition"] == "ucum:[ppm]"
    assert units["battery"]["definition"] == "ucum:V"
    assert units["mystery"]["definition"] is None  # unknown: listed for mapping
    assert streams["temperature"]["ObservedProperty"]["name"] == "Temperatur"
    assert streams["co2"]["ObservedProperty"]["name"] == "CO₂-Konzentration"
    assert streams["occupied"]["observationType"].endswith("OM_TruthObservation")
    assert streams["temperature"]["Sensor"]["name"] == "decentlab dl-mbx"
    assert streams["mystery"]["properties"]["ingest"]["unitKnown"] is False

    values = {field: ds["Observations"][0]["result"] for field, ds in streams.items()}
    assert values == {"temperature": 21.5, "humidity": 55, "co2": 612, "battery": 3.61,
                      "occupied": True, "mystery": 7}
    times = {ds["Observations"][0]["phenomenonTime"] for ds in streams.values()}
    assert times == {"2025-04-16T11:54:13.995Z"}

    device = ingest.device(eui)
    assert device["status"] == "ok"
    assert device["unmapped"] == ["mystery"]
    assert device["health"]["rssi"] == -97  # the best of the two gateways
    assert device["health"]["snr"] == 7.5
    assert device["health"]["gateway"] == "gw-rathaus"
    assert device["health"]["gateways"] == 2
    assert device["health"]["frequency"] == 867700000
    assert device["health"]["battery"] == {"value": 3.61, "unit": "V"}


def test_a_second_uplink_reuses_the_datastreams(ingest: Ingest):
    token = ingest.integration("ttn")
    eui = new_eui()
    start = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
    for n in range(3):
        message = tts_uplink(eui, f_cnt=n + 1, received_at=start + timedelta(minutes=15 * n),
                             decoded={"distance": 1200 + n})
        assert ingest.ttn(token, message).json()["status"] == "stored"
    streams = ingest.datastreams(eui)
    assert list(streams) == ["distance"]
    observations = streams["distance"]["Observations"]
    assert [o["result"] for o in observations] == [1200, 1201, 1202]
    assert observations[-1]["phenomenonTime"] == "2025-06-01T08:30:00Z"


def test_replayed_tts_uplink_adds_nothing(ingest: Ingest):
    token = ingest.integration("ttn")
    eui = new_eui()
    message = tts_uplink(eui, decoded={"temperature": 12.0})
    assert ingest.ttn(token, message).json()["status"] == "stored"
    before = (ingest.observation_count(eui), ingest.raw_rows(eui))
    replay = ingest.ttn(token, message)
    assert replay.status_code == 200
    assert replay.json()["status"] == "duplicate"
    assert (ingest.observation_count(eui), ingest.raw_rows(eui)) == before == (1, 1)


def test_tts_uplink_without_correlation_ids_is_recognised_by_device_fcnt_and_time(
        ingest: Ingest):
    token = ingest.integration("ttn")
    eui = new_eui()
    message = tts_uplink(eui, f_cnt=77, decoded={"temperature": 3.0})
    del message["correlation_ids"]
    assert ingest.ttn(token, message).json()["status"] == "stored"
    assert ingest.ttn(token, message).json()["status"] == "duplicate"
    message["uplink_message"]["f_cnt"] = 78
    assert ingest.ttn(token, message).json()["status"] == "stored"
    assert ingest.observation_count(eui) == 2


def test_replayed_chirpstack_uplink_adds_nothing(ingest: Ingest):
    token = ingest.integration("chirpstack")
    eui = new_eui()
    event = chirpstack_uplink(eui, obj={"co2": 800})
    assert ingest.chirpstack(token, event).json()["status"] == "stored"
    again = dict(event, time=datetime.now(UTC).isoformat())  # same deduplicationId
    assert ingest.chirpstack(token, again).json()["status"] == "duplicate"
    assert ingest.observation_count(eui) == 1


def test_chirpstack_uplink_with_lowercase_eui_and_numeric_frequency(ingest: Ingest):
    token = ingest.integration("chirpstack")
    eui = new_eui()
    when = datetime(2025, 3, 1, 6, 30, tzinfo=UTC)
    event = chirpstack_uplink(eui, received_at=when, device_name="Klassenzimmer 2b",
                              obj={"temperature": 22.4, "humidity": 41.5, "co2": 1450},
                              gateway_location={"latitude": 51.5, "longitude": 7.4,
                                                "altitude": 120})
    assert event["deviceInfo"]["devEui"] == eui.lower()
    response = ingest.chirpstack(token, event)
    assert response.json() == {"status": "stored", "device": eui, "observations": 3}
    streams = ingest.datastreams(eui)
    assert {f: ds["Observations"][0]["result"] for f, ds in streams.items()} == {
        "temperature": 22.4, "humidity": 41.5, "co2": 1450}
    assert streams["co2"]["Observations"][0]["phenomenonTime"] == "2025-03-01T06:30:00Z"
    assert streams["co2"]["Sensor"]["name"] == "Pegelsensor"  # the device profile
    thing = ingest.thing(eui)
    assert thing["name"] == "Klassenzimmer 2b"
    locations = ingest.sta.get(f"/Things({thing['@iot.id']})/Locations").json()["value"]
    assert locations[0]["location"]["coordinates"] == [7.4, 51.5]
    assert "Gateway" in locations[0]["description"]  # approximate: the gateway's place
    health = ingest.device(eui)["health"]
    assert health["frequency"] == 868100000
    assert health["rssi"] == -101


def test_same_device_through_both_networks_and_any_eui_case(ingest: Ingest):
    ttn = ingest.integration("ttn")
    cs = ingest.integration("chirpstack")
    eui = new_eui()
    assert ingest.ttn(ttn, tts_uplink(eui.lower(), decoded={"temperature": 1.0})
                      ).json()["device"] == eui
    assert ingest.chirpstack(cs, chirpstack_uplink(eui, obj={"temperature": 2.0})
                             ).json()["device"] == eui
    streams = ingest.datastreams(eui)
    assert [o["result"] for o in streams["temperature"]["Observations"]] == [1.0, 2.0]
    assert sum(1 for k in ingest.devices() if k == eui) == 1


def test_frequency_as_string_or_number(ingest: Ingest):
    token = ingest.integration("ttn")
    for frequency in ("867700000", 867900000):
        eui = new_eui()
        message = tts_uplink(eui, decoded={"temperature": 4.0}, frequency=frequency)
        assert ingest.ttn(token, message).json()["status"] == "stored"
        assert ingest.device(eui)["health"]["frequency"] == int(frequency)


def test_token_in_path_custom_header_and_basic_auth(ingest: Ingest):
    token = ingest.integration("ttn")
    body = orjson.dumps
    eui = new_eui()
    by_path = ingest.http.post(f"/ingest/ttn/{token}",
                               content=body(tts_uplink(eui, decoded={"level": 1})))
    assert by_path.json()["status"] == "stored"
    by_header = ingest.http.post("/ingest/ttn", headers={"X-Ortspuls-Token": token},
                                 content=body(tts_uplink(eui, f_cnt=2, decoded={"level": 2})))
    assert by_header.json()["status"] == "stored"
    basic = base64.b64encode(f"tts:{token}".encode()).decode()
    by_basic = ingest.http.post("/ingest/ttn", headers={"Authorization": f"Basic {basic}"},
                                content=body(tts_uplink(eui, f_cnt=3, decoded={"level": 3})))
    assert by_basic.json()["status"] == "stored"
    # TTS appends the per-message path to the base URL: /ingest/ttn/<token>/uplink
    with_suffix = ingest.http.post(f"/ingest/ttn/{token}/uplink",
                                   content=body(tts_uplink(eui, f_cnt=4, decoded={"level": 4})))
    assert with_suffix.json()["status"] == "stored"
    assert ingest.observation_count(eui) == 4


@pytest.mark.parametrize("headers,path", [
    ({}, "/ingest/ttn"),
    ({"Authorization": "Bearer opi_notarealtokenatallnotarealtoken"}, "/ingest/ttn"),
    ({"Authorization": "Bearer something-else"}, "/ingest/ttn"),
    ({"X-Ortspuls-Token": "opi_notarealtokenatallnotarealtoken"}, "/ingest/ttn"),
    ({}, "/ingest/ttn/opi_notarealtokenatallnotarealtoken"),
])
def test_bad_tokens_get_401_and_nothing_is_stored(ingest: Ingest, headers, path):
    eui = new_eui()
    response = ingest.http.post(path, headers=headers,
                                content=orjson.dumps(tts_uplink(eui, decoded={"x": 1})))
    assert response.status_code == 401
    assert response.json()["code"] == 401
    assert ingest.raw_rows(eui) == 0
    assert ingest.device(eui) is None


def test_token_of_the_other_network_is_refused(ingest: Ingest):
    cs_token = ingest.integration("chirpstack")
    eui = new_eui()
    response = ingest.ttn(cs_token, tts_uplink(eui, decoded={"x": 1}))
    assert response.status_code == 403
    assert "/ingest/chirpstack" in response.json()["message"]
    assert ingest.raw_rows(eui) == 0


def test_revoked_integration_stops_working(ingest: Ingest):
    name = "revoke-me-" + new_eui()
    token = ingest.cli("integration", "add", "ttn", "--name", name).stdout.strip().splitlines()[-1]
    eui = new_eui()
    assert ingest.ttn(token, tts_uplink(eui, decoded={"x": 1})).status_code == 200
    ingest.cli("integration", "revoke", name)
    from tests.ingest.conftest import wait_for

    # Verified tokens are cached for a few seconds.
    wait_for(lambda: ingest.ttn(token, tts_uplink(eui, f_cnt=9, decoded={"x": 2})
                                ).status_code == 401, "the revoked token to be refused")
    assert ingest.observation_count(eui) == 1


@pytest.mark.parametrize("body,fragment", [
    (b"{not json", "not valid JSON"),
    (b"", "empty"),
    (b"[1, 2, 3]", "JSON object"),
    (b'"uplink"', "JSON object"),
])
def test_malformed_bodies_get_400(ingest: Ingest, body, fragment):
    token = ingest.integration("ttn")
    response = ingest.http.post("/ingest/ttn", content=body,
                                headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400
    assert fragment in response.json()["message"]


@pytest.mark.parametrize("breakage,fragment", [
    (lambda m: m["uplink_message"].update(frm_payload="%%% not base64 %%%"), "base64"),
    (lambda m: m["end_device_ids"].update(dev_eui="XYZ", device_id=""), "16 hexadecimal"),
    (lambda m: m.update(end_device_ids={"application_ids": {}}), "names no device"),
    (lambda m: m["uplink_message"].update(f_cnt="many"), "f_cnt"),
    (lambda m: m["uplink_message"].update(received_at="yesterday"), "RFC 3339"),
])
def test_malformed_uplinks_get_400_and_nothing_is_stored(ingest: Ingest, breakage, fragment):
    token = ingest.integration("ttn")
    eui = new_eui()
    message = tts_uplink(eui, payload=b"\x01\x02", decoded={"x": 1})
    breakage(message)
    response = ingest.ttn(token, message)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["message"]
    assert ingest.raw_rows(eui) == 0
    assert ingest.device(eui) is None


def test_malformed_chirpstack_event_and_protobuf_encoding(ingest: Ingest):
    token = ingest.integration("chirpstack")
    eui = new_eui()
    event = chirpstack_uplink(eui, obj={"x": 1})
    event["deviceInfo"]["devEui"] = "not-an-eui"
    assert ingest.chirpstack(token, event).status_code == 400
    protobuf = ingest.http.post("/ingest/chirpstack?event=up", content=b"\x0a\x24",
                                headers={"Authorization": f"Bearer {token}",
                                         "Content-Type": "application/octet-stream"})
    assert protobuf.status_code == 415
    assert "JSON" in protobuf.json()["message"]


def test_other_tts_messages_are_acknowledged_and_ignored(ingest: Ingest):
    token = ingest.integration("ttn")
    eui = new_eui()
    join = {"end_device_ids": {"device_id": "dev1", "dev_eui": eui,
                               "application_ids": {"application_id": "app1"}},
            "correlation_ids": ["as:up:01E191YN5F2HMBQCBCVRF731VY"],
            "received_at": "2020-02-17T07:49:09.935284891Z",
            "join_accept": {"session_key_id": "AXBSH1Pk6Z0G166RlH16CQ==",
                            "received_at": "2020-02-17T07:49:09.736532315Z"}}
    response = ingest.ttn(token, join)
    assert response.json() == {"status": "ignored", "message": "join_accept"}
    assert ingest.device(eui) is None


@pytest.mark.parametrize("mode,stored", [("mark", 1), ("drop", 0)])
def test_simulated_uplinks_are_marked_or_dropped(ingest: Ingest, mode, stored):
    token = ingest.integration("ttn", "--simulated", mode)
    eui = new_eui()
    response = ingest.ttn(token, tts_uplink(eui, simulated=True, decoded={"temperature": 9.9}))
    assert response.json()["status"] == ("stored" if stored else "dropped")
    assert ingest.observation_count(eui) == stored
    if stored:
        obs = ingest.datastreams(eui)["temperature"]["Observations"][0]
        assert obs["parameters"] == {"simulated": True}


def test_device_without_location_gets_its_own_feature(ingest: Ingest):
    token = ingest.integration("ttn")
    eui = new_eui()
    assert ingest.ttn(token, tts_uplink(eui, decoded={"temperature": 5.5})).json()[
        "observations"] == 1
    obs = ingest.datastreams(eui)["temperature"]["Observations"][0]
    feature = ingest.sta.get(f"/Observations({obs['@iot.id']})/FeatureOfInterest").json()
    assert feature["feature"] == {"devEui": eui}


def test_chirpstack_status_join_and_location_events_update_the_device(ingest: Ingest):
    token = ingest.integration("chirpstack")
    eui = new_eui()
    assert ingest.chirpstack(token, chirpstack_uplink(eui, obj={"distance": 900})
                             ).json()["status"] == "stored"
    info = chirpstack_uplink(eui)["deviceInfo"]
    now = datetime.now(UTC).isoformat()
    status = {"deduplicationId": "1", "time": now, "deviceInfo": info, "margin": 7,
              "externalPowerSource": False, "batteryLevelUnavailable": False,
              "batteryLevel": 87.5}
    assert ingest.chirpstack(token, status, "status").json()["status"] == "updated"
    join = {"deduplicationId": "2", "time": now, "deviceInfo": info, "devAddr": "01020304"}
    assert ingest.chirpstack(token, join, "join").json()["status"] == "updated"
    moved = {"deduplicationId": "3", "time": now, "deviceInfo": info,
             "location": {"latitude": 48.1, "longitude": 11.5, "altitude": 520,
                          "source": "GEO_RESOLVER_TDOA", "accuracy": 50}}
    assert ingest.chirpstack(token, moved, "location").json()["status"] == "updated"
    assert ingest.chirpstack(token, {"deviceInfo": info}, "txack").json()["status"] == "ignored"

    health = ingest.device(eui)["health"]
    assert health["battery"] == {"value": 87.5, "unit": "%"}
    assert health["margin"] == 7
    assert "joinedAt" in health
    thing = ingest.thing(eui)
    locations = ingest.sta.get(f"/Things({thing['@iot.id']})/Locations").json()["value"]
    assert [loc["location"]["coordinates"] for loc in locations] == [[11.5, 48.1]]
    # Later observations belong to a feature at the new place.
    assert ingest.chirpstack(token, chirpstack_uplink(eui, f_cnt=2, obj={"distance": 910})
                             ).json()["status"] == "stored"
    last = ingest.datastreams(eui)["distance"]["Observations"][-1]
    feature = ingest.sta.get(f"/Observations({last['@iot.id']})/FeatureOfInterest").json()
    assert feature["feature"]["coordinates"][:2] == [11.5, 48.1]


def test_raw_log_shows_what_the_device_sent(ingest: Ingest):
    token = ingest.integration("ttn")
    eui = new_eui()
    ingest.ttn(token, tts_uplink(eui, f_port=5, f_cnt=41, payload=b"\x0e\x10\x04\xd2",
                                 decoded={"distance": 1234}))
    log = ingest.raw_log(eui)
    assert len(log) == 1
    entry = log[0]
    assert (entry["f_port"], entry["f_cnt"], entry["payload"]) == (5, 41, "0e1004d2")
    assert entry["decoded"] == {"distance": 1234}
    assert entry["status"] == "stored"
    assert entry["meta"]["rssi"] == -97
