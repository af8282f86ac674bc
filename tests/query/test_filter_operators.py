"""$filter operators on a known world: comparison, logic, arithmetic, precedence, literals, null.

The world (tests/query/conftest.py): Things A–E with properties; Observations o1–o8 with results
1, 2.5, 'hoch', null, true, {"a": 1}, 10, -4.
"""

from __future__ import annotations

import pytest

ALL_OBS = ["o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8"]
ALL_THINGS = ["A", "B", "C", "D", "E"]


@pytest.mark.parametrize(("condition", "expected"), [
    ("result eq 1", ["o1"]),
    ("result ne 1", ["o2", "o3", "o4", "o5", "o6", "o7", "o8"]),
    ("result gt 2", ["o2", "o7"]),
    ("result ge 2.5", ["o2", "o7"]),
    ("result lt 1", ["o8"]),
    ("result le 1", ["o1", "o8"]),
    ("1 lt result", ["o2", "o7"]),
    ("result eq 'hoch'", ["o3"]),
    ("result ne 'hoch'", ["o1", "o2", "o4", "o5", "o6", "o7", "o8"]),
    ("result gt 'a'", ["o3"]),
    ("result eq true", ["o5"]),
    ("result eq false", []),
    ("result eq null", ["o4"]),
    ("result ne null", ["o1", "o2", "o3", "o5", "o6", "o7", "o8"]),
    ("null eq result", ["o4"]),
])
def test_comparison_on_result(world, condition, expected):
    assert world.observations("ops", condition) == expected


@pytest.mark.parametrize(("condition", "expected"), [
    ("name eq 'Luftgüte Markt'", ["B"]),
    ("name ne 'Luftgüte Markt'", ["A", "C", "D", "E"]),
    ("name gt 'M'", ["A", "E"]),
    ("name ge 'Pegel Mühlbach'", ["A"]),
    ("name lt 'Bodenfeuchte'", ["C"]),
    ("name le 'Bodenfeuchte'", ["C", "D"]),
    ("description eq 'Belegung'", ["C"]),
    ("id eq {A}", ["A"]),
    ("@iot.id ne {A}", ["B", "C", "D", "E"]),
    ("id in ({A}, {C})", ["A", "C"]),
])
def test_comparison_on_properties(world, condition, expected):
    assert world.things(condition.format(**world.ids)) == expected


@pytest.mark.parametrize(("condition", "expected"), [
    ("properties/kind eq 'pegel' or properties/kind eq 'luft' and properties/level gt 5",
     ["A", "B"]),
    ("(properties/kind eq 'pegel' or properties/kind eq 'luft') and properties/level gt 5",
     ["B"]),
    ("properties/kind eq 'pegel' and properties/level eq 3", ["A"]),
    ("properties/kind eq 'pegel' and properties/level eq 4", []),
    ("properties/kind eq 'pegel' or properties/kind eq 'wetter'", ["A", "E"]),
    ("not (properties/level gt 5)", ["A", "C", "D", "E"]),
    ("not not (properties/level gt 5)", ["B"]),
    ("not (properties/kind eq 'pegel' or properties/kind eq 'luft')", ["C", "D", "E"]),
    ("properties/kind in ('pegel', 'parken')", ["A", "C"]),
    ("not (properties/kind in ('pegel', 'parken'))", ["B", "D", "E"]),
    ("true", ALL_THINGS),
    ("false", []),
    ("not false", ALL_THINGS),
    ("properties/active", ["A"]),
    ("not properties/active", ["B", "C", "D", "E"]),
    ("properties/active eq false", ["B"]),
    ("properties/active ne true", ["B", "C", "D", "E"]),
    ("PROPERTIES/kind EQ 'pegel'", []),  # names are case-sensitive; operators are not
    ("properties/kind EQ 'pegel' OR properties/kind Eq 'luft'", ["A", "B"]),
])
def test_logical_operators_and_precedence(world, condition, expected):
    if condition.startswith("PROPERTIES"):
        # An unknown property is a clear error, not an empty result.
        message = world.error("/Things", filter=condition)
        assert "PROPERTIES" in message
        return
    assert world.things(condition) == expected


def test_not_binds_tighter_than_comparison(world):
    # `not x gt 5` is `(not x) gt 5`: a boolean compared with a number, refused.
    message = world.error("/Things", filter="not properties/level gt 5")
    assert "cannot compare a boolean with a number" in message


@pytest.mark.parametrize(("condition", "expected"), [
    ("properties/level add 1 eq 4", ["A"]),
    ("properties/level sub 1 eq 6.5", ["B"]),
    ("properties/level mul 2 eq 15", ["B"]),
    ("properties/level div 2 eq 1.5", ["A"]),
    ("properties/level mod 2 eq 1", ["A"]),
    ("properties/level mod 2 eq 1.5", ["B"]),
    ("properties/level div 0 eq 1", []),  # division by zero is null, not an error
    ("properties/level add 2 mul 3 eq 9", ["A"]),  # mul binds tighter than add
    ("(properties/level add 2) mul 3 eq 15", ["A"]),
    ("properties/level sub 1 sub 1 eq 1", ["A"]),  # left-associative
    ("properties/level sub (1 sub 1) eq 3", ["A"]),
    ("12 div properties/level div 2 eq 2", ["A"]),
    ("-properties/level lt -5", ["B"]),
    ("- properties/level eq -3", ["A"]),
    ("properties/level add 1 gt 4 and properties/level mul 2 lt 20", ["B"]),
    ("properties/level add 1 ne 4", ["B", "C", "D", "E"]),  # null ne 4 is true
])
def test_arithmetic(world, condition, expected):
    assert world.things(condition) == expected


