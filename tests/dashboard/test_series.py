"""Aggregated series against values computed here from the raw observations that were posted.

The data straddles both daylight-saving changes of 2024 in Europe/Berlin (31 March: a day of 23
hours; 27 October: 25 hours), a local month boundary that is not a UTC one (April begins at
2024-03-31T22:00Z), gaps of several hours, and results that are not numbers.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tests.dashboard.conftest import Town, iso

BERLIN = ZoneInfo("Europe/Berlin")
STATS = ("mean", "min", "max", "sum", "count")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=BERLIN).astimezone(UTC)


def bucket_of(moment: datetime, interval: str) -> tuple[datetime, datetime]:
    """Start and end of the bucket of `moment`, computed independently of the server."""
    if interval == "PT10M":
        start = moment.replace(minute=moment.minute // 10 * 10, second=0, microsecond=0)
        return start, start + timedelta(minutes=10)
    if interval == "PT1H":
        start = moment.replace(minute=0, second=0, microsecond=0)
        return start, start + timedelta(hours=1)
    local = moment.astimezone(BERLIN).date()
    if interval == "P1D":
        return local_midnight(local), local_midnight(local + timedelta(days=1))
    first = local.replace(day=1)
    following = (first.replace(year=first.year + 1, month=1) if first.month == 12
                 else first.replace(month=first.month + 1))
    return local_midnight(first), local_midnight(following)


def expected(raw: Iterable[tuple[datetime, Any]], interval: str, start: datetime,
             end: datetime) -> list[dict[str, Any]]:
    """Buckets starting in [bucket of start, end), with their numeric observations."""
    first = bucket_of(start, interval)[0]
    groups: dict[datetime, tuple[datetime, list[float]]] = {}
    for moment, value in raw:
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        b_start, b_end = bucket_of(moment, interval)
        if first <= b_start < end:
            groups.setdefault(b_start, (b_end, []))[1].append(float(value))
    out = []
    for b_start in sorted(groups):
        b_end, values = groups[b_start]
        out.append({"start": iso(b_start), "end": iso(b_end), "count": len(values),
                    "sum": sum(values), "min": min(values), "max": max(values),
                    "mean": sum(values) / len(values)})
    return out


def assert_series(town: Town, datastream: int, raw: list[tuple[datetime, Any]], interval: str,
                  start: datetime, end: datetime) -> list[dict[str, Any]]:
    body = town.ok(f"/api/v1/datastreams/{datastream}/series", **{
        "from": iso(start), "to": iso(end), "interval": interval, "stats": ",".join(STATS)})
    assert body["datastream_id"] == datastream
    assert body["interval"] == interval
    assert body["timezone"] == "Europe/Berlin"
    assert body["stats"] == list(STATS)
    want = expected(raw, interval, start, end)
    got = body["value"]
    assert [(b["start"], b["end"]) for b in got] == [(b["start"], b["end"]) for b in want]
    for g, w in zip(got, want, strict=True):
        assert g["count"] == w["count"], (interval, g["start"])
        for stat in ("sum", "min", "max", "mean"):
            assert g[stat] == pytest.approx(w[stat], rel=1e-9, abs=1e-9), (interval, stat,
                                                                          g["start"])
    return got


def dst_observations(seed: int) -> list[tuple[datetime, Any]]:
    """Irregular observations around both DST changes and the end of March, with gaps."""
    rng = random.Random(seed)
    raw: list[tuple[datetime, Any]] = []
    for begin, finish in ((utc(2024, 3, 30, 18), utc(2024, 4, 1, 6)),
                          (utc(2024, 10, 26, 18), utc(2024, 10, 28, 6))):
        moment = begin
        while moment < finish:
            if not utc(2024, 3, 31, 5) <= moment < utc(2024, 3, 31, 9):  # a gap of 4 hours
                raw.append((moment, round(rng.uniform(-20, 80), 3)))
            moment += timedelta(minutes=rng.randint(3, 17), seconds=rng.randint(0, 59))
    # Exactly on the edges of local days and months, and inside the repeated October hour.
    for edge, value in ((utc(2024, 3, 30, 23), 1000.5), (utc(2024, 3, 31, 21, 59, 59), -1000.25),
                        (utc(2024, 3, 31, 22), 7), (utc(2024, 10, 26, 22), 3),
                        (utc(2024, 10, 27, 0, 30), 2.5), (utc(2024, 10, 27, 1, 30), 4.5),
                        (utc(2024, 10, 27, 22, 59, 59), 11), (utc(2024, 10, 27, 23), 13)):
        raw.append((edge, value))
    # Not numbers: never in a numeric aggregate.
    raw += [(utc(2024, 3, 31, 12, 1), "defekt"), (utc(2024, 10, 27, 12, 2), None),
            (utc(2024, 10, 27, 12, 3), {"raw": [1, 2]})]
    return raw


@pytest.fixture(scope="module")
def dst_stream(dash: Town) -> tuple[int, list[tuple[datetime, Any]]]:
    thing = dash.thing()
    stream = dash.datastream(thing, "Temperatur Testreihe", "Cel")
    raw = dst_observations(seed=8)
    dash.post_many(stream, raw)
    return stream, raw


@pytest.mark.parametrize("interval", ["PT10M", "PT1H", "P1D", "P1M"])
def test_every_interval_and_statistic_matches_the_raw_observations(dash, dst_stream, interval):
    stream, raw = dst_stream
    assert_series(dash, stream, raw, interval, utc(2024, 3, 1), utc(2024, 11, 1))


def test_local_days_follow_daylight_saving(dash, dst_stream):
    stream, raw = dst_stream
    days = assert_series(dash, stream, raw, "P1D", utc(2024, 3, 29), utc(2024, 11, 1))
    by_start = {d["start"]: d for d in days}
    spring = by_start["2024-03-30T23:00:00Z"]  # 31 March, 00:00 CET
    assert spring["end"] == "2024-03-31T22:00:00Z"  # 23 hours later, 1 April 00:00 CEST
    autumn = by_start["2024-10-26T22:00:00Z"]  # 27 October, 00:00 CEST
    assert autumn["end"] == "2024-10-27T23:00:00Z"  # 25 hours later
    # The observations exactly at midnight open their day; one second before it closes the last.
    assert spring["max"] >= 1000.5 and spring["min"] <= -1000.25


def test_local_months_begin_at_local_midnight(dash, dst_stream):
    stream, raw = dst_stream
    months = assert_series(dash, stream, raw, "P1M", utc(2024, 1, 1), utc(2025, 1, 1))
    assert [(m["start"], m["end"]) for m in months] == [
        ("2024-02-29T23:00:00Z", "2024-03-31T22:00:00Z"),  # March (the DST day included)
        ("2024-03-31T22:00:00Z", "2024-04-30T22:00:00Z"),  # April begins at 22:00 UTC
        ("2024-09-30T22:00:00Z", "2024-10-31T23:00:00Z"),  # October ends in winter time
    ]
    april = months[1]
    assert april["count"] == len([1 for t, v in raw if isinstance(v, int | float)
                                  and t >= utc(2024, 3, 31, 22) and t < utc(2024, 4, 30, 22)])


def test_ranges_are_whole_buckets_from_the_bucket_of_from(dash, dst_stream):
    stream, raw = dst_stream
    # `from` inside a bucket takes the whole bucket; buckets starting before `to` are whole.
    for interval in ("PT10M", "PT1H", "P1D"):
        assert_series(dash, stream, raw, interval, utc(2024, 3, 31, 10, 37),
                      utc(2024, 3, 31, 19, 5))
    # Gaps: hours without observations are left out, not zeros.
    hours = assert_series(dash, stream, raw, "PT1H", utc(2024, 3, 31, 3), utc(2024, 3, 31, 11))
    starts = {h["start"] for h in hours}
    assert "2024-03-31T06:00:00Z" not in starts and "2024-03-31T04:00:00Z" in starts


def test_times_without_offset_are_local(dash, dst_stream):
    stream, _raw = dst_stream
    body = dash.ok(f"/api/v1/datastreams/{stream}/series", **{
        "from": "2024-10-27", "to": "2024-10-28T00:00:00", "interval": "P1D"})
    assert [(d["start"], d["end"]) for d in body["value"]] == [
        ("2024-10-26T22:00:00Z", "2024-10-27T23:00:00Z")]
    assert body["from"] == "2024-10-26T22:00:00Z"


def test_selected_statistics_only(dash, dst_stream):
    stream, _raw = dst_stream
    body = dash.ok(f"/api/v1/datastreams/{stream}/series", **{
        "from": "2024-03-31", "to": "2024-04-01", "interval": "P1D", "stats": "max,count"})
    assert body["stats"] == ["max", "count"]
    assert set(body["value"][0]) == {"start", "end", "max", "count"}


def test_rollups_follow_updates_and_deletes(dash):
    thing = dash.thing()
    stream = dash.datastream(thing, "Temperatur Korrektur", "Cel")
    times = [utc(2024, 3, 31, 0, 5), utc(2024, 3, 31, 0, 15), utc(2024, 3, 31, 21, 30),
             utc(2024, 4, 2, 9), utc(2024, 4, 2, 9, 20)]
    ids = dash.post_many(stream, [(t, 10.0 + i) for i, t in enumerate(times)])
    raw = {oid: (t, 10.0 + i) for i, (oid, t) in enumerate(zip(ids, times, strict=True))}

    def check() -> None:
        for interval in ("PT10M", "PT1H", "P1D", "P1M"):
            assert_series(dash, stream, list(raw.values()), interval, utc(2024, 3, 1),
                          utc(2024, 5, 1))

    check()
    # A new result.
    assert dash.sta.patch(f"/Observations({ids[0]})", json={"result": 99.5}).status_code == 200
    raw[ids[0]] = (times[0], 99.5)
    check()
    # Moved to another local day and month: both the old and the new buckets change.
    moved = utc(2024, 4, 1, 12, 45)
    assert dash.sta.patch(f"/Observations({ids[2]})",
                          json={"phenomenonTime": iso(moved), "result": -3}).status_code == 200
    raw[ids[2]] = (moved, -3)
    check()
    # The only value of an hour deleted: that hour disappears.
    assert dash.sta.delete(f"/Observations({ids[1]})").status_code == 200
    del raw[ids[1]]
    check()
    # A result that is no longer a number leaves the aggregates.
    assert dash.sta.patch(f"/Observations({ids[3]})", json={"result": "n/a"}).status_code == 200
    raw[ids[3]] = (times[3], "n/a")
    check()


def test_deleting_a_feature_of_interest_removes_its_observations_from_rollups(dash):
    thing = dash.thing()
    stream = dash.datastream(thing, "Temperatur Merkmal", "Cel")
    kept = dash.post_many(stream, [(utc(2024, 6, 1, 10), 1.0), (utc(2024, 6, 1, 11), 2.0)])
    feature = dash._post("/FeaturesOfInterest", {
        "name": "Messpunkt", "description": "x", "encodingType": "application/geo+json",
        "feature": {"type": "Point", "coordinates": [10.5, 52.2]}})["@iot.id"]
    for t, v in ((utc(2024, 6, 1, 10, 30), 50.0), (utc(2024, 6, 2, 8), 60.0)):
        dash._post(f"/Datastreams({stream})/Observations", {
            "result": v, "phenomenonTime": iso(t), "FeatureOfInterest": {"@iot.id": feature}})
    days = dash.ok(f"/api/v1/datastreams/{stream}/series", **{
        "from": "2024-06-01", "to": "2024-06-03", "interval": "P1D"})["value"]
    assert [d["count"] for d in days] == [3, 1]
    assert dash.sta.delete(f"/FeaturesOfInterest({feature})").status_code == 200
    raw = [(utc(2024, 6, 1, 10), 1.0), (utc(2024, 6, 1, 11), 2.0)]
    assert len(kept) == 2
    for interval in ("PT1H", "P1D", "P1M"):
        assert_series(dash, stream, raw, interval, utc(2024, 6, 1), utc(2024, 7, 1))


def test_a_deleted_datastream_has_no_series(dash):
    thing = dash.thing()
    stream = dash.datastream(thing, "Temperatur weg", "Cel")
    dash.post_many(stream, [(utc(2024, 6, 1, 10), 1.0)])
    assert dash.sta.delete(f"/Datastreams({stream})").status_code == 200
    assert dash.get(f"/api/v1/datastreams/{stream}/series").status_code == 404


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"interval": "PT5M"}, 400, "interval"),
    ({"interval": "P1W"}, 400, "interval"),
    ({"stats": "median"}, 400, "median"),
    ({"stats": ","}, 400, "stats"),
    ({"from": "gestern"}, 400, "from"),
    ({"to": "2024-13-01"}, 400, "to"),
    ({"from": "2024-05-02", "to": "2024-05-01"}, 400, "before"),
    ({"from": "2000-01-01", "to": "2024-01-01", "interval": "PT10M"}, 400, "buckets"),
    ({"colour": "blue"}, 400, "colour"),
])
def test_bad_parameters_are_400(dash, dst_stream, params, status, words):
    stream, _raw = dst_stream
    response = dash.get(f"/api/v1/datastreams/{stream}/series", **params)
    assert response.status_code == status
    body = response.json()
    assert body["code"] == status and words in body["message"]


def test_unknown_and_internal_datastreams_are_404(dash):
    assert dash.get("/api/v1/datastreams/987654/series").status_code == 404
    assert dash.get("/api/v1/datastreams/abc/series").status_code == 404
    from tests.dashboard.conftest import make_internal

    thing = dash.thing()
    stream = dash.datastream(thing, "Temperatur intern", "Cel")
    dash.post_many(stream, [(utc(2024, 6, 1, 10), 1.0)])
    assert dash.get(f"/api/v1/datastreams/{stream}/series",
                    **{"from": "2024-06-01", "interval": "P1D"}).status_code == 200
    make_internal(dash.server, stream)
    response = dash.get(f"/api/v1/datastreams/{stream}/series",
                        **{"from": "2024-06-01", "interval": "P1D"})
    assert response.status_code == 404
    assert "public" in response.json()["message"]


def test_sensorthings_aggregate_extension(dash, dst_stream):
    stream, raw = dst_stream
    root = dash.sta.get("/").json()
    uri = "urn:ortspuls:sta:extension:aggregate:1.0"
    assert uri in root["serverSettings"]["conformance"]
    assert root["serverSettings"][uri]["intervals"] == ["PT10M", "PT1H", "P1D", "P1M"]
    response = dash.sta.get(f"/Datastreams({stream})/Observations", params={
        "$aggregate": "P1D", "$stats": "max,mean,count", "$from": "2024-10-26",
        "$to": "2024-10-29"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["aggregate"]["interval"] == "P1D"
    assert body["aggregate"]["timezone"] == "Europe/Berlin"
    want = expected(raw, "P1D", utc(2024, 10, 25, 22), utc(2024, 10, 28, 23))
    assert [o["phenomenonTime"] for o in body["value"]] == [f"{w['start']}/{w['end']}"
                                                            for w in want]
    for obs, w in zip(body["value"], want, strict=True):
        assert obs["result"] == pytest.approx(w["max"])
        assert obs["parameters"]["count"] == w["count"]
        assert obs["parameters"]["mean"] == pytest.approx(w["mean"])
    # Errors are SensorThings error bodies.
    bad = dash.sta.get(f"/Datastreams({stream})/Observations",
                       params={"$aggregate": "PT1H", "$top": "5"})
    assert bad.status_code == 400 and "$top" in bad.json()["message"]
    assert dash.sta.get("/Datastreams(987654)/Observations",
                        params={"$aggregate": "PT1H"}).status_code == 404
    assert dash.sta.get("/Things(1)/Datastreams", params={"$aggregate": "PT1H"}
                        ).status_code == 400
    # Without $aggregate the collection is the ordinary one.
    plain = dash.sta.get(f"/Datastreams({stream})/Observations", params={"$top": "2"})
    assert plain.status_code == 200 and "@iot.selfLink" in plain.json()["value"][0]
