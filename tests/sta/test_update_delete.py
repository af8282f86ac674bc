"""Update (PATCH merge, PUT replace, JSON Patch) and delete with the standard's cascades."""

from __future__ import annotations

import json

JSON_PATCH = {"Content-Type": "application/json-patch+json"}


def patch_ops(api, path: str, operations: list[dict]):
    return api.patch(path, content=json.dumps(operations), headers=JSON_PATCH)


# ---------------------------------------------------------------------------------------------
# PATCH, PUT, JSON Patch


def test_patch_merges(api, anon, make):
    thing = make.thing(properties={"a": 1})
    response = api.patch(f"/Things({thing['@iot.id']})", json={"description": "neu"})
    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "neu"
    assert body["name"] == thing["name"] and body["properties"] == {"a": 1}
    assert anon.get(f"/Things({thing['@iot.id']})").json() == body


def test_patch_relinks_to_one(api, anon, make):
    ds = make.datastream()
    sensor = make.sensor()
    response = api.patch(f"/Datastreams({ds['@iot.id']})",
                         json={"Sensor": {"@iot.id": sensor["@iot.id"]}})
    assert response.status_code == 200
    assert anon.get(f"/Datastreams({ds['@iot.id']})/Sensor").json()["@iot.id"] == sensor[
        "@iot.id"]


def test_put_replaces_and_nulls_omitted_optional_fields(api, anon, make):
    thing = make.thing(properties={"a": 1})
    response = api.put(f"/Things({thing['@iot.id']})",
                       json={"name": "Ersetzt", "description": "ganz neu"})
    assert response.status_code == 200
    got = anon.get(f"/Things({thing['@iot.id']})").json()
    assert got["name"] == "Ersetzt" and got["description"] == "ganz neu"
    assert got["properties"] is None
    # Relations are not fields: the Thing keeps its Locations.
    assert anon.get(f"/Things({thing['@iot.id']})/Locations").json()["value"]


def test_put_without_mandatory_field_is_400_and_changes_nothing(api, anon, make):
    thing = make.thing()
    response = api.put(f"/Things({thing['@iot.id']})", json={"name": "nur Name"})
    assert response.status_code == 400
    assert "description" in response.json()["message"]
    assert anon.get(f"/Things({thing['@iot.id']})").json()["name"] == thing["name"]


def test_json_patch(api, anon, make):
    thing = make.thing(properties={"a": 1, "liste": [1, 2]})
    response = patch_ops(api, f"/Things({thing['@iot.id']})", [
        {"op": "test", "path": "/name", "value": thing["name"]},
        {"op": "replace", "path": "/description", "value": "gepatcht"},
        {"op": "add", "path": "/properties/b", "value": {"c": True}},
        {"op": "remove", "path": "/properties/a"},
        {"op": "add", "path": "/properties/liste/-", "value": 3},
        {"op": "copy", "from": "/name", "path": "/properties/alter_name"},
    ])
    assert response.status_code == 200, response.text
    got = anon.get(f"/Things({thing['@iot.id']})").json()
    assert got["description"] == "gepatcht"
    assert got["properties"] == {"b": {"c": True}, "liste": [1, 2, 3],
                                 "alter_name": thing["name"]}


def test_json_patch_failing_test_is_409_and_changes_nothing(api, anon, make):
    thing = make.thing(properties={"a": 1})
    before = anon.get(f"/Things({thing['@iot.id']})").json()
    response = patch_ops(api, f"/Things({thing['@iot.id']})", [
        {"op": "replace", "path": "/description", "value": "sollte nicht bleiben"},
        {"op": "test", "path": "/name", "value": "ein anderer Name"},
    ])
    assert response.status_code == 409
    assert "/name" in response.json()["message"]
    assert anon.get(f"/Things({thing['@iot.id']})").json() == before


def test_json_patch_errors_are_400(api, make):
    thing = make.thing()
    path = f"/Things({thing['@iot.id']})"
    for operations in (
        {"op": "replace"},  # not an array
        [{"op": "replace", "path": "/missing/deep", "value": 1}],
        [{"op": "frobnicate", "path": "/name", "value": 1}],
        [{"op": "replace", "path": "/name"}],
        [{"op": "replace", "path": "/name", "value": 5}],  # wrong type after patching
        [{"op": "remove", "path": "/name"}],  # mandatory
    ):
        response = patch_ops(api, path, operations)
        assert response.status_code == 400, (operations, response.text)
        assert response.json()["message"]


def test_update_missing_entity_is_404(api):
    assert api.patch("/Things(999999)", json={"name": "x"}).status_code == 404
    assert api.put("/Things(999999)", json={"name": "x", "description": "y"}).status_code == 404
    assert patch_ops(api, "/Things(999999)", []).status_code == 404


def test_update_observation_result(api, anon, make):
    ds = make.datastream()
    obs = make.observation(ds, 1)
    response = api.patch(f"/Observations({obs['@iot.id']})", json={"result": "korrigiert"})
    assert response.status_code == 200
    assert anon.get(f"/Observations({obs['@iot.id']})/result").json() == {"result": "korrigiert"}


# ---------------------------------------------------------------------------------------------
# DELETE and cascades


