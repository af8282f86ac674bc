"""Payload codecs on the real server: uploaded and imported codecs, ES2015+ syntax, normalized
payloads, codec errors and a misbehaving codec (time and memory limits)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import httpx
from tests.ingest.conftest import CODECS, Ingest, chirpstack_uplink, new_eui, tts_uplink, unique


def _distance_payload(battery_mv: int, distance_mm: int) -> bytes:
    return battery_mv.to_bytes(2, "big") + distance_mm.to_bytes(2, "big")


def test_uploaded_codec_decodes_base64_payload_matched_by_tts_version_ids(ingest: Ingest):
    model = unique("pegel")
    ingest.add_codec("pegel-distance.js", "--vendor", "ortspuls-test", "--model", model)
    token = ingest.integration("ttn")
    eui = new_eui()
    message = tts_uplink(eui, payload=_distance_payload(3600, 1234), brand="ortspuls-test",
                         model=model)
    assert "decoded_payload" not in message["uplink_message"]
    response = ingest.ttn(token, message)
    assert response.json() == {"status": "stored", "device": eui, "observations": 2}
    streams = ingest.datastreams(eui)
    assert streams["distance"]["Observations"][0]["result"] == 1234
    assert streams["distance"]["unitOfMeasurement"]["definition"] == "ucum:mm"
    assert streams["distance"]["ObservedProperty"]["name"] == "Abstand"
    assert streams["battery"]["Observations"][0]["result"] == 3.6
    assert streams["battery"]["unitOfMeasurement"]["symbol"] == "V"


def test_es2015_codec_for_a_chirpstack_device_profile(ingest: Ingest):
    profile = unique("Bodenfeuchte")
    ingest.add_codec("boden-feuchte.js", "--profile", profile)
    token = ingest.integration("chirpstack")
    eui = new_eui()
    payload = bytes([0x0C, 0xE4, 0x09, 0x29, 0xFF, 0x38, 0x01, 0x2C])  # 3.3 V, 23.45 %, -2 °C
    event = chirpstack_uplink(eui, payload=payload, profile=profile,
                              tags={"depth": "30"})
    assert "object" not in event  # ChirpStack had no codec for it
    response = ingest.chirpstack(token, event)
    assert response.json()["status"] == "stored", response.text
    streams = ingest.datastreams(eui)
    values = {f: ds["Observations"][0]["result"] for f, ds in streams.items()}
    # toFixed strings became numbers; the depth came from the device tags (input.variables).
    assert values == {"Bat": 3.3, "water_SOIL": 23.45, "temp_SOIL": -2.0, "conduct_SOIL": 300,
                      "depth_cm": 30}
    assert streams["water_SOIL"]["ObservedProperty"]["name"] == "Bodenfeuchte"
    assert streams["temp_SOIL"]["ObservedProperty"]["name"] == "Bodentemperatur"
    assert streams["temp_SOIL"]["unitOfMeasurement"]["definition"] == "ucum:Cel"
    assert streams["conduct_SOIL"]["unitOfMeasurement"]["definition"] == "ucum:uS/cm"
    assert streams["Bat"]["unitOfMeasurement"]["definition"] == "ucum:V"
    assert streams["depth_cm"]["unitOfMeasurement"]["definition"] == "ucum:cm"


CO2_PAYLOAD = bytes([0x01, 0x75, 90, 0x03, 0x67, 0xD8, 0x00, 0x04, 0x68, 0x64,
                     0x07, 0x7D, 0x58, 0x02])  # battery 90 %, 21.6 °C, 50 %, 600 ppm


def test_codec_with_normalize_uplink_feeds_normalized_fields(ingest: Ingest):
    codec = ingest.add_codec("raum-co2.js")
    decoded = ingest.integration("ttn", "--codec", codec)
    normalized = ingest.integration("ttn", "--codec", codec, "--payload", "normalized")
    plain, norm = new_eui(), new_eui()
    assert ingest.ttn(decoded, tts_uplink(plain, f_port=85, payload=CO2_PAYLOAD)).json()[
        "observations"] == 4
    assert ingest.ttn(normalized, tts_uplink(norm, f_port=85, payload=CO2_PAYLOAD)).json()[
        "observations"] == 3
    streams = ingest.datastreams(plain)
    assert streams["battery"]["unitOfMeasurement"]["definition"] == "ucum:%"  # 90: percent
    assert streams["co2"]["Observations"][0]["result"] == 600
    normalized_streams = ingest.datastreams(norm)
    assert set(normalized_streams) == {"air.temperature", "air.relativeHumidity", "air.co2"}
    assert normalized_streams["air.temperature"]["ObservedProperty"]["name"] == "Lufttemperatur"
    assert normalized_streams["air.co2"]["Observations"][0]["result"] == 600


def test_parking_codec_booleans_ports_and_missing_f_port(ingest: Ingest):
    codec = ingest.add_codec("parkplatz.js")
    token = ingest.integration("ttn", "--codec", codec)
    eui = new_eui()
    assert ingest.ttn(token, tts_uplink(eui, f_port=1, f_cnt=1, payload=b"\x01")).json()[
        "observations"] == 1
    assert ingest.ttn(token, tts_uplink(eui, f_port=2, f_cnt=2, payload=b"\x00\xfb")).json()[
        "observations"] == 2
    startup = ingest.ttn(token, tts_uplink(eui, f_port=3, f_cnt=3, payload=b"\x01\x02"))
    assert startup.json() == {"status": "stored", "device": eui, "observations": 0}
    # No f_port in the message means port 0, which this codec does not know.
    no_port = ingest.ttn(token, tts_uplink(eui, f_port=None, f_cnt=4, payload=b"\x01"))
    assert no_port.status_code == 200
    assert no_port.json()["status"] == "codec_error"
    assert "unknown FPort 0" in no_port.json()["error"]
    streams = ingest.datastreams(eui)
    assert [o["result"] for o in streams["occupied"]["Observations"]] == [True, False]
    assert streams["occupied"]["observationType"].endswith("OM_TruthObservation")
    assert streams["temperature"]["Observations"][0]["result"] == -5
    assert ingest.raw_log(eui)[0]["f_port"] == 0


def test_codec_error_stores_nothing_and_shows_in_the_device_status(ingest: Ingest):
    codec = ingest.add_codec("pegel-distance.js")
    token = ingest.integration("ttn", "--codec", codec)
    eui = new_eui()
    bad = ingest.ttn(token, tts_uplink(eui, f_cnt=1, payload=b"\x0e"))  # too short
    assert bad.status_code == 200
    assert bad.json()["status"] == "codec_error"
    assert "payload too short" in bad.json()["error"]
    device = ingest.device(eui)
    assert device["status"] == "error"
    assert "payload too short" in device["last_error"]
    assert device["errors"] == 1
    assert device["thing_id"] is None
    assert ingest.observation_count(eui) == 0
    assert ingest.raw_log(eui)[0]["status"] == "codec_error"
    # The same uplink again is tried again (its key was not kept), and a good one clears it.
    assert ingest.ttn(token, tts_uplink(eui, f_cnt=1, payload=b"\x0e")).json()[
        "status"] == "codec_error"
    good = ingest.ttn(token, tts_uplink(eui, f_cnt=2, payload=_distance_payload(3500, 800)))
    assert good.json()["status"] == "stored"
    device = ingest.device(eui)
    assert (device["status"], device["last_error"], device["errors"]) == ("ok", None, 2)


def test_misbehaving_codec_hits_its_limits_and_the_server_carries_on(ingest: Ingest):
    evil = ingest.add_codec("boesartig.js")
    good = ingest.add_codec("pegel-distance.js")
    evil_token = ingest.integration("ttn", "--codec", evil)
    good_token = ingest.integration("ttn", "--codec", good)
    victim, bystander = new_eui(), new_eui()

    endless = ingest.ttn(evil_token, tts_uplink(victim, f_port=1, f_cnt=1, payload=b"\x01"))
    assert endless.status_code == 200
    assert endless.json()["status"] == "codec_error"
    assert "time limit" in endless.json()["error"]
    assert ingest.ttn(good_token, tts_uplink(bystander, f_cnt=1,
                                             payload=_distance_payload(3600, 500))
                      ).json()["status"] == "stored"

    hog = ingest.ttn(evil_token, tts_uplink(victim, f_port=2, f_cnt=2, payload=b"\x01"))
    assert hog.json()["status"] == "codec_error"
    assert "memory limit" in hog.json()["error"]
    assert ingest.ttn(good_token, tts_uplink(bystander, f_cnt=2,
                                             payload=_distance_payload(3600, 510))
                      ).json()["status"] == "stored"

    throws = ingest.ttn(evil_token, tts_uplink(victim, f_port=4, f_cnt=3, payload=b"\x01"))
    assert "kaputt" in throws.json()["error"]
    assert httpx.get(f"{ingest.server.url}/healthz").status_code == 200
    assert ingest.observation_count(victim) == 0
    assert ingest.observation_count(bystander) == 4  # distance and battery, twice
    assert "limit" in ingest.device(victim)["last_error"] or "kaputt" in ingest.device(
        victim)["last_error"]


def test_uplink_without_a_codec_is_logged_until_one_is_assigned(ingest: Ingest):
    token = ingest.integration("ttn")
    eui = new_eui()
    first = ingest.ttn(token, tts_uplink(eui, f_cnt=1, payload=_distance_payload(3600, 700)))
    assert first.json()["status"] == "no_codec"
    assert ingest.device(eui)["status"] == "no_codec"
    assert ingest.observation_count(eui) == 0
    codec = ingest.add_codec("pegel-distance.js")
    ingest.cli("devices", "set", eui.lower(), "--codec", codec)
    second = ingest.ttn(token, tts_uplink(eui, f_cnt=2, payload=_distance_payload(3600, 710)))
    assert second.json()["status"] == "stored"
    assert ingest.datastreams(eui)["distance"]["Observations"][0]["result"] == 710


def _repository(root: Path, vendor: str, model: str) -> Path:
    folder = root / "vendor" / vendor
    folder.mkdir(parents=True)
    (root / "vendor" / "index.yaml").write_text(
        f"vendors:\n  - id: {vendor}\n    name: Ortspuls Testgeräte\n")
    (folder / "index.yaml").write_text(f"endDevices:\n  - {model}\n")
    (folder / f"{model}.yaml").write_text(textwrap.dedent(f"""\
        name: Bodenfeuchtesensor BF-1
        description: Bodenfeuchte, Bodentemperatur und Leitfähigkeit an Stadtbäumen
        firmwareVersions:
          - version: '1.0'
            numeric: 1
            profiles:
              EU863-870:
                id: {model}-profile
                lorawanCertified: false
                codec: {model}-codec
        sensors:
          - moisture
          - temperature
          - conductivity
        productURL: https://example.org/bf-1
        """))
    (folder / f"{model}-codec.yaml").write_text(textwrap.dedent("""\
        uplinkDecoder:
          fileName: boden-feuchte.js
          examples:
            - description: tree in the park
              input:
                fPort: 2
                bytes: [12, 228, 9, 41, 8, 52, 1, 44]
              output:
                data:
                  Bat: 3.3
                  water_SOIL: '23.45'
                  temp_SOIL: '21.00'
                  conduct_SOIL: 300
            - description: Unknown FPort
              input:
                fPort: 42
                bytes: [1]
              output:
                errors:
                  - unknown FPort 42
            - description: a wrong expectation, to be reported
              input:
                fPort: 2
                bytes: [12, 228, 9, 41, 8, 52, 1, 44]
              output:
                data:
                  Bat: 9.9
        """))
    shutil.copy(CODECS / "boden-feuchte.js", folder / "boden-feuchte.js")
    return root


def test_codecs_import_reads_a_device_repository_and_checks_its_examples(ingest: Ingest,
                                                                         tmp_path):
    vendor, model = unique("ortspuls"), unique("bf1")
    root = _repository(tmp_path / "lorawan-devices", vendor, model)
    result = ingest.cli("codecs", "import", str(root))
    assert "1 Codecs, 1 Geräteprofile" in result.stdout
    assert "2 ok, 1 abweichend" in result.stdout
    assert "a wrong expectation" in result.stdout
    listing = ingest.cli("codecs", "list").stdout
    assert f"{vendor}/{model}-codec" in listing

    token = ingest.integration("ttn")
    eui = new_eui()
    message = tts_uplink(eui, payload=bytes([12, 228, 9, 41, 8, 52, 1, 44]), brand=vendor,
                         model=model)
    assert ingest.ttn(token, message).json()["observations"] == 4
    streams = ingest.datastreams(eui)
    assert streams["water_SOIL"]["Observations"][0]["result"] == 23.45
    assert streams["water_SOIL"]["Sensor"]["name"] == "Ortspuls Testgeräte Bodenfeuchtesensor BF-1"
    assert streams["water_SOIL"]["Sensor"]["metadata"] == "https://example.org/bf-1"


def test_codec_that_does_not_compile_is_refused_by_the_cli(ingest: Ingest, tmp_path):
    broken = tmp_path / "broken.js"
    broken.write_text("function decodeUplink(input) { return {data: {x: 1} ")
    result = ingest.cli("codecs", "add", "--name", unique("broken"), "--file", str(broken),
                        check=False)
    assert result.returncode == 2
    assert "SyntaxError" in result.stderr
