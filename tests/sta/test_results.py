"""Observation results of every JSON type come back exactly as they were sent."""

from __future__ import annotations

import pytest

RESULTS = [
    0, 1, -3, 42, 2**53, -(2**53), 2**60, 2**63 - 1,
    0.0, 2.5, -0.125, 1e-300, 1e300, 21.7,
    "", "Hochwasser", "3.5", "ümlaut ✓",
    True, False,
    {}, {"a": 1, "b": [1, 2, {"c": None}], "d": "x"},
    [], [1, "zwei", 3.0, None, True, {"e": []}],
    None,
]


@pytest.fixture(scope="module")
def datastream(server):
    from tests.sta.conftest import Make

    with server.client("admin") as api:
        return Make(api).datastream()


@pytest.mark.parametrize("result", RESULTS, ids=[repr(r)[:30] for r in RESULTS])
def test_result_round_trips(api, anon, datastream, result):
    created = api.post(f"/Datastreams({datastream['@iot.id']})/Observations",
                       json={"result": result})
    assert created.status_code == 201, created.text
    assert _same(created.json()["result"], result)
    got = anon.get(f"/Observations({created.json()['@iot.id']})").json()
    assert _same(got["result"], result)
    # Through the general path (Observation with a Datastream link) as well.
    linked = api.post("/Observations", json={"result": result,
                                              "Datastream": {"@iot.id": datastream["@iot.id"]}})
    assert linked.status_code == 201
    got = anon.get(f"/Observations({linked.json()['@iot.id']})/result").json()
    assert _same(got["result"], result)


def _same(a, b) -> bool:
    """Equal, with the same JSON type at every level (1 is not 1.0, True is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_result_is_mandatory(api, datastream):
    response = api.post(f"/Datastreams({datastream['@iot.id']})/Observations",
                        json={"phenomenonTime": "2024-01-01T00:00:00Z"})
    assert response.status_code == 400
    assert "result" in response.json()["message"]


def test_update_changes_result_type(api, anon, datastream):
    created = api.post(f"/Datastreams({datastream['@iot.id']})/Observations", json={"result": 5})
    obs_id = created.json()["@iot.id"]
    for value in ("fünf", [5], {"wert": 5}, None, 5.5, False):
        assert api.patch(f"/Observations({obs_id})", json={"result": value}).status_code == 200
        assert _same(anon.get(f"/Observations({obs_id})").json()["result"], value)


@pytest.mark.parametrize("value", [5, 2.5, "https://example.org/datenblatt.pdf", True, [1, 2],
                                   {"Typ": "SDI-12"}])
def test_json_fields_keep_any_value(api, anon, datastream, value):
    """Sensor.metadata and Observation.resultQuality take any JSON value, numbers included."""
    sensor = api.post("/Sensors", json={"name": "S", "description": "d",
                                        "encodingType": "text/plain", "metadata": value})
    assert sensor.status_code == 201
    assert _same(anon.get(f"/Sensors({sensor.json()['@iot.id']})").json()["metadata"], value)
    obs = api.post(f"/Datastreams({datastream['@iot.id']})/Observations",
                   json={"result": 1, "resultQuality": value})
    assert obs.status_code == 201
    got = anon.get(f"/Observations({obs.json()['@iot.id']})/resultQuality").json()
    assert _same(got["resultQuality"], value)