@pytest.mark.parametrize(("condition", "expected"), [
    ("result add 1 gt 3", ["o2", "o7"]),
    ("result sub 0.5 eq 2", ["o2"]),
    ("result mul -1 eq 4", ["o8"]),
    ("result div 4 eq 2.5", ["o7"]),
    ("result mod 3 eq 1", ["o1", "o7"]),
    ("result mod 3 eq -1", ["o8"]),  # the remainder takes the dividend's sign
    ("result div 0 eq 0", []),
])
def test_arithmetic_on_result(world, condition, expected):
    assert world.observations("ops", condition) == expected


@pytest.mark.parametrize(("condition", "expected"), [
    # strings, with a doubled quote
    ("name eq 'Müller''s Wetterstation'", ["E"]),
    # integers, decimals, exponents, negative numbers and type suffixes
    ("properties/level eq 3", ["A"]),
    ("properties/level eq 3.0", ["A"]),
    ("properties/level eq 75e-1", ["B"]),
    ("properties/level eq 7.5d", ["B"]),
    ("properties/level eq 3L", ["A"]),
    ("properties/level gt -1 and properties/level lt 1", ["E"]),
    # booleans
    ("properties/active eq true", ["A"]),
    # a JSON string is not a number
    ("properties/level eq '9'", ["C"]),
    ("properties/level eq 9", []),
])
def test_literals_on_things(world, condition, expected):
    assert world.things(condition) == expected


@pytest.mark.parametrize(("condition", "expected"), [
    ("phenomenonTime gt 2024-03-04T00:00:00Z", ["o4", "o5", "o6", "o7"]),
    ("phenomenonTime eq 2024-03-05T08:30:00+02:00", ["o5"]),
    ("phenomenonTime eq 2024-03-05T06:30:00.000Z", ["o5"]),
    ("phenomenonTime eq 2024-03-05T06:30Z", ["o5"]),
    ("phenomenonTime eq 2024-03-01T10:15:30.25Z", ["o1"]),
    ("phenomenonTime lt 2024-01-01T00:00:00Z", ["o8"]),  # 2023-12-31T22:00Z
    # a date literal is midnight UTC of that day
    ("phenomenonTime ge 2024-03-05", ["o5", "o6", "o7"]),
    ("phenomenonTime lt 2024-03-02", ["o1", "o8"]),
    ("phenomenonTime eq 2024-03-06", ["o6"]),
    # durations
    ("phenomenonTime add duration'PT1H' eq 2024-03-05T07:30:00Z", ["o5"]),
    ("phenomenonTime sub duration'P1D' eq 2024-03-05T00:00:00Z", ["o6"]),
    ("phenomenonTime add duration'P1DT30M' gt 2024-03-06T06:00:00Z", ["o5", "o6", "o7"]),
    ("resultTime sub duration'PT30S' eq 2024-03-01T10:15:30Z", ["o1"]),
])
def test_time_literals(world, condition, expected):
    assert world.observations("ops", condition) == expected


@pytest.mark.parametrize(("condition", "expected"), [
    ("resultTime eq null", ["o2", "o3", "o4", "o5", "o6", "o7", "o8"]),
    ("resultTime ne null", ["o1"]),
    ("resultTime gt 2000-01-01T00:00:00Z", ["o1"]),
    ("resultTime le 2000-01-01T00:00:00Z", []),
    # a comparison with null is false, its negation true
    ("not (resultTime le 2000-01-01T00:00:00Z)", ALL_OBS),
    ("resultTime ne 2024-03-01T10:16:00Z", ["o2", "o3", "o4", "o5", "o6", "o7", "o8"]),
    ("validTime eq null", ["o2", "o3", "o4", "o5", "o6", "o7", "o8"]),
    ("parameters/flag eq null", ["o2", "o3", "o5", "o6", "o7", "o8"]),
    ("parameters eq null", ["o5", "o7", "o8"]),
    ("parameters ne null", ["o1", "o2", "o3", "o4", "o6"]),
    ("null eq null", ALL_OBS),
    ("null ne null", []),
    ("result gt null", []),
    ("not (result gt null)", ALL_OBS),
])
def test_null(world, condition, expected):
    assert world.observations("ops", condition) == expected


def test_null_on_things(world):
    assert world.things("properties/kind eq null") == ["D"]
    assert world.things("properties/kind ne null") == ["A", "B", "C", "E"]
    assert world.things("properties/owner/name ne 'Stadtwerke'") == ["B", "C", "D", "E"]
