"""Paging of collections: default page size, $top/$skip, the max-top clamp, @iot.nextLink."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from tests.sta.conftest import Make, all_pages


@pytest.fixture(scope="module")
def datastream_with_250(server):
    """A Datastream with 250 Observations, results 0…249 in time order."""
    with server.client("admin") as api:
        ds = Make(api).datastream()
        for minute in range(250):
            response = api.post(f"/Datastreams({ds['@iot.id']})/Observations", json={
                "result": minute,
                "phenomenonTime": f"2024-01-01T{minute // 60:02d}:{minute % 60:02d}:00Z"})
            assert response.status_code == 201
    return ds


def test_default_page_is_100_with_next_link(anon, datastream_with_250):
    url = f"/Datastreams({datastream_with_250['@iot.id']})/Observations"
    body = anon.get(url).json()
    assert len(body["value"]) == 100
    query = parse_qs(urlsplit(body["@iot.nextLink"]).query)
    # Observations in time order page by keyset: the next page starts after this one's last row.
    assert query["$top"] == ["100"] and "$skiptoken" in query and "$skip" not in query
    assert [o["result"] for o in body["value"]] == list(range(100))
    second = anon.get(body["@iot.nextLink"]).json()
    assert [o["result"] for o in second["value"]] == list(range(100, 200))


def test_next_links_walk_all_pages_without_gaps_or_duplicates(anon, datastream_with_250):
    url = f"/Datastreams({datastream_with_250['@iot.id']})/Observations"
    items = all_pages(anon, url)
    assert [o["result"] for o in items] == list(range(250))
    assert len({o["@iot.id"] for o in items}) == 250


def test_next_links_keep_top_and_other_options(anon, datastream_with_250):
    url = (f"/Datastreams({datastream_with_250['@iot.id']})/Observations"
           "?$top=40&$select=result&$count=true")
    first = anon.get(url).json()
    assert first["@iot.count"] == 250
    assert len(first["value"]) == 40 and set(first["value"][0]) == {"result"}
    next_query = parse_qs(urlsplit(first["@iot.nextLink"]).query)
    assert next_query["$select"] == ["result"] and next_query["$count"] == ["true"]
    items = all_pages(anon, url)
    assert [o["result"] for o in items] == list(range(250))


def test_top_and_skip(anon, datastream_with_250):
    base = f"/Datastreams({datastream_with_250['@iot.id']})/Observations"
    body = anon.get(f"{base}?$top=5&$skip=10").json()
    assert [o["result"] for o in body["value"]] == [10, 11, 12, 13, 14]
    assert "@iot.nextLink" in body
    last = anon.get(f"{base}?$top=5&$skip=245").json()
    assert [o["result"] for o in last["value"]] == [245, 246, 247, 248, 249]
    assert "@iot.nextLink" not in last
    beyond = anon.get(f"{base}?$skip=1000").json()
    assert beyond["value"] == [] and "@iot.nextLink" not in beyond
    empty = anon.get(f"{base}?$top=0&$count=true").json()
    assert empty["value"] == [] and empty["@iot.count"] == 250


def test_exact_page_has_no_next_link(anon, make):
    thing = make.thing()
    for _ in range(3):
        make.datastream(thing)
    body = anon.get(f"/Things({thing['@iot.id']})/Datastreams?$top=3").json()
    assert len(body["value"]) == 3 and "@iot.nextLink" not in body


def test_expand_with_top_gives_nested_next_link(anon, datastream_with_250):
    ds_id = datastream_with_250["@iot.id"]
    body = anon.get(f"/Datastreams({ds_id})?$expand=Observations($top=3;$select=result)").json()
    assert body["Observations"] == [{"result": 0}, {"result": 1}, {"result": 2}]
    link = body["Observations@iot.nextLink"]
    assert link.startswith(f"{anon.base_url}".rstrip("/") + f"/Datastreams({ds_id})/Observations?")
    nested = anon.get(link).json()
    assert [o["result"] for o in nested["value"]] == [3, 4, 5]


def test_max_top_clamps_page_size(fresh_server):
    srv = fresh_server(env={"ORTSPULS_MAX_TOP": "5", "ORTSPULS_DEFAULT_TOP": "3"})
    with srv.client("admin") as api:
        for n in range(12):
            assert api.post("/Sensors", json={
                "name": f"Sensor {n}", "description": "d", "encodingType": "text/plain",
                "metadata": "none"}).status_code == 201
        default = api.get("/Sensors").json()
        assert len(default["value"]) == 3
        clamped = api.get("/Sensors?$top=1000").json()
        assert len(clamped["value"]) == 5
        assert parse_qs(urlsplit(clamped["@iot.nextLink"]).query)["$top"] == ["5"]
        names = [s["name"] for s in all_pages(api, "/Sensors?$top=1000")]
        assert names == [f"Sensor {n}" for n in range(12)]
