"""Mapping overrides on the real server: rename, unit, scale/offset, ignore and derived values
(water level = mounting height − distance), per device and per profile."""

from __future__ import annotations

from tests.ingest.conftest import Ingest, new_eui, tts_uplink, unique


def test_mapping_overrides_for_one_device(ingest: Ingest):
    token = ingest.integration("ttn")
    eui = new_eui()
    first = tts_uplink(eui, f_cnt=1, decoded={"distance": 1500, "battery": 3.6, "mystery": 4})
    assert ingest.ttn(token, first).json()["observations"] == 3
    assert ingest.device(eui)["unmapped"] == ["mystery"]

    ingest.cli("devices", "set", eui, "--var", "mounting_height=2000")
    ingest.cli("mapping", "set", "battery", "--device", eui, "--ignore")
    ingest.cli("mapping", "set", "water_level", "--device", eui, "--derive",
               "(mounting_height - distance) / 10", "--name", "Pegelstand", "--unit", "cm")
    updated = ingest.cli("mapping", "set", "mystery", "--device", eui, "--name",
                         "Füllstand Regenfass", "--unit", "%", "--scale", "0.5", "--offset", "1")
    assert "1 Datastream(s)" in updated.stdout
    # The existing Datastream takes the new unit and name at once; the field is mapped now.
    assert ingest.device(eui)["unmapped"] == []
    mystery = ingest.datastreams(eui)["mystery"]
    assert mystery["unitOfMeasurement"]["definition"] == "ucum:%"
    assert mystery["name"].endswith("Füllstand Regenfass")

    second = tts_uplink(eui, f_cnt=2, decoded={"distance": 1234, "battery": 3.5, "mystery": 10})
    assert ingest.ttn(token, second).json()["observations"] == 3  # distance, mystery, level
    streams = ingest.datastreams(eui)
    assert [o["result"] for o in streams["battery"]["Observations"]] == [3.6]  # ignored now
    assert [o["result"] for o in streams["mystery"]["Observations"]] == [4, 6.0]
    level = streams["water_level"]
    assert level["Observations"][0]["result"] == 76.6
    assert level["unitOfMeasurement"]["definition"] == "ucum:cm"
    assert level["ObservedProperty"]["name"] == "Pegelstand"
    listing = ingest.cli("mapping", "list").stdout
    assert "expression=(mounting_height - distance) / 10" in listing


def test_profile_mapping_applies_to_every_device_of_the_profile(ingest: Ingest):
    model = unique("tank")
    ingest.add_codec("pegel-distance.js", "--vendor", "ortspuls-test", "--model", model)
    profile = f"ortspuls-test/{model}"
    ingest.cli("mapping", "set", "distance", "--profile", profile, "--scale", "0.001",
               "--unit", "m", "--name", "Abstand zur Wasseroberfläche")
    token = ingest.integration("ttn")
    euis = [new_eui(), new_eui()]
    for eui in euis:
        payload = (3600).to_bytes(2, "big") + (2500).to_bytes(2, "big")
        message = tts_uplink(eui, payload=payload, brand="ortspuls-test", model=model)
        assert ingest.ttn(token, message).json()["status"] == "stored"
    for eui in euis:
        distance = ingest.datastreams(eui)["distance"]
        assert distance["Observations"][0]["result"] == 2.5
        assert distance["unitOfMeasurement"]["symbol"] == "m"
        assert distance["ObservedProperty"]["name"] == "Abstand zur Wasseroberfläche"


def test_bad_expression_is_refused_by_the_cli(ingest: Ingest):
    result = ingest.cli("mapping", "set", "x", "--derive", "__import__('os')", check=False)
    assert result.returncode == 2
    assert "not allowed" in result.stderr


def test_radio_metadata_as_datastreams(ingest: Ingest):
    token = ingest.integration("ttn", "--radio-datastreams")
    eui = new_eui()
    assert ingest.ttn(token, tts_uplink(eui, decoded={"temperature": 7.0})).json()[
        "observations"] == 3
    streams = ingest.datastreams(eui)
    assert streams["radio.rssi"]["Observations"][0]["result"] == -97
    assert streams["radio.rssi"]["unitOfMeasurement"]["symbol"] == "dBm"
    assert streams["radio.snr"]["ObservedProperty"]["name"] == "Signal-Rausch-Abstand (SNR)"
