"""$expand, $select and $count as the read path applies them (a light check; the query
language itself has its own tests)."""

from __future__ import annotations

import pytest


@pytest.fixture
def station(make):
    thing = make.thing()
    streams = [make.datastream(thing) for _ in range(3)]
    for ds in streams:
        for n in range(4):
            make.observation(ds, n, phenomenonTime=f"2024-01-0{n + 1}T00:00:00Z")
    return thing, streams


def test_select_on_entity_and_collection(anon, station):
    thing, _ = station
    got = anon.get(f"/Things({thing['@iot.id']})?$select=name,id").json()
    assert got == {"name": thing["name"], "@iot.id": thing["@iot.id"]}
    page = anon.get(f"/Things({thing['@iot.id']})/Datastreams?$select=name").json()
    assert all(set(d) == {"name"} for d in page["value"])
    nav = anon.get(f"/Things({thing['@iot.id']})?$select=Datastreams").json()
    assert set(nav) == {"Datastreams@iot.navigationLink"}


def test_expand_multi_level_with_nested_options(anon, station):
    thing, streams = station
    got = anon.get(f"/Things({thing['@iot.id']})?$expand=Datastreams($select=name;"
                   "$expand=Observations($top=2;$count=true;$select=result),Sensor($select=name))"
                   ",Locations").json()
    assert len(got["Locations"]) == 1
    assert sorted(d["name"] for d in got["Datastreams"]) == sorted(s["name"] for s in streams)
    for ds in got["Datastreams"]:
        assert ds["Observations"] == [{"result": 0}, {"result": 1}]
        assert ds["Observations@iot.count"] == 4
        assert "Observations@iot.nextLink" in ds
        assert set(ds["Sensor"]) == {"name"}


def test_expand_path_form(anon, station):
    _, streams = station
    obs = anon.get(f"/Datastreams({streams[0]['@iot.id']})/Observations?$top=1"
                   "&$expand=Datastream/Thing").json()["value"][0]
    assert obs["Datastream"]["@iot.id"] == streams[0]["@iot.id"]
    assert obs["Datastream"]["Thing"]["@iot.id"] == station[0]["@iot.id"]


def test_count_on_navigation_collection(anon, station):
    thing, _ = station
    body = anon.get(f"/Things({thing['@iot.id']})/Datastreams?$count=true&$top=1").json()
    assert body["@iot.count"] == 3 and len(body["value"]) == 1
    keys = list(body)
    assert keys.index("@iot.count") < keys.index("value")
    plain = anon.get(f"/Things({thing['@iot.id']})/Datastreams").json()
    assert "@iot.count" not in plain
