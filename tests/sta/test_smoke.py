"""The server answers the service root and a first create/read round trip."""

from ortspuls.model import CORE_ENTITY_SETS


def test_root_lists_all_entity_sets_with_absolute_urls(anon, server):
    body = anon.get("").json()
    names = [e["name"] for e in body["value"]]
    for name in CORE_ENTITY_SETS:
        assert name in names
    assert all(e["url"] == f"{server.sta}/{e['name']}" for e in body["value"])
    assert "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel" in (
        body["serverSettings"]["conformance"])


def test_create_and_read_thing(api):
    response = api.post("/Things", json={"name": "Pegel Mühlbach", "description": "gauge"})
    assert response.status_code == 201
    thing = response.json()
    assert response.headers["location"] == thing["@iot.selfLink"]
    again = api.get(f"/Things({thing['@iot.id']})").json()
    assert again["name"] == "Pegel Mühlbach"
