"""The leak suite: internal data of one town is invisible on every read path to anonymous
readers, to the other town and (unless shared with it) to the county, while the owner sees all.

Each test reads through the real server over HTTP and searches the raw answer for the markers
of `nord`'s internal data (see conftest.py), and checks ids and counts where markers cannot
appear.
"""

from __future__ import annotations

import json
import re
import time

import httpx
import paho.mqtt.client as paho
import pytest
from tests.tenancy.conftest import SETS, markers

# Who reads nord's data, and which of its markers that reader must not see.
OUTSIDERS = {
    "anon": markers("nord"),
    "sued": markers("nord"),
    "kreis": markers("nord", shared=False),  # the county sees what nord shared with it
}


def _clean(text: str, forbidden: tuple[str, ...], what: str) -> None:
    for marker in forbidden:
        # A number marker counts only as a number of its own: "815." in "1815.4" (an age in
        # seconds, an id) is not a leak.
        pattern = re.escape(marker)
        if marker[0].isdigit():
            pattern = r"(?<![\d.])" + pattern
        found = re.search(pattern, text)
        assert found is None, f"{what}: found {marker!r} in {text[:2000]}"


def _ids(body: dict, entity_set: str) -> set[tuple[str, int]]:
    return {(entity_set, v["@iot.id"]) for v in body["value"]}


def _hidden_from(county, who: str) -> set[tuple[str, int]]:
    nord = county.entities["nord"]
    return nord["internal"] | (set() if who == "kreis" else nord["shared"])


# -- collections, entities, navigation -----------------------------------------------------------


@pytest.mark.parametrize("who", OUTSIDERS)
def test_collections_show_no_internal_data(county, who):
    with county.client(who) as client:
        for entity_set in SETS:
            answer = client.get(f"{entity_set}?$top=1000&$count=true")
            assert answer.status_code == 200, answer.text
            _clean(answer.text, OUTSIDERS[who], entity_set)
            seen = _ids(answer.json(), entity_set)
            assert not seen & _hidden_from(county, who), entity_set
            # Every public entity of both towns is there.
            public = {e for e in county.entities["nord"]["public"] | county.entities["sued"][
                "public"] if e[0] == entity_set}
            assert public <= seen, entity_set
            assert answer.json()["@iot.count"] == len(seen)


def test_owner_sees_all_its_internal_data(county):
    nord = county.entities["nord"]
    with county.client("nord") as client:
        seen = set()
        for entity_set in SETS:
            answer = client.get(f"{entity_set}?$top=1000")
            seen |= _ids(answer.json(), entity_set)
        assert nord["public"] | nord["internal"] | nord["shared"] <= seen
        # … but never the other town's internal data.
        assert not seen & (county.entities["sued"]["internal"]
                           | county.entities["sued"]["shared"])
        text = client.get("Observations?$top=1000").text
        for marker in ("GEHEIM-nord", "4711.", "815."):  # results of each internal kind
            assert marker in text


@pytest.mark.parametrize("who", OUTSIDERS)
def test_internal_entities_are_404(county, who):
    with county.client(who) as client, county.client("nord") as owner:
        for entity_set, ident in sorted(_hidden_from(county, who)):
            answer = client.get(f"{entity_set}({ident})")
            assert answer.status_code == 404, (entity_set, ident, answer.text)
            assert owner.get(f"{entity_set}({ident})").status_code == 200
            for relation in ("Datastreams", "Observations", "Things", "Locations"):
                nav = client.get(f"{entity_set}({ident})/{relation}")
                assert nav.status_code in (400, 404), (entity_set, relation, nav.text)


@pytest.mark.parametrize("who", OUTSIDERS)
def test_navigation_from_public_entities(county, who):
    ids = county.ids
    paths = [
        f"Things({ids['nord:thing']})/Datastreams",
        f"Things({ids['nord:thing']})/MultiDatastreams",
        f"Locations({ids['nord:location']})/Things",
        f"Locations({ids['nord:location']})/HistoricalLocations",
        f"FeaturesOfInterest({ids['nord:public_feature']})/Observations",
        f"Datastreams({ids['nord:public_ds']})/Thing/Datastreams",
        f"Datastreams({ids['nord:public_ds']})/Sensor/MultiDatastreams",
    ]
    with county.client(who) as client, county.client("nord") as owner:
        for path in paths:
            answer = client.get(path + "?$top=1000")
            assert answer.status_code == 200, (path, answer.text)
            _clean(answer.text, OUTSIDERS[who], path)
        # The owner sees the internal ones on the same paths.
        assert "GEHEIM-nord" in owner.get(paths[0]).text
        assert "GEHEIM-nord" in owner.get(paths[1]).text


