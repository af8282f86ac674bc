"""$resultFormat=GeoJSON and $resultFormat=CSV: content, flattening of expands, streaming of
answers larger than one database chunk, and errors before the first byte."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import orjson
import pytest
from tests.query.conftest import OBSERVATIONS, World, geometry

from ortspuls.sta.formats import CHUNK
from ortspuls.sta.values import format_time

LARGE = CHUNK * 2 + 345


def get(world: World, path: str, **params: str):
    response = world.api.get(path, params={f"${k}": v for k, v in params.items()})
    assert response.status_code == 200, response.text
    return response


def csv_rows(response) -> list[list[str]]:
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.endswith("\r\n")
    return list(csv.reader(io.StringIO(response.text, newline="")))


@pytest.fixture(scope="module")
def formats_world(new_world) -> World:
    w = new_world()
    located = w.thing("Mit Ort", properties={"kind": "pegel", "owner": {"name": "Stadt"}},
                      location=geometry("Point", [8.1, 49.1]))
    w.thing("Ohne Ort")
    # A newer Location of the same Thing: the GeoJSON of the Thing uses it.
    newer = w.location_body("Neuer Ort", geometry("Point", [8.2, 49.2]))
    w.remember(w.post("/Locations", {**newer, "Things": [{"@iot.id": located["@iot.id"]}]}),
               "Neuer Ort")
    w.location("Fläche", geometry("Polygon", [[[8, 49], [8.1, 49], [8.1, 49.1], [8, 49]]]))
    w.feature("Ufer", geometry("Point", [8.3, 49.3]), art="Ufer")
    ds = w.datastream(located, "stream")
    w.observation(ds, "with-feature", 1.5, "2024-01-01T00:00:00Z",
                  FeatureOfInterest={"@iot.id": w.ids["Ufer"]}, parameters={"a": "x,y"})
    w.observation(ds, "with-location", "wert \"zitiert\"", "2024-01-01T01:00:00Z")
    w.datastream(located, "leer")
    big = w.datastream(located, "big")
    response = w.api.post("/CreateObservations", json=[{
        "Datastream": {"@iot.id": big["@iot.id"]},
        "components": ["phenomenonTime", "result"],
        "dataArray": [[f"2024-02-01T00:00:00.{n:06d}Z", n] for n in range(LARGE)],
    }])
    assert response.status_code == 201, response.text
    return w


def suite(w: World) -> str:
    return f"properties/suite eq '{w.suite}'"


# ---------------------------------------------------------------------------------- GeoJSON


def test_geojson_locations(formats_world):
    w = formats_world
    response = get(w, "/Locations", filter=suite(w), orderby="id", resultFormat="GeoJSON")
    assert response.headers["content-type"] == "application/geo+json"
    body = response.json()
    assert body["type"] == "FeatureCollection"
    by_name = {f["properties"]["name"]: f for f in body["features"]}
    assert set(by_name) == {"Ort Mit Ort", "Neuer Ort", "Fläche"}
    feature = by_name["Fläche"]
    assert feature["type"] == "Feature" and feature["id"] == w.ids["Fläche"]
    assert feature["geometry"]["type"] == "Polygon"
    props = feature["properties"]
    assert props["properties/suite"] == w.suite  # nested objects flattened
    assert "location" not in props and "properties" not in props
    assert not any(k.endswith("navigationLink") for k in props)
    assert props["@iot.selfLink"].endswith(f"/Locations({w.ids['Fläche']})")


def test_geojson_things_use_their_newest_location(formats_world):
    w = formats_world
    body = get(w, "/Things", filter=suite(w), orderby="name", resultFormat="GeoJSON",
               select="id,name,properties", count="true").json()
    assert body["@iot.count"] == 2
    features = {f["properties"]["name"]: f for f in body["features"]}
    assert features["Mit Ort"]["geometry"] == {"type": "Point", "coordinates": [8.2, 49.2]}
    assert features["Mit Ort"]["properties"]["properties/owner/name"] == "Stadt"
    assert features["Ohne Ort"]["geometry"] is None


def test_geojson_observations_use_their_feature(formats_world):
    w = formats_world
    body = get(w, f"/Datastreams({w.ids['stream']})/Observations", resultFormat="GeoJSON",
               expand="Datastream($select=name;$expand=Thing($select=name))").json()
    geometries = [f["geometry"] for f in body["features"]]
    # the first has the given feature, the second one generated from the Thing's Location
    assert geometries[0] == {"type": "Point", "coordinates": [8.3, 49.3]}
    assert geometries[1]["type"] == "Point"
    props = body["features"][0]["properties"]
    assert props["result"] == 1.5 and props["parameters/a"] == "x,y"
    assert props["Datastream/name"] == "stream" and props["Datastream/Thing/name"] == "Mit Ort"


def test_geojson_datastreams_and_features(formats_world):
    w = formats_world
    body = get(w, "/Datastreams", filter=suite(w), orderby="name", select="name",
               resultFormat="geojson",
               expand="Observations($select=result;$top=1;$orderby=id)").json()
    by_name = {f["properties"]["name"]: f for f in body["features"]}
    assert by_name["leer"]["geometry"] is None
    assert by_name["stream"]["geometry"]["type"] in ("LineString", "Polygon", "Point")
    assert by_name["stream"]["properties"]["Observations"] == [{"result": 1.5}]
    body = get(w, "/FeaturesOfInterest", filter=suite(w), resultFormat="GeoJSON").json()
    (feature,) = body["features"]
    assert feature["geometry"] == {"type": "Point", "coordinates": [8.3, 49.3]}
    assert feature["properties"]["properties/art"] == "Ufer"


def test_geojson_streams_more_than_one_chunk(formats_world):
    w = formats_world
    body = get(w, f"/Datastreams({w.ids['big']})/Observations", resultFormat="GeoJSON",
               select="result").json()
    assert [f["properties"]["result"] for f in body["features"]] == list(range(LARGE))
    assert all(f["geometry"]["type"] == "Point" for f in body["features"])


def test_geojson_top_and_skip(formats_world):
    w = formats_world
    body = get(w, f"/Datastreams({w.ids['big']})/Observations", resultFormat="GeoJSON",
               select="result", top="3", skip="10").json()
    assert [f["properties"]["result"] for f in body["features"]] == [10, 11, 12]


# -------------------------------------------------------------------------------------- CSV


def test_csv_observations(formats_world):
    w = formats_world
    response = get(w, f"/Datastreams({w.ids['stream']})/Observations", resultFormat="CSV",
                   select="id,result,phenomenonTime,parameters", orderby="id")
    assert response.text.startswith("id,result,phenomenonTime,parameters\r\n")
    rows = csv_rows(response)
    assert rows[0] == ["id", "result", "phenomenonTime", "parameters"]
    assert rows[1] == [str(w.ids["with-feature"]), "1.5", "2024-01-01T00:00:00Z", '{"a":"x,y"}']
    assert rows[2] == [str(w.ids["with-location"]), 'wert "zitiert"', "2024-01-01T01:00:00Z",
                       ""]
    # RFC 4180: fields with commas or quotes are quoted, quotes doubled
    assert '"{""a"":""x,y""}"' in response.text
    assert '"wert ""zitiert"""' in response.text


