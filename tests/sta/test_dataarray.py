"""The DataArray extension: $resultFormat=dataArray and POST /v1.1/CreateObservations."""

from __future__ import annotations

import re

import pytest


def observation_id(link: str) -> int:
    return int(re.search(r"/Observations\((\d+)\)$", link).group(1))


def test_read_groups_observations_per_datastream(api, make, server):
    thing = make.thing()
    first, second = make.datastream(thing), make.datastream(thing)
    make.observation(first, 1.5, phenomenonTime="2024-05-01T10:00:00Z")
    make.observation(second, "hoch", phenomenonTime="2024-05-01T10:05:00Z")
    make.observation(first, 2.5, phenomenonTime="2024-05-01T10:10:00Z",
                     resultTime="2024-05-01T10:11:00Z")
    ids = f"{first['@iot.id']},{second['@iot.id']}"
    response = api.get("/Observations", params={
        "$filter": f"Datastream/id in ({ids})", "$resultFormat": "dataArray",
        "$orderby": "phenomenonTime"})
    assert response.status_code == 200, response.text
    groups = response.json()["value"]
    assert [g.get("Datastream@iot.navigationLink") for g in groups] == [
        f"{server.sta}/Datastreams({first['@iot.id']})",
        f"{server.sta}/Datastreams({second['@iot.id']})"]
    components = groups[0]["components"]
    assert components == ["id", "phenomenonTime", "resultTime", "result", "resultQuality",
                          "validTime", "parameters"]
    assert groups[0]["dataArray@iot.count"] == 2
    rows = [dict(zip(components, row, strict=True)) for row in groups[0]["dataArray"]]
    assert [(r["phenomenonTime"], r["result"], r["resultTime"]) for r in rows] == [
        ("2024-05-01T10:00:00Z", 1.5, None),
        ("2024-05-01T10:10:00Z", 2.5, "2024-05-01T10:11:00Z")]
    assert groups[1]["dataArray"][0][components.index("result")] == "hoch"


def test_read_with_select_and_paging(api, make):
    datastream = make.datastream()
    for minute in range(5):
        make.observation(datastream, minute, phenomenonTime=f"2024-05-01T10:0{minute}:00Z")
    url = f"/Datastreams({datastream['@iot.id']})/Observations"
    body = api.get(url, params={"$resultFormat": "dataArray", "$select": "result,phenomenonTime",
                                "$top": "3", "$count": "true"}).json()
    assert body["@iot.count"] == 5
    (group,) = body["value"]
    assert group["components"] == ["result", "phenomenonTime"]
    assert group["dataArray"] == [[0, "2024-05-01T10:00:00Z"], [1, "2024-05-01T10:01:00Z"],
                                  [2, "2024-05-01T10:02:00Z"]]
    assert "%24resultFormat=dataArray" in body["@iot.nextLink"]
    rest = api.get(body["@iot.nextLink"]).json()
    assert [row[0] for row in rest["value"][0]["dataArray"]] == [3, 4]


@pytest.mark.parametrize("url, params, fragment", [
    ("/Things", {"$resultFormat": "dataArray"}, "Observation"),
    ("/Observations", {"$resultFormat": "xml"}, "not supported"),
    ("/Observations", {"$resultFormat": "dataArray", "$expand": "Datastream"}, "$expand"),
])
def test_read_refuses_what_data_array_cannot_show(api, url, params, fragment):
    response = api.get(url, params=params)
    assert response.status_code == 400
    assert fragment in response.json()["message"]


def test_create_stores_rows_and_answers_selflinks_in_order(api, make, server):
    thing = make.thing()
    first, second = make.datastream(thing), make.datastream(thing)
    feature = make.feature()
    response = api.post("/CreateObservations", json=[
        {"Datastream": {"@iot.id": first["@iot.id"]},
         "components": ["phenomenonTime", "result", "FeatureOfInterest/id"],
         "dataArray@iot.count": 2,
         "dataArray": [["2024-06-01T08:00:00Z", 20.5, feature["@iot.id"]],
                       ["2024-06-01T08:10:00Z", 21, feature["@iot.id"]]]},
        {"Datastream": {"@iot.id": second["@iot.id"]},
         "components": ["result", "phenomenonTime", "resultTime", "parameters"],
         "dataArray": [[True, "2024-06-01T09:00:00Z/2024-06-01T09:15:00Z",
                        "2024-06-01T09:16:00Z", {"Quelle": "Logger"}]]},
    ])
    assert response.status_code == 201, response.text
    links = response.json()
    assert len(links) == 3
    assert all(link.startswith(f"{server.sta}/Observations(") for link in links)
    stored = [api.get(link.removeprefix(server.sta)).json() for link in links]
    assert [o["result"] for o in stored] == [20.5, 21, True]
    assert stored[1]["phenomenonTime"] == "2024-06-01T08:10:00Z"
    assert stored[2]["phenomenonTime"] == "2024-06-01T09:00:00Z/2024-06-01T09:15:00Z"
    assert stored[2]["parameters"] == {"Quelle": "Logger"}
    foi = api.get(f"/Observations({observation_id(links[0])})/FeatureOfInterest").json()
    assert foi["@iot.id"] == feature["@iot.id"]
    ds = api.get(f"/Datastreams({first['@iot.id']})").json()
    assert ds["phenomenonTime"] == "2024-06-01T08:00:00Z/2024-06-01T08:10:00Z"


