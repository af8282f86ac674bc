"""$filter paths: navigation (to-one and to-many), JSON paths, result typing, time intervals.

The world (tests/query/conftest.py): Things A–E; Datastream `ops` (Thing A) with o1–o8,
`late` (Thing B) with l1 = 5 in 2026, `empty` (Thing C) without Observations.
"""

from __future__ import annotations

import pytest

ALL_OBS = ["o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8"]


def suite_of_observations(world) -> str:
    return f"Datastream/Thing/properties/suite eq '{world.suite}'"


@pytest.mark.parametrize(("condition", "expected"), [
    ("Datastream/name eq 'late'", ["l1"]),
    ("Datastream/Thing/name eq 'Luftgüte Markt'", ["l1"]),
    ("Datastream/Thing/name eq 'Pegel Mühlbach' and result gt 2", ["o2", "o7"]),
    ("result ge 5", ["l1", "o7"]),
    ("Datastream/Sensor/name eq 'Sensor ops' and result eq 'hoch'", ["o3"]),
    ("Datastream/ObservedProperty/name eq 'Größe late'", ["l1"]),
    ("FeatureOfInterest/name eq 'Ort Luftgüte Markt'", ["l1"]),
    ("Datastream/Thing/properties/kind eq 'luft'", ["l1"]),
    ("Datastream/unitOfMeasurement/symbol eq 'cm' and result eq -4", ["o8"]),
    # through a to-one, then a to-many (any Location of the Thing)
    ("Datastream/Thing/Locations/name eq 'Ort Luftgüte Markt'", ["l1"]),
    ("not (Datastream/Thing/Locations/name eq 'Ort Pegel Mühlbach')", ["l1"]),
])
def test_to_one_navigation(world, condition, expected):
    assert world.labels("/Observations", condition, suite_of_observations(world)) == expected


@pytest.mark.parametrize(("condition", "expected"), [
    ("Datastreams/name eq 'late'", ["B"]),
    ("Datastreams/name ne 'late'", ["A", "C"]),  # any Datastream whose name is not 'late'
    ("not (Datastreams/name eq 'late')", ["A", "C", "D", "E"]),
    ("Datastreams/Observations/result gt 5", ["A"]),
    ("Datastreams/Observations/result ge 5", ["A", "B"]),
    ("Datastreams/Observations/result eq 'hoch'", ["A"]),
    ("not (Datastreams/Observations/result gt 5)", ["B", "C", "D", "E"]),
    ("Datastreams/Observations/result gt 5 or properties/kind eq 'parken'", ["A", "C"]),
    ("Datastreams/name eq 'ops' and Datastreams/name eq 'late'", []),
    ("Datastreams/Observations/parameters/s eq 'b'", ["A"]),
    ("year(Datastreams/Observations/phenomenonTime) eq 2026", ["B"]),
    ("Locations/name eq 'Ort Bodenfeuchte'", ["D"]),
    ("startswith(Locations/name, 'Ort P')", ["A"]),
    ("Datastreams/Sensor/name eq 'Sensor empty'", ["C"]),
    ("HistoricalLocations/Locations/name eq 'Ort Bodenfeuchte'", ["D"]),
    ("Datastreams/Observations/FeatureOfInterest/name eq 'Ort Pegel Mühlbach'", ["A"]),
])
def test_to_many_navigation_is_any_match(world, condition, expected):
    assert world.things(condition) == expected


def test_navigation_from_locations_and_historical_locations(world):
    suite = world.suite
    body = world.query("/Locations", filter=f"Things/properties/suite eq '{suite}' and "
                       "Things/name eq 'Luftgüte Markt'", select="name")
    assert body["value"] == [{"name": "Ort Luftgüte Markt"}]
    body = world.query("/HistoricalLocations", filter=f"Thing/properties/suite eq '{suite}' and "
                       "Thing/name eq 'Bodenfeuchte'", expand="Locations($select=name)",
                       select="id")
    assert [h["Locations"] for h in body["value"]] == [[{"name": "Ort Bodenfeuchte"}]]


