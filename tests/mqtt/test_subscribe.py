"""Receive updates via MQTT through the embedded broker (OGC 18-088 clause 14.2): every topic
form, changes from every write path, WebSocket subscribers, refused topics."""

from __future__ import annotations

from tests.sta.conftest import GEOJSON, point


def test_entity_set_topic_delivers_new_and_changed_entities(api, make, subscriber, server):
    sub = subscriber()
    assert sub.subscribe("v1.1/Things") == [1]
    thing = make.thing(located=False, properties={"Ortsteil": "Nord"})
    message = sub.expect("v1.1/Things", lambda m: m["@iot.id"] == thing["@iot.id"])
    assert message["name"] == thing["name"]
    assert message["properties"] == {"Ortsteil": "Nord"}
    assert message["@iot.selfLink"] == f"{server.sta}/Things({thing['@iot.id']})"
    assert message["Datastreams@iot.navigationLink"].endswith(
        f"/Things({thing['@iot.id']})/Datastreams")
    api.patch(f"/Things({thing['@iot.id']})", json={"description": "umbenannt"})
    changed = sub.expect("v1.1/Things", lambda m: m["description"] == "umbenannt")
    assert changed["@iot.id"] == thing["@iot.id"]


def test_select_topic_delivers_only_the_selected_properties(make, subscriber):
    sub = subscriber()
    topic = "v1.1/Things?$select=name,id"
    assert sub.subscribe(topic) == [1]
    thing = make.thing(located=False)
    message = sub.expect(topic, lambda m: m.get("@iot.id") == thing["@iot.id"])
    assert message == {"name": thing["name"], "@iot.id": thing["@iot.id"]}


def test_entity_topic_delivers_changes_of_that_entity_only(api, make, subscriber):
    first, second = make.thing(located=False), make.thing(located=False)
    sub = subscriber()
    topic = f"v1.1/Things({first['@iot.id']})"
    assert sub.subscribe(topic, f"{topic}?$select=description") == [1, 1]
    api.patch(f"/Things({second['@iot.id']})", json={"description": "nicht gemeint"})
    api.patch(f"/Things({first['@iot.id']})", json={"description": "gemeint"})
    message = sub.expect(topic)
    assert message["@iot.id"] == first["@iot.id"] and message["description"] == "gemeint"
    assert sub.expect(f"{topic}?$select=description") == {"description": "gemeint"}
    assert all(m["@iot.id"] == first["@iot.id"] for t, m in sub.drain() if t == topic)


def test_property_topic_delivers_the_property_on_update(api, make, subscriber):
    thing = make.thing(located=False)
    sub = subscriber()
    topic = f"v1.1/Things({thing['@iot.id']})/name"
    assert sub.subscribe(topic) == [1]
    api.patch(f"/Things({thing['@iot.id']})", json={"name": "Pegel Süd"})
    assert sub.expect(topic) == {"name": "Pegel Süd"}


def test_navigation_topic_delivers_each_new_observation(api, make, subscriber):
    thing = make.thing()
    watched, other = make.datastream(thing), make.datastream(thing)
    sub = subscriber()
    topic = f"v1.1/Datastreams({watched['@iot.id']})/Observations"
    assert sub.subscribe(topic) == [1]
    make.observation(other, 1.0)
    created = make.observation(watched, 2.5, phenomenonTime="2024-09-01T10:00:00Z")
    message = sub.expect(topic)
    assert message["@iot.id"] == created["@iot.id"]
    assert message["result"] == 2.5
    assert message["phenomenonTime"] == "2024-09-01T10:00:00Z"
    assert message["@iot.selfLink"] == created["@iot.selfLink"]
    assert all(m["@iot.id"] != created["@iot.id"] - 1 for _, m in sub.drain())


def test_navigation_topic_delivers_every_row_of_a_data_array(api, make, subscriber, server):
    thing = make.thing()
    watched, other = make.datastream(thing), make.datastream(thing)
    sub = subscriber()
    topic = f"v1.1/Datastreams({watched['@iot.id']})/Observations"
    assert sub.subscribe(topic) == [1]
    rows = [[f"2024-09-02T10:{minute:02d}:00Z", minute + 0.5] for minute in range(40)]
    response = api.post("/CreateObservations", json=[
        {"Datastream": {"@iot.id": other["@iot.id"]}, "components": ["phenomenonTime", "result"],
         "dataArray": [["2024-09-02T09:00:00Z", -1]]},
        {"Datastream": {"@iot.id": watched["@iot.id"]}, "components": ["phenomenonTime", "result"],
         "dataArray": rows}])
    assert response.status_code == 201
    links = response.json()[1:]
    messages = {}
    for _ in rows:
        message = sub.expect(topic)
        messages[message["@iot.selfLink"]] = message
    assert sorted(messages) == sorted(links)
    for link, (time, value) in zip(links, rows, strict=True):
        message = messages[link]
        assert message["phenomenonTime"] == time and message["result"] == value
        assert message["Datastream@iot.navigationLink"] == f"{link}/Datastream"
        assert message["FeatureOfInterest@iot.navigationLink"] == f"{link}/FeatureOfInterest"
    assert [m for t, m in sub.drain() if t == topic] == []


