"""$expand: nested options ($filter, $select, $orderby, $top, $skip, $count, $expand) to depth
three, several expands at once, to-one and to-many relations, per-parent $top and next links.

The world (tests/query/conftest.py): Things A–E; Datastream `ops` (Thing A) with o1–o8,
`late` (Thing B) with l1, `empty` (Thing C).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from tests.query.conftest import OBSERVATIONS, ok

# Observations of `ops` in the default order (phenomenonTime, id).
TIME_ORDER = ["o8", "o1", "o2", "o3", "o4", "o5", "o6", "o7"]


def result(label: str):
    return OBSERVATIONS[label][0]


def suite(world) -> str:
    return f"properties/suite eq '{world.suite}'"


def things(world, **params: str) -> dict[str, dict]:
    """Things A–E of the world by label (`params` must $select the id)."""
    body = world.query("/Things", filter=f"{suite(world)} and name ne 'Eltern'", **params)
    by_id = {world.ids[label]: label for label in "ABCDE"}
    return {by_id[t["@iot.id"]]: t for t in body["value"]}


def test_expand_to_many(world):
    body = world.query(f"/Things({world.ids['A']})", expand="Datastreams")
    assert [d["name"] for d in body["Datastreams"]] == ["ops"]
    assert body["Datastreams"][0]["@iot.id"] == world.ids["ops"]
    # the expanded entity is complete, with its own links
    assert body["Datastreams"][0]["Thing@iot.navigationLink"].endswith(
        f"/Datastreams({world.ids['ops']})/Thing")


def test_expand_to_one_chain(world):
    body = world.query(f"/Observations({world.ids['o3']})",
                       expand="Datastream($select=name;$expand=Thing($select=name))")
    assert body["Datastream"] == {"name": "ops", "Thing": {"name": "Pegel Mühlbach"}}


def test_nested_options_per_parent(world):
    by_label = things(world, select="id,name", expand=(
        "Datastreams($select=name;$expand=Observations("
        "$top=2;$orderby=result desc;$select=result;$count=true))"))
    ops = by_label["A"]["Datastreams"][0]
    assert ops["name"] == "ops"
    assert ops["Observations@iot.count"] == 8
    assert ops["Observations"] == [{"result": 10}, {"result": 2.5}]
    link = ops["Observations@iot.nextLink"]
    query = parse_qs(urlsplit(link).query)
    assert query["$top"] == ["2"] and query["$skip"] == ["2"]
    assert query["$orderby"] == ["result desc"] and query["$select"] == ["result"]
    # following the nested next link continues the same ordering
    rest = [o["result"] for o in ok(world.api.get(link))["value"]]
    assert rest == [1, -4]
    late = by_label["B"]["Datastreams"][0]
    assert late["Observations"] == [{"result": 5}] and late["Observations@iot.count"] == 1
    assert "Observations@iot.nextLink" not in late
    empty = by_label["C"]["Datastreams"][0]
    assert empty["Observations"] == [] and empty["Observations@iot.count"] == 0
    assert by_label["D"]["Datastreams"] == []


def test_top_per_parent_latest_observation(world):
    body = world.query("/Datastreams", filter=suite(world), orderby="name",
                       select="name",
                       expand="Observations($orderby=phenomenonTime desc;$top=1;$select=result)")
    assert body["value"] == [
        {"name": "empty", "Observations": []},
        {"name": "late", "Observations": [{"result": 5}]},
        {"name": "ops", "Observations": [{"result": 10}],
         "Observations@iot.nextLink": body["value"][2]["Observations@iot.nextLink"]},
    ]


def test_skip_and_top_inside_expand(world):
    body = world.query(f"/Datastreams({world.ids['ops']})",
                       expand="Observations($skip=5;$top=2;$select=id)")
    assert [o["@iot.id"] for o in body["Observations"]] == [
        world.ids[label] for label in TIME_ORDER[5:7]]
    query = parse_qs(urlsplit(body["Observations@iot.nextLink"]).query)
    assert query["$skip"] == ["7"]
    body = world.query(f"/Datastreams({world.ids['ops']})",
                       expand="Observations($skip=6;$select=result)")
    assert body["Observations"] == [{"result": result("o6")}, {"result": result("o7")}]
    assert "Observations@iot.nextLink" not in body


def test_filter_inside_expand(world):
    by_label = things(world, select="id",
                      expand="Datastreams($filter=name eq 'late';$select=name)")
    assert by_label["A"]["Datastreams"] == []
    assert by_label["B"]["Datastreams"] == [{"name": "late"}]
    body = world.query(f"/Datastreams({world.ids['ops']})", select="id", expand=(
        "Observations($filter=result gt 1 or result eq 'hoch';$orderby=id;$select=result;"
        "$count=true)"))
    assert body["Observations"] == [{"result": 2.5}, {"result": "hoch"}, {"result": 10}]
    assert body["Observations@iot.count"] == 3


def test_filter_on_to_one_expand(world):
    body = world.query("/Datastreams", filter=suite(world), orderby="name", select="name",
                       expand="Thing($filter=name eq 'Luftgüte Markt';$select=name)")
    found = {d["name"]: d.get("Thing") for d in body["value"]}
    assert found == {"empty": None, "late": {"name": "Luftgüte Markt"}, "ops": None}


def test_several_expands_and_depth_three(world):
    body = world.query(f"/Things({world.ids['A']})", select="name", expand=(
        "Locations($select=name),"
        "Datastreams($select=name;$expand=Observations($top=1;$select=result;"
        "$expand=FeatureOfInterest($select=name;$expand=Observations($select=id;$top=1)))),"
        "Datastreams/Sensor($select=name),"
        "HistoricalLocations($select=id;$expand=Locations($select=name))"))
    assert body["name"] == "Pegel Mühlbach"
    assert body["Locations"] == [{"name": "Ort Pegel Mühlbach"}]
    (ops,) = body["Datastreams"]
    assert ops["name"] == "ops" and ops["Sensor"] == {"name": "Sensor ops"}
    (first,) = ops["Observations"]
    assert first["result"] == result("o8")
    feature = first["FeatureOfInterest"]
    assert feature["name"] == "Ort Pegel Mühlbach"
    assert feature["Observations"] == [{"@iot.id": feature["Observations"][0]["@iot.id"]}]
    assert [h["Locations"] for h in body["HistoricalLocations"]] == [
        [{"name": "Ort Pegel Mühlbach"}]]


def test_expand_through_link_tables(world):
    body = world.query("/Locations", filter=f"{suite(world)} and name eq 'Ort Bodenfeuchte'",
                       select="name", expand="Things($select=name)")
    assert body["value"] == [{"name": "Ort Bodenfeuchte", "Things": [{"name": "Bodenfeuchte"}]}]
    body = world.query(f"/Datastreams({world.ids['late']})/ObservedProperty", select="name",
                       expand="Datastreams($select=name;$count=true)")
    assert body == {"name": "Größe late", "Datastreams": [{"name": "late"}],
                    "Datastreams@iot.count": 1}


def test_expand_path_form(world):
    body = world.query(f"/Things({world.ids['B']})", select="id",
                       expand="Datastreams/Observations($select=result)")
    assert body["Datastreams"][0]["Observations"] == [{"result": 5}]
    assert body["Datastreams"][0]["name"] == "late"


def test_expand_on_a_collection_of_many_parents(world):
    """Many parents at once: every parent gets exactly its own children."""
    w = world
    parent = w.thing("Eltern", location={"type": "Point", "coordinates": [8.0, 49.0]})
    streams = [w.datastream(parent, f"kind-{n}") for n in range(12)]
    for n, ds in enumerate(streams):
        for k in range(n % 4):
            w.observation(ds, f"kind-{n}-{k}", n * 10 + k, f"2024-05-01T00:0{k}:00Z")
    body = w.query(f"/Things({parent['@iot.id']})/Datastreams", orderby="id", select="name",
                   expand="Observations($orderby=result desc;$top=2;$select=result;$count=true)")
    for n, ds in enumerate(body["value"]):
        expected = [n * 10 + k for k in range(n % 4)][::-1][:2]
        assert ds["name"] == f"kind-{n}"
        assert [o["result"] for o in ds["Observations"]] == expected
        assert ds["Observations@iot.count"] == n % 4
        assert ("Observations@iot.nextLink" in ds) == (n % 4 > 2)


@pytest.mark.parametrize(("expand", "fragment"), [
    ("Nope", "Nope"),
    ("Datastreams/Nope", "Nope"),
    ("Datastreams($filter=nope eq 1)", "nope"),
    ("Datastreams($select=nope)", "nope"),
    ("Datastreams($orderby=observedArea)", "ordered"),
    ("Datastreams($top=x)", "position"),
    ("Datastreams($top=1;$top=2)", "duplicate"),
    ("Datastreams(", "position"),
    ("Datastreams($unknown=1)", "unknown query option"),
])
def test_bad_expands_are_400(world, expand, fragment):
    message = world.error("/Things", expand=expand)
    assert fragment in message