def test_csv_default_columns_and_special_characters(formats_world):
    w = formats_world
    name = 'Pegel "Mühl", Süd\r\nzweite Zeile'
    # (outside the world's suite, so the other tests do not see it)
    thing = w.post("/Things", {"name": name, "description": "x",
                               "properties": {"n": [1, 2], "quote": "\""}})
    rows = csv_rows(get(w, f"/Things({thing['@iot.id']})", resultFormat="CSV"))
    assert rows[0] == ["id", "name", "description", "properties"]
    assert rows[1][:3] == [str(thing["@iot.id"]), name, "x"]
    assert orjson.loads(rows[1][3]) == {"n": [1, 2], "quote": "\""}
    assert len(rows) == 2


def test_csv_values_of_every_result_type(world):
    rows = csv_rows(get(world, f"/Datastreams({world.ids['ops']})/Observations",
                        resultFormat="CSV", select="result", orderby="id"))
    cells = {label: row[0] for label, row in zip(OBSERVATIONS, rows[1:], strict=True)}
    assert cells == {"o1": "1", "o2": "2.5", "o3": "hoch", "o4": "", "o5": "true",
                     "o6": '{"a":1}', "o7": "10", "o8": "-4"}


def test_csv_expands_become_prefixed_columns(formats_world):
    w = formats_world
    rows = csv_rows(get(w, f"/Datastreams({w.ids['stream']})/Observations", resultFormat="CSV",
                        select="result", orderby="id",
                        expand="Datastream($select=name;$expand=Thing($select=id,name))"))
    assert rows[0] == ["result", "Datastream/name", "Datastream/Thing/id",
                       "Datastream/Thing/name"]
    assert rows[1] == ["1.5", "stream", str(w.ids["Mit Ort"]), "Mit Ort"]