# -- $expand, $filter through navigation, $count ------------------------------------------------

EXPANDS = [
    "Things?$expand=Datastreams($expand=Observations,Sensor,ObservedProperty),"
    "MultiDatastreams($expand=Observations,ObservedProperties,Sensor),Locations,"
    "HistoricalLocations($expand=Locations)",
    "Observations?$expand=Datastream($expand=Thing),MultiDatastream,FeatureOfInterest",
    "Sensors?$expand=Datastreams($expand=Observations),MultiDatastreams",
    "ObservedProperties?$expand=Datastreams,MultiDatastreams",
    "FeaturesOfInterest?$expand=Observations($expand=Datastream)",
    "Locations?$expand=Things($expand=Datastreams),HistoricalLocations($expand=Thing)",
    "Datastreams?$expand=Thing($expand=Locations),Observations($count=true)",
]


@pytest.mark.parametrize("who", OUTSIDERS)
def test_expand_shows_no_internal_data(county, who):
    with county.client(who) as client:
        for path in EXPANDS:
            answer = client.get(path + "&$top=1000" if "?" in path else path)
            assert answer.status_code == 200, (path, answer.text)
            _clean(answer.text, OUTSIDERS[who], path)
    with county.client("nord") as owner:
        text = owner.get(EXPANDS[0]).text
        assert "GEHEIM-nord Besucher Markt" in text and "GEHEIM-nord Wind" in text


# Filters that would match only through nord's internal data.
FILTERS = [
    "Things?$filter=Datastreams/name eq 'GEHEIM-nord Besucher Markt'",
    "Things?$filter=MultiDatastreams/name eq 'GEHEIM-nord Wind'",
    "Things?$filter=Datastreams/Observations/result eq 'GEHEIM-nord-Besucher-0'",
    "Things?$filter=Datastreams/Observations/result ge 4711 and "
    "Datastreams/Observations/result lt 4712",
    "Locations?$filter=Things/name eq 'GEHEIM-nord Messstelle Rathauskeller'",
    "Locations?$filter=Things/Datastreams/name eq 'GEHEIM-nord Besucher Markt'",
    "Sensors?$filter=Datastreams/Thing/name eq 'GEHEIM-nord Messstelle Rathauskeller'",
    "ObservedProperties?$filter=MultiDatastreams/name eq 'GEHEIM-nord Wind'",
    "FeaturesOfInterest?$filter=Observations/result eq 'GEHEIM-nord-Besucher-0'",
    "FeaturesOfInterest?$filter=Observations/Datastream/name eq 'GEHEIM-nord Feuchte Keller'",
    "Observations?$filter=FeatureOfInterest/name eq 'GEHEIM-nord Eingang'",
    "Datastreams?$filter=Thing/name eq 'GEHEIM-nord Messstelle Rathauskeller'",
    "Datastreams?$filter=Sensor/name eq 'GEHEIM-nord Zähler'",
    "HistoricalLocations?$filter=Locations/name eq 'GEHEIM-nord Keller'",
]


@pytest.mark.parametrize("who", OUTSIDERS)
def test_filter_through_navigation_reveals_nothing(county, who):
    with county.client(who) as client, county.client("nord") as owner:
        for path in FILTERS:
            mine = owner.get(path + "&$count=true")
            assert mine.status_code == 200 and mine.json()["value"], (path, mine.text)
            answer = client.get(path + "&$count=true")
            assert answer.status_code == 200, (path, answer.text)
            assert answer.json()["value"] == [], (who, path, answer.text)
            assert answer.json()["@iot.count"] == 0, path
        # Through an $expand the filter finds nothing either.
        expanded = client.get("Things?$expand=Datastreams($filter=Sensor/name eq "
                              "'GEHEIM-nord Zähler')")
        _clean(expanded.text, OUTSIDERS[who], "expand with filter")