def test_navigation_topic_with_select(api, make, subscriber):
    datastream = make.datastream()
    sub = subscriber()
    topic = f"v1.1/Datastreams({datastream['@iot.id']})/Observations?$select=result"
    assert sub.subscribe(topic) == [1]
    make.observation(datastream, 7)
    assert sub.expect(topic) == {"result": 7}


def test_many_to_many_navigation_topic(api, make, subscriber):
    thing = make.thing(located=False)
    sub = subscriber()
    topic = f"v1.1/Things({thing['@iot.id']})/Locations"
    assert sub.subscribe(topic) == [1]
    response = api.post(f"/Things({thing['@iot.id']})/Locations", json={
        "name": "Schule", "description": "Grundschule", "encodingType": GEOJSON,
        "location": point(8.41, 49.02)})
    assert response.status_code == 201
    message = sub.expect(topic)
    assert message["name"] == "Schule" and message["location"] == point(8.41, 49.02)


def test_updates_from_every_write_path(api, make, publisher, subscriber):
    datastream = make.datastream()
    ds = datastream["@iot.id"]
    sub = subscriber()
    topic = f"v1.1/Datastreams({ds})/Observations"
    sub.subscribe(topic)
    # DataArray
    api.post("/CreateObservations", json=[{"Datastream": {"@iot.id": ds},
                                           "components": ["result"], "dataArray": [[101]]}])
    assert sub.expect(topic)["result"] == 101
    # batch (JSON)
    api.post("/$batch", json={"requests": [{"id": "1", "method": "post",
                                            "url": f"Datastreams({ds})/Observations",
                                            "body": {"result": 102}}]})
    assert sub.expect(topic)["result"] == 102
    # batch change set: published after the commit
    api.post("/$batch", json={"requests": [
        {"id": "1", "method": "post", "url": f"Datastreams({ds})/Observations",
         "body": {"result": 103}, "atomicityGroup": "g"}]})
    assert sub.expect(topic)["result"] == 103
    # MQTT
    publisher("write").send(topic, {"result": 104})
    assert sub.expect(topic)["result"] == 104
    # update over HTTP
    created = make.observation(datastream, 105)
    assert sub.expect(topic)["result"] == 105
    api.patch(f"/Observations({created['@iot.id']})", json={"result": 106})
    assert sub.expect(topic)["result"] == 106


def test_rolled_back_change_set_announces_nothing(api, make, subscriber):
    datastream = make.datastream()
    ds = datastream["@iot.id"]
    sub = subscriber()
    topic = f"v1.1/Datastreams({ds})/Observations"
    sub.subscribe(topic)
    api.post("/$batch", json={"requests": [
        {"id": "1", "method": "post", "url": f"Datastreams({ds})/Observations",
         "body": {"result": 1}, "atomicityGroup": "g"},
        {"id": "2", "method": "post", "url": "Things", "body": {"name": "ohne"},
         "atomicityGroup": "g"}]})
    make.observation(datastream, "danach")
    assert sub.expect(topic)["result"] == "danach"
    assert [m["result"] for _, m in sub.drain()] == []


def test_websocket_subscriber(make, subscriber, server):
    sub = subscriber(transport="websockets")
    datastream = make.datastream()
    topic = f"v1.1/Datastreams({datastream['@iot.id']})/Observations"
    assert sub.subscribe(topic) == [1]
    make.observation(datastream, 33.3)
    assert sub.expect(topic)["result"] == 33.3


def test_wildcard_subscription_gets_plain_topics(make, subscriber):
    datastream = make.datastream()
    sub = subscriber()
    assert sub.subscribe(f"v1.1/Datastreams({datastream['@iot.id']})/+") == [1]
    make.observation(datastream, 8)
    assert sub.expect(f"v1.1/Datastreams({datastream['@iot.id']})/Observations")["result"] == 8


def test_topics_that_name_nothing_are_refused(subscriber):
    sub = subscriber()
    granted = sub.subscribe("v1.1/Dinge", "v1.1/Things(1)/farbe", "v1.1/Things?$top=3",
                            "v1.1/Things(1)/Datastreams(2)/Observations", "v1.1/Things")
    assert granted == [128, 128, 128, 128, 1]


def test_service_root_lists_the_mqtt_endpoints(anon, server):
    settings = anon.get("").json()["serverSettings"]
    expected = [f"mqtt://127.0.0.1:{server.mqtt_port}", f"ws://127.0.0.1:{server.mqtt_ws_port}"]
    base = "http://www.opengis.net/spec/iot_sensing/1.1/req/"
    for uri in ("create-observations-via-mqtt/observations-creation",
                "receive-updates-via-mqtt/receive-updates"):
        assert base + uri in settings["conformance"]
        assert settings[base + uri] == {"endpoints": expected}