def exists(anon, path: str) -> bool:
    status = anon.get(path).status_code
    assert status in (200, 404)
    return status == 200


def test_delete_returns_200_and_entity_is_gone(api, anon, make):
    sensor = make.sensor()
    response = api.delete(f"/Sensors({sensor['@iot.id']})")
    assert response.status_code == 200
    assert not exists(anon, f"/Sensors({sensor['@iot.id']})")
    assert api.delete(f"/Sensors({sensor['@iot.id']})").status_code == 404


def test_delete_thing_cascades_to_datastreams_and_observations(api, anon, make):
    thing = make.thing()
    ds = make.datastream(thing)
    obs = make.observation(ds, 1)
    location = anon.get(f"/Things({thing['@iot.id']})/Locations").json()["value"][0]
    hist = anon.get(f"/Things({thing['@iot.id']})/HistoricalLocations").json()["value"][0]
    sensor = anon.get(f"/Datastreams({ds['@iot.id']})/Sensor").json()
    assert api.delete(f"/Things({thing['@iot.id']})").status_code == 200
    assert not exists(anon, f"/Datastreams({ds['@iot.id']})")
    assert not exists(anon, f"/Observations({obs['@iot.id']})")
    assert not exists(anon, f"/HistoricalLocations({hist['@iot.id']})")
    # Locations and Sensors are shared entities; they stay.
    assert exists(anon, f"/Locations({location['@iot.id']})")
    assert exists(anon, f"/Sensors({sensor['@iot.id']})")


def test_delete_datastream_cascades_to_observations(api, anon, make):
    thing = make.thing()
    ds = make.datastream(thing)
    observations = [make.observation(ds, n) for n in range(3)]
    assert api.delete(f"/Datastreams({ds['@iot.id']})").status_code == 200
    for obs in observations:
        assert not exists(anon, f"/Observations({obs['@iot.id']})")
    assert exists(anon, f"/Things({thing['@iot.id']})")


def test_delete_sensor_or_observed_property_cascades_to_datastreams(api, anon, make):
    for relation, set_name in (("Sensor", "Sensors"), ("ObservedProperty", "ObservedProperties")):
        ds = make.datastream()
        obs = make.observation(ds, 1)
        target = anon.get(f"/Datastreams({ds['@iot.id']})/{relation}").json()
        assert api.delete(f"/{set_name}({target['@iot.id']})").status_code == 200
        assert not exists(anon, f"/Datastreams({ds['@iot.id']})")
        assert not exists(anon, f"/Observations({obs['@iot.id']})")


def test_delete_feature_of_interest_cascades_to_observations(api, anon, make):
    ds = make.datastream()
    feature = make.feature()
    obs = make.observation(ds, 1, FeatureOfInterest={"@iot.id": feature["@iot.id"]})
    other = make.observation(ds, 2)  # generated feature, not affected
    assert api.delete(f"/FeaturesOfInterest({feature['@iot.id']})").status_code == 200
    assert not exists(anon, f"/Observations({obs['@iot.id']})")
    assert exists(anon, f"/Observations({other['@iot.id']})")


def test_delete_location_removes_its_historical_locations(api, anon, make):
    thing = make.thing()
    first = anon.get(f"/Things({thing['@iot.id']})/Locations").json()["value"][0]
    first_hist = anon.get(f"/Things({thing['@iot.id']})/HistoricalLocations").json()["value"]
    second = make.location()
    assert api.patch(f"/Things({thing['@iot.id']})",
                     json={"Locations": [{"@iot.id": second["@iot.id"]}]}).status_code == 200
    hist = anon.get(f"/Things({thing['@iot.id']})/HistoricalLocations").json()["value"]
    assert len(hist) == 2
    assert api.delete(f"/Locations({first['@iot.id']})").status_code == 200
    remaining = anon.get(f"/Things({thing['@iot.id']})/HistoricalLocations").json()["value"]
    assert [h["@iot.id"] for h in remaining] == [
        h["@iot.id"] for h in hist if h["@iot.id"] != first_hist[0]["@iot.id"]]
    assert exists(anon, f"/Things({thing['@iot.id']})")
    assert anon.get(f"/Things({thing['@iot.id']})/Locations").json()["value"][0][
        "@iot.id"] == second["@iot.id"]


def test_delete_observation_keeps_datastream(api, anon, make):
    ds = make.datastream()
    obs = make.observation(ds, 1)
    assert api.delete(f"/Observations({obs['@iot.id']})").status_code == 200
    assert exists(anon, f"/Datastreams({ds['@iot.id']})")
    assert anon.get(f"/Datastreams({ds['@iot.id']})/Observations").json()["value"] == []


def test_delete_via_navigation_path(api, anon, make):
    thing = make.thing()
    ds = make.datastream(thing)
    other = make.datastream()
    # Not reachable through this Thing: 404, nothing deleted.
    response = api.delete(f"/Things({thing['@iot.id']})/Datastreams({other['@iot.id']})")
    assert response.status_code == 404
    assert exists(anon, f"/Datastreams({other['@iot.id']})")
    response = api.delete(f"/Things({thing['@iot.id']})/Datastreams({ds['@iot.id']})")
    assert response.status_code == 200
    assert not exists(anon, f"/Datastreams({ds['@iot.id']})")
