"""HistoricalLocations follow a Thing's Locations; FeaturesOfInterest are generated from them."""

from __future__ import annotations


def history(anon, thing_id: int) -> list[list[int]]:
    """The Location ids of each HistoricalLocation of a Thing, oldest first."""
    value = anon.get(f"/Things({thing_id})/HistoricalLocations?$expand=Locations").json()["value"]
    return [sorted(loc["@iot.id"] for loc in h["Locations"]) for h in value]


def location_ids(anon, thing_id: int) -> list[int]:
    return sorted(x["@iot.id"] for x in anon.get(f"/Things({thing_id})/Locations").json()["value"])


# ---------------------------------------------------------------------------------------------
# HistoricalLocations


def test_thing_created_without_location_has_no_history(anon, make):
    thing = make.thing(located=False)
    assert history(anon, thing["@iot.id"]) == []


def test_thing_created_with_location_has_one_entry(anon, make):
    thing = make.thing()
    tid = thing["@iot.id"]
    assert history(anon, tid) == [location_ids(anon, tid)]
    hist = anon.get(f"/Things({tid})/HistoricalLocations").json()["value"][0]
    assert anon.get(f"/HistoricalLocations({hist['@iot.id']})/Thing").json()["@iot.id"] == tid
    # The Location knows its history and its Things.
    loc = location_ids(anon, tid)[0]
    assert [h["@iot.id"] for h in anon.get(f"/Locations({loc})/HistoricalLocations").json()[
        "value"]] == [hist["@iot.id"]]
    assert [t["@iot.id"] for t in anon.get(f"/Locations({loc})/Things").json()["value"]] == [tid]


def test_patch_locations_replaces_and_records(api, anon, make):
    thing = make.thing()
    tid = thing["@iot.id"]
    first = location_ids(anon, tid)
    new = make.location(10.0, 51.0)
    response = api.patch(f"/Things({tid})", json={"Locations": [{"@iot.id": new["@iot.id"]}]})
    assert response.status_code == 200
    assert location_ids(anon, tid) == [new["@iot.id"]]
    assert history(anon, tid) == [first, [new["@iot.id"]]]


def test_patch_without_locations_records_nothing(api, anon, make):
    thing = make.thing()
    tid = thing["@iot.id"]
    assert api.patch(f"/Things({tid})", json={"description": "nur Text"}).status_code == 200
    assert len(history(anon, tid)) == 1


def test_post_to_thing_locations_records(api, anon, make):
    thing = make.thing(located=False)
    tid = thing["@iot.id"]
    response = api.post(f"/Things({tid})/Locations", json=make.location_body(11.0, 52.0))
    assert response.status_code == 201
    assert history(anon, tid) == [[response.json()["@iot.id"]]]


def test_post_to_thing_locations_replaces_the_old_location(api, anon, make):
    thing = make.thing()
    tid = thing["@iot.id"]
    old = location_ids(anon, tid)
    response = api.post(f"/Things({tid})/Locations", json=make.location_body(11.5, 52.5))
    assert response.status_code == 201
    new = response.json()["@iot.id"]
    assert location_ids(anon, tid) == [new]
    assert history(anon, tid) == [old, [new]]
    # The old Location still exists, with its history.
    assert anon.get(f"/Locations({old[0]})/HistoricalLocations").json()["value"]


def test_thing_with_two_encodings_of_one_place(api, anon, make):
    locations = [make.location_body(8.0, 49.0), make.location_body(8.0, 49.0)]
    response = api.post("/Things", json={"name": "Zwei Kodierungen", "description": "d",
                                         "Locations": locations})
    assert response.status_code == 201
    tid = response.json()["@iot.id"]
    ids = location_ids(anon, tid)
    assert len(ids) == 2
    assert history(anon, tid) == [ids]


def test_post_location_linking_things_records_for_each(api, anon, make):
    things = [make.thing(located=False) for _ in range(2)]
    response = api.post("/Locations", json=make.location_body(
        Things=[{"@iot.id": t["@iot.id"]} for t in things]))
    assert response.status_code == 201
    loc = response.json()["@iot.id"]
    for thing in things:
        assert history(anon, thing["@iot.id"]) == [[loc]]


