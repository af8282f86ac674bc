"""Every resource-path form of SensorThings 1.1, with absolute links, ids and times."""

from __future__ import annotations

import re

import httpx
import pytest

from ortspuls.model import CORE_ENTITY_SETS

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


@pytest.fixture
def graph(make):
    """Thing with Location, Datastream (Sensor, ObservedProperty inline), one Observation."""
    thing = make.thing()
    datastream = make.datastream(thing)
    observation = make.observation(datastream, 21.5, phenomenonTime="2024-05-01T12:00:00Z",
                                   resultTime="2024-05-01T12:00:05Z")
    return {"thing": thing, "datastream": datastream, "observation": observation}


def test_root_document_lists_entity_sets_and_conformance(anon, server):
    for prefix in ("/v1.1", "/v1.0"):
        body = httpx.get(server.url + prefix).json()
        urls = {e["name"]: e["url"] for e in body["value"]}
        for name in CORE_ENTITY_SETS:
            assert urls[name] == f"{server.url}{prefix}/{name}"
        conformance = body["serverSettings"]["conformance"]
        for cls in ("datamodel", "resource-path/resource-path-to-entities", "request-data",
                    "create-update-delete"):
            assert f"http://www.opengis.net/spec/iot_sensing/1.1/req/{cls}" in conformance


