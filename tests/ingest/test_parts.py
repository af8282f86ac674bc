"""The ingest parts on their own: adapters, the units dictionary, payload flattening, mapping
expressions, JSON paths and the codec runner's limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.ingest.conftest import CODECS, chirpstack_uplink, new_eui, tts_uplink

from ortspuls.ingest.adapters import chirpstack_uplink as cs_adapter
from ortspuls.ingest.adapters import tts_uplink as tts_adapter
from ortspuls.ingest.codecs import Codec, CodecError, CodecRunner
from ortspuls.ingest.fields import flatten, normalized_groups
from ortspuls.ingest.mapping import ExpressionError, FieldRule, apply_rules, evaluate
from ortspuls.ingest.pollers import PathError, backoff_delay, resolve
from ortspuls.ingest.units import quantity_for
from ortspuls.sta.errors import BadRequest

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def test_tts_adapter_reads_the_uplink_message():
    eui = new_eui()
    message = tts_uplink(eui.lower(), f_port=None, f_cnt=9, payload=b"\x01\x02",
                         brand="dragino", model="ldds75", received_at=NOW,
                         gateway_location={"latitude": 50.0, "longitude": 8.0},
                         correlation="as:up:01HX6YGQ7E0V83YRZ7K4S5J4ZN")
    uplink = tts_adapter(message)
    assert uplink.dev_eui == eui
    assert uplink.f_port == 0 and uplink.f_cnt == 9
    assert uplink.payload == b"\x01\x02"
    assert uplink.received_at == NOW
    assert uplink.dedup_key == "tts:as:up:01HX6YGQ7E0V83YRZ7K4S5J4ZN"
    assert (uplink.brand, uplink.model, uplink.firmware) == ("dragino", "ldds75", "1.0")
    assert uplink.frequency == 867700000
    assert (uplink.rssi, uplink.snr, uplink.gateway, uplink.gateways) == (-97, 7.5,
                                                                           "gw-rathaus", 2)
    assert uplink.location == {"latitude": 50.0, "longitude": 8.0, "source": "gateway",
                               "gateway": "gw-rathaus"}


def test_tts_adapter_accepts_old_coding_rate_place_and_numeric_frequency():
    message = tts_uplink(new_eui(), frequency=868100000)
    settings = message["uplink_message"]["settings"]
    settings["coding_rate"] = settings["data_rate"]["lora"].pop("coding_rate")
    assert tts_adapter(message).frequency == 868100000


def test_chirpstack_adapter_reads_the_up_event():
    eui = new_eui()
    event = chirpstack_uplink(eui, f_cnt=3, payload=b"\xff", received_at=NOW,
                              dedup="0f4f7e0c-3b7d-4a2c-9d0a-3f4c1e1c2a11",
                              tags={"mounting_height": "2000"})
    uplink = cs_adapter(event)
    assert uplink.dev_eui == eui
    assert uplink.dedup_key == "cs:0f4f7e0c-3b7d-4a2c-9d0a-3f4c1e1c2a11"
    assert uplink.payload == b"\xff"
    assert uplink.frequency == 868100000
    assert uplink.spreading_factor == 7
    assert uplink.tags == {"mounting_height": "2000"}
    assert uplink.profile_name == "Pegelsensor"


def test_adapter_errors_are_bad_requests():
    message = tts_uplink(new_eui())
    message["uplink_message"]["settings"]["frequency"] = "fast"
    with pytest.raises(BadRequest, match="frequency"):
        tts_adapter(message)


@pytest.mark.parametrize("field,value,hint,name,code", [
    ("air.temperature", 21.0, None, "Lufttemperatur", "Cel"),
    ("temperature_c", 21.0, None, "Temperatur", "Cel"),
    ("humidity_pct", 40, None, "Relative Luftfeuchte", "%"),
    ("water_SOIL", "23.4", None, "Bodenfeuchte", "%"),
    ("battery", 3.6, None, "Batteriespannung", "V"),
    ("battery", 87, None, "Batteriestand", "%"),
    ("pressure", 0.5, "bar", "Luftdruck", "bar"),
    ("line_1.total_in", 4, None, "Eingänge gesamt", "{#}"),
    ("pm2_5", 12, None, "Feinstaub PM2,5", "ug/m3"),
    ("LAeq", 55.1, None, "Schallpegel (LAeq)", "dB"),
    ("wind.speed", 3.2, None, "Windgeschwindigkeit", "m/s"),
])
def test_units_dictionary(field, value, hint, name, code):
    q = quantity_for(field, value, hint)
    assert q.name == name
    assert q.unit.code == code
    assert q.unit.as_sta()["definition"] == f"ucum:{code}"


def test_unknown_field_has_the_unknown_unit():
    q = quantity_for("zzz_quux", 3)
    assert not q.known
    assert q.unit.as_sta() == {"name": "unbekannte Einheit (unknown unit)", "symbol": None,
                               "definition": None}


def test_flatten_keeps_numbers_booleans_and_numeric_strings():
    data = {"air": {"temperature": 21.5, "co2": "612"}, "status": "Invalid Reading",
            "occupied": False, "list": [1, 2], "none": None, "time": 1700000000,
            "pressure": {"displayName": "Pressure", "unit": "bar", "value": 0.51},
            "nan": float("nan")}
    fields = flatten(data)
    assert {k: v.value for k, v in fields.items()} == {
        "air.temperature": 21.5, "air.co2": 612.0, "occupied": False, "pressure": 0.51}
    assert fields["pressure"].unit_hint == "bar"


def test_normalized_payload_groups_with_their_own_times():
    groups = normalized_groups([{"air": {"temperature": 20}, "time": "2025-05-01T10:00:00Z"},
                                {"air": {"temperature": 21}}])
    assert groups[0][0] == datetime(2025, 5, 1, 10, tzinfo=UTC)
    assert groups[1][0] is None
    assert groups[1][1]["air.temperature"].value == 21


def test_mapping_rules_rename_scale_ignore_and_derive():
    fields = flatten({"distance": 1234, "battery": 3.6, "temperature": 21.5})
    rules = {
        "distance": FieldRule("distance", scale=0.1, unit={"name": "cm", "symbol": "cm",
                                                           "definition": "ucum:cm"}),
        "battery": FieldRule("battery", ignore=True),
        "temperature": FieldRule("temperature", name="Wassertemperatur"),
        "water_level": FieldRule("water_level", expression="mounting_height - distance",
                                 name="Pegelstand"),
    }
    mapped, problems = apply_rules(fields, rules, {"mounting_height": 250})
    values = {m.field: (round(m.value, 6), m.quantity.name) for m in mapped}
    assert values == {"distance": (123.4, "Abstand"),
                      "temperature": (21.5, "Wassertemperatur"),
                      "water_level": (126.6, "Pegelstand")}
    assert problems == []


def test_derived_value_is_skipped_when_an_input_is_missing():
    mapped, problems = apply_rules(flatten({"temperature": 3}),
                                   {"level": FieldRule("level", expression="200 - distance")})
    assert [m.field for m in mapped] == ["temperature"]
    assert problems == []


@pytest.mark.parametrize("expression", [
    "__import__('os').system('true')", "distance.__class__", "[1, 2]", "a if b else c",
    "open('x')", "lambda: 1", "2 ** 100000",
])
def test_expressions_cannot_run_code(expression):
    with pytest.raises(ExpressionError):
        evaluate(expression, {"distance": 1, "a": 1, "b": 1, "c": 1})


def test_json_paths():
    doc = {"carparks": [{"id": "P1", "free": 12}, {"id": "P2", "free": "30"}],
           "a b": {"x": [1, 2, 3]}, "flags": [{"open": True, "n": 1}]}
    assert resolve(doc, "$.carparks[?(@.id == 'P2')].free") == "30"
    assert resolve(doc, "$['a b'].x[-1]") == 3
    assert resolve(doc, "$.flags[?(@.open == true)].n") == 1
    with pytest.raises(PathError):
        resolve(doc, "$.carparks[?(@.id == 'P9')].free")
    with pytest.raises(PathError):
        resolve(doc, "carparks")


def test_poller_backoff_doubles_up_to_an_hour():
    assert [backoff_delay(60, n) for n in range(4)] == [60, 120, 240, 480]
    assert backoff_delay(60, 10) == 3600
    assert backoff_delay(7200, 3) == 7200  # never shorter than the interval


def _codec(file: str, ident: int) -> Codec:
    return Codec.of(ident, file, (CODECS / file).read_text())


def test_codec_runner_decodes_and_reports_errors():
    runner = CodecRunner()
    decoded = runner.decode(_codec("raum-co2.js", 1), bytes([0x07, 0x7D, 0x58, 0x02]), 85, NOW)
    assert decoded.data == {"co2": 600}
    assert decoded.normalized == {"air": {"co2": 600}}
    with pytest.raises(CodecError, match="unknown channel"):
        runner.decode(_codec("raum-co2.js", 1), bytes([0x09, 0x09]), 85, NOW)


def test_codec_runner_limits_and_suspension():
    runner = CodecRunner(time_limit_ms=50, memory_limit_mb=8, suspend_after=3,
                         suspend_seconds=60)
    evil = _codec("boesartig.js", 7)
    assert runner.decode(evil, b"\x01\x02", 9, NOW).data == {"value": 2}
    with pytest.raises(CodecError, match="time limit"):
        runner.decode(evil, b"\x01", 1, NOW)
    with pytest.raises(CodecError, match="memory limit"):
        runner.decode(evil, b"\x01", 2, NOW)
    assert runner.decode(evil, b"\x01", 9, NOW).data == {"value": 1}  # fresh context works
    with pytest.raises(CodecError, match="stack overflow"):
        runner.decode(evil, b"\x01", 3, NOW)
    for port in (1, 2):
        with pytest.raises(CodecError):
            runner.decode(evil, b"\x01", port, NOW)
    with pytest.raises(CodecError, match="suspended"):
        runner.decode(evil, b"\x01", 9, NOW)
    # Another codec is not affected.
    assert runner.decode(_codec("parkplatz.js", 8), b"\x01", 1, NOW).data["occupied"] is True


def test_legacy_decoder_signatures():
    runner = CodecRunner()
    ttn_v2 = Codec.of(1, "v2", "function Decoder(bytes, port) { return {n: bytes[0] + port}; }")
    cs_v3 = Codec.of(2, "v3", "function Decode(fPort, bytes, variables) "
                              "{ return {n: bytes[0] * fPort}; }")
    assert runner.decode(ttn_v2, b"\x05", 2, NOW).data == {"n": 7}
    assert runner.decode(cs_v3, b"\x05", 2, NOW).data == {"n": 10}