def test_csv_to_many_expands_give_one_line_per_related_entity(formats_world):
    w = formats_world
    rows = csv_rows(get(w, "/Things", filter=suite(w), orderby="name", select="name",
                        resultFormat="CSV",
                        expand="Datastreams($select=name;$orderby=name;"
                               "$expand=Observations($select=result;$top=2;$orderby=id))"))
    assert rows[0] == ["name", "Datastreams/name", "Datastreams/Observations/result"]
    assert rows[1:] == [
        ["Mit Ort", "big", "0"], ["Mit Ort", "big", "1"],
        ["Mit Ort", "leer", ""],
        ["Mit Ort", "stream", "1.5"], ["Mit Ort", "stream", 'wert "zitiert"'],
        ["Ohne Ort", "", ""],
    ]


def test_csv_streams_more_than_one_chunk(formats_world):
    w = formats_world
    rows = csv_rows(get(w, f"/Datastreams({w.ids['big']})/Observations", resultFormat="CSV",
                        select="result,phenomenonTime"))
    assert len(rows) == LARGE + 1
    assert [int(r[0]) for r in rows[1:]] == list(range(LARGE))
    assert rows[1 + CHUNK][1] == format_time(datetime(2024, 2, 1, microsecond=CHUNK))


def test_csv_with_filter_and_count(formats_world):
    w = formats_world
    rows = csv_rows(get(w, f"/Datastreams({w.ids['big']})/Observations", resultFormat="csv",
                        select="result", filter="result mod 1000 eq 7", count="true"))
    assert rows == [["result"], ["7"], ["1007"], ["2007"]]


# ----------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("path", "params", "status", "fragment"), [
    ("/Sensors", {"$resultFormat": "GeoJSON"}, 400, "geometry"),
    ("/ObservedProperties", {"$resultFormat": "GeoJSON"}, 400, "geometry"),
    ("/Things", {"$resultFormat": "CSV", "$filter": "nope eq 1"}, 400, "nope"),
    ("/Things", {"$resultFormat": "GeoJSON", "$expand": "Nope"}, 400, "Nope"),
    ("/Things", {"$resultFormat": "CSV", "$expand": "Datastreams($resultFormat=CSV)"}, 400,
     "whole answer"),
    ("/Things(999999999)", {"$resultFormat": "CSV"}, 404, "999999999"),
    ("/Things(999999999)/Datastreams", {"$resultFormat": "GeoJSON"}, 404, "999999999"),
    ("/Things/$ref", {"$resultFormat": "CSV"}, 400, "$ref"),
    ("/Things", {"$resultFormat": "KML"}, 400, "GeoJSON, CSV"),
])
def test_format_errors_come_before_any_output(anon, path, params, status, fragment):
    response = anon.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert fragment in response.json()["message"]
