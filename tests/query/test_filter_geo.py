"""Geospatial $filter functions on Location `location`, FeatureOfInterest `feature` and
Datastream `observedArea` (SQLite: shapely functions; PostgreSQL: PostGIS).

Geometries (longitude latitude):
    P1  POINT(8.4 49.0)          P2  POINT(8.5 49.1)          FAR  POINT(13.4 52.5)
    SQ  the square 8.3–8.6 × 48.9–49.2                        LN   LINESTRING(8 49, 9 49)
"""

from __future__ import annotations

import pytest
from tests.query.conftest import World, geometry

GEOMETRIES = {
    "P1": geometry("Point", [8.4, 49.0]),
    "P2": geometry("Point", [8.5, 49.1]),
    "FAR": geometry("Point", [13.4, 52.5]),
    "SQ": geometry("Polygon", [[[8.3, 48.9], [8.6, 48.9], [8.6, 49.2], [8.3, 49.2],
                                [8.3, 48.9]]]),
    "LN": geometry("LineString", [[8.0, 49.0], [9.0, 49.0]]),
}

BOX_AROUND_P1 = "geography'POLYGON((8.35 48.95, 8.45 48.95, 8.45 49.05, 8.35 49.05, 8.35 48.95))'"
NORTH_SOUTH_LINE = "geography'LINESTRING(8.45 48.8, 8.45 49.3)'"

# (condition on the geometry property `{g}`, the labels that match)
CASES = [
    (f"geo.intersects({{g}}, {BOX_AROUND_P1})", ["LN", "P1", "SQ"]),
    ("st_within({g}, geography'POLYGON((8 48, 9 48, 9 50, 8 50, 8 48))')",
     ["LN", "P1", "P2", "SQ"]),
    ("st_contains({g}, geography'POINT(8.5 49.1)')", ["P2", "SQ"]),
    ("st_equals({g}, geography'POINT(8.4 49)')", ["P1"]),
    ("st_equals({g}, geography'SRID=4326;POINT(8.4 49)')", ["P1"]),
    ("st_disjoint({g}, geography'POINT(8.4 49)')", ["FAR", "P2"]),
    ("st_touches({g}, geography'POINT(8.3 49.0)')", ["SQ"]),
    ("st_overlaps({g}, geography'POLYGON((8.5 49, 8.7 49, 8.7 49.3, 8.5 49.3, 8.5 49))')",
     ["SQ"]),
    (f"st_crosses({{g}}, {NORTH_SOUTH_LINE})", ["LN", "SQ"]),
    (f"st_intersects({{g}}, {NORTH_SOUTH_LINE})", ["LN", "SQ"]),
    ("st_relate({g}, geography'POINT(8.4 49)', 'T********')", ["LN", "P1", "SQ"]),
    ("st_relate({g}, geography'POINT(8.4 49)', 'FF*FF****')", ["FAR", "P2"]),
    ("geo.distance({g}, geography'POINT(8.4 49)') lt 0.2", ["LN", "P1", "P2", "SQ"]),
    ("geo.distance({g}, geography'POINT(8.4 49)') lt 0.1", ["LN", "P1", "SQ"]),
    ("geo.distance({g}, geography'POINT(8.4 49)') gt 1", ["FAR"]),
    ("geo.length({g}) eq 1", ["LN"]),
    ("geo.length({g}) gt 0", ["LN"]),  # points and areas have no length
    ("not st_intersects({g}, geography'POINT(8.4 49)')", ["FAR", "P2"]),
    ("st_within({g}, geography'POLYGON((8 48, 9 48, 9 50, 8 50, 8 48))') and "
     "geo.distance({g}, geography'POINT(8.5 49.1)') eq 0", ["P2", "SQ"]),
]


@pytest.fixture(scope="module")
def geo_world(new_world) -> World:
    w = new_world()
    for label, geo in GEOMETRIES.items():
        w.location(label, geo)
        w.feature(f"F-{label}", geo)
    thing = w.thing("Geo-Thing")
    # observedArea: the convex hull of the Observations' features.
    pair = w.datastream(thing, "ds-pair")
    w.observation(pair, "x1", 1, "2024-01-01T00:00:00Z",
                  FeatureOfInterest={"@iot.id": w.ids["F-P1"]})
    w.observation(pair, "x2", 2, "2024-01-01T01:00:00Z",
                  FeatureOfInterest={"@iot.id": w.ids["F-P2"]})
    far = w.datastream(thing, "ds-far")
    w.observation(far, "x3", 3, "2024-01-01T00:00:00Z",
                  FeatureOfInterest={"@iot.id": w.ids["F-FAR"]})
    w.datastream(thing, "ds-none")
    return w


@pytest.mark.parametrize(("condition", "expected"), CASES)
def test_location(geo_world, condition, expected):
    assert geo_world.locations(condition.format(g="location")) == expected


@pytest.mark.parametrize(("condition", "expected"), CASES)
def test_feature_of_interest(geo_world, condition, expected):
    found = geo_world.features(condition.format(g="feature"))
    assert found == [f"F-{label}" for label in expected]


@pytest.mark.parametrize(("condition", "expected"), [
    (f"geo.intersects(observedArea, {BOX_AROUND_P1})", ["ds-pair"]),
    ("st_touches(observedArea, geography'POINT(8.4 49)')", ["ds-pair"]),  # a segment's end
    ("geo.length(observedArea) gt 0.14 and geo.length(observedArea) lt 0.15", ["ds-pair"]),
    ("geo.distance(observedArea, geography'POINT(13.4 52.5)') lt 0.01", ["ds-far"]),
    ("st_equals(observedArea, geography'POINT(13.4 52.5)')", ["ds-far"]),
    ("observedArea eq null", ["ds-none"]),
    ("not st_intersects(observedArea, geography'POINT(13.4 52.5)')", ["ds-none", "ds-pair"]),
])
def test_datastream_observed_area(geo_world, condition, expected):
    assert geo_world.datastreams(condition) == expected


def test_observations_through_their_feature(geo_world):
    ds = "ds-pair"
    assert geo_world.observations(
        ds, "st_equals(FeatureOfInterest/feature, geography'POINT(8.4 49)')") == ["x1"]
    assert geo_world.observations(
        ds, "geo.distance(FeatureOfInterest/feature, geography'POINT(8.5 49.1)') lt 0.01"
    ) == ["x2"]


def test_things_through_their_locations(geo_world):
    w = geo_world
    thing = w.thing("Located", location=GEOMETRIES["P2"])
    inside = f"st_within(Locations/location, {BOX_AROUND_P1})"
    assert w.things("st_intersects(Locations/location, geography'POINT(8.5 49.1)')") == [
        "Located"]
    assert w.things(inside) == []
    assert thing["@iot.id"] == w.ids["Located"]


@pytest.mark.parametrize(("condition", "fragment"), [
    ("st_within(location, geography'POLYGON((8 48, 9 48')", "WKT"),
    ("st_within(location, geography'SRID=3857;POINT(1 2)')", "4326"),
    ("st_within(name, geography'POINT(1 2)')", "geometr"),
    ("geo.distance(location, 5) lt 1", "geometr"),
    ("location eq 5", "compare"),
])
def test_bad_geometry_arguments_are_400(geo_world, condition, fragment):
    message = geo_world.error("/Locations", filter=condition)
    assert fragment in message