def test_historical_location_times_are_ordered(api, anon, make):
    thing = make.thing()
    tid = thing["@iot.id"]
    for lon in (9.0, 9.1):
        new = make.location(lon, 50.0)
        api.patch(f"/Things({tid})", json={"Locations": [{"@iot.id": new["@iot.id"]}]})
    times = [h["time"] for h in anon.get(f"/Things({tid})/HistoricalLocations").json()["value"]]
    assert len(times) == 3 and times == sorted(times)


# ---------------------------------------------------------------------------------------------
# Generated FeaturesOfInterest


def feature_of(anon, obs: dict) -> dict:
    return anon.get(f"/Observations({obs['@iot.id']})/FeatureOfInterest").json()


def test_feature_generated_from_location_and_reused(anon, make):
    thing = make.thing()
    location = anon.get(f"/Things({thing['@iot.id']})/Locations").json()["value"][0]
    ds = make.datastream(thing)
    first = make.observation(ds, 1)
    feature = feature_of(anon, first)
    assert feature["feature"] == location["location"]
    assert feature["encodingType"] == location["encodingType"]
    assert feature["name"] == location["name"]
    for n in range(3):
        assert feature_of(anon, make.observation(ds, n))["@iot.id"] == feature["@iot.id"]
    # A second Datastream of the same Thing shares the feature too.
    other = make.datastream(thing)
    assert feature_of(anon, make.observation(other, 5))["@iot.id"] == feature["@iot.id"]
    observations = anon.get(f"/FeaturesOfInterest({feature['@iot.id']})/Observations?$top=10")
    assert len(observations.json()["value"]) == 5


def test_new_feature_after_location_moves(api, anon, make):
    thing = make.thing()
    tid = thing["@iot.id"]
    ds = make.datastream(thing)
    before = feature_of(anon, make.observation(ds, 1))
    location = anon.get(f"/Things({tid})/Locations").json()["value"][0]
    moved = api.patch(f"/Locations({location['@iot.id']})",
                      json={"location": {"type": "Point", "coordinates": [12.0, 53.0]}})
    assert moved.status_code == 200
    after = feature_of(anon, make.observation(ds, 2))
    assert after["@iot.id"] != before["@iot.id"]
    assert after["feature"] == {"type": "Point", "coordinates": [12.0, 53.0]}
    # The old feature still describes the old observation.
    assert anon.get(f"/FeaturesOfInterest({before['@iot.id']})").json()["feature"] == location[
        "location"]
    assert feature_of(anon, make.observation(ds, 3))["@iot.id"] == after["@iot.id"]


def test_new_feature_after_thing_gets_new_location(api, anon, make):
    thing = make.thing()
    ds = make.datastream(thing)
    before = feature_of(anon, make.observation(ds, 1))
    new = make.location(13.4, 52.5)
    api.patch(f"/Things({thing['@iot.id']})", json={"Locations": [{"@iot.id": new["@iot.id"]}]})
    after = feature_of(anon, make.observation(ds, 2))
    assert after["@iot.id"] != before["@iot.id"]
    assert after["feature"] == new["location"]


def test_given_feature_is_used(anon, make):
    ds = make.datastream()
    feature = make.feature()
    obs = make.observation(ds, 1, FeatureOfInterest={"@iot.id": feature["@iot.id"]})
    assert feature_of(anon, obs)["@iot.id"] == feature["@iot.id"]


def test_no_feature_and_no_location_is_400_and_stores_nothing(api, anon, make):
    thing = make.thing(located=False)
    ds = make.datastream(thing)
    for path, body in ((f"/Datastreams({ds['@iot.id']})/Observations", {"result": 1}),
                       ("/Observations", {"result": 1, "Datastream": {"@iot.id": ds["@iot.id"]}})):
        response = api.post(path, json=body)
        assert response.status_code == 400
        assert "FeatureOfInterest" in response.json()["message"]
    assert anon.get(f"/Datastreams({ds['@iot.id']})/Observations").json()["value"] == []