def test_create_answers_error_for_bad_rows_and_stores_the_others(api, make):
    datastream = make.datastream()
    response = api.post("/CreateObservations", json=[{
        "Datastream": {"@iot.id": datastream["@iot.id"]},
        "components": ["phenomenonTime", "result", "FeatureOfInterest/id"],
        "dataArray": [["2024-06-02T08:00:00Z", 1, None],
                      ["gestern", 2, None],
                      ["2024-06-02T08:20:00Z", 3, 999999999],
                      ["2024-06-02T08:30:00Z", 4, None]]}])
    assert response.status_code == 201
    answer = response.json()
    assert answer[1] == "error" and answer[2] == "error"
    assert answer[0].endswith(")") and answer[3].endswith(")")
    stored = api.get(f"/Datastreams({datastream['@iot.id']})/Observations").json()["value"]
    assert sorted(o["result"] for o in stored) == [1, 4]


def test_create_rows_without_feature_use_the_things_location(api, make):
    datastream = make.datastream()
    response = api.post("/CreateObservations", json=[{
        "Datastream": {"@iot.id": datastream["@iot.id"]}, "components": ["result"],
        "dataArray": [[5], [6]]}])
    links = response.json()
    features = {api.get(f"/Observations({observation_id(link)})/FeatureOfInterest")
                .json()["@iot.id"] for link in links}
    assert len(features) == 1


def test_create_keeps_every_kind_of_value_exactly(api, make, server):
    datastream = make.datastream()
    feature = make.feature()
    big = 2**60 + 1  # beyond 2**53: the digits must survive
    rows = [
        ["2024-06-04T08:00:00.123456Z", 1.5, None, None],
        ["2024-06-04T10:00:01+02:00", 7, "2024-06-04T08:00:02Z", feature["@iot.id"]],
        ["2024-06-04T08:00:02Z/2024-06-04T08:15:00Z", big, None, None],
        ["2024-06-04T08:00:03Z", True, "2024-06-04T08:00:04.5Z", None],
        ["2024-06-04T08:00:04Z", "trocken", None, feature["@iot.id"]],
        ["2024-06-04T08:00:05Z", {"Stufe": [1, None]}, None, None],
        ["2024-06-04T08:00:06Z", None, None, None],
        ["2024-06-04T08:00:07Z", -3, None, None],
    ]
    response = api.post("/CreateObservations", json=[{
        "Datastream": {"@iot.id": datastream["@iot.id"]},
        "components": ["phenomenonTime", "result", "resultTime", "FeatureOfInterest/id"],
        "dataArray": rows}])
    assert response.status_code == 201, response.text
    links = response.json()
    stored = [api.get(link.removeprefix(server.sta),
                      params={"$expand": "FeatureOfInterest($select=id)"}).json()
              for link in links]
    assert [o["phenomenonTime"] for o in stored] == [
        "2024-06-04T08:00:00.123456Z", "2024-06-04T08:00:01Z",
        "2024-06-04T08:00:02Z/2024-06-04T08:15:00Z", "2024-06-04T08:00:03Z",
        "2024-06-04T08:00:04Z", "2024-06-04T08:00:05Z", "2024-06-04T08:00:06Z",
        "2024-06-04T08:00:07Z"]
    results = [o["result"] for o in stored]
    assert results == [1.5, 7, big, True, "trocken", {"Stufe": [1, None]}, None, -3]
    assert [type(r) for r in results[:4]] == [float, int, int, bool]
    assert [o["resultTime"] for o in stored] == [
        None, "2024-06-04T08:00:02Z", None, "2024-06-04T08:00:04.500Z", None, None, None, None]
    features = [o["FeatureOfInterest"]["@iot.id"] for o in stored]
    generated = {f for f, row in zip(features, rows, strict=True) if row[3] is None}
    assert features[1] == features[4] == feature["@iot.id"]
    assert len(generated) == 1 and feature["@iot.id"] not in generated
    ds = api.get(f"/Datastreams({datastream['@iot.id']})").json()
    assert ds["phenomenonTime"] == "2024-06-04T08:00:00.123456Z/2024-06-04T08:15:00Z"
    assert ds["resultTime"] == "2024-06-04T08:00:02Z/2024-06-04T08:00:04.500Z"


