"""Create: 201 with Location and body, deep insert, links by @iot.id, POST to navigations."""

from __future__ import annotations

import pytest
from tests.sta.conftest import GEOJSON, MEASUREMENT, point


def test_post_returns_201_location_and_entity(api, server):
    response = api.post("/Sensors", json={"name": "SDI-12 Sonde", "description": "Druck",
                                          "encodingType": "application/pdf",
                                          "metadata": "https://example.org/sonde.pdf",
                                          "properties": {"Hersteller": "Muster"}})
    assert response.status_code == 201
    body = response.json()
    assert isinstance(body["@iot.id"], int)
    assert response.headers["location"] == f"{server.sta}/Sensors({body['@iot.id']})"
    assert body["@iot.selfLink"] == response.headers["location"]
    assert body["name"] == "SDI-12 Sonde" and body["properties"] == {"Hersteller": "Muster"}
    assert body["Datastreams@iot.navigationLink"] == f"{body['@iot.selfLink']}/Datastreams"
    assert api.get(response.headers["location"]).json() == body


@pytest.mark.parametrize("entity_set, body", [
    ("Things", {"name": "Pegel", "description": "d"}),
    ("Locations", {"name": "Brücke", "description": "d", "encodingType": GEOJSON,
                   "location": point(8.4, 49.0)}),
    ("ObservedProperties", {"name": "Temperatur", "definition": "https://example.org/t",
                            "description": "Lufttemperatur"}),
    ("FeaturesOfInterest", {"name": "Ufer", "description": "d", "encodingType": GEOJSON,
                            "feature": {"type": "Polygon", "coordinates": [
                                [[8, 49], [8.1, 49], [8.1, 49.1], [8, 49]]]}}),
])
def test_post_each_entity_set(api, entity_set, body):
    response = api.post(f"/{entity_set}", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    for key, value in body.items():
        assert created[key] == value


def test_deep_insert_thing_with_locations_and_datastreams(api, anon, make):
    body = {
        "name": "Wetterstation Rathaus", "description": "Dach des Rathauses",
        "properties": {"Betreiber": "Stadtwerke"},
        "Locations": [make.location_body(9.1, 48.7)],
        "Datastreams": [
            make.datastream_body(Sensor=make.sensor_body(),
                                 ObservedProperty=make.observed_property_body()),
            make.datastream_body(Sensor=make.sensor_body(),
                                 ObservedProperty=make.observed_property_body(),
                                 Observations=[{"result": 3, "phenomenonTime":
                                                "2024-01-01T00:00:00Z"}]),
        ],
    }
    response = api.post("/Things", json=body)
    assert response.status_code == 201, response.text
    thing_id = response.json()["@iot.id"]
    got = anon.get(f"/Things({thing_id})?$expand=Locations,Datastreams($expand=Sensor,"
                   "ObservedProperty,Observations)").json()
    assert [loc["name"] for loc in got["Locations"]] == [body["Locations"][0]["name"]]
    assert sorted(d["name"] for d in got["Datastreams"]) == sorted(
        d["name"] for d in body["Datastreams"])
    for ds, given in zip(sorted(got["Datastreams"], key=lambda d: d["name"]),
                         sorted(body["Datastreams"], key=lambda d: d["name"]), strict=True):
        assert ds["Sensor"]["name"] == given["Sensor"]["name"]
        assert ds["ObservedProperty"]["name"] == given["ObservedProperty"]["name"]
        assert len(ds["Observations"]) == len(given.get("Observations", []))
    # A Thing created with Locations has its first HistoricalLocation.
    hist = anon.get(f"/Things({thing_id})/HistoricalLocations?$expand=Locations").json()["value"]
    assert len(hist) == 1
    assert [loc["@iot.id"] for loc in hist[0]["Locations"]] == [
        got["Locations"][0]["@iot.id"]]


def test_deep_insert_observation_with_new_feature(api, anon, make):
    ds = make.datastream()
    response = api.post("/Observations", json={
        "result": 7, "Datastream": {"@iot.id": ds["@iot.id"]},
        "FeatureOfInterest": {"name": "Brunnen", "description": "d", "encodingType": GEOJSON,
                              "feature": point(8.0, 49.0)}})
    assert response.status_code == 201, response.text
    feature = anon.get(f"/Observations({response.json()['@iot.id']})/FeatureOfInterest").json()
    assert feature["name"] == "Brunnen"


def test_link_existing_entities_by_id(api, anon, make):
    sensor, prop, thing = make.sensor(), make.observed_property(), make.thing()
    response = api.post("/Datastreams", json=make.datastream_body(
        Thing={"@iot.id": thing["@iot.id"]}, Sensor={"@iot.id": sensor["@iot.id"]},
        ObservedProperty={"@iot.id": prop["@iot.id"]}))
    assert response.status_code == 201, response.text
    ds_id = response.json()["@iot.id"]
    assert anon.get(f"/Datastreams({ds_id})/Sensor").json()["@iot.id"] == sensor["@iot.id"]
    assert anon.get(f"/Datastreams({ds_id})/Thing").json()["@iot.id"] == thing["@iot.id"]
    location = make.location()
    linked = api.post("/Things", json={"name": "Mit Ort", "description": "d",
                                       "Locations": [{"@iot.id": location["@iot.id"]}]})
    assert linked.status_code == 201
    locations = anon.get(f"/Things({linked.json()['@iot.id']})/Locations").json()["value"]
    assert [loc["@iot.id"] for loc in locations] == [location["@iot.id"]]
    # Nothing new was created for the linked entities.
    assert anon.get(f"/Sensors({sensor['@iot.id']})").json()["name"] == sensor["name"]


def test_post_to_navigation_collections(api, anon, make):
    thing = make.thing()
    ds = api.post(f"/Things({thing['@iot.id']})/Datastreams", json=make.datastream_body(
        Sensor=make.sensor_body(), ObservedProperty=make.observed_property_body()))
    assert ds.status_code == 201, ds.text
    ds_id = ds.json()["@iot.id"]
    assert anon.get(f"/Datastreams({ds_id})/Thing").json()["@iot.id"] == thing["@iot.id"]

    obs = api.post(f"/Datastreams({ds_id})/Observations",
                   json={"result": 12.5, "phenomenonTime": "2024-06-01T10:00:00Z"})
    assert obs.status_code == 201
    assert obs.headers["location"] == obs.json()["@iot.selfLink"]
    assert anon.get(f"/Observations({obs.json()['@iot.id']})/Datastream").json()[
        "@iot.id"] == ds_id

    loc = api.post(f"/Things({thing['@iot.id']})/Locations", json=make.location_body(7.0, 50.0))
    assert loc.status_code == 201
    # The Thing moved: the new Location replaces the old one.
    ids = [x["@iot.id"] for x in anon.get(f"/Things({thing['@iot.id']})/Locations").json()["value"]]
    assert ids == [loc.json()["@iot.id"]]

    # Deeper navigation paths name their parent too.
    deep = api.post(f"/Things({thing['@iot.id']})/Datastreams({ds_id})/Observations",
                    json={"result": 1})
    assert deep.status_code == 201
    assert anon.get(f"/Observations({deep.json()['@iot.id']})/Datastream").json()[
        "@iot.id"] == ds_id


def test_post_to_navigation_of_missing_parent_is_404(api, make):
    response = api.post("/Datastreams(999999)/Observations", json={"result": 1})
    assert response.status_code == 404
    assert "999999" in response.json()["message"]
    response = api.post("/Things(999999)/Datastreams", json=make.datastream_body(
        Sensor=make.sensor_body(), ObservedProperty=make.observed_property_body()))
    assert response.status_code == 404


def test_post_location_with_thing_link_records_history(api, anon, make):
    thing = make.thing(located=False)
    before = anon.get(f"/Things({thing['@iot.id']})/HistoricalLocations").json()["value"]
    assert before == []
    response = api.post("/Locations", json=make.location_body(
        Things=[{"@iot.id": thing["@iot.id"]}]))
    assert response.status_code == 201
    hist = anon.get(f"/Things({thing['@iot.id']})/HistoricalLocations?$expand=Locations")
    value = hist.json()["value"]
    assert len(value) == 1
    assert [loc["@iot.id"] for loc in value[0]["Locations"]] == [response.json()["@iot.id"]]


def test_full_measurement_chain_by_links(api, anon, make):
    """The way an ingest script builds it: separate POSTs linked by id."""
    thing = make.thing()
    sensor = make.sensor()
    prop = make.observed_property()
    ds = api.post("/Datastreams", json={
        "name": "Luftfeuchte", "description": "relative Feuchte", "observationType": MEASUREMENT,
        "unitOfMeasurement": {"name": "Prozent", "symbol": "%", "definition": "ucum:%"},
        "Thing": {"@iot.id": thing["@iot.id"]}, "Sensor": {"@iot.id": sensor["@iot.id"]},
        "ObservedProperty": {"@iot.id": prop["@iot.id"]}})
    assert ds.status_code == 201
    obs = api.post("/Observations", json={"result": 55, "Datastream": {
        "@iot.id": ds.json()["@iot.id"]}})
    assert obs.status_code == 201
    chain = anon.get(f"/Observations({obs.json()['@iot.id']})/Datastream/ObservedProperty")
    assert chain.json()["@iot.id"] == prop["@iot.id"]
