"""A failed write leaves the database exactly as it was; no request ends in a 500."""

from __future__ import annotations

import json

import httpx
import pytest
from tests.sta.conftest import GEOJSON, point


@pytest.fixture
def unchanged(table_counts):
    """Asserts after the test body that no table gained or lost a row."""
    before = table_counts()
    yield
    assert table_counts() == before


def test_deep_insert_with_invalid_nested_datastream_creates_nothing(api, make, table_counts):
    before = table_counts()
    body = {
        "name": "Wird nicht gespeichert", "description": "d",
        "Locations": [make.location_body()],
        "Datastreams": [
            make.datastream_body(Sensor=make.sensor_body(),
                                 ObservedProperty=make.observed_property_body()),
            {"name": "kaputt", "description": "ohne Einheit", "observationType": "x",
             "Sensor": make.sensor_body(), "ObservedProperty": make.observed_property_body()},
        ],
    }
    response = api.post("/Things", json=body)
    assert response.status_code == 400
    assert "unitOfMeasurement" in response.json()["message"]
    assert table_counts() == before
    # Not even visible by name.
    assert all(t["name"] != body["name"] for t in httpx.get(
        f"{api.base_url}Things?$top=10000&$select=name").json()["value"])


@pytest.mark.usefixtures("unchanged")
def test_deep_insert_failing_on_last_link_creates_nothing(api, make):
    response = api.post("/Things", json={
        "name": "x", "description": "d", "Locations": [make.location_body()],
        "Datastreams": [make.datastream_body(Sensor=make.sensor_body(),
                                             ObservedProperty={"@iot.id": 999999})]})
    assert response.status_code == 400
    assert "999999" in response.json()["message"]


@pytest.mark.usefixtures("unchanged")
def test_deep_insert_with_invalid_observation_creates_nothing(api, make):
    response = api.post("/Things", json={
        "name": "x", "description": "d", "Locations": [make.location_body()],
        "Datastreams": [make.datastream_body(
            Sensor=make.sensor_body(), ObservedProperty=make.observed_property_body(),
            Observations=[{"result": 1}, {"result": 2, "phenomenonTime": "morgen"}])]})
    assert response.status_code == 400
    assert "phenomenonTime" in response.json()["message"]


def test_observation_with_inline_datastream_and_broken_feature_creates_nothing(
        api, make, table_counts):
    thing = make.thing()
    before = table_counts()
    response = api.post("/Observations", json={
        "result": 1,
        "Datastream": make.datastream_body(Thing={"@iot.id": thing["@iot.id"]},
                                           Sensor=make.sensor_body(),
                                           ObservedProperty=make.observed_property_body()),
        "FeatureOfInterest": {"@iot.id": 999999}})
    assert response.status_code == 400
    assert table_counts() == before


def test_failed_location_change_keeps_old_locations_and_history(api, anon, make, table_counts):
    thing = make.thing()
    tid = thing["@iot.id"]
    locations = anon.get(f"/Things({tid})/Locations").json()
    before = table_counts()
    response = api.patch(f"/Things({tid})", json={
        "Locations": [make.location_body(), {"@iot.id": 999999}]})
    assert response.status_code == 400
    assert table_counts() == before
    assert anon.get(f"/Things({tid})/Locations").json() == locations


def test_failed_patch_keeps_all_fields(api, anon, make, table_counts):
    thing = make.thing(properties={"a": 1})
    before_counts, before = table_counts(), anon.get(f"/Things({thing['@iot.id']})").json()
    response = api.patch(f"/Things({thing['@iot.id']})", json={
        "description": "neu", "properties": {"b": 2}, "name": 17})
    assert response.status_code == 400
    assert anon.get(f"/Things({thing['@iot.id']})").json() == before
    assert table_counts() == before_counts


@pytest.mark.usefixtures("unchanged")
def test_location_linking_missing_thing_creates_nothing(api, make):
    response = api.post("/Locations", json=make.location_body(Things=[{"@iot.id": 999999}]))
    assert response.status_code == 400