@pytest.mark.parametrize(("condition", "expected"), [
    ("Sensor/name eq 'Sensor late'", ["late"]),
    ("Thing/name eq '  Parkhaus Nord '", ["empty"]),
    ("Thing/Locations/name eq 'Ort Luftgüte Markt'", ["late"]),
    ("Observations/result eq 'hoch'", ["ops"]),
    ("Observations/result gt 4", ["late", "ops"]),
    ("Observations/phenomenonTime eq null", []),
    ("not (Observations/phenomenonTime ne null)", ["empty"]),
])
def test_datastream_navigation(world, condition, expected):
    assert world.datastreams(condition) == expected


@pytest.mark.parametrize(("condition", "expected"), [
    ("properties/owner/name eq 'Stadtwerke'", ["A"]),
    ("properties/tags/0 eq 'a'", ["A"]),
    ("properties/tags/1 eq 'b'", ["A"]),
    ("properties/level ge 3 and properties/level le 7.5", ["A", "B"]),
    ("properties/level lt 1", ["E"]),
    ("properties/level gt 2.99", ["A", "B"]),
    ("properties/level mul 10 eq 75", ["B"]),
    ("properties/level eq '9'", ["C"]),
    ("properties/level gt '8'", ["C"]),  # strings compare as strings
    ("properties/owner eq null", ["B", "C", "D", "E"]),
    ("properties/nothing/deeper eq null", ["A", "B", "C", "D", "E"]),
    ("properties/owner/name/deeper eq null", ["A", "B", "C", "D", "E"]),
])
def test_json_paths_in_properties(world, condition, expected):
    assert world.things(condition) == expected


@pytest.mark.parametrize(("condition", "expected"), [
    ("parameters/n gt 1", ["o2"]),  # o3's n is the string '3'
    ("parameters/n eq '3'", ["o3"]),
    ("parameters/n lt 0", ["o6"]),
    ("parameters/n add 1 eq 2", ["o1"]),
    ("parameters/n ge -1 and parameters/n le 1", ["o1", "o6"]),
    ("parameters/flag eq true", ["o1"]),
    ("parameters/flag eq false", ["o4"]),
    ("parameters/flag", ["o1"]),
    ("parameters/s eq 'a' or parameters/s eq 'b'", ["o1", "o3"]),
    ("parameters/s in ('b', 'c')", ["o3"]),
    ("result/a eq 1", ["o6"]),
    ("result/a eq null", ["o1", "o2", "o3", "o4", "o5", "o7", "o8"]),
])
def test_json_paths_in_parameters_and_results(world, condition, expected):
    assert world.observations("ops", condition) == expected


@pytest.mark.parametrize(("condition", "expected"), [
    ("result eq 10", ["o7"]),
    ("result eq '10'", []),  # a number is not the string '10'
    ("result gt 5 or result eq 'hoch'", ["o3", "o7"]),
    ("result lt 'z'", ["o3"]),
    ("result ge 0", ["o1", "o2", "o7"]),  # neither booleans nor objects are numbers
    ("result eq 2.5", ["o2"]),
    ("result eq 25e-1", ["o2"]),
    ("result in (1, 'hoch', 10)", ["o1", "o3", "o7"]),
])
def test_result_as_number_or_string(world, condition, expected):
    assert world.observations("ops", condition) == expected