def test_create_rejects_each_bad_value_in_its_row_only(api, make):
    datastream = make.datastream()
    response = api.post("/CreateObservations", json=[{
        "Datastream": {"@iot.id": datastream["@iot.id"]},
        "components": ["phenomenonTime", "result", "resultTime", "FeatureOfInterest/id"],
        "dataArray": [
            ["2024-06-05T08:00:00Z", 1, None, None],
            ["2024-06-05T08:00:01Z", 2, "nie", None],
            ["2024-06-05T08:00:02Z", 3, None, "7"],
            ["2024-06-05T08:00:03Z", 4, None, True],
            [1717574404, 5, None, None],
            ["2024-06-05T08:00:05Z/2024-06-05T08:00:04Z", 6, None, None],
            ["2024-06-05T08:00:06Z", 7, None, None],
        ]}, {
        "Datastream": {"@iot.id": datastream["@iot.id"]},
        "components": ["result", "phenomenonTime"],
        "dataArray": [[8, "gestern"], [9, None]],
    }])
    assert response.status_code == 201, response.text
    answer = response.json()
    assert [a == "error" for a in answer] == [False, True, True, True, True, True, False, True,
                                              True]
    stored = api.get(f"/Datastreams({datastream['@iot.id']})/Observations").json()["value"]
    assert sorted(o["result"] for o in stored) == [1, 7]


@pytest.mark.parametrize("body, fragment", [
    ({"Datastream": {"@iot.id": 1}}, "JSON array"),
    ([{"components": ["result"], "dataArray": [[1]]}], "exactly one of Datastream"),
    ([{"Datastream": {"@iot.id": "DS"}, "components": ["result"], "dataArray": [[1]]}],
     "@iot.id"),
    ([{"Datastream": {"@iot.id": 1}, "components": ["result", "farbe"], "dataArray": []}],
     "farbe"),
    ([{"Datastream": {"@iot.id": 1}, "components": ["phenomenonTime"], "dataArray": []}],
     "must include result"),
    ([{"Datastream": {"@iot.id": 1}, "components": ["result"], "dataArray": [[1]],
       "extra": 1}], "extra"),
])
def test_create_refuses_malformed_requests(api, table_counts, body, fragment):
    before = table_counts()
    response = api.post("/CreateObservations", json=body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["message"]
    assert table_counts() == before


def test_row_with_wrong_number_of_components_refuses_everything(api, make, table_counts):
    datastream = make.datastream()
    before = table_counts()
    response = api.post("/CreateObservations", json=[{
        "Datastream": {"@iot.id": datastream["@iot.id"]},
        "components": ["phenomenonTime", "result"],
        "dataArray": [["2024-06-03T08:00:00Z", 1], ["2024-06-03T08:10:00Z", 2, "zu viel"]]}])
    assert response.status_code == 400
    message = response.json()["message"]
    assert "row 1" in message and "3 values" in message and "2" in message
    assert table_counts() == before


def test_unknown_datastream_refuses_everything(api, make, table_counts):
    datastream = make.datastream()
    before = table_counts()
    response = api.post("/CreateObservations", json=[
        {"Datastream": {"@iot.id": datastream["@iot.id"]}, "components": ["result"],
         "dataArray": [[1]]},
        {"Datastream": {"@iot.id": 999999999}, "components": ["result"], "dataArray": [[2]]}])
    assert response.status_code == 400
    assert "999999999" in response.json()["message"]
    assert table_counts() == before


def test_create_needs_a_key_with_ingest_scope(anon, server):
    body = [{"Datastream": {"@iot.id": 1}, "components": ["result"], "dataArray": [[1]]}]
    assert anon.post("/CreateObservations", json=body).status_code == 401
    with server.client("read") as reader:
        assert reader.post("/CreateObservations", json=body).status_code == 403
    assert anon.get("/CreateObservations").status_code == 405
