"""Writes across tenants: linking or changing another town's entities is refused with 403 and
changes nothing; every change is in the owner's audit log, also after a deletion."""

from __future__ import annotations

from tests.tenancy.conftest import MEASUREMENT

TABLES = ("things", "locations", "historical_locations", "sensors", "observed_properties",
          "datastreams", "multi_datastreams", "observations", "features", "thing_locations",
          "stream_shares")


def _snapshot(county) -> dict[str, object]:
    state: dict[str, object] = {t: county.sql(f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}
    state["names"] = sorted(county.sql("SELECT id, name, description FROM things"))
    state["streams"] = sorted(county.sql("SELECT id, thing_id, sensor_id, name FROM datastreams"))
    return state


def _sensor() -> dict:
    return {"name": "Fremdsensor", "description": "x", "encodingType": "text/html",
            "metadata": "m"}


def _observed_property() -> dict:
    return {"name": "Fremdgröße", "definition": "https://example.org/x", "description": "x"}


def _datastream(**links) -> dict:
    return {"name": "Fremdstrom", "description": "x", "observationType": MEASUREMENT,
            "unitOfMeasurement": {"name": "x", "symbol": "x", "definition": "x"}, **links}


def test_writes_to_another_towns_entities_are_403_and_change_nothing(county):
    ids = county.ids
    before = _snapshot(county)
    thing, location, public_ds = ids["nord:thing"], ids["nord:location"], ids["nord:public_ds"]
    feature = ids["nord:public_feature"]
    with county.client("sued") as sued:
        own_ds = ids["sued:public_ds"]
        sensor = sued.get(f"Datastreams({ids['nord:public_ds']})/Sensor").json()["@iot.id"]
        attempts = [
            ("PATCH", f"Things({thing})", {"description": "übernommen"}, None),
            ("PUT", f"Things({thing})", {"name": "x", "description": "y"}, None),
            ("DELETE", f"Things({thing})", None, None),
            ("PATCH", f"Things({thing})", [{"op": "replace", "path": "/name", "value": "x"}],
             "application/json-patch+json"),
            ("DELETE", f"Datastreams({public_ds})", None, None),
            ("DELETE", f"Locations({location})", None, None),
            # Linking nord's entities from new entities of sued:
            ("POST", "Datastreams", _datastream(Thing={"@iot.id": thing}, Sensor=_sensor(),
                                                ObservedProperty=_observed_property()), None),
            ("POST", f"Things({thing})/Datastreams",
             _datastream(Sensor=_sensor(), ObservedProperty=_observed_property()), None),
            ("POST", "Things", {"name": "x", "description": "y",
                                "Locations": [{"@iot.id": location}]}, None),
            ("POST", f"Locations({location})/Things", {"name": "x", "description": "y"}, None),
            ("PATCH", f"Datastreams({own_ds})", {"Sensor": {"@iot.id": sensor}}, None),
            ("POST", "Things", {"name": "x", "description": "y",
                                "Datastreams": [{"@iot.id": public_ds}]}, None),
            # Observations into nord's Datastream, or with nord's feature:
            ("POST", f"Datastreams({public_ds})/Observations", {"result": 1}, None),
            ("POST", "Observations", {"result": 1, "Datastream": {"@iot.id": public_ds}}, None),
            ("POST", "Observations", {"result": 1, "Datastream": {"@iot.id": own_ds},
                                      "FeatureOfInterest": {"@iot.id": feature}}, None),
            ("POST", f"{county.url}/v1.1/CreateObservations", [{
                "Datastream": {"@iot.id": public_ds}, "components": ["result"],
                "dataArray": [[1], [2]]}], None),
        ]
        for method, path, body, kind in attempts:
            headers = {"Content-Type": kind} if kind else {}
            answer = sued.request(method, path, json=body, headers=headers)
            assert answer.status_code == 403, (method, path, answer.text)
            assert "municipality" in answer.json()["message"]
        # Internal entities of nord cannot even be found.
        hidden = sued.patch(f"Things({ids['nord:hidden_thing']})", json={"name": "x"})
        assert hidden.status_code == 404
        # A change set with one foreign part is rolled back as a whole.
        batch = sued.post("$batch", json={"requests": [
            {"id": "1", "method": "post", "url": "Things", "atomicityGroup": "g",
             "body": {"name": "sued Teil einer Änderung", "description": "x"}},
            {"id": "2", "method": "patch", "url": f"Things({thing})", "atomicityGroup": "g",
             "body": {"name": "übernommen"}},
        ]})
        assert batch.status_code == 200
        statuses = {r["status"] for r in batch.json()["responses"]}
        assert 403 in statuses and 201 not in statuses
    assert _snapshot(county) == before


def test_feature_of_another_town_in_a_data_array_is_refused(county):
    ids = county.ids
    before = _snapshot(county)
    with county.client("sued") as sued:
        answer = sued.post(f"{county.url}/v1.1/CreateObservations", json=[{
            "Datastream": {"@iot.id": ids["sued:public_ds"]},
            "components": ["result", "FeatureOfInterest/id"],
            "dataArray": [[1, ids["nord:public_feature"]]]}])
        assert answer.status_code == 201
        assert answer.json() == ["error"]
    assert _snapshot(county) == before


def test_new_entities_take_the_tenants_default_visibility(county):
    browser = county.browser()
    try:
        assert browser.login("admin@sued.example").status_code == 303
        csrf = browser.csrf("/admin/t/sued/settings")
        answer = browser.post("/admin/t/sued/settings",
                              {"csrf": csrf, "default_visibility": "internal"})
        assert answer.status_code == 303
        with county.client("sued") as sued, county.client("anon") as anon:
            created = sued.post("Things", json={"name": "GEHEIM-sued neu", "description": "x"})
            assert created.status_code == 201
            ident = created.json()["@iot.id"]
            assert anon.get(f"Things({ident})").status_code == 404
            assert sued.get(f"Things({ident})").status_code == 200
            assert sued.delete(f"Things({ident})").status_code == 200
    finally:
        browser.post("/admin/t/sued/settings",
                     {"csrf": browser.csrf("/admin/t/sued/settings"),
                      "default_visibility": "public"})
        browser.close()


def test_audit_log_names_the_key_and_survives_deletion(county):
    with county.client("nord") as nord:
        created = nord.post("Things", json={"name": "Kurzlebig", "description": "x"})
        ident = created.json()["@iot.id"]
        assert nord.patch(f"Things({ident})", json={"description": "y"}).status_code == 200
        assert nord.delete(f"Things({ident})").status_code == 200
    # (SQLite may give a deleted row's id to the next new row: ask by tenant too.)
    rows = county.sql(f"SELECT action, actor_kind, actor_name FROM audit_log "
                      f"WHERE entity_type = 'Thing' AND entity_id = {ident} "
                      f"AND tenant_id = {county.tenant_ids['nord']} ORDER BY id")
    assert rows == [("create", "key", "nord-admin"), ("update", "key", "nord-admin"),
                    ("delete", "key", "nord-admin")]
    browser = county.browser()
    try:
        assert browser.login("admin@nord.example").status_code == 303
        page = browser.get("/admin/t/nord/audit")
        assert page.status_code == 200
        assert "Kurzlebig" in page.text and "gelöscht" in page.text
        # Editors do not read the audit log; other towns do not see nord's.
        editor = county.browser()
        assert editor.login("redaktion@nord.example").status_code == 303
        assert editor.get("/admin/t/nord/audit").status_code == 403
        editor.close()
        other = county.browser()
        assert other.login("admin@sued.example").status_code == 303
        assert other.get("/admin/t/nord/audit").status_code == 404
        assert "Kurzlebig" not in other.get("/admin/t/sued/audit").text
        other.close()
    finally:
        browser.close()