@pytest.mark.parametrize(("condition", "expected"), [
    # o2 is the interval 2024-03-02T12:00/13:00; an interval is before a time if it ends
    # before it, after it if it starts after it
    ("phenomenonTime lt 2024-03-02T12:30:00Z", ["o1", "o8"]),
    ("phenomenonTime gt 2024-03-02T12:30:00Z", ["o3", "o4", "o5", "o6", "o7"]),
    ("phenomenonTime le 2024-03-02T13:00:00Z", ["o1", "o2", "o8"]),
    ("phenomenonTime lt 2024-03-02T13:00:00Z", ["o1", "o8"]),
    ("phenomenonTime ge 2024-03-02T12:00:00Z", ["o2", "o3", "o4", "o5", "o6", "o7"]),
    ("phenomenonTime gt 2024-03-02T12:00:00Z", ["o3", "o4", "o5", "o6", "o7"]),
    ("phenomenonTime eq 2024-03-02T12:00:00Z", []),
    ("phenomenonTime ne 2024-03-02T12:00:00Z", ALL_OBS),
    ("phenomenonTime eq 2024-03-03T00:00:00Z", ["o3"]),
    ("2024-03-02T12:30:00Z gt phenomenonTime", ["o1", "o8"]),
    ("resultTime gt phenomenonTime", ["o1"]),
    ("phenomenonTime ge Datastream/phenomenonTime", ["o7"]),
    ("phenomenonTime le Datastream/phenomenonTime", ["o8"]),
    # validTime of o1: 2024-03-01T00:00/2024-03-02T00:00
    ("validTime lt 2024-03-03T00:00:00Z", ["o1"]),
    ("validTime gt 2024-02-28T00:00:00Z", ["o1"]),
    ("validTime gt 2024-03-01T12:00:00Z", []),
    ("validTime lt 2024-03-01T12:00:00Z", []),
    ("validTime le 2024-03-02T00:00:00Z", ["o1"]),
    ("validTime ge 2024-03-01T00:00:00Z", ["o1"]),
    ("validTime ne 2024-03-01T12:00:00Z", ALL_OBS),
    ("phenomenonTime gt validTime or phenomenonTime lt validTime", []),
])
def test_observation_intervals(world, condition, expected):
    assert world.observations("ops", condition) == expected


def test_observation_interval_equals_datastream_interval(world):
    assert world.observations("late", "phenomenonTime eq Datastream/phenomenonTime") == ["l1"]
    assert world.observations("ops", "phenomenonTime eq Datastream/phenomenonTime") == []


@pytest.mark.parametrize(("condition", "expected"), [
    # ops: 2023-12-31T22:00Z/2025-01-01T00:00Z; late: the instant 2026-01-01; empty: null
    ("phenomenonTime gt 2025-06-01T00:00:00Z", ["late"]),
    ("phenomenonTime lt 2025-06-01T00:00:00Z", ["ops"]),
    ("phenomenonTime lt 2025-01-01T00:00:00Z", []),
    ("phenomenonTime le 2025-01-01T00:00:00Z", ["ops"]),
    ("phenomenonTime ge 2023-12-31T22:00:00Z", ["late", "ops"]),
    ("phenomenonTime eq 2026-01-01T00:00:00Z", ["late"]),
    ("phenomenonTime ne 2026-01-01T00:00:00Z", ["empty", "ops"]),
    ("phenomenonTime eq null", ["empty"]),
    ("phenomenonTime ne null", ["late", "ops"]),
    ("not (phenomenonTime lt 2025-06-01T00:00:00Z)", ["empty", "late"]),
    ("resultTime eq null", ["empty", "late"]),
    ("resultTime eq 2024-03-01T10:16:00Z", ["ops"]),
])
def test_datastream_intervals(world, condition, expected):
    assert world.datastreams(condition) == expected


@pytest.mark.parametrize(("condition", "fragment"), [
    ("Datastreams eq 1", "Datastreams"),
    ("Datastreams/nope eq 1", "nope"),
    ("Datastream/name eq 'x'", "Datastream"),  # Things have no Datastream
    ("name/first eq 'x'", "sub-properties"),
    ("Datastreams/name eq name", "collection"),
    ("nope eq 1", "nope"),
])
def test_bad_paths_are_400(world, condition, fragment):
    message = world.error("/Things", filter=condition)
    assert fragment in message