@pytest.mark.parametrize("entity_set", CORE_ENTITY_SETS)
def test_every_collection_answers_with_value_list(anon, server, graph, entity_set):
    response = anon.get(f"/{entity_set}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["value"], list)
    assert body["value"], f"{entity_set} should not be empty after creating the graph"
    for entity in body["value"]:
        assert entity["@iot.selfLink"] == f"{server.sta}/{entity_set}({entity['@iot.id']})"


def test_entity_by_id_has_integer_id_and_absolute_links(anon, graph, server):
    thing_id = graph["thing"]["@iot.id"]
    thing = anon.get(f"/Things({thing_id})").json()
    assert isinstance(thing["@iot.id"], int) and thing["@iot.id"] == thing_id
    self_link = f"{server.sta}/Things({thing_id})"
    assert thing["@iot.selfLink"] == self_link
    for rel in ("Locations", "HistoricalLocations", "Datastreams"):
        assert thing[f"{rel}@iot.navigationLink"] == f"{self_link}/{rel}"
    # Every navigation link can be followed.
    for rel in ("Locations", "HistoricalLocations", "Datastreams"):
        assert httpx.get(thing[f"{rel}@iot.navigationLink"]).status_code == 200


def test_quoted_id_is_accepted(anon, graph):
    thing_id = graph["thing"]["@iot.id"]
    assert anon.get(f"/Things('{thing_id}')").json()["@iot.id"] == thing_id


def test_navigation_to_one_to_many_and_multi_level(anon, graph):
    thing, ds, obs = graph["thing"], graph["datastream"], graph["observation"]
    to_one = anon.get(f"/Observations({obs['@iot.id']})/Datastream").json()
    assert to_one["@iot.id"] == ds["@iot.id"]
    to_many = anon.get(f"/Things({thing['@iot.id']})/Datastreams").json()
    assert [d["@iot.id"] for d in to_many["value"]] == [ds["@iot.id"]]
    multi = anon.get(f"/Observations({obs['@iot.id']})/Datastream/Thing").json()
    assert multi["@iot.id"] == thing["@iot.id"]
    assert multi["name"] == thing["name"]
    deeper = anon.get(f"/Things({thing['@iot.id']})/Datastreams({ds['@iot.id']})/Observations")
    assert [o["@iot.id"] for o in deeper.json()["value"]] == [obs["@iot.id"]]
    sensor = anon.get(f"/Observations({obs['@iot.id']})/Datastream/Sensor").json()
    assert sensor["@iot.selfLink"].endswith(f"/Sensors({sensor['@iot.id']})")
    locations = anon.get(f"/Observations({obs['@iot.id']})/Datastream/Thing/Locations").json()
    assert len(locations["value"]) == 1


def test_navigation_with_id_not_related_is_404(anon, graph, make):
    other = make.datastream()
    response = anon.get(f"/Things({graph['thing']['@iot.id']})/Datastreams({other['@iot.id']})")
    assert response.status_code == 404
    assert "Datastream" in response.json()["message"]


def test_property_and_value(anon, graph):
    thing, obs = graph["thing"], graph["observation"]
    assert anon.get(f"/Things({thing['@iot.id']})/name").json() == {"name": thing["name"]}
    value = anon.get(f"/Things({thing['@iot.id']})/name/$value")
    assert value.status_code == 200
    assert value.headers["content-type"].startswith("text/plain")
    assert value.text == thing["name"]
    result = anon.get(f"/Observations({obs['@iot.id']})/result/$value")
    assert result.headers["content-type"].startswith("text/plain")
    assert result.text == "21.5"
    time_value = anon.get(f"/Observations({obs['@iot.id']})/phenomenonTime/$value")
    assert time_value.text == "2024-05-01T12:00:00Z"
    assert anon.get(f"/Things({thing['@iot.id']})/id").json() == {"@iot.id": thing["@iot.id"]}


def test_value_of_object_property_is_json_text(anon, make):
    thing = make.thing(properties={"Ort": "Mühlbach", "Höhe": 210})
    response = anon.get(f"/Things({thing['@iot.id']})/properties/$value")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.json() == {"Ort": "Mühlbach", "Höhe": 210}


def test_value_of_null_is_204(anon, graph):
    thing = graph["thing"]
    assert anon.get(f"/Things({thing['@iot.id']})/properties").json() == {"properties": None}
    response = anon.get(f"/Things({thing['@iot.id']})/properties/$value")
    assert response.status_code == 204
    assert response.content == b""


def test_ref_on_collections_and_single_navigations(anon, graph, server):
    thing, ds, obs = graph["thing"], graph["datastream"], graph["observation"]
    refs = anon.get(f"/Things({thing['@iot.id']})/Datastreams/$ref").json()
    assert refs["value"] == [{"@iot.selfLink": f"{server.sta}/Datastreams({ds['@iot.id']})"}]
    single = anon.get(f"/Observations({obs['@iot.id']})/Datastream/$ref").json()
    assert single == {"@iot.selfLink": f"{server.sta}/Datastreams({ds['@iot.id']})"}
    top_level = anon.get("/Things/$ref?$top=2").json()
    assert len(top_level["value"]) == 2
    assert all(set(r) == {"@iot.selfLink"} for r in top_level["value"])
    by_id = anon.get(f"/Things({thing['@iot.id']})/$ref").json()
    assert by_id == {"@iot.selfLink": f"{server.sta}/Things({thing['@iot.id']})"}


def test_v10_serves_the_same_with_its_own_links(server, graph):
    ds_id = graph["datastream"]["@iot.id"]
    v11 = httpx.get(f"{server.url}/v1.1/Datastreams({ds_id})").json()
    v10 = httpx.get(f"{server.url}/v1.0/Datastreams({ds_id})").json()
    assert v10["@iot.selfLink"] == f"{server.url}/v1.0/Datastreams({ds_id})"
    assert v10["Thing@iot.navigationLink"] == f"{server.url}/v1.0/Datastreams({ds_id})/Thing"
    strip = {k: v for k, v in v11.items() if "Link" not in k}
    assert {k: v for k, v in v10.items() if "Link" not in k} == strip
    obs_id = graph["observation"]["@iot.id"]
    assert httpx.get(f"{server.url}/v1.0/Observations({obs_id})/Datastream/Thing").json()[
        "@iot.id"] == graph["thing"]["@iot.id"]


def test_times_are_iso_utc_and_intervals_start_end(anon, make):
    ds = make.datastream()
    # Given with an offset, shown in UTC.
    obs = make.observation(ds, 1, phenomenonTime="2024-03-01T13:30:00+01:00",
                           resultTime="2024-03-01T12:30:00.250Z",
                           validTime="2024-03-01T00:00:00Z/2024-03-02T00:00:00Z")
    got = anon.get(f"/Observations({obs['@iot.id']})").json()
    assert got["phenomenonTime"] == "2024-03-01T12:30:00Z"
    assert got["resultTime"] == "2024-03-01T12:30:00.250Z"
    assert got["validTime"] == "2024-03-01T00:00:00Z/2024-03-02T00:00:00Z"
    interval = make.observation(
        ds, 2, phenomenonTime="2024-03-01T14:00:00Z/2024-03-01T15:00:00Z")
    got = anon.get(f"/Observations({interval['@iot.id']})").json()
    assert got["phenomenonTime"] == "2024-03-01T14:00:00Z/2024-03-01T15:00:00Z"
    assert got["resultTime"] is None
    ds_now = anon.get(f"/Datastreams({ds['@iot.id']})").json()
    assert ds_now["phenomenonTime"] == "2024-03-01T12:30:00Z/2024-03-01T15:00:00Z"
    hist = anon.get(f"/Datastreams({ds['@iot.id']})/Thing/HistoricalLocations").json()["value"]
    assert hist and all(ISO_UTC.match(h["time"]) for h in hist)


def test_observation_without_phenomenon_time_gets_server_time(anon, make):
    ds = make.datastream()
    obs = make.observation(ds, 5)
    assert ISO_UTC.match(obs["phenomenonTime"])


# ---------------------------------------------------------------------------------------------
# Links behind a reverse proxy or with a configured public URL


PROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "daten.musterstadt.de",
         "X-Forwarded-Port": "443", "X-Forwarded-Prefix": "/sensoren"}


