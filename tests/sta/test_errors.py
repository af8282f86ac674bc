"""Every error class: its status code, a JSON body with a message, and nothing written."""

from __future__ import annotations

import json

import httpx
import pytest
from tests.sta.conftest import GEOJSON, point


def assert_error(response: httpx.Response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == status
    assert isinstance(body["message"], str) and len(body["message"]) > 10
    for word in words:
        assert word in body["message"], (word, body["message"])
    return body


# ---------------------------------------------------------------------------------------------
# Paths


@pytest.mark.parametrize("path, words", [
    ("/Things(1", ["Things(1"]),
    ("/Things(1)/Datastreams/Thing", ["collection"]),
    ("/Things(1)/name/$value/more", ["$value"]),
    ("/Things(1)/$value", ["$value"]),
    ("/Things//Datastreams", ["empty"]),
    ("/Things(1)/nope", ["nope"]),
    ("/Things(1)/name/extra", ["name"]),
    ("/Observations(1)/Datastream(2)", ["Datastream"]),
    ("/Things(1)/Locations(1)/$ref/x", ["$ref"]),
])
def test_malformed_path_is_400(anon, path, words):
    assert_error(anon.get(path), 400, *words)


@pytest.mark.parametrize("path", ["/Things(abc)", "/Things(1.5)", "/Things(1)/Datastreams(x)"])
def test_bad_id_is_400(anon, path):
    assert_error(anon.get(path), 400, "not an integer")


@pytest.mark.parametrize("path", ["/Things(999999)", "/Things(999999)/Datastreams",
                                  "/Sensors(999999)/name", "/Observations(999999)/Datastream",
                                  "/Gadgets", "/Things(0)"])
def test_unknown_entity_is_404(anon, path):
    assert_error(anon.get(path), 404)


def test_unknown_entity_set_lists_the_known_ones(anon):
    assert_error(anon.get("/Gadgets"), 404, "Gadgets", "Things", "Observations")


def test_missing_to_one_is_404(anon, make):
    ds = make.datastream()
    # A plain Observation has no MultiDatastream.
    obs = make.observation(ds, 1)
    assert_error(anon.get(f"/Observations({obs['@iot.id']})/MultiDatastream"), 404)


def test_unknown_version_and_path_outside_api_are_404(server):
    assert_error(httpx.get(f"{server.url}/v2.0/Things"), 404)
    assert_error(httpx.get(f"{server.url}/nothing/here"), 404)


def test_bad_query_option_is_400(anon):
    assert_error(anon.get("/Things?$top=abc"), 400, "$top")
    assert_error(anon.get("/Things?$frobnicate=1"), 400, "$frobnicate")
    assert_error(anon.get("/Things?$expand=Nothing"), 400, "Nothing")
    assert_error(anon.get("/Things?$select=nothing"), 400, "nothing")


# ---------------------------------------------------------------------------------------------
# Methods


@pytest.mark.parametrize("method, path", [
    ("DELETE", "/Things"),
    ("PATCH", "/Things"),
    ("PUT", "/Things"),
    ("POST", "/Things(1)"),
    ("POST", "/Things(1)/name"),
    ("POST", "/Observations(1)/Datastream"),
    ("DELETE", "/Things(1)/name"),
    ("PATCH", "/Things(1)/Datastreams"),
    ("DELETE", "/Things/$ref"),
])
def test_wrong_method_is_405(api, method, path):
    response = api.request(method, path, json={"name": "x"})
    assert_error(response, 405)


def test_other_methods_are_405(api):
    assert_error(api.request("OPTIONS", "/Things"), 405)
    assert api.request("HEAD", "/Things").status_code == 405


# ---------------------------------------------------------------------------------------------
# Bodies


def test_malformed_json_is_400(api):
    for body in (b"{nicht json", b"", b"   ", b"{\"name\": \"x\",}"):
        response = api.post("/Things", content=body,
                            headers={"Content-Type": "application/json"})
        assert_error(response, 400, "JSON" if body.strip() else "empty")
    invalid_utf8 = api.post("/Things", content=b'{"name": "\xff"}')
    assert_error(invalid_utf8, 400, "JSON")


def test_body_not_an_object_is_400(api):
    for body in ([1, 2], "Thing", 5, None):
        assert_error(api.post("/Things", content=json.dumps(body)), 400, "JSON object")


def test_unknown_property_is_400(api):
    body = assert_error(api.post("/Things", json={"name": "x", "description": "y",
                                                  "colour": "rot"}), 400, "colour")
    assert "name" in body["message"]  # the known properties are listed


@pytest.mark.parametrize("entity_set, body, words", [
    ("Things", {"name": 5, "description": "y"}, ["Thing.name", "string"]),
    ("Things", {"name": "x", "description": "y", "properties": [1]}, ["properties", "object"]),
    ("Things", {"name": "x", "description": "y", "Locations": {"@iot.id": 1}},
     ["Locations", "array"]),
    ("Things", {"name": "x", "description": "y", "Datastreams": [5]}, ["Datastreams"]),
    ("Locations", {"name": "x", "description": "y", "encodingType": GEOJSON,
                   "location": {"type": "Point", "coordinates": "hier"}}, ["location"]),
    ("Locations", {"name": "x", "description": "y", "encodingType": GEOJSON,
                   "location": {"type": "Point"}}, ["location"]),
    ("Locations", {"name": "x", "description": "y", "encodingType": GEOJSON,
                   "location": "Marktplatz"}, ["location"]),
    ("Datastreams", {"name": "x", "description": "y", "observationType": "o",
                     "unitOfMeasurement": "cm"}, ["unitOfMeasurement", "object"]),
    ("Observations", {"result": 1, "phenomenonTime": "gestern",
                      "Datastream": {"@iot.id": 1}}, ["phenomenonTime", "ISO 8601"]),
    ("Observations", {"result": 1, "phenomenonTime": 1714557600,
                      "Datastream": {"@iot.id": 1}}, ["phenomenonTime"]),
    ("Observations", {"result": 1, "validTime": "2024-01-02T00:00:00Z/2024-01-01T00:00:00Z",
                      "Datastream": {"@iot.id": 1}}, ["validTime"]),
    ("Observations", {"result": 1, "Datastream": {"@iot.id": "1"}}, ["@iot.id", "integer"]),
    ("Observations", {"result": 1, "Datastream": 1}, ["Datastream"]),
])
def test_wrong_type_is_400(api, entity_set, body, words):
    assert_error(api.post(f"/{entity_set}", json=body), 400, *words)


@pytest.mark.parametrize("entity_set, body, missing", [
    ("Things", {"description": "y"}, "Thing.name"),
    ("Things", {"name": "x", "description": None}, "Thing.description"),
    ("Locations", {"name": "x", "description": "y", "location": point(1, 2)},
     "Location.encodingType"),
    ("Sensors", {"name": "x", "description": "y", "encodingType": "text/plain"},
     "Sensor.metadata"),
    ("ObservedProperties", {"name": "x", "description": "y"}, "ObservedProperty.definition"),
    ("FeaturesOfInterest", {"name": "x", "description": "y", "encodingType": GEOJSON},
     "FeatureOfInterest.feature"),
    ("Observations", {"result": 1}, "Observation.Datastream"),
    ("HistoricalLocations", {"time": "2024-01-01T00:00:00Z"}, "HistoricalLocation.Thing"),
])
def test_missing_mandatory_property_is_400(api, entity_set, body, missing):
    assert_error(api.post(f"/{entity_set}", json=body), 400, missing)


def test_datastream_needs_thing_sensor_and_observed_property(api, make):
    thing = make.thing()
    base = make.datastream_body(Thing={"@iot.id": thing["@iot.id"]}, Sensor=make.sensor_body(),
                                ObservedProperty=make.observed_property_body())
    for relation in ("Thing", "Sensor", "ObservedProperty"):
        body = {k: v for k, v in base.items() if k != relation}
        assert_error(api.post("/Datastreams", json=body), 400, f"Datastream.{relation}")


def test_broken_link_is_400(api, make):
    thing = make.thing()
    assert_error(api.post("/Things", json={"name": "x", "description": "y",
                                          "Locations": [{"@iot.id": 999999}]}),
                 400, "Location", "999999")
    assert_error(api.post("/Datastreams", json=make.datastream_body(
        Thing={"@iot.id": thing["@iot.id"]}, Sensor={"@iot.id": 999999},
        ObservedProperty=make.observed_property_body())), 400, "Sensor", "999999")
    assert_error(api.post("/Observations", json={"result": 1, "Datastream": {"@iot.id": 999999}}),
                 400, "Datastream", "999999")
    ds = make.datastream(thing)
    assert_error(api.post(f"/Datastreams({ds['@iot.id']})/Observations", json={
        "result": 1, "FeatureOfInterest": {"@iot.id": 999999}}), 400, "FeatureOfInterest")
    assert_error(api.patch(f"/Datastreams({ds['@iot.id']})", json={
        "Sensor": {"@iot.id": 999999}}), 400, "Sensor", "999999")


def test_relation_given_twice_is_400(api, make):
    ds = make.datastream()
    other = make.datastream()
    assert_error(api.post(f"/Datastreams({ds['@iot.id']})/Observations", json={
        "result": 1, "Datastream": {"@iot.id": other["@iot.id"]}}), 400, "Datastream")


def test_server_maintained_and_unknown_fields_on_update_are_400(api, make):
    thing = make.thing()
    assert_error(api.patch(f"/Things({thing['@iot.id']})", json={"farbe": "rot"}), 400, "farbe")
    assert_error(api.patch(f"/Things({thing['@iot.id']})", json={"name": None}), 400,
                 "Thing.name")


def test_body_over_limit_is_413(fresh_server):
    srv = fresh_server(env={"ORTSPULS_MAX_BODY_BYTES": "1000"})
    with srv.client("admin") as api:
        small = api.post("/Things", json={"name": "klein", "description": "d"})
        assert small.status_code == 201
        big = {"name": "groß", "description": "x" * 2000}
        assert_error(api.post("/Things", json=big), 413, "1000")
        thing_id = small.json()["@iot.id"]
        assert_error(api.patch(f"/Things({thing_id})", json=big), 413)

        # Without Content-Length (chunked upload) the limit holds as well.
        def chunks():
            yield b'{"name": "x", "description": "'
            for _ in range(10):
                yield b"y" * 200
            yield b'"}'

        assert_error(api.post("/Things", content=chunks()), 413)
        names = [t["name"] for t in api.get("/Things").json()["value"]]
        assert names == ["klein"]


def test_nul_character_in_text_is_400(api, make):
    """PostgreSQL cannot store NUL in text; every database refuses it the same way."""
    ds = make.datastream()
    for path, body in (("/Things", {"name": "a\u0000b", "description": "d"}),
                       ("/Things", {"name": "a", "description": "d",
                                    "properties": {"k\u0000": 1}}),
                       (f"/Datastreams({ds['@iot.id']})/Observations", {"result": "\u0000"}),
                       (f"/Datastreams({ds['@iot.id']})/Observations",
                        {"result": 1, "parameters": {"a": ["\u0000"]}})):
        assert_error(api.post(path, json=body), 400, "NUL")
    # A backslash followed by "u0000" is ordinary text.
    ok = api.post("/Things", json={"name": "C:\\u0000", "description": "d"})
    assert ok.status_code == 201 and ok.json()["name"] == "C:\\u0000"
