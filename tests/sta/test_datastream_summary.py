"""Datastream phenomenonTime, resultTime and observedArea follow its Observations."""

from __future__ import annotations

from tests.sta.conftest import point


def summary(anon, ds: dict) -> tuple:
    got = anon.get(f"/Datastreams({ds['@iot.id']})").json()
    return got["phenomenonTime"], got["resultTime"], got["observedArea"]


def test_new_datastream_has_no_summary(anon, make):
    assert summary(anon, make.datastream()) == (None, None, None)


def test_times_widen_as_observations_arrive_out_of_order(anon, make):
    ds = make.datastream()
    make.observation(ds, 1, phenomenonTime="2024-05-01T12:00:00Z",
                     resultTime="2024-05-01T12:00:10Z")
    assert summary(anon, ds)[:2] == ("2024-05-01T12:00:00Z/2024-05-01T12:00:00Z",
                                     "2024-05-01T12:00:10Z/2024-05-01T12:00:10Z")
    make.observation(ds, 2, phenomenonTime="2024-05-03T00:00:00Z",
                     resultTime="2024-05-03T00:00:01Z")
    make.observation(ds, 3, phenomenonTime="2024-04-30T06:00:00Z",
                     resultTime="2024-04-30T06:00:01Z")  # older than the first
    make.observation(ds, 4, phenomenonTime="2024-05-02T00:00:00Z")  # inside, no resultTime
    assert summary(anon, ds)[:2] == ("2024-04-30T06:00:00Z/2024-05-03T00:00:00Z",
                                     "2024-04-30T06:00:01Z/2024-05-03T00:00:01Z")


def test_interval_observation_extends_to_its_end(anon, make):
    ds = make.datastream()
    make.observation(ds, 1, phenomenonTime="2024-01-01T00:00:00Z/2024-01-31T23:59:59Z")
    make.observation(ds, 2, phenomenonTime="2024-01-15T00:00:00Z")
    assert summary(anon, ds)[0] == "2024-01-01T00:00:00Z/2024-01-31T23:59:59Z"


def test_observed_area_covers_all_features(anon, make):
    ds = make.datastream()
    a, b = make.feature(8.0, 49.0), make.feature(9.0, 50.0)
    make.observation(ds, 1, FeatureOfInterest={"@iot.id": a["@iot.id"]})
    assert summary(anon, ds)[2] == point(8.0, 49.0)
    make.observation(ds, 2, FeatureOfInterest={"@iot.id": b["@iot.id"]})
    area = summary(anon, ds)[2]
    assert area["type"] == "LineString"
    assert sorted(map(tuple, area["coordinates"])) == [(8.0, 49.0), (9.0, 50.0)]
    c = make.feature(9.0, 49.0)
    make.observation(ds, 3, FeatureOfInterest={"@iot.id": c["@iot.id"]})
    area = summary(anon, ds)[2]
    assert area["type"] == "Polygon"
    assert {tuple(xy) for xy in area["coordinates"][0]} == {(8.0, 49.0), (9.0, 50.0), (9.0, 49.0)}


def test_observed_area_from_generated_feature(anon, make):
    thing = make.thing()
    location = anon.get(f"/Things({thing['@iot.id']})/Locations").json()["value"][0]
    ds = make.datastream(thing)
    make.observation(ds, 1)
    assert summary(anon, ds)[2] == location["location"]


def test_recomputed_after_observation_deleted(api, anon, make):
    ds = make.datastream()
    near, far = make.feature(8.0, 49.0), make.feature(10.0, 51.0)
    make.observation(ds, 1, phenomenonTime="2024-01-01T00:00:00Z",
                     resultTime="2024-01-01T00:00:00Z",
                     FeatureOfInterest={"@iot.id": near["@iot.id"]})
    latest = make.observation(ds, 2, phenomenonTime="2024-02-01T00:00:00Z",
                              resultTime="2024-02-01T00:00:00Z",
                              FeatureOfInterest={"@iot.id": far["@iot.id"]})
    assert api.delete(f"/Observations({latest['@iot.id']})").status_code == 200
    assert summary(anon, ds) == ("2024-01-01T00:00:00Z/2024-01-01T00:00:00Z",
                                 "2024-01-01T00:00:00Z/2024-01-01T00:00:00Z",
                                 point(8.0, 49.0))


def test_recomputed_after_last_observation_deleted(api, anon, make):
    ds = make.datastream()
    only = make.observation(ds, 1, phenomenonTime="2024-01-01T00:00:00Z")
    assert api.delete(f"/Observations({only['@iot.id']})").status_code == 200
    assert summary(anon, ds) == (None, None, None)


def test_recomputed_after_observation_updated(api, anon, make):
    ds = make.datastream()
    make.observation(ds, 1, phenomenonTime="2024-01-01T00:00:00Z")
    moved = make.observation(ds, 2, phenomenonTime="2024-06-01T00:00:00Z")
    response = api.patch(f"/Observations({moved['@iot.id']})",
                         json={"phenomenonTime": "2024-03-01T00:00:00Z",
                               "resultTime": "2024-03-01T00:00:05Z"})
    assert response.status_code == 200
    assert summary(anon, ds)[:2] == ("2024-01-01T00:00:00Z/2024-03-01T00:00:00Z",
                                     "2024-03-01T00:00:05Z/2024-03-01T00:00:05Z")


def test_observation_moved_to_other_datastream_updates_both(api, anon, make):
    first, second = make.datastream(), make.datastream()
    make.observation(first, 1, phenomenonTime="2024-01-01T00:00:00Z")
    moving = make.observation(first, 2, phenomenonTime="2024-02-01T00:00:00Z")
    response = api.patch(f"/Observations({moving['@iot.id']})",
                         json={"Datastream": {"@iot.id": second["@iot.id"]}})
    assert response.status_code == 200
    assert summary(anon, first)[0] == "2024-01-01T00:00:00Z/2024-01-01T00:00:00Z"
    assert summary(anon, second)[0] == "2024-02-01T00:00:00Z/2024-02-01T00:00:00Z"


def test_recomputed_after_feature_deleted(api, anon, make):
    ds = make.datastream()
    keep, drop = make.feature(8.0, 49.0), make.feature(10.0, 51.0)
    make.observation(ds, 1, phenomenonTime="2024-01-01T00:00:00Z",
                     FeatureOfInterest={"@iot.id": keep["@iot.id"]})
    make.observation(ds, 2, phenomenonTime="2024-09-01T00:00:00Z",
                     FeatureOfInterest={"@iot.id": drop["@iot.id"]})
    assert api.delete(f"/FeaturesOfInterest({drop['@iot.id']})").status_code == 200
    assert summary(anon, ds) == ("2024-01-01T00:00:00Z/2024-01-01T00:00:00Z", None,
                                 point(8.0, 49.0))


def test_server_maintained_fields_cannot_be_set(api, make):
    ds = make.datastream()
    for field, value in (("phenomenonTime", "2020-01-01T00:00:00Z/2020-01-02T00:00:00Z"),
                         ("resultTime", "2020-01-01T00:00:00Z/2020-01-02T00:00:00Z"),
                         ("observedArea", point(1.0, 2.0))):
        response = api.patch(f"/Datastreams({ds['@iot.id']})", json={field: value})
        assert response.status_code == 400
        assert field in response.json()["message"]