@pytest.mark.parametrize("who", [*OUTSIDERS, "nord"])
def test_counts_are_the_visible_counts(county, who):
    nord, sued = county.entities["nord"], county.entities["sued"]
    visible = nord["public"] | sued["public"]
    if who == "nord":
        visible |= nord["internal"] | nord["shared"]
    if who == "sued":
        visible |= sued["internal"] | sued["shared"]
    if who == "kreis":
        visible |= nord["shared"] | sued["shared"]
    with county.client(who) as client:
        for entity_set in ("Observations", "Datastreams", "Things", "MultiDatastreams"):
            expected = len({e for e in visible if e[0] == entity_set})
            answer = client.get(f"{entity_set}?$count=true&$top=0").json()
            assert answer["@iot.count"] == expected, (who, entity_set)
        thing = client.get(f"Things({county.ids['nord:thing']})?$expand="
                           "Datastreams($count=true;$top=0)").json()
        own = {e for e in visible if e[0] == "Datastreams"} & (
            nord["public"] | nord["internal"] | nord["shared"])
        on_thing = {("Datastreams", county.ids[f"nord:{k}"])
                    for k in ("public_ds", "geheim_ds", "shared_ds")}
        assert thing["Datastreams@iot.count"] == len(own & on_thing)


# -- DataArray, batch -----------------------------------------------------------------------------


@pytest.mark.parametrize("who", OUTSIDERS)
def test_data_array_shows_no_internal_data(county, who):
    ids = county.ids
    with county.client(who) as client:
        answer = client.get("Observations?$resultFormat=dataArray&$top=1000")
        assert answer.status_code == 200
        _clean(answer.text, OUTSIDERS[who], "dataArray")
        for key in ("geheim_ds", "keller_ds"):
            hidden = client.get(f"Datastreams({ids['nord:' + key]})/Observations"
                                "?$resultFormat=dataArray")
            assert hidden.status_code == 404
    with county.client("nord") as owner:
        mine = owner.get(f"Datastreams({ids['nord:keller_ds']})/Observations"
                         "?$resultFormat=dataArray")
        assert "4711.5" in mine.text


@pytest.mark.parametrize("who", OUTSIDERS)
def test_batch_reads_show_no_internal_data(county, who):
    ids = county.ids
    body = {"requests": [
        {"id": "1", "method": "get", "url": "Observations?$top=1000"},
        {"id": "2", "method": "get", "url": f"Datastreams({ids['nord:geheim_ds']})"},
        {"id": "3", "method": "get", "url": "Things?$filter=Datastreams/name eq "
                                             "'GEHEIM-nord Besucher Markt'"},
        {"id": "4", "method": "get", "url": "Things?$expand=Datastreams($expand=Observations)"},
    ]}
    with county.client(who) as client:
        answer = client.post("$batch", json=body)
        assert answer.status_code == 200, answer.text
        _clean(answer.text, OUTSIDERS[who], "$batch")
        parts = {r["id"]: r for r in answer.json()["responses"]}
        assert parts["2"]["status"] == 404
        assert parts["3"]["body"]["value"] == []
        # The tenant view's batch answers with links inside the view.
        view = httpx.post(f"{county.url}/t/nord/v1.1/$batch", json=body,
                          headers=client.headers, timeout=30)
        _clean(view.text, OUTSIDERS[who], "tenant $batch")
    with county.client("nord") as owner:
        mine = {r["id"]: r for r in owner.post("$batch", json=body).json()["responses"]}
        assert mine["2"]["status"] == 200 and mine["3"]["body"]["value"]


# -- tenant views ---------------------------------------------------------------------------------


