"""The MultiDatastream extension: entity, relations, array results, constraints."""

from __future__ import annotations

from typing import Any

import pytest

COMPLEX = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation"
MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
COUNT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CountObservation"


def multi_body(make, thing: dict[str, Any], properties: list[dict[str, Any]],
               **extra: Any) -> dict[str, Any]:
    n = len(properties)
    units = [{"name": "Grad Celsius", "symbol": "°C", "definition": "ucum:Cel"},
             {"name": "Prozent", "symbol": "%", "definition": "ucum:%"},
             {"name": "Anzahl", "symbol": "1", "definition": "ucum:1"}][:n]
    return {"name": make.name("Wetterstation"), "description": "Temperatur und Feuchte",
            "observationType": COMPLEX, "unitOfMeasurements": units,
            "multiObservationDataTypes": [MEASUREMENT, MEASUREMENT, COUNT][:n],
            "Thing": {"@iot.id": thing["@iot.id"]}, "Sensor": make.sensor_body(),
            "ObservedProperties": properties, **extra}


@pytest.fixture
def weather(api, make) -> dict[str, Any]:
    """A MultiDatastream with two components: temperature, then humidity (created inline)."""
    thing = make.thing()
    body = multi_body(make, thing, [make.observed_property_body(name=make.name("Temperatur")),
                                    make.observed_property_body(name=make.name("Feuchte"))])
    response = api.post("/MultiDatastreams", json=body)
    assert response.status_code == 201, response.text
    return {**response.json(), "thing": thing, "body": body}


def test_create_and_read_keeps_component_order(api, make, weather):
    ident = weather["@iot.id"]
    assert weather["unitOfMeasurements"][1]["symbol"] == "%"
    assert weather["multiObservationDataTypes"] == [MEASUREMENT, MEASUREMENT]
    names = [p["name"] for p in weather["body"]["ObservedProperties"]]
    listed = api.get(f"/MultiDatastreams({ident})/ObservedProperties").json()["value"]
    assert [p["name"] for p in listed] == names
    expanded = api.get(f"/MultiDatastreams({ident})?$expand=ObservedProperties,Thing,Sensor").json()
    assert [p["name"] for p in expanded["ObservedProperties"]] == names
    assert expanded["Thing"]["@iot.id"] == weather["thing"]["@iot.id"]
    assert expanded["Sensor"]["name"] == weather["body"]["Sensor"]["name"]
    from_thing = api.get(f"/Things({weather['thing']['@iot.id']})/MultiDatastreams").json()
    assert [m["@iot.id"] for m in from_thing["value"]] == [ident]


def test_order_follows_the_request_not_the_ids(api, make):
    thing = make.thing()
    later = make.observed_property(name=make.name("B zuerst angelegt"))
    earlier = make.observed_property(name=make.name("A danach angelegt"))
    body = multi_body(make, thing, [{"@iot.id": earlier["@iot.id"]},
                                    {"@iot.id": later["@iot.id"]}])
    ident = api.post("/MultiDatastreams", json=body).json()["@iot.id"]
    listed = api.get(f"/MultiDatastreams({ident})/ObservedProperties").json()["value"]
    assert [p["@iot.id"] for p in listed] == [earlier["@iot.id"], later["@iot.id"]]
    back = api.get(f"/ObservedProperties({later['@iot.id']})/MultiDatastreams").json()["value"]
    assert [m["@iot.id"] for m in back] == [ident]


