"""External broker mode (`--mqtt-url`) against a real Mosquitto started for these tests."""

from __future__ import annotations

from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest
from tests.conftest import (
    TEST_DATABASES,
    Server,
    create_key,
    database_args_for,
    start_server,
    stop_server,
)
from tests.mqtt.conftest import Publisher, Subscriber, wait_until
from tests.sta.conftest import GEOJSON, Make, point


@pytest.fixture(scope="module", params=TEST_DATABASES)
def external(request, mosquitto, tmp_path_factory) -> Iterator[Server]:
    """Two API processes (workers) sharing the Mosquitto broker."""
    host, port = mosquitto
    data_dir = tmp_path_factory.mktemp(f"external-{request.param}")
    with database_args_for(request.param, data_dir) as args:
        key = create_key(args, "admin", "admin")
        srv = start_server(data_dir, args, extra_args=(
            "--mqtt-url", f"mqtt://{host}:{port}", "--workers", "2"))
        srv.keys = {"admin": key}
        srv.mqtt_port = port
        yield srv
        stop_server(srv)


@pytest.fixture
def ext_api(external):
    with external.client("admin") as client:
        yield client


@pytest.fixture
def ext_make(ext_api) -> Make:
    return Make(ext_api)


@pytest.fixture
def ext_sub(external) -> Iterator[Subscriber]:
    sub = Subscriber("127.0.0.1", external.mqtt_port)
    yield sub
    sub.close()


def test_service_root_names_the_external_broker(ext_api, external):
    settings = ext_api.get("").json()["serverSettings"]
    uri = ("http://www.opengis.net/spec/iot_sensing/1.1/req/"
           "receive-updates-via-mqtt/receive-updates")
    assert settings[uri] == {"endpoints": [f"mqtt://127.0.0.1:{external.mqtt_port}"]}


def test_observations_published_to_mosquitto_are_stored_exactly_once(ext_api, ext_make,
                                                                      external):
    datastream = ext_make.datastream()
    topic = f"v1.1/Datastreams({datastream['@iot.id']})/Observations"
    pub = Publisher("127.0.0.1", external.mqtt_port, None)
    try:
        for i in range(40):
            pub.send(topic, {"result": i}, qos=1)
    finally:
        pub.close()
    url = f"/Datastreams({datastream['@iot.id']})/Observations?$top=200&$count=true"
    wait_until(lambda: ext_api.get(url).json()["@iot.count"] >= 40)
    body = ext_api.get(url).json()
    # Two workers share the create subscription, and each notification the server publishes
    # back on the same topic is recognised as its own: 40 messages, 40 Observations.
    assert body["@iot.count"] == 40
    assert sorted(o["result"] for o in body["value"]) == list(range(40))
    assert "rejected" not in external.log()


def test_notifications_on_all_plain_topic_forms(ext_api, ext_make, ext_sub):
    thing = ext_make.thing()
    datastream = ext_make.datastream(thing)
    ds = datastream["@iot.id"]
    topics = ["v1.1/Observations", f"v1.1/Datastreams({ds})/Observations",
              f"v1.1/Things({thing['@iot.id']})", f"v1.1/Things({thing['@iot.id']})/name",
              f"v1.1/Things({thing['@iot.id']})/Datastreams"]
    assert ext_sub.subscribe(*topics) == [1] * len(topics)
    response = ext_api.post(f"/Datastreams({ds})/Observations", json={"result": 9.5})
    assert response.status_code == 201, response.text
    created = response.json()
    for topic in topics[:2]:
        message = ext_sub.expect(topic, lambda m: m["@iot.id"] == created["@iot.id"])
        assert message["result"] == 9.5 and message["@iot.selfLink"] == created["@iot.selfLink"]
    ext_api.patch(f"/Things({thing['@iot.id']})", json={"name": "Pegel West"})
    assert ext_sub.expect(topics[2])["name"] == "Pegel West"
    assert ext_sub.expect(topics[3]) == {"name": "Pegel West"}
    second = ext_make.datastream(thing)
    assert ext_sub.expect(topics[4])["@iot.id"] == second["@iot.id"]


def test_many_to_many_navigation_on_the_external_broker(ext_api, ext_make, ext_sub):
    thing = ext_make.thing(located=False)
    topic = f"v1.1/Things({thing['@iot.id']})/Locations"
    ext_sub.subscribe(topic)
    ext_api.post(f"/Things({thing['@iot.id']})/Locations", json={
        "name": "Rathaus", "description": "d", "encodingType": GEOJSON,
        "location": point(8.4, 49.0)})
    assert ext_sub.expect(topic)["name"] == "Rathaus"


def test_invalid_payload_on_mosquitto_is_logged(ext_api, ext_make, external):
    datastream = ext_make.datastream()
    pub = Publisher("127.0.0.1", external.mqtt_port, None)
    try:
        pub.send(f"v1.1/Datastreams({datastream['@iot.id']})/Observations", b"{kaputt")
    finally:
        pub.close()
    wait_until(lambda: "not valid JSON" in external.log())
    url = f"/Datastreams({datastream['@iot.id']})/Observations"
    assert ext_api.get(url).json()["value"] == []


def test_mqtt5_subscriber_sees_the_notification_marker(ext_api, ext_make, external):
    datastream = ext_make.datastream()
    topic = f"v1.1/Datastreams({datastream['@iot.id']})/Observations"
    sub = Subscriber("127.0.0.1", external.mqtt_port, protocol=paho.MQTTv5)
    properties = []
    sub.client.on_message = lambda c, u, m: properties.append(m.properties.UserProperty)
    try:
        sub.subscribe(topic)
        ext_api.post(f"/Datastreams({datastream['@iot.id']})/Observations", json={"result": 1})
        wait_until(lambda: properties)
    finally:
        sub.close()
    assert properties[0] == [("ortspuls", "notification")]