def test_tenant_views_keep_to_their_tenant(county):
    ids = county.ids
    with county.client("anon", "/t/nord/v1.1") as view:
        things = view.get("Things").json()
        assert {t["@iot.id"] for t in things["value"]} == {ids["nord:thing"]}
        assert all(t["@iot.selfLink"].startswith(f"{county.url}/t/nord/v1.1/")
                   for t in things["value"])
        root = view.get("").json()
        assert root["value"][0]["url"].startswith(f"{county.url}/t/nord/v1.1/")
        assert view.get(f"Things({ids['sued:thing']})").status_code == 404
        _clean(view.get("Observations?$top=1000").text, markers("nord"), "view")
    with county.client("nord", "/t/nord/v1.1") as view:
        names = {t["name"] for t in view.get("Things").json()["value"]}
        assert names == {"nord Messstelle Markt", "GEHEIM-nord Messstelle Rathauskeller"}
        paged = view.get("Observations?$top=2").json()
        assert paged["@iot.nextLink"].startswith(f"{county.url}/t/nord/v1.1/Observations?")
    with county.client("nord", "/t/sued/v1.1") as view:
        # nord's key in sued's view: sued's public data only, nord's own data is not in it.
        names = {t["name"] for t in view.get("Things").json()["value"]}
        assert names == {"sued Messstelle Markt"}
        refused = view.post("Things", json={"name": "x", "description": "y"})
        assert refused.status_code == 403
    with county.client("anon", "/t/kreis/v1.1") as view:
        # The county's view: the public data of its member towns.
        names = {t["name"] for t in view.get("Things").json()["value"]}
        assert names == {"nord Messstelle Markt", "sued Messstelle Markt"}
    assert httpx.get(f"{county.url}/t/gibtsnicht/v1.1/Things").status_code == 404
    assert httpx.get(f"{county.url}/t/gibtsnicht/v1.1").status_code == 404


# -- dashboard APIs, downloads, dashboard pages ----------------------------------------------------


@pytest.mark.parametrize("who", OUTSIDERS)
def test_latest_series_and_downloads(county, who):
    ids = county.ids
    headers = {} if who == "anon" else {"Authorization": f"Bearer {county.keys[who]}"}
    base = county.url
    latest = httpx.get(f"{base}/api/v1/latest", headers=headers, timeout=30)
    assert latest.status_code == 200, latest.text
    _clean(latest.text, OUTSIDERS[who], "latest")
    hidden = [ids["nord:geheim_ds"], ids["nord:keller_ds"]]
    if who != "kreis":
        hidden.append(ids["nord:shared_ds"])
    for ds in hidden:
        for path in (f"/api/v1/datastreams/{ds}/series",
                     f"/api/v1/datastreams/{ds}/series.csv",
                     f"/v1.1/Datastreams({ds})/Observations?$aggregate=PT1H"):
            answer = httpx.get(base + path, headers=headers, timeout=30)
            assert answer.status_code == 404, (path, answer.text)
    public = ids["nord:public_ds"]
    assert httpx.get(f"{base}/api/v1/datastreams/{public}/series", headers=headers,
                     timeout=30).status_code == 200
    for page in ("/", "/map"):
        html = httpx.get(base + page, headers=headers, timeout=30)
        assert html.status_code == 200
        _clean(html.text, OUTSIDERS[who], page)


def test_owner_reads_its_internal_series(county):
    ids = county.ids
    headers = {"Authorization": f"Bearer {county.keys['nord']}"}
    ds = ids["nord:keller_ds"]
    for path in (f"/api/v1/datastreams/{ds}/series", f"/api/v1/datastreams/{ds}/series.csv",
                 f"/v1.1/Datastreams({ds})/Observations?$aggregate=PT1H"):
        answer = httpx.get(county.url + path, headers=headers, timeout=30)
        assert answer.status_code == 200, (path, answer.text)
        assert "4711" in answer.text or "4712" in answer.text, path
    latest = httpx.get(f"{county.url}/api/v1/latest", headers=headers, timeout=30).json()
    assert ds in {v["datastream_id"] for v in latest["value"]}
    # The county sees what was shared with it.
    shared = ids["nord:shared_ds"]
    answer = httpx.get(f"{county.url}/api/v1/datastreams/{shared}/series",
                       headers={"Authorization": f"Bearer {county.keys['kreis']}"}, timeout=30)
    assert answer.status_code == 200


# -- MQTT subscriptions ---------------------------------------------------------------------------


