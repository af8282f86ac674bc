"""Malformed query options are answered with 400 and a message naming the option, the position
and what was expected there — over HTTP, on every entity set."""

from __future__ import annotations

import pytest

from ortspuls.model import ENTITY_SETS


def bad(anon, path: str, params: dict[str, str] | None = None) -> str:
    response = anon.get(path, params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 400 and body["error"] == "Bad Request"
    return body["message"]


@pytest.mark.parametrize(("params", "fragments"), [
    ({"$filter": "name eq"}, ["$filter", "position 8", "expected one of", "string"]),
    ({"$filter": "name eq 'x' xyz"}, ["$filter", "position 13", "'and'"]),
    ({"$filter": "(name eq 'x'"}, ["$filter", "position 13", "')'"]),
    ({"$filter": "name eq 'unterminated"}, ["$filter", "unterminated string", "position 9"]),
    ({"$filter": "name eq #"}, ["$filter", "unexpected character '#'", "position 9"]),
    ({"$filter": "startswith(name)"}, ["$filter", "takes 2 arguments", "position 1"]),
    ({"$filter": "frobnicate(name) eq 1"}, ["$filter", "unknown function", "position 1"]),
    ({"$filter": "phenomenonTime gt 2024-13-45T00:00:00Z"}, ["$filter", "datetime"]),
    ({"$filter": "phenomenonTime gt duration'P1Y'"}, ["$filter", "duration"]),
    ({"$filter": ""}, ["$filter", "position 1"]),
    ({"$orderby": "name sideways"}, ["$orderby", "position 6", "'desc'"]),
    ({"$orderby": ""}, ["$orderby", "position 1"]),
    ({"$select": "name,,id"}, ["$select", "position 6", "name"]),
    ({"$expand": "Datastreams($top=1"}, ["$expand", "position 19", "')'"]),
    ({"$expand": "Datastreams($top=one)"}, ["$expand", "position 18", "non-negative integer"]),
    ({"$expand": "Datastreams($frob=1)"}, ["$expand", "unknown query option '$frob'"]),
    ({"$top": "-1"}, ["$top", "position 1", "non-negative integer"]),
    ({"$top": "ten"}, ["$top", "position 1"]),
    ({"$skip": "1e3"}, ["$skip", "position"]),
    ({"$count": "yes"}, ["$count", "position 1", "'true'"]),
    ({"$resultFormat": ""}, ["$resultFormat", "position 1"]),
    ({"$resultFormat": "xml"}, ["$resultFormat", "xml", "GeoJSON", "CSV"]),
    ({"$frobnicate": "1"}, ["$frobnicate", "unknown query option"]),
])
def test_malformed_options_name_position_and_expectation(anon, params, fragments):
    message = bad(anon, "/Things", params)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_repeated_option_is_refused(anon):
    message = bad(anon, "/Things?$top=1&$TOP=2")
    assert "duplicate" in message and "$top" in message


@pytest.mark.parametrize("entity_set", list(ENTITY_SETS))
def test_every_entity_set_refuses_bad_options(anon, entity_set):
    assert "position" in bad(anon, f"/{entity_set}", {"$filter": "id eq eq 1"})
    assert "$filter" in bad(anon, f"/{entity_set}", {"$filter": "nope eq 1"})
    assert "$orderby" in bad(anon, f"/{entity_set}", {"$orderby": "id,"})


def test_options_on_single_entities_are_checked_too(anon, api):
    thing = api.post("/Things", json={"name": "Einzeln", "description": "x"}).json()
    message = bad(anon, f"/Things({thing['@iot.id']})", {"$expand": "Nope"})
    assert "Nope" in message
    message = bad(anon, f"/Things({thing['@iot.id']})", {"$select": "name eq"})
    assert "$select" in message


def test_type_errors_in_filters_are_400(anon):
    for text, fragment in [
        ("name gt 5", "cannot compare"),
        ("name add 1 eq 2", "needs numbers"),
        ("length(5) eq 1", "needs text"),
        ("year(name) eq 2024", "needs a time"),
        ("name", "not a condition"),
        ("startswith(name, 'a') eq 1", "cannot compare"),
    ]:
        assert fragment in bad(anon, "/Things", {"$filter": text}), text
