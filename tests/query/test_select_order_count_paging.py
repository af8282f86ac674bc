"""$select, $orderby (several keys, directions, stable), $count and paging by @iot.nextLink.

The world (tests/query/conftest.py): Things A–E, Datastream `ops` with o1–o8. Paging runs on a
Datastream `pages` of 233 Observations whose times repeat (so only the id keeps the order
stable) and on 57 Things with the same name.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from tests.query.conftest import World, ok, unique

ALL_OBS = ["o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8"]
PAGE_OBSERVATIONS = 233


def labels_of(world: World, kind: str, body: dict) -> list[str]:
    return [world.names[(kind, e["@iot.id"])] for e in body["value"]]


# ---------------------------------------------------------------------------------- $select


def test_select_properties(world):
    body = world.query(f"/Things({world.ids['A']})", select="name,description")
    assert body == {"name": "Pegel Mühlbach", "description": "Wasserstand am Mühlbach"}
    body = world.query(f"/Things({world.ids['A']})", select="id")
    assert body == {"@iot.id": world.ids["A"]}
    body = world.query(f"/Things({world.ids['A']})", select="@iot.id,name,name")
    assert body == {"@iot.id": world.ids["A"], "name": "Pegel Mühlbach"}
    body = world.query(f"/Things({world.ids['A']})", select="properties")
    assert body["properties"]["owner"] == {"name": "Stadtwerke"}
    body = world.query(f"/Things({world.ids['A']})", select="@iot.selfLink")
    assert body == {"@iot.selfLink": f"{world.api.base_url}Things({world.ids['A']})".replace(
        "v1.1Things", "v1.1/Things")}


def test_select_on_collections_and_observation_fields(world):
    body = world.query(f"/Datastreams({world.ids['ops']})/Observations",
                       select="result,phenomenonTime", orderby="id")
    assert body["value"][0] == {"result": 1, "phenomenonTime": "2024-03-01T10:15:30.250Z"}
    assert body["value"][1] == {"result": 2.5,
                                "phenomenonTime": "2024-03-02T12:00:00Z/2024-03-02T13:00:00Z"}
    assert all(set(o) == {"result", "phenomenonTime"} for o in body["value"])
    body = world.query(f"/Observations({world.ids['o1']})", select="validTime,parameters")
    assert body == {"validTime": "2024-03-01T00:00:00Z/2024-03-02T00:00:00Z",
                    "parameters": {"n": 1, "s": "a", "flag": True}}


def test_select_navigation_properties(world):
    body = world.query(f"/Things({world.ids['A']})", select="name,Datastreams")
    assert body == {"name": "Pegel Mühlbach", "Datastreams@iot.navigationLink":
                    body["Datastreams@iot.navigationLink"]}
    assert body["Datastreams@iot.navigationLink"].endswith(f"Things({world.ids['A']})/Datastreams")
    # selecting the navigation property and expanding it
    body = world.query(f"/Things({world.ids['A']})", select="Datastreams",
                       expand="Datastreams($select=name)")
    assert body["Datastreams"] == [{"name": "ops"}]
    body = world.query(f"/Observations({world.ids['o1']})", select="result,Datastream",
                       expand="Datastream($select=name,Thing)")
    assert body["Datastream"]["name"] == "ops"
    assert set(body["Datastream"]) == {"name", "Thing@iot.navigationLink"}


@pytest.mark.parametrize(("select", "fragment"), [
    ("nope", "nope"),
    ("properties/kind", "paths"),
    ("name,", "position"),
    ("", "position"),
])
def test_bad_select_is_400(world, select, fragment):
    assert fragment in world.error("/Things", select=select)


# --------------------------------------------------------------------------------- $orderby


@pytest.mark.parametrize(("orderby", "expected"), [
    ("name", ["C", "D", "B", "E", "A"]),
    ("name desc", ["A", "E", "B", "D", "C"]),
    ("name asc", ["C", "D", "B", "E", "A"]),
    # numbers first (missing numbers sort lowest), then strings
    ("properties/level desc", ["B", "A", "E", "C", "D"]),
    ("properties/level", ["D", "C", "E", "A", "B"]),
    ("properties/kind desc,name", ["E", "A", "C", "B", "D"]),
    ("length(name) desc,name desc", ["E", "C", "A", "B", "D"]),
    ("description", ["C", "B", "D", "A", "E"]),
    ("id desc", ["E", "D", "C", "B", "A"]),
])
def test_orderby_things(world, orderby, expected):
    body = world.query("/Things", filter=f"properties/suite eq '{world.suite}' and "
                       "id le " + str(world.ids["E"]) + " and id ge " + str(world.ids["A"]),
                       orderby=orderby, select="id")
    assert labels_of(world, "Things", body) == expected


@pytest.mark.parametrize(("orderby", "expected"), [
    ("phenomenonTime", ["o8", "o1", "o2", "o3", "o4", "o5", "o6", "o7"]),
    ("phenomenonTime desc", ["o7", "o6", "o5", "o4", "o3", "o2", "o1", "o8"]),
    # numbers (ascending), with everything that is not a number first, strings after nulls
    ("result", ["o4", "o5", "o6", "o3", "o8", "o1", "o2", "o7"]),
    ("result desc", ["o7", "o2", "o1", "o8", "o3", "o4", "o5", "o6"]),
    ("year(phenomenonTime) desc,result", ["o7", "o4", "o5", "o6", "o3", "o1", "o2", "o8"]),
    ("resultTime desc,phenomenonTime desc", ["o1", "o7", "o6", "o5", "o4", "o3", "o2", "o8"]),
    ("parameters/n desc,id", ["o2", "o1", "o6", "o3", "o4", "o5", "o7", "o8"]),
    ("Datastream/name,phenomenonTime", ["o8", "o1", "o2", "o3", "o4", "o5", "o6", "o7"]),
])
def test_orderby_observations(world, orderby, expected):
    body = world.query(f"/Datastreams({world.ids['ops']})/Observations", orderby=orderby,
                       select="id")
    assert labels_of(world, "Observations", body) == expected


@pytest.mark.parametrize(("orderby", "fragment"), [
    ("location", "ordered"),
    ("Things/name", "collection"),
    ("name sideways", "position"),
    ("name,", "position"),
])
def test_bad_orderby_is_400(world, orderby, fragment):
    assert fragment in world.error("/Locations", orderby=orderby)


# ----------------------------------------------------------------------------------- $count


def test_count(world):
    path = f"/Datastreams({world.ids['ops']})/Observations"
    body = world.query(path, count="true", top="2", skip="1", filter="result ne null")
    assert body["@iot.count"] == 7 and len(body["value"]) == 2
    assert next(iter(body)) == "@iot.count"
    assert "@iot.count" not in world.query(path, count="false")
    assert "@iot.count" not in world.query(path)
    body = world.query("/Things", filter=f"properties/suite eq '{world.suite}' and "
                       "properties/kind ne null", count="true", top="0")
    assert body["@iot.count"] == 4 and body["value"] == []


def test_count_inside_expand(world):
    body = world.query("/Things", filter=f"properties/suite eq '{world.suite}' and "
                       "properties/kind in ('pegel', 'luft', 'parken')", orderby="name",
                       select="name", expand="Datastreams($count=true;$select=name;"
                       "$expand=Observations($count=true;$top=0;$filter=result gt 1))")
    counts = {t["name"]: (t["Datastreams@iot.count"],
                          [d["Observations@iot.count"] for d in t["Datastreams"]])
              for t in body["value"]}
    assert counts == {"  Parkhaus Nord ": (1, [0]), "Luftgüte Markt": (1, [1]),
                      "Pegel Mühlbach": (1, [2])}


@pytest.mark.parametrize("value", ["yes", "1", "TRUE1"])
def test_bad_count_is_400(world, value):
    assert "$count" in world.error("/Things", count=value)


# ----------------------------------------------------------------------------------- paging


@pytest.fixture(scope="module")
def pages(new_world) -> World:
    """Datastream `pages`: Observation n (0…232) has result n % 17 and a time that repeats
    every 10 Observations (minute n // 10)."""
    w = new_world()
    thing = w.thing("Seitenweise", location={"type": "Point", "coordinates": [8.0, 49.0]})
    ds = w.datastream(thing, "pages")
    for n in range(PAGE_OBSERVATIONS):
        w.observation(ds, f"p{n}", n % 17, f"2024-06-01T00:{n // 10:02d}:00Z",
                      parameters={"n": n})
    name = unique("Gleichnamig")
    for n in range(57):
        w.remember(w.post("/Things", {"name": name, "description": str(n),
                                      "properties": {"suite": w.suite, "n": n}}), f"t{n}")
    w.same_name = name  # type: ignore[attr-defined]
    return w


def walk(world: World, path: str, params: dict[str, str]) -> tuple[list[dict], list[str]]:
    """All entities by following @iot.nextLink; also the next links seen."""
    body = ok(world.api.get(path, params=params))
    items, links = list(body["value"]), []
    while "@iot.nextLink" in body:
        links.append(body["@iot.nextLink"])
        body = ok(world.api.get(body["@iot.nextLink"]))
        items.extend(body["value"])
        assert len(links) < 500
    return items, links


def expected_order(key) -> list[int]:
    return sorted(range(PAGE_OBSERVATIONS), key=key)


@pytest.mark.parametrize(("params", "key"), [
    ({"$top": "10"}, lambda n: (n // 10, n)),
    ({"$top": "7", "$orderby": "result"}, lambda n: (n % 17, n)),
    ({"$top": "13", "$orderby": "result desc"}, lambda n: (-(n % 17), n)),
    ({"$top": "9", "$orderby": "phenomenonTime desc"}, lambda n: (-(n // 10), n)),
    ({"$top": "50", "$orderby": "result,phenomenonTime desc"},
     lambda n: (n % 17, -(n // 10), n)),
    ({"$top": "11", "$orderby": "id desc"}, lambda n: -n),
    ({"$top": "100"}, lambda n: (n // 10, n)),
    ({"$top": "1"}, lambda n: (n // 10, n)),
])
def test_paging_has_no_gaps_or_duplicates(pages, params, key):
    path = f"/Datastreams({pages.ids['pages']})/Observations"
    items, links = walk(pages, path, {**params, "$select": "id,parameters"})
    found = [o["parameters"]["n"] for o in items]
    assert found == expected_order(key)
    top = int(params["$top"])
    assert len(links) == (PAGE_OBSERVATIONS - 1) // top


def test_paging_with_filter_and_every_option_carried(pages):
    path = f"/Datastreams({pages.ids['pages']})/Observations"
    params = {"$filter": "result ge 10 and parameters/n lt 200", "$orderby": "result desc",
              "$select": "id,result,parameters", "$count": "true", "$top": "6",
              "$expand": "Datastream($select=name)"}
    items, links = walk(pages, path, params)
    expected = sorted((n for n in range(200) if n % 17 >= 10), key=lambda n: (-(n % 17), n))
    assert [o["parameters"]["n"] for o in items] == expected
    assert all(o["Datastream"] == {"name": "pages"} for o in items)
    for link in links:
        query = parse_qs(urlsplit(link).query)
        for option in ("$filter", "$orderby", "$select", "$count", "$expand"):
            assert query[option] == [params[option]], (option, link)
        assert query["$top"] == ["6"]
        body = ok(pages.api.get(link))
        assert body["@iot.count"] == len(expected)


def test_paging_on_equal_names_is_stable(pages):
    params = {"$filter": f"name eq '{pages.same_name}'", "$orderby": "name",
              "$top": "8", "$select": "id,properties"}
    items, links = walk(pages, "/Things", params)
    assert [t["properties"]["n"] for t in items] == list(range(57))
    assert len(links) == 7


def test_option_names_are_case_insensitive_in_next_links(pages):
    path = f"/Datastreams({pages.ids['pages']})/Observations"
    items, _ = walk(pages, path, {"$TOP": "40", "$Select": "id", "$orderBy": "id desc"})
    assert len(items) == PAGE_OBSERVATIONS and len({o["@iot.id"] for o in items}) == len(items)
    assert [o["@iot.id"] for o in items] == sorted((o["@iot.id"] for o in items), reverse=True)


def test_skip_beyond_the_end(pages):
    path = f"/Datastreams({pages.ids['pages']})/Observations"
    body = ok(pages.api.get(path, params={"$skip": "1000", "$count": "true"}))
    assert body == {"@iot.count": PAGE_OBSERVATIONS, "value": []}


@pytest.mark.parametrize(("option", "value"), [
    ("$top", "-1"), ("$top", "x"), ("$skip", "-5"), ("$skip", "1.5"), ("$top", ""),
])
def test_bad_top_and_skip_are_400(world, option, value):
    response = world.api.get("/Things", params={option: value})
    assert response.status_code == 400
    assert option in response.json()["message"]


# ---------------------------------------------------------------------------- keyset paging


@pytest.mark.parametrize(("orderby", "keyset"), [
    (None, True),
    ("phenomenonTime", True),
    ("phenomenonTime desc", True),
    ("phenomenonTime desc,id desc", True),
    ("id desc", True),
    ("@iot.id", True),
    ("result", False),
    ("phenomenonTime,result", False),
    ("resultTime", False),
])
def test_next_links_use_keyset_where_the_index_serves_the_order(pages, orderby, keyset):
    params = {"$top": "10"} | ({"$orderby": orderby} if orderby else {})
    body = ok(pages.api.get(f"/Datastreams({pages.ids['pages']})/Observations", params=params))
    query = parse_qs(urlsplit(body["@iot.nextLink"]).query)
    assert ("$skiptoken" in query) is keyset
    assert ("$skip" in query) is not keyset
    if orderby:
        assert query["$orderby"] == [orderby]


def test_keyset_pages_stay_put_when_earlier_observations_arrive(new_world):
    """With $skip, a row inserted before the current page shifts everything by one (a row
    seen twice); a keyset continues right after the last row seen."""
    w = new_world()
    thing = w.thing("Nachzügler", location={"type": "Point", "coordinates": [8.0, 49.0]})
    ds = w.datastream(thing, "late-arrivals")
    for n in range(20):
        w.observation(ds, f"n{n}", n, f"2024-07-01T00:{n + 10:02d}:00Z")
    path = f"/Datastreams({ds['@iot.id']})/Observations"
    first = ok(w.api.get(path, params={"$top": "5", "$select": "result"}))
    w.observation(ds, "early", -1, "2024-07-01T00:00:00Z")
    seen = [o["result"] for o in first["value"]]
    link = first["@iot.nextLink"]
    while link:
        body = ok(w.api.get(link))
        seen.extend(o["result"] for o in body["value"])
        link = body.get("@iot.nextLink")
    assert seen == list(range(20))


@pytest.mark.parametrize(("params", "fragment"), [
    ({"$skiptoken": "12_x"}, "$skiptoken"),
    ({"$skiptoken": "1_2_3"}, "$skiptoken"),
    ({"$skiptoken": "a b"}, "$skiptoken"),
    ({"$skiptoken": "5", "$orderby": "result"}, "$skiptoken"),
    ({"$skiptoken": "5"}, "$skiptoken"),  # the default order needs time and id
])
def test_bad_skiptokens_are_400(pages, params, fragment):
    response = pages.api.get(f"/Datastreams({pages.ids['pages']})/Observations", params=params)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["message"]


def test_skiptoken_is_only_for_observations(pages):
    response = pages.api.get("/Things", params={"$skiptoken": "5"})
    assert response.status_code == 400 and "$skiptoken" in response.json()["message"]
