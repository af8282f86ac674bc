"""POST /v1.1/$batch: multipart/mixed with change sets, and the OData 4.01 JSON batch."""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.sta.conftest import GEOJSON, point


def thing_body(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": "Batch-Test", **extra}


# ---------------------------------------------------------------------------------------------
# multipart/mixed helpers


def http_part(method: str, url: str, body: str | None = None, content_id: str | None = None,
              ) -> str:
    head = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if content_id is not None:
        head += f"Content-ID: {content_id}\r\n"
    request = f"{method} {url} HTTP/1.1\r\nHost: example.org\r\n"
    if body is not None:
        request += "Content-Type: application/json\r\n"
    request += "\r\n" + (body or "")
    return head + "\r\n" + request + "\r\n"


def multipart(boundary: str, *parts: str) -> str:
    return "".join(f"--{boundary}\r\n{p}" for p in parts) + f"--{boundary}--\r\n"


def change_set(boundary: str, *parts: str) -> str:
    return (f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n"
            + multipart(boundary, *parts))


def post_multipart(api, body: str, boundary: str = "batch_x"):
    return api.post("/$batch", content=body.encode(),
                    headers={"Content-Type": f"multipart/mixed; boundary={boundary}"})


def parse_multipart_answer(response) -> list[list[tuple[int, dict[str, str], str]]]:
    """Per top-level part: the list of (status, headers, body) responses in it."""
    boundary = re.search(r"boundary=([^;]+)", response.headers["content-type"]).group(1)
    out = []
    for block in response.text.split(f"--{boundary}")[1:-1]:
        if "multipart/mixed" in block.split("\r\n\r\n", 1)[0]:
            inner = re.search(r"boundary=(\S+)", block).group(1)
            items = block.split(f"--{inner}")[1:-1]
        else:
            items = [block]
        out.append([_http_response(item) for item in items])
    return out


def _http_response(item: str) -> tuple[int, dict[str, str], str]:
    mime, _, http = item.strip("\r\n").partition("\r\n\r\n")
    head, _, body = http.partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    for line in mime.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-id":
            headers["content-id"] = value.strip()
    return status, headers, body.strip()


def things_named(api, name: str) -> list[dict[str, Any]]:
    return api.get("/Things", params={"$filter": f"name eq '{name}'"}).json()["value"]


# ---------------------------------------------------------------------------------------------
# multipart/mixed


def test_multipart_get_and_change_set_with_reference(api, make):
    thing = make.thing()
    body = multipart(
        "batch_1",
        http_part("GET", f"Things({thing['@iot.id']})?$select=name"),
        change_set(
            "changeset_1",
            http_part("POST", "/v1.1/Things", '{"name": "MP Rathaus", "description": "neu"}',
                      content_id="1"),
            http_part("POST", "$1/Locations", '{"name": "Marktplatz", "description": "Mitte", '
                      f'"encodingType": "{GEOJSON}", "location": '
                      '{"type": "Point", "coordinates": [8.4, 49.0]}}', content_id="2"),
            http_part("PATCH", "$1", '{"description": "geändert"}', content_id="3"),
        ),
    )
    response = post_multipart(api, body, "batch_1")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("multipart/mixed; boundary=")
    get_part, change = parse_multipart_answer(response)
    status, _, text = get_part[0]
    assert status == 200 and '"name":"' + thing["name"] + '"' in text
    assert [s for s, _, _ in change] == [201, 201, 200]
    assert [h["content-id"] for _, h, _ in change] == ["1", "2", "3"]
    created = change[0][1]["location"]
    thing_id = int(re.search(r"Things\((\d+)\)$", created).group(1))
    stored = api.get(f"/Things({thing_id})?$expand=Locations").json()
    assert stored["description"] == "geändert"
    assert [loc["name"] for loc in stored["Locations"]] == ["Marktplatz"]


def test_failing_change_set_is_rolled_back_and_other_parts_still_run(api, table_counts):
    before = table_counts()
    body = multipart(
        "batch_2",
        change_set(
            "cs_2",
            http_part("POST", "Things", '{"name": "MP wird verworfen", "description": "x"}',
                      content_id="a"),
            http_part("POST", "$a/Datastreams", '{"name": "unvollständig"}', content_id="b"),
        ),
        http_part("POST", "Things", '{"name": "MP bleibt", "description": "y"}'),
        http_part("GET", "Things(999999999)"),
    )
    response = post_multipart(api, body, "batch_2")
    assert response.status_code == 200
    change, alone, missing = parse_multipart_answer(response)
    # A failed change set is answered by its one failing response (OData 4.0).
    assert len(change) == 1
    status, headers, text = change[0]
    assert status == 400 and headers["content-id"] == "b"
    assert "Datastream" in text
    assert alone[0][0] == 201
    assert missing[0][0] == 404
    assert things_named(api, "MP wird verworfen") == []
    assert len(things_named(api, "MP bleibt")) == 1
    after = table_counts()
    assert after["things"] == before["things"] + 1
    assert after["datastreams"] == before["datastreams"]


def test_change_set_rollback_includes_observations_and_deep_inserts(api, make, table_counts):
    datastream = make.datastream()
    before = table_counts()
    body = multipart(
        "batch_3",
        change_set(
            "cs_3",
            http_part("POST", f"Datastreams({datastream['@iot.id']})/Observations",
                      '{"result": 12.5}', content_id="1"),
            http_part("POST", "Things", '{"name": "MP tief", "description": "d", "Locations": '
                      f'[{{"name": "L", "description": "l", "encodingType": "{GEOJSON}", '
                      '"location": {"type": "Point", "coordinates": [8, 49]}}]}',
                      content_id="2"),
            http_part("POST", "CreateObservations",
                      f'[{{"Datastream": {{"@iot.id": {datastream["@iot.id"]}}}, '
                      '"components": ["result"], "dataArray": [[1], [2]]}]', content_id="3"),
            http_part("DELETE", "Things(999999999)", content_id="4"),
        ),
    )
    response = post_multipart(api, body, "batch_3")
    (change,) = parse_multipart_answer(response)
    assert change[0][0] == 404
    assert table_counts() == before
    assert api.get(f"/Datastreams({datastream['@iot.id']})/Observations").json()["value"] == []


def test_successful_change_set_publishes_everything(api, make):
    datastream = make.datastream()
    ds = datastream["@iot.id"]
    body = multipart("b4", change_set(
        "c4",
        http_part("POST", f"Datastreams({ds})/Observations", '{"result": 1}', content_id="1"),
        http_part("POST", "CreateObservations",
                  f'[{{"Datastream": {{"@iot.id": {ds}}}, "components": ["result"], '
                  '"dataArray": [[2], [3]]}]', content_id="2"),
    ))
    (change,) = parse_multipart_answer(post_multipart(api, body, "b4"))
    assert [s for s, _, _ in change] == [201, 201]
    results = [o["result"] for o in api.get(f"/Datastreams({ds})/Observations").json()["value"]]
    assert sorted(results) == [1, 2, 3]


@pytest.mark.parametrize("body, content_type, fragment", [
    ("--b\r\nContent-Type: application/http\r\n\r\nGET Things HTTP/1.1\r\n\r\n", "b",
     "closing"),
    ("--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n", "b", "application/http"),
    ("--b\r\nContent-Type: application/http\r\n\r\nFETCH Things HTTP/1.1\r\n\r\n--b--\r\n", "b",
     "FETCH"),
    ("--b\r\nContent-Type: application/http\r\n\r\n\r\n--b--\r\n", "b", "request line"),
    ("--b\r\nContent-Type: application/http\r\n\r\nPOST $7/Locations HTTP/1.1\r\n\r\n{}\r\n"
     "--b--\r\n", "b", "$7"),
])
def test_malformed_multipart_is_400_and_changes_nothing(api, table_counts, body, content_type,
                                                        fragment):
    # Each malformed body also carries a valid create before the fault where possible.
    valid = http_part("POST", "Things", '{"name": "MP nie", "description": "x"}')
    before = table_counts()
    response = api.post("/$batch", content=(f"--b\r\n{valid}" + body).encode(),
                        headers={"Content-Type": f"multipart/mixed; boundary={content_type}"})
    assert response.status_code == 400, response.text
    assert fragment in response.json()["message"]
    assert table_counts() == before


def test_empty_multipart_batch_is_refused(api):
    response = api.post("/$batch", content=b"--b--\r\n",
                        headers={"Content-Type": "multipart/mixed; boundary=b"})
    assert response.status_code == 400 and "no parts" in response.json()["message"]


def test_batch_without_boundary_or_with_unknown_type_is_refused(api):
    response = api.post("/$batch", content=b"x", headers={"Content-Type": "multipart/mixed"})
    assert response.status_code == 400 and "boundary" in response.json()["message"]
    response = api.post("/$batch", content=b"x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_batch_parts_need_credentials_for_writes(anon, server):
    body = multipart("b5", http_part("POST", "Things", '{"name": "anon", "description": "x"}'),
                     http_part("GET", "Things?$top=1"))
    response = post_multipart(anon, body, "b5")
    assert response.status_code == 200
    write, read = parse_multipart_answer(response)
    assert write[0][0] == 401
    assert read[0][0] == 200


# ---------------------------------------------------------------------------------------------
# JSON batch (OData 4.01)


def test_json_batch_atomicity_group_references_and_depends_on(api):
    location = {"name": "Bahnhof", "description": "Bf", "encodingType": GEOJSON,
                "location": point(8.40, 49.01)}
    response = api.post("/$batch", json={"requests": [
        {"id": "t", "method": "post", "url": "Things", "atomicityGroup": "g1",
         "body": thing_body("JB Bahnhof")},
        {"id": "l", "method": "post", "url": "$t/Locations", "atomicityGroup": "g1",
         "body": location},
        {"id": "s", "method": "post", "url": "Sensors", "atomicityGroup": "g1",
         "body": {"name": "JB Sensor", "description": "s", "encodingType": "text/plain",
                  "metadata": "m"}},
        {"id": "d", "method": "post", "url": "Datastreams", "atomicityGroup": "g1",
         "body": {"name": "JB DS", "description": "d", "observationType": "x",
                  "unitOfMeasurement": {"name": "Grad", "symbol": "°C", "definition": "u"},
                  "Thing": {"@iot.id": "$t"}, "Sensor": {"@iot.id": "$s"},
                  "ObservedProperty": {"name": "T", "definition": "d", "description": "d"}}},
        {"id": "r", "method": "get", "url": "$t?$expand=Locations,Datastreams",
         "dependsOn": ["g1"]},
    ]})
    assert response.status_code == 200
    items = response.json()["responses"]
    assert [(i["id"], i["status"]) for i in items] == [
        ("t", 201), ("l", 201), ("s", 201), ("d", 201), ("r", 200)]
    assert items[0]["atomicityGroup"] == "g1" and "atomicityGroup" not in items[4]
    read = items[4]["body"]
    assert read["name"] == "JB Bahnhof"
    assert [loc["name"] for loc in read["Locations"]] == ["Bahnhof"]
    assert [ds["name"] for ds in read["Datastreams"]] == ["JB DS"]
    assert items[0]["headers"]["location"] == read["@iot.selfLink"]


def test_json_batch_failing_group_rolls_back_and_dependents_fail(api, table_counts):
    before = table_counts()
    response = api.post("/$batch", json={"requests": [
        {"id": "1", "method": "post", "url": "Things", "atomicityGroup": "a",
         "body": thing_body("JB verworfen")},
        {"id": "2", "method": "patch", "url": "$1", "atomicityGroup": "a",
         "body": {"name": 42}},
        {"id": "3", "method": "post", "url": "Things", "body": thing_body("JB Abhängig"),
         "dependsOn": ["a"]},
        {"id": "4", "method": "post", "url": "Things", "body": thing_body("JB Unabhängig")},
        {"id": "5", "method": "get", "url": "$1", "dependsOn": ["1"]},
    ]})
    assert response.status_code == 200
    status = {i["id"]: i["status"] for i in response.json()["responses"]}
    assert status == {"1": 424, "2": 400, "3": 424, "4": 201, "5": 424}
    failed = next(i for i in response.json()["responses"] if i["id"] == "2")
    assert "name" in failed["body"]["message"]
    assert things_named(api, "JB verworfen") == []
    assert things_named(api, "JB Abhängig") == []
    assert len(things_named(api, "JB Unabhängig")) == 1
    assert table_counts()["things"] == before["things"] + 1


def test_json_batch_part_without_group_fails_alone(api):
    response = api.post("/$batch", json={"requests": [
        {"id": "x", "method": "post", "url": "Things", "body": {"name": "ohne Beschreibung"}},
        {"id": "y", "method": "post", "url": "/v1.1/Things", "body": thing_body("JB danach")},
    ]})
    status = [i["status"] for i in response.json()["responses"]]
    assert status == [400, 201]


@pytest.mark.parametrize("body, fragment", [
    (b"{not json", "not valid JSON"),
    (b'{"requests": "alle"}', "requests"),
    (b'{"requests": []}', "no requests"),
    (b'{"requests": [{"id": "1", "method": "post", "url": "Things"}, '
     b'{"id": "1", "method": "get", "url": "Things"}]}', "twice"),
    (b'{"requests": [{"id": "1", "method": "fetch", "url": "Things"}]}', "method"),
    (b'{"requests": [{"id": "1", "method": "post", "url": "$0/Things"}]}', "$0"),
    (b'{"requests": [{"id": "1", "method": "get", "url": "Things", "dependsOn": ["9"]}]}',
     "dependsOn"),
    (b'{"requests": [{"id": "1", "method": "post", "url": "Things", "atomicityGroup": "g", '
     b'"body": {"name": "a", "description": "b"}}, {"id": "2", "method": "get", "url": "Things"},'
     b' {"id": "3", "method": "get", "url": "Things", "atomicityGroup": "g"}]}', "adjacent"),
])
def test_malformed_json_batch_is_400_and_changes_nothing(api, table_counts, body, fragment):
    before = table_counts()
    response = api.post("/$batch", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert fragment in response.json()["message"]
    assert table_counts() == before


def test_nested_batch_is_refused_per_part(api):
    response = api.post("/$batch", json={"requests": [
        {"id": "1", "method": "post", "url": "/v1.1/$batch", "body": {"requests": []}}]})
    (item,) = response.json()["responses"]
    assert item["status"] == 400 and "another $batch" in item["body"]["message"]


def test_batch_parts_answer_streamed_result_formats_whole(api):
    """CSV and GeoJSON answers are streamed on their own; inside a batch each part still gets
    its complete body."""
    created = api.post("/Things", json=thing_body("JB Streamed", Locations=[{
        "name": "Rathaus", "description": "r", "encodingType": GEOJSON,
        "location": point(8.41, 49.02)}]))
    assert created.status_code == 201
    thing = created.json()["@iot.id"]
    response = api.post("/$batch", json={"requests": [
        {"id": "csv", "method": "get",
         "url": f"Things({thing})/Locations?$resultFormat=CSV&$select=id,name"},
        {"id": "geo", "method": "get", "url": f"Things({thing})/Locations?$resultFormat=GeoJSON"},
    ]})
    assert response.status_code == 200, response.text
    csv_part, geo_part = response.json()["responses"]
    assert csv_part["status"] == 200 and geo_part["status"] == 200
    lines = csv_part["body"].strip().splitlines()
    assert lines[0].split(",")[:2] == ["id", "name"] and lines[1].endswith(",Rathaus")
    features = geo_part["body"]["features"]
    assert [f["properties"]["name"] for f in features] == ["Rathaus"]
    assert features[0]["geometry"]["coordinates"] == [8.41, 49.02]
