"""Latest values: the newest observation of each public Datastream, kept current by the event
bus, re-read after updates and deletes, and rebuilt from the database when a server starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.conftest import (
    TEST_DATABASES,
    create_key,
    database_args_for,
    start_server,
    stop_server,
)
from tests.dashboard.conftest import Town, iso, make_internal


def by_stream(town: Town, **params) -> dict[int, dict]:
    return {v["datastream_id"]: v for v in town.ok("/api/v1/latest", **params)["value"]}


def test_latest_is_the_newest_observation_by_phenomenon_time(dash):
    now = datetime.now(UTC).replace(microsecond=0)
    thing = dash.thing(name="Pegel Latest")
    level = dash.datastream(thing, "Wasserstand", "cm")
    empty = dash.datastream(thing, "Lufttemperatur", "Cel")
    dash.post_many(level, [(now - timedelta(minutes=30), 10), (now - timedelta(minutes=10), 20),
                           (now - timedelta(minutes=20), 15)])
    values = by_stream(dash, thing=thing)
    assert set(values) == {level, empty}
    newest = values[level]
    assert newest["value"] == 20
    assert newest["time"] == iso(now - timedelta(minutes=10))
    assert newest["thing_id"] == thing and newest["thing_name"] == "Pegel Latest"
    assert newest["observed_property"] == "Wasserstand" and newest["usecase"] == "pegel"
    assert newest["unit"]["symbol"] == "cm"
    assert 600 <= newest["age_seconds"] < 3600
    assert values[empty]["value"] is None and values[empty]["time"] is None

    # An older observation arriving later does not replace it.
    dash.post(level, 5, now - timedelta(hours=2))
    assert by_stream(dash, thing=thing)[level]["value"] == 20
    # A newer one does, at once (from the event bus).
    newer = dash.post(level, 21.5, now - timedelta(minutes=5))
    assert by_stream(dash, thing=thing)[level]["value"] == 21.5
    # An interval observation counts up to its end.
    end = now - timedelta(minutes=1)
    dash._post(f"/Datastreams({empty})/Observations", {
        "result": 7.25, "phenomenonTime": f"{iso(end - timedelta(minutes=15))}/{iso(end)}"})
    assert by_stream(dash, thing=thing)[empty]["time"] == iso(end)

    # The newest moved into the past: the next newest takes its place.
    assert dash.sta.patch(f"/Observations({newer})", json={
        "phenomenonTime": iso(now - timedelta(hours=3))}).status_code == 200
    assert by_stream(dash, thing=thing)[level]["value"] == 20
    # The newest deleted: the one before it.
    newest_id = dash.sta.get(f"/Datastreams({level})/Observations", params={
        "$orderby": "phenomenonTime desc", "$top": "1"}).json()["value"][0]["@iot.id"]
    assert dash.sta.delete(f"/Observations({newest_id})").status_code == 200
    assert by_stream(dash, thing=thing)[level]["value"] == 15
    # Its result corrected in place.
    current = dash.sta.get(f"/Datastreams({level})/Observations", params={
        "$orderby": "phenomenonTime desc", "$top": "1"}).json()["value"][0]["@iot.id"]
    assert dash.sta.patch(f"/Observations({current})", json={"result": 16}).status_code == 200
    assert by_stream(dash, thing=thing)[level]["value"] == 16


def test_filters_and_visibility(dash):
    now = datetime.now(UTC)
    first, second = dash.thing(), dash.thing()
    noise = dash.datastream(first, "LAeq", "dB(A)")
    level = dash.datastream(second, "Wasserstand", "cm")
    hidden = dash.datastream(second, "Wasserstand", "cm")
    for stream, value in ((noise, 51.5), (level, 99), (hidden, 77)):
        dash.post(stream, value, now - timedelta(minutes=2))
    op = dash.sta.get(f"/Datastreams({noise})/ObservedProperty").json()["@iot.id"]
    assert set(by_stream(dash, thing=second)) == {level, hidden}
    assert set(by_stream(dash, observed_property=op)) == {noise}
    laerm = by_stream(dash, usecase="laerm")
    assert noise in laerm and level not in laerm
    assert all(v["usecase"] == "laerm" for v in laerm.values())

    make_internal(dash.server, hidden)
    assert set(by_stream(dash, thing=second)) == {level}
    assert hidden not in by_stream(dash)

    for params, words in (({"thing": "x"}, "thing"), ({"usecase": "kino"}, "kino"),
                          ({"limit": "3"}, "limit")):
        response = dash.get("/api/v1/latest", **params)
        assert response.status_code == 400 and words in response.json()["message"]


@pytest.mark.parametrize("kind", TEST_DATABASES)
def test_cache_and_rollups_are_rebuilt_at_start(tmp_path_factory, kind):
    """A restarted server seeds its latest values from the database (index seeks) and rebuilds
    the daily rollups when the time zone setting changed."""
    data_dir = tmp_path_factory.mktemp(f"restart-{kind}")
    with database_args_for(kind, data_dir) as database_args:
        key = create_key(database_args, "restart-admin", "admin")
        server = start_server(data_dir, database_args)
        server.keys = {"admin": key}
        try:
            town = Town(server)
            stream = town.datastream(town.thing(), "Lufttemperatur", "Cel")
            town.post_many(stream, [(datetime(2024, 7, 1, 21, 30, tzinfo=UTC), 18.0),
                                    (datetime(2024, 7, 1, 22, 30, tzinfo=UTC), 16.0),
                                    (datetime(2024, 7, 2, 3, 0, tzinfo=UTC), 14.0)])
            berlin = town.ok(f"/api/v1/datastreams/{stream}/series",
                             **{"from": "2024-07-01", "to": "2024-07-03", "interval": "P1D"})
            town.close()
        finally:
            stop_server(server)
        assert [(d["start"], d["count"]) for d in berlin["value"]] == [
            ("2024-06-30T22:00:00Z", 1), ("2024-07-01T22:00:00Z", 2)]

        server = start_server(data_dir, database_args,
                              extra_env={"ORTSPULS_TIMEZONE": "America/New_York"})
        server.keys = {"admin": key}
        try:
            town = Town(server)
            latest = by_stream(town)[stream]
            assert latest["value"] == 14.0 and latest["time"] == "2024-07-02T03:00:00Z"
            days = town.ok(f"/api/v1/datastreams/{stream}/series",
                           **{"from": "2024-07-01", "to": "2024-07-03", "interval": "P1D"})
            assert days["timezone"] == "America/New_York"
            # New York midnight is 04:00 UTC in summer: all three fall on 1 July there.
            assert [(d["start"], d["end"], d["count"]) for d in days["value"]] == [
                ("2024-07-01T04:00:00Z", "2024-07-02T04:00:00Z", 3)]
            town.close()
        finally:
            stop_server(server)
