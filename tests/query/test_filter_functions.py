"""$filter functions on a known world: string, date/time and math functions.

The world (tests/query/conftest.py): Things A 'Pegel Mühlbach', B 'Luftgüte Markt',
C '  Parkhaus Nord ', D 'Bodenfeuchte', E "Müller's Wetterstation"; Observations o1–o8.
"""

from __future__ import annotations

import pytest

ALL_OBS = ["o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8"]
ALL_THINGS = ["A", "B", "C", "D", "E"]


@pytest.mark.parametrize(("condition", "expected"), [
    ("substringof('Markt', name)", ["B"]),
    ("substringof('markt', name)", []),  # case-sensitive
    ("substringof('', name)", ALL_THINGS),
    ("not substringof('ü', name)", ["C", "D"]),
    ("contains(name, 'haus')", ["C"]),
    ("endswith(name, 'bach')", ["A"]),
    ("endswith(name, 'Mühlbach')", ["A"]),
    ("endswith(name, 'x Pegel Mühlbach')", []),
    ("endswith(name, '')", ALL_THINGS),
    ("startswith(name, 'Pegel')", ["A"]),
    ("startswith(name, 'Parkhaus')", []),
    ("startswith(trim(name), 'Parkhaus')", ["C"]),
    ("length(name) eq 14", ["A", "B"]),  # characters, not bytes
    ("length(name) eq 16", ["C"]),
    ("length(name) gt 15", ["C", "E"]),
    ("indexof(name, 'Mühl') eq 6", ["A"]),
    ("indexof(name, 'P') eq 0", ["A"]),
    ("indexof(name, 'xyz') eq -1", ALL_THINGS),
    ("substring(name, 6) eq 'Mühlbach'", ["A"]),
    ("substring(name, 0, 5) eq 'Pegel'", ["A"]),
    ("substring(name, 2, 8) eq 'Parkhaus'", ["C"]),
    ("tolower(name) eq 'luftgüte markt'", ["B"]),
    ("toupper(name) eq 'PEGEL MÜHLBACH'", ["A"]),
    ("toupper(name) eq 'MÜLLER''S WETTERSTATION'", ["E"]),
    ("tolower(description) eq 'sensor im park'", ["D"]),
    ("trim(name) eq 'Parkhaus Nord'", ["C"]),
    ("trim(name) eq name", ["A", "B", "D", "E"]),
    ("concat(name, '!') eq 'Bodenfeuchte!'", ["D"]),
    ("concat(concat(name, ' / '), description) eq 'Bodenfeuchte / Sensor im Park'", ["D"]),
    ("length(concat(name, description)) eq 26", ["D"]),
    # functions on JSON values and nested calls
    ("tolower(properties/kind) eq 'pegel'", ["A"]),
    ("startswith(properties/owner/name, 'Stadt')", ["A"]),
    ("length(properties/kind) eq 4", ["B"]),
    ("toupper(substring(properties/kind, 0, 1)) eq 'P'", ["A", "C"]),
])
def test_string_functions(world, condition, expected):
    assert world.things(condition) == expected


def test_string_functions_on_result(world):
    assert world.observations("ops", "substringof('och', result)") == ["o3"]
    assert world.observations("ops", "length(result) eq 4") == ["o3"]
    assert world.observations("ops", "toupper(result) eq 'HOCH'") == ["o3"]


@pytest.mark.parametrize(("condition", "expected"), [
    ("year(phenomenonTime) eq 2025", ["o7"]),
    ("year(phenomenonTime) eq 2023", ["o8"]),  # 2024-01-01T00:00+02:00 is 2023 in UTC
    ("year(phenomenonTime) eq 2024", ["o1", "o2", "o3", "o4", "o5", "o6"]),
    ("month(phenomenonTime) eq 12", ["o8"]),
    ("month(phenomenonTime) eq 3", ["o1", "o2", "o3", "o4", "o5", "o6"]),
    ("day(phenomenonTime) eq 3", ["o3"]),
    ("day(phenomenonTime) eq 31", ["o8"]),
    ("hour(phenomenonTime) eq 10", ["o1"]),
    ("hour(phenomenonTime) eq 12", ["o2"]),  # an interval: its start
    ("hour(phenomenonTime) eq 22", ["o8"]),
    ("minute(phenomenonTime) eq 15", ["o1"]),
    ("minute(phenomenonTime) eq 30", ["o5"]),
    ("second(phenomenonTime) eq 30", ["o1"]),
    ("second(phenomenonTime) eq 59", ["o4"]),
    ("fractionalseconds(phenomenonTime) eq 0.25", ["o1"]),
    ("fractionalseconds(phenomenonTime) gt 0", ["o1"]),
    ("date(phenomenonTime) eq 2024-03-03", ["o3"]),
    ("date(phenomenonTime) ge 2024-03-05", ["o5", "o6", "o7"]),
    ("date(phenomenonTime) eq date(resultTime)", ["o1"]),
    ("time(phenomenonTime) eq 00:00:00", ["o3", "o6", "o7"]),
    ("time(phenomenonTime) gt 12:00:00", ["o4", "o8"]),
    ("time(phenomenonTime) lt 07:00", ["o3", "o5", "o6", "o7"]),
    ("totaloffsetminutes(phenomenonTime) eq 0", ALL_OBS),
    ("phenomenonTime lt now()", ALL_OBS),
    ("phenomenonTime gt now()", []),
    ("phenomenonTime gt mindatetime()", ALL_OBS),
    ("phenomenonTime lt maxdatetime()", ALL_OBS),
    ("resultTime lt maxdatetime()", ["o1"]),
    ("year(resultTime) eq 2024", ["o1"]),
    ("not (year(resultTime) eq 2024)", ["o2", "o3", "o4", "o5", "o6", "o7", "o8"]),
    ("hour(validTime) eq 0", ["o1"]),
])
def test_date_and_time_functions(world, condition, expected):
    assert world.observations("ops", condition) == expected


def test_date_functions_on_datastream_intervals(world):
    assert world.datastreams("year(phenomenonTime) eq 2026") == ["late"]
    assert world.datastreams("year(phenomenonTime) eq 2023") == ["ops"]  # its start
    assert world.datastreams("phenomenonTime eq null") == ["empty"]


@pytest.mark.parametrize(("condition", "expected"), [
    ("round(properties/level) eq 8", ["B"]),  # half away from zero
    ("round(properties/level) eq 3", ["A"]),
    ("floor(properties/level) eq 7", ["B"]),
    ("ceiling(properties/level) eq 8", ["B"]),
    ("ceiling(properties/level) eq 3", ["A"]),
    ("floor(properties/level div 2) eq 1", ["A"]),
    ("round(properties/level) eq null", ["C", "D"]),
])
def test_math_functions(world, condition, expected):
    assert world.things(condition) == expected


@pytest.mark.parametrize(("condition", "expected"), [
    ("round(result) eq 3", ["o2"]),
    ("round(result mul -1) eq -3", ["o2"]),
    ("floor(result) eq 2", ["o2"]),
    ("floor(result) eq -4", ["o8"]),
    ("ceiling(result) eq 3", ["o2"]),
    ("ceiling(result) eq 10", ["o7"]),
])
def test_math_functions_on_result(world, condition, expected):
    assert world.observations("ops", condition) == expected