def test_links_follow_forwarded_headers(server, graph):
    thing_id = graph["thing"]["@iot.id"]
    public = "https://daten.musterstadt.de/sensoren/v1.1"
    thing = httpx.get(f"{server.sta}/Things({thing_id})", headers=PROXY).json()
    assert thing["@iot.selfLink"] == f"{public}/Things({thing_id})"
    assert thing["Datastreams@iot.navigationLink"] == f"{public}/Things({thing_id})/Datastreams"
    root = httpx.get(server.sta, headers=PROXY).json()
    assert {e["url"] for e in root["value"]} >= {f"{public}/Things", f"{public}/Observations"}
    page = httpx.get(f"{server.sta}/Things?$top=1", headers=PROXY).json()
    assert page["@iot.nextLink"].startswith(f"{public}/Things?")
    created = httpx.post(f"{server.sta}/Things", json={"name": "Proxy", "description": "p"},
                         headers={**PROXY, "Authorization": f"Bearer {server.keys['write']}"})
    assert created.status_code == 201
    assert created.headers["location"].startswith(f"{public}/Things(")
    assert created.json()["@iot.selfLink"] == created.headers["location"]


def test_forwarded_non_default_port_is_kept(server, graph):
    thing_id = graph["thing"]["@iot.id"]
    headers = {"X-Forwarded-Proto": "http", "X-Forwarded-Host": "gateway.local",
               "X-Forwarded-Port": "8080"}
    thing = httpx.get(f"{server.sta}/Things({thing_id})", headers=headers).json()
    assert thing["@iot.selfLink"] == f"http://gateway.local:8080/v1.1/Things({thing_id})"


def test_host_header_is_used_without_proxy(server, graph):
    thing_id = graph["thing"]["@iot.id"]
    thing = httpx.get(f"{server.sta}/Things({thing_id})",
                      headers={"Host": "sensoren.example:9000"}).json()
    assert thing["@iot.selfLink"] == f"http://sensoren.example:9000/v1.1/Things({thing_id})"


def test_public_base_url_setting_wins(fresh_server):
    srv = fresh_server(env={"ORTSPULS_PUBLIC_BASE_URL": "https://daten.example.de/api/"})
    with srv.client("admin") as api:
        created = api.post("/Things", json={"name": "Pegel", "description": "d"})
        assert created.status_code == 201
        thing_id = created.json()["@iot.id"]
        expected = f"https://daten.example.de/api/v1.1/Things({thing_id})"
        assert created.headers["location"] == expected
        # Forwarded headers do not override the configured URL.
        got = api.get(f"/Things({thing_id})", headers=PROXY).json()
        assert got["@iot.selfLink"] == expected
        root = api.get("").json()
        assert root["value"][0]["url"] == "https://daten.example.de/api/v1.1/Things"