class _Subscriber:
    def __init__(self, port: int, password: str | None) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=f"leak-{time.monotonic_ns()}")
        if password:
            self.client.username_pw_set("test", password)
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.subscribed = False
        self.client.on_subscribe = lambda *a: setattr(self, "subscribed", True)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def subscribe(self, *topics: str) -> None:
        self.client.subscribe([(t, 1) for t in topics])
        _wait(lambda: self.subscribed, "SUBACK")

    def has(self, text: str) -> bool:
        return any(text.encode() in payload for _, payload in self.messages)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _wait(condition, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited in vain for {what}")
        time.sleep(0.05)


def test_mqtt_subscriptions_deliver_internal_data_only_to_the_owner(county):
    ids = county.ids
    port = county.server.mqtt_port
    secret_ds = ids["nord:geheim_ds"]
    topics = ("v1.1/Observations", f"v1.1/Datastreams({secret_ds})/Observations",
              "v1.1/Datastreams", "v1.1/#")
    subscribers = {who: _Subscriber(port, None if who == "anon" else county.keys[who])
                   for who in ("anon", "sued", "kreis", "nord")}
    try:
        for subscriber in subscribers.values():
            subscriber.subscribe(*topics)
        with county.client("nord") as api:
            stamp = str(time.monotonic_ns())
            secret = api.post(f"Datastreams({secret_ds})/Observations",
                              json={"result": f"GEHEIM-nord-mqtt-{stamp}"})
            assert secret.status_code == 201
            updated = api.patch(f"Datastreams({secret_ds})",
                                json={"description": f"GEHEIM-nord-beschreibung-{stamp}"})
            assert updated.status_code == 200
            nord = subscribers["nord"]
            _wait(lambda: nord.has(f"GEHEIM-nord-mqtt-{stamp}")
                  and nord.has(f"GEHEIM-nord-beschreibung-{stamp}"), "the owner's messages")
            public = api.post(f"Datastreams({ids['nord:public_ds']})/Observations",
                              json={"result": 12.25, "parameters": {"stamp": stamp}})
            assert public.status_code == 201
        for who in ("anon", "sued", "kreis"):
            subscriber = subscribers[who]
            _wait(lambda s=subscriber: s.has(stamp), f"{who}'s public message")
            for topic, payload in subscriber.messages:
                _clean(payload.decode(), OUTSIDERS[who], f"MQTT {topic} to {who}")
                assert topic != f"v1.1/Datastreams({secret_ds})/Observations"
        # The owner got its message on every subscribed form of the topic.
        got = {t for t, p in subscribers["nord"].messages if stamp.encode() in p
               and b"GEHEIM" in p}
        assert f"v1.1/Datastreams({secret_ds})/Observations" in got
        assert json.loads(next(p for t, p in subscribers["nord"].messages
                               if t == "v1.1/Observations" and stamp.encode() in p
                               and b"GEHEIM" in p))["result"].startswith("GEHEIM-nord-mqtt")
    finally:
        for subscriber in subscribers.values():
            subscriber.close()


# -- CSV and GeoJSON result formats (downloads) ---------------------------------------------------


@pytest.mark.parametrize("who", OUTSIDERS)
def test_csv_and_geojson_show_no_internal_data(county, who):
    ids = county.ids
    with county.client(who) as client:
        for entity_set in SETS:
            answer = client.get(f"{entity_set}?$resultFormat=CSV")
            assert answer.status_code == 200, (entity_set, answer.text)
            _clean(answer.text, OUTSIDERS[who], f"{entity_set} as CSV")
        for entity_set in ("Things", "Locations", "FeaturesOfInterest", "Observations",
                           "Datastreams", "MultiDatastreams"):
            answer = client.get(f"{entity_set}?$resultFormat=GeoJSON")
            assert answer.status_code == 200, (entity_set, answer.text)
            _clean(answer.text, OUTSIDERS[who], f"{entity_set} as GeoJSON")
        expanded = client.get("Things?$resultFormat=CSV&$expand=Datastreams")
        _clean(expanded.text, OUTSIDERS[who], "CSV with $expand")
        hidden = client.get(f"Datastreams({ids['nord:geheim_ds']})/Observations"
                            "?$resultFormat=CSV")
        assert hidden.status_code == 404
    with county.client("nord") as owner:
        mine = owner.get(f"Datastreams({ids['nord:geheim_ds']})/Observations"
                         "?$resultFormat=CSV")
        assert mine.status_code == 200 and "GEHEIM-nord-Besucher-0" in mine.text
