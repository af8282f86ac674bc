"""Create Observations via MQTT through the embedded broker (OGC 18-088 clause 14.1)."""

from __future__ import annotations

import pytest
from tests.mqtt.conftest import WAIT, Publisher, wait_until

COMPLEX = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation"
MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"


def observations(api, datastream: dict, collection: str = "Datastreams") -> list[dict]:
    url = f"/{collection}({datastream['@iot.id']})/Observations?$orderby=id"
    return api.get(url).json()["value"]


@pytest.mark.parametrize("qos", [0, 1])
def test_observation_published_to_datastream_topic_is_stored(api, make, publisher, qos):
    datastream = make.datastream()
    pub = publisher("write")
    topic = f"v1.1/Datastreams({datastream['@iot.id']})/Observations"
    pub.send(topic, {"result": 17.25, "phenomenonTime": "2024-08-01T06:00:00Z",
                     "parameters": {"Batterie": 3.1}}, qos=qos)
    stored = wait_until(lambda: observations(api, datastream))
    assert len(stored) == 1
    assert stored[0]["result"] == 17.25
    assert stored[0]["phenomenonTime"] == "2024-08-01T06:00:00Z"
    assert stored[0]["parameters"] == {"Batterie": 3.1}


def test_observation_on_observations_topic_needs_its_datastream_link(api, make, publisher,
                                                                      server):
    datastream = make.datastream()
    pub = publisher("write")
    pub.send("v1.1/Observations", {"result": "trocken"})
    pub.send("v1.1/Observations", {"result": "nass",
                                   "Datastream": {"@iot.id": datastream["@iot.id"]}})
    stored = wait_until(lambda: observations(api, datastream))
    assert [o["result"] for o in stored] == ["nass"]
    wait_until(lambda: "Observation.Datastream is mandatory" in server.log())


def test_observation_to_multi_datastream_topic(api, make, publisher):
    thing = make.thing()
    multi = api.post("/MultiDatastreams", json={
        "name": make.name("Klima"), "description": "d", "observationType": COMPLEX,
        "unitOfMeasurements": [{"name": "Grad", "symbol": "°C", "definition": "u"},
                               {"name": "Prozent", "symbol": "%", "definition": "u"}],
        "multiObservationDataTypes": [MEASUREMENT, MEASUREMENT],
        "Thing": {"@iot.id": thing["@iot.id"]}, "Sensor": make.sensor_body(),
        "ObservedProperties": [make.observed_property_body(), make.observed_property_body()],
    }).json()
    pub = publisher("write")
    pub.send(f"v1.1/MultiDatastreams({multi['@iot.id']})/Observations", {"result": [19.5, 55]})
    stored = wait_until(lambda: observations(api, multi, "MultiDatastreams"))
    assert stored[0]["result"] == [19.5, 55]


def test_many_messages_arrive_complete(api, make, publisher):
    datastream = make.datastream()
    pub = publisher("write")
    topic = f"v1.1/Datastreams({datastream['@iot.id']})/Observations"
    for i in range(300):
        pub.client.publish(topic, f'{{"result": {i}}}', qos=1)
    pub.send(topic, {"result": 300})
    stored = wait_until(lambda: (s := observations_all(api, datastream)) and len(s) == 301 and s)
    assert sorted(o["result"] for o in stored) == list(range(301))


def observations_all(api, datastream: dict) -> list[dict]:
    url = f"/Datastreams({datastream['@iot.id']})/Observations?$top=1000&$select=result"
    return api.get(url).json()["value"]


@pytest.mark.parametrize("payload, reason", [
    (b"kein JSON", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"phenomenonTime": "2024-08-01T06:00:00Z"}', "Observation.result is mandatory"),
    (b'{"result": 1, "phenomenonTime": "morgen"}', "phenomenonTime"),
    (b'{"result": 1, "farbe": "blau"}', "farbe"),
    (b'{"result": 1, "Datastream": {"name": "neu"}}', "can only be linked"),
])
def test_invalid_payload_stores_nothing_and_is_logged(api, make, publisher, server, payload,
                                                      reason):
    datastream = make.datastream()
    pub = publisher("write")
    topic = f"v1.1/Datastreams({datastream['@iot.id']})/Observations"
    pub.send(topic, payload)
    pub.send(topic, {"result": "danach"})  # a valid message after it is still stored
    stored = wait_until(lambda: observations(api, datastream))
    assert [o["result"] for o in stored] == ["danach"]
    # The server (and its log) is shared with other tests: look for this message's line.
    wait_until(lambda: any(reason in ln and topic in ln and "rejected, nothing stored" in ln
                           for ln in server.log().splitlines()))


def test_unknown_datastream_is_logged(api, publisher, server):
    pub = publisher("write")
    pub.send("v1.1/Datastreams(987654321)/Observations", {"result": 1})
    wait_until(lambda: "no Datastream with id 987654321" in server.log())
    assert api.get("/Datastreams(987654321)/Observations").status_code == 404


def test_publishing_needs_an_api_key_with_ingest_scope(api, make, publisher, server):
    datastream = make.datastream()
    topic = f"v1.1/Datastreams({datastream['@iot.id']})/Observations"
    publisher(None).send(topic, {"result": "anonym"})
    publisher("read").send(topic, {"result": "nur lesen"})
    publisher("write").send(topic, {"result": "erlaubt"})
    stored = wait_until(lambda: observations(api, datastream))
    assert [o["result"] for o in stored] == ["erlaubt"]
    assert "ingest scope" in server.log()


def test_a_wrong_api_key_is_refused_at_connect(server):
    pub = Publisher("127.0.0.1", server.mqtt_port, "ops_falsch")
    try:
        assert pub.connect_result.is_failure
    finally:
        pub.close()


def test_other_topics_are_not_forwarded(make, publisher, subscriber):
    sub = subscriber()
    assert sub.subscribe("stadt/#") == [1]
    publisher("write").send("stadt/pegel", {"x": 1})
    assert sub.drain(1.0) == []


def test_observation_created_over_mqtt_reaches_subscribers(make, publisher, subscriber):
    datastream = make.datastream()
    topic = f"v1.1/Datastreams({datastream['@iot.id']})/Observations"
    sub = subscriber()
    sub.subscribe(topic)
    publisher("write").send(topic, {"result": 4.5})
    message = sub.expect(topic, timeout=WAIT)
    # Subscribers receive the stored entity, not the raw request.
    assert message["result"] == 4.5 and "@iot.id" in message and "@iot.selfLink" in message