def test_rejected_requests_write_nothing(api, anon, make, table_counts):
    ds = make.datastream()
    before = table_counts()
    requests = [
        ("POST", f"/Datastreams({ds['@iot.id']})/Observations", {"result": 1, "foo": 2}),
        ("POST", "/Observations", {"result": 1, "Datastream": {"@iot.id": 999999}}),
        ("POST", f"/Datastreams({ds['@iot.id']})/Observations",
         {"result": 1, "FeatureOfInterest": {"name": "f", "description": "d",
                                             "encodingType": GEOJSON, "feature": "nirgends"}}),
        ("POST", "/Sensors", {"name": "s"}),
        ("PUT", f"/Datastreams({ds['@iot.id']})", {"name": "nur Name"}),
    ]
    for method, path, body in requests:
        response = api.request(method, path, json=body)
        assert 400 <= response.status_code < 500, (method, path, response.text)
    assert anon.get(f"/Datastreams({ds['@iot.id']})").json()["name"] == ds["name"]
    assert table_counts() == before


def test_no_request_reaches_500(server, api, anon, make):
    """A sweep of odd requests: each gets a 4xx (or success), the log shows no crash."""
    log_start = len(server.log())
    ds = make.datastream()
    thing_id = anon.get(f"/Datastreams({ds['@iot.id']})/Thing").json()["@iot.id"]
    odd_bodies = [None, [], "", 0, True, {"": 1}, {"name": {"nested": 1}}, {"@iot.id": "x"},
                  {"Locations": [None]}, {"Datastreams": [[]]}, {"properties": "x"},
                  {"result": float("1e308")}, {"name": "\u0000"}, {"Locations": [{"@iot.id": -1}]},
                  {"Datastream": {"@iot.id": 2**63}}, {"Datastream": {"@iot.id": 2**70}},
                  {"phenomenonTime": "2024-13-45T99:99:99Z"},
                  {"phenomenonTime": "/"}, {"validTime": "2024-01-01T00:00:00Z/"},
                  {"location": {"type": "Polygon", "coordinates": [[[0, 0]]]}},
                  {"feature": {"type": "Feature", "geometry": None}}]
    paths = ["/Things", f"/Things({thing_id})", f"/Things({thing_id})/Locations", "/Locations",
             f"/Datastreams({ds['@iot.id']})/Observations", "/Observations",
             "/FeaturesOfInterest", "/HistoricalLocations"]
    for path in paths:
        for body in odd_bodies:
            for method in ("POST", "PATCH", "PUT"):
                response = api.request(method, path, content=json.dumps(body))
                assert response.status_code < 500, (method, path, body, response.text)
        response = api.patch(path, content=b'[{"op": "add"}]',
                             headers={"Content-Type": "application/json-patch+json"})
        assert response.status_code < 500, (path, response.text)
    for path in ("/Things(99999999999999999999)", "/Things(9223372036854775808)",
                 "/Things(1e3)", "/Things(%27%27)",
                 "/Things(1)/Datastreams(1)/Observations(1)/FeatureOfInterest/Observations",
                 "/Things?$top=99999999999999999999", "/Things?$skip=-1",
                 "/Things?$expand=Datastreams($top=-1)", "/Things?$select=", "/$batch",
                 "/Things(1)/properties/a/b", "/Observations(1)/result/$value/$value",
                 "/Things?$count=vielleicht", "/%C3%9F", "/Things(%00)"):
        response = anon.get(path)
        assert response.status_code < 500, (path, response.text)
    log = server.log()[log_start:]
    assert "Traceback" not in log and "unhandled error" not in log, log[-3000:]


def test_write_with_geometry_is_stored_as_geojson(api, anon, make):
    feature = make.feature(7.1, 50.7)
    assert anon.get(f"/FeaturesOfInterest({feature['@iot.id']})/feature").json() == {
        "feature": point(7.1, 50.7)}
