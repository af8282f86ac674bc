"""The demo's codecs (JavaScript, TTN Device Repository layout) run in the real QuickJS runner
and mapped by the real mapping rules give exactly the values and JSON number types the seeding
writes in bulk."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from ortspuls.demo import model, payloads
from ortspuls.demo.seed import REPOSITORY
from ortspuls.demo.town import DEVICES, KINDS, PROFILE_RULES, VENDOR
from ortspuls.ingest.admin import check_examples
from ortspuls.ingest.codecs import Codec, CodecRunner
from ortspuls.ingest.fields import flatten
from ortspuls.ingest.mapping import FieldRule, apply_rules
from ortspuls.ingest.units import unit_from_argument
from ortspuls.sta.values import RESULT_BOOL, RESULT_FLOAT, RESULT_INT, encode_result

CODEC_DIR = REPOSITORY / "vendor" / VENDOR
START = int(datetime(2025, 1, 10, tzinfo=UTC).timestamp())


def _codec(kind: str) -> Codec:
    model_id = KINDS[kind].model
    return Codec.of(1, model_id, (CODEC_DIR / f"{model_id}.js").read_text())


def _rules(kind: str) -> dict[str, FieldRule]:
    out = {}
    for rule in PROFILE_RULES:
        if rule["profile"] == KINDS[kind].model:
            unit = unit_from_argument(rule["unit"]).as_sta() if rule.get("unit") else None
            out[rule["field"]] = FieldRule(rule["field"], bool(rule.get("ignore")),
                                           rule.get("name"), rule.get("definition"), unit,
                                           None, None, rule.get("expression"))
    return out


@pytest.fixture(scope="module")
def environment() -> model.Environment:
    return model.Environment(3, START - 40 * 86_400, START + 60 * 86_400)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_codec_and_rules_match_the_bulk_values(kind, environment):
    device = next(d for d in DEVICES if d.kind == kind)
    times = model.measurement_times(device, START, START + 55 * 86_400)[::23]
    raw = model.sample(environment, device, times, device.spec.cadence_s)
    expected = payloads.mapped(device, payloads.decoded(kind, raw))
    runner = CodecRunner()
    codec = _codec(kind)
    rules = _rules(kind)
    for i, when in enumerate(times.tolist()):
        payload = payloads.encode(kind, {k: int(v[i]) for k, v in raw.items()})
        decoded = runner.decode(codec, payload, 1, datetime.fromtimestamp(when, UTC), {})
        mapped, problems = apply_rules(flatten(decoded.data), rules,
                                       payloads.device_variables(device))
        assert not problems
        got = {m.field: m.value for m in mapped}
        assert set(got) == set(expected)
        for field, column in expected.items():
            kind_code, number, _, _ = encode_result(got[field])
            assert number == column.numbers[i], (field, got[field], column.numbers[i])
            assert kind_code == column.types[i], (field, got[field])


def test_status_uplinks_match(environment):
    runner = CodecRunner()
    for device in (d for d in DEVICES if d.spec.battery):
        times = model.status_times(device, START, START + 20 * 86_400)
        mv = model.battery_mv(environment, device, times)
        expected = payloads.decoded_status(mv)["battery_voltage"]
        for i, value in enumerate(mv.tolist()):
            decoded = runner.decode(_codec(device.kind), payloads.encode_status(value), 2,
                                    datetime.fromtimestamp(int(times[i]), UTC), {})
            kind_code, number, _, _ = encode_result(decoded.data["battery_voltage"])
            assert number == expected.numbers[i]
            assert kind_code == expected.types[i]
            assert 3.0 < number < 3.8


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_repository_examples_pass(kind):
    import yaml

    examples = yaml.safe_load((CODEC_DIR / f"{KINDS[kind].model}-codec.yaml").read_text())
    passed, failures = check_examples(_codec(kind), examples["uplinkDecoder"]["examples"])
    assert failures == []
    assert passed == len(examples["uplinkDecoder"]["examples"]) >= 2


def test_result_types_cover_numbers_and_flags():
    assert {int(t) for t in payloads.decoded("space", {"occupied": np.array([0, 1])})[
        "occupied"].types} == {RESULT_BOOL}
    temperature = payloads.decoded("weather_small", {
        "air_temperature": np.array([2300, 2315]), "humidity": np.array([100, 101]),
        "wind_speed": np.array([10, 11]), "rain": np.array([0, 1])})
    assert temperature["air_temperature"].types.tolist() == [RESULT_INT, RESULT_FLOAT]