@pytest.mark.parametrize("change, fragment", [
    ({"unitOfMeasurements": [{"name": "Grad", "symbol": "°C", "definition": "x"}]},
     "multiObservationDataTypes has 2"),
    ({"multiObservationDataTypes": [MEASUREMENT]}, "unitOfMeasurements has 2"),
    ({"observationType": MEASUREMENT}, "OM_ComplexObservation"),
    ({"unitOfMeasurements": ["°C", "%"]}, "unitOfMeasurement objects"),
    ({"ObservedProperties": []}, "2 different ObservedProperties"),
])
def test_create_refuses_inconsistent_components(api, make, table_counts, change, fragment):
    thing = make.thing()
    body = multi_body(make, thing, [make.observed_property_body(),
                                    make.observed_property_body()])
    body.update(change)
    before = table_counts()
    response = api.post("/MultiDatastreams", json=body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["message"]
    assert table_counts() == before


def test_observations_with_array_results(api, weather, server):
    ident = weather["@iot.id"]
    response = api.post(f"/MultiDatastreams({ident})/Observations",
                        json={"result": [21.5, 63], "phenomenonTime": "2024-07-01T12:00:00Z"})
    assert response.status_code == 201, response.text
    observation = response.json()
    assert observation["result"] == [21.5, 63]
    other = api.post("/Observations", json={
        "result": [22.0, None], "phenomenonTime": "2024-07-01T12:10:00Z",
        "MultiDatastream": {"@iot.id": ident}})
    assert other.status_code == 201, other.text
    listed = api.get(f"/MultiDatastreams({ident})/Observations?$orderby=phenomenonTime").json()
    assert [o["result"] for o in listed["value"]] == [[21.5, 63], [22.0, None]]
    parent = api.get(f"/Observations({observation['@iot.id']})/MultiDatastream").json()
    assert parent["@iot.id"] == ident
    assert api.get(f"/Observations({observation['@iot.id']})/Datastream").status_code == 404
    summary = api.get(f"/MultiDatastreams({ident})").json()
    assert summary["phenomenonTime"] == "2024-07-01T12:00:00Z/2024-07-01T12:10:00Z"
    filtered = api.get(f"/MultiDatastreams({ident})/Observations",
                       params={"$filter": "phenomenonTime gt 2024-07-01T12:05:00Z"}).json()
    assert [o["result"] for o in filtered["value"]] == [[22.0, None]]


@pytest.mark.parametrize("result, fragment", [
    (21.5, "JSON array"),
    ([21.5], "1 values but multiObservationDataTypes has 2"),
    ([21.5, 60, 1], "3 values"),
    (["warm", 60], "must be a number"),
])
def test_observation_results_must_fit_the_components(api, weather, result, fragment):
    response = api.post(f"/MultiDatastreams({weather['@iot.id']})/Observations",
                        json={"result": result})
    assert response.status_code == 400, response.text
    assert fragment in response.json()["message"]


def test_observation_cannot_belong_to_both(api, make, weather):
    datastream = make.datastream()
    response = api.post("/Observations", json={
        "result": [1, 2], "Datastream": {"@iot.id": datastream["@iot.id"]},
        "MultiDatastream": {"@iot.id": weather["@iot.id"]}})
    assert response.status_code == 400
    assert "not both" in response.json()["message"]
    missing = api.post("/MultiDatastreams(999999999)/Observations", json={"result": [1, 2]})
    assert missing.status_code == 404


def test_patch_and_delete(api, make, weather):
    ident = weather["@iot.id"]
    patched = api.patch(f"/MultiDatastreams({ident})", json={"name": "Station Nord"})
    assert patched.status_code == 200 and patched.json()["name"] == "Station Nord"
    bad = api.patch(f"/MultiDatastreams({ident})", json={
        "multiObservationDataTypes": [MEASUREMENT, MEASUREMENT, COUNT]})
    assert bad.status_code == 400
    assert api.get(f"/MultiDatastreams({ident})").json()["multiObservationDataTypes"] == [
        MEASUREMENT, MEASUREMENT]
    observation = api.post(f"/MultiDatastreams({ident})/Observations",
                           json={"result": [1.0, 2.0]}).json()
    wrong = api.patch(f"/Observations({observation['@iot.id']})", json={"result": [1.0]})
    assert wrong.status_code == 400
    assert api.delete(f"/MultiDatastreams({ident})").status_code == 200
    assert api.get(f"/MultiDatastreams({ident})").status_code == 404
    assert api.get(f"/Observations({observation['@iot.id']})").status_code == 404


def test_observed_property_side_cannot_change_components(api, weather, make):
    response = api.post("/ObservedProperties", json=make.observed_property_body(
        MultiDatastreams=[{"@iot.id": weather["@iot.id"]}]))
    assert response.status_code == 400
    assert "component" in response.json()["message"]


def test_create_observations_into_a_multi_datastream(api, weather):
    response = api.post("/CreateObservations", json=[{
        "MultiDatastream": {"@iot.id": weather["@iot.id"]},
        "components": ["phenomenonTime", "result"],
        "dataArray": [["2024-07-02T00:00:00Z", [10.0, 80]], ["2024-07-02T00:10:00Z", [11.0]]]}])
    assert response.status_code == 201
    answer = response.json()
    assert answer[1] == "error" and "Observations(" in answer[0]
    read = api.get(f"/MultiDatastreams({weather['@iot.id']})/Observations",
                   params={"$resultFormat": "dataArray", "$select": "result"}).json()
    (group,) = read["value"]
    assert group["MultiDatastream@iot.navigationLink"].endswith(
        f"/MultiDatastreams({weather['@iot.id']})")
    assert group["dataArray"] == [[[10.0, 80]]]


def test_service_root_lists_multi_datastreams_and_all_classes(anon):
    body = anon.get("").json()
    assert "MultiDatastreams" in [e["name"] for e in body["value"]]
    base = "http://www.opengis.net/spec/iot_sensing/1.1/req/"
    assert set(body["serverSettings"]["conformance"]) >= {
        base + "datamodel", base + "resource-path/resource-path-to-entities",
        base + "request-data", base + "create-update-delete", base + "batch-request/batch-request",
        base + "data-array/data-array", base + "multi-datastream",
        base + "create-observations-via-mqtt/observations-creation",
        base + "receive-updates-via-mqtt/receive-updates"}
