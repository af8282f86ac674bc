"""Musterstadt seeded through the CLI and served: use cases, units and the patterns of the data,
read through the dashboard API of a real server."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from tests.conftest import run_cli
from tests.demo.conftest import SEED, YEAR, Seeded, seed_demo

from ortspuls.demo.model import flood_peak
from ortspuls.demo.town import DEVICES, DEVICES_BY_KEY, KINDS

USECASES = {"radverkehr", "parken", "pegel", "baumbewaesserung", "luftqualitaet", "wetter",
            "laerm", "besucherfrequenz"}
# Use case -> UCUM codes its Datastreams may have (None: booleans, which have no unit).
UNITS = {
    "radverkehr": {"{#}"}, "besucherfrequenz": {"{#}"}, "parken": {"{#}", None},
    "pegel": {"cm"}, "baumbewaesserung": {"%", "kPa"}, "luftqualitaet": {"ug/m3"},
    "wetter": {"Cel", "%", "hPa", "m/s", "deg", "mm"}, "laerm": {"dB"},
}


def _latest(server) -> list[dict]:
    response = httpx.get(f"{server.url}/api/v1/latest", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["value"]


def _series(server, datastream: int, start: datetime, end: datetime, stats: str = "sum",
            interval: str = "PT1H") -> list[dict]:
    response = httpx.get(f"{server.url}/api/v1/datastreams/{datastream}/series", params={
        "from": start.isoformat(), "to": end.isoformat(), "interval": interval,
        "stats": stats}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["value"]


def _period(seeded: Seeded) -> tuple[datetime, datetime]:
    rows = seeded.sql("SELECT min(phenomenon_time_start), max(phenomenon_time_start) "
                      "FROM observations")
    first, last = rows[0]
    return (datetime.fromtimestamp(first / 1e6, UTC),
            datetime.fromtimestamp(last / 1e6, UTC) + timedelta(seconds=1))


def test_every_use_case_has_datastreams_with_correct_units(summer, summer_server):
    latest = _latest(summer_server)
    by_usecase: dict[str, list[dict]] = {}
    for entry in latest:
        by_usecase.setdefault(entry["usecase"], []).append(entry)
    assert set(by_usecase) == USECASES, "every public Datastream belongs to one of the eight"
    for usecase, entries in by_usecase.items():
        for entry in entries:
            definition = (entry["unit"] or {}).get("definition")
            code = definition.removeprefix("ucum:") if definition else None
            assert code in UNITS[usecase], (usecase, entry["name"], entry["unit"])
            assert entry["value"] is not None
    assert {e["unit"]["definition"] for e in by_usecase["wetter"]} == {
        f"ucum:{c}" for c in UNITS["wetter"]}
    # One Datastream per decoded field of every device; battery readings are internal.
    expected = sum(len(KINDS[d.kind].fields) for d in DEVICES)  # distance -> water level
    assert len(latest) == expected
    internal = summer.sql("SELECT count(*) FROM datastreams WHERE is_public = 0")[0][0]
    assert internal == sum(1 for d in DEVICES if d.spec.battery)
    tiles = httpx.get(f"{summer_server.url}/api/v1/usecases", timeout=30).json()["usecases"]
    assert {t["slug"] for t in tiles} == USECASES


def test_history_was_provisioned_like_live_ingest(summer):
    """The seeded Datastreams are the ones ingest provisioning made: device registry rows with
    their DevEUI, one device field per Datastream, Things with the registry's positions."""
    rows = summer.sql(
        "SELECT d.dev_eui, d.name, f.field, s.name, d.uplink_count, t.name "
        "FROM ingest_devices d JOIN ingest_device_fields f ON f.device_id = d.id "
        "JOIN datastreams s ON s.id = f.datastream_id JOIN things t ON t.id = d.thing_id")
    devices = {d.dev_eui: d for d in DEVICES}
    assert {r[0] for r in rows} == set(devices)
    for eui, name, _field, stream, uplinks, thing in rows:
        assert name == devices[eui].name == thing
        assert stream.startswith(f"{name} – ")
        assert uplinks > 0
    fields = {(r[0], r[2]) for r in rows}
    assert (DEVICES_BY_KEY["pegel-muehlbach"].dev_eui, "water_level") in fields
    assert (DEVICES_BY_KEY["pegel-muehlbach"].dev_eui, "distance") not in fields  # ignored
    kinds = {k for k, in summer.sql("SELECT kind FROM ingest_integrations")}
    assert kinds == {"ttn", "chirpstack"}
    positions = summer.sql(
        "SELECT t.name, l.location FROM things t JOIN thing_locations tl ON tl.thing_id = t.id "
        "JOIN locations l ON l.id = tl.location_id")
    assert len(positions) == len(DEVICES)


def test_weekday_commuter_peaks_exceed_weekend_peaks(summer, summer_server):
    start, end = _period(summer)
    bikes = [e for e in _latest(summer_server) if e["usecase"] == "radverkehr"]
    hourly: dict[str, float] = {}
    for entry in bikes:
        for bucket in _series(summer_server, entry["datastream_id"], start, end):
            hourly[bucket["start"]] = hourly.get(bucket["start"], 0) + bucket["sum"]
    peaks: dict[tuple[int, int, int], float] = {}
    local_weekday: dict[tuple[int, int, int], int] = {}
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    for moment, total in hourly.items():
        local = datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(berlin)
        day = (local.year, local.month, local.day)
        peaks[day] = max(peaks.get(day, 0), total)
        local_weekday[day] = local.weekday()
    from ortspuls.demo.calendar import public_holidays

    holidays = public_holidays(YEAR)
    weekday = [p for d, p in peaks.items() if local_weekday[d] < 5
               and datetime(*d).date() not in holidays]
    weekend = [p for d, p in peaks.items() if local_weekday[d] >= 5]
    assert weekday and weekend, "the week has workdays and a weekend"
    assert min(weekday) > max(weekend)
    # The peaks are the commuters': before 9 or between 16 and 19 o'clock.


def test_soil_moisture_falls_in_the_dry_spell(summer, summer_server):
    start, end = _period(summer)
    latest = _latest(summer_server)
    rain = [e for e in latest if e["observed_property"] == "Niederschlag"]
    assert len(rain) == 2
    for entry in rain:
        days = _series(summer_server, entry["datastream_id"], start, end, interval="P1D")
        assert sum(d["sum"] for d in days) == 0, "no rain in a dry spell"
    unwatered = {d.name for d in DEVICES if d.kind == "soil" and not d.param("watered")}
    moisture = [e for e in latest if e["thing_name"] in unwatered]
    assert len(moisture) == len(unwatered)
    for entry in moisture:
        days = _series(summer_server, entry["datastream_id"], start, end, stats="mean",
                       interval="P1D")
        means = [d["mean"] for d in days]
        assert means[-1] < means[0] - 3, (entry["thing_name"], means)
        assert all(b <= a + 0.2 for a, b in itertools.pairwise(means)), means
    tension = next(e for e in latest if e["observed_property"] == "Bodenwasserspannung")
    days = _series(summer_server, tension["datastream_id"], start, end, stats="mean",
                   interval="P1D")
    assert days[-1]["mean"] > days[0]["mean"], "the tensiometer reads drier"


def test_the_flood_crosses_the_warning_levels(flood, flood_server):
    start, end = _period(flood)
    latest = _latest(flood_server)
    gauges = [e for e in latest if e["usecase"] == "pegel"]
    assert len(gauges) == 2
    crest = flood_peak(SEED, YEAR)
    for gauge in gauges:
        device = next(d for d in DEVICES if d.name == gauge["thing_name"])
        sta = httpx.get(f"{flood_server.url}/v1.1/Datastreams({gauge['datastream_id']})",
                        timeout=30).json()
        warn = sta["properties"]["thresholds"]["warn"]
        assert warn == device.param("warn")
        hours = _series(flood_server, gauge["datastream_id"], start, end, stats="max")
        highest = max(hours, key=lambda h: h["max"])
        assert highest["max"] > warn, (gauge["thing_name"], highest)
        assert hours[0]["max"] < warn, "the level rises into the flood, not from it"
        moment = datetime.fromisoformat(highest["start"].replace("Z", "+00:00"))
        assert abs((moment.date() - crest).days) <= 1
    rain = next(e for e in latest if e["name"].startswith("Wetterstation Rathaus")
                and e["observed_property"] == "Niederschlag")
    days = _series(flood_server, rain["datastream_id"], start, end, interval="P1D")
    assert sum(d["sum"] for d in days) > 50, "heavy rain made the flood"
    path = next(e for e in latest if e["thing_name"] == "Radzählstelle Mühlbachweg")
    at_crest = _series(flood_server, path["datastream_id"],
                       datetime(crest.year, crest.month, crest.day, 8, tzinfo=UTC),
                       datetime(crest.year, crest.month, crest.day, 18, tzinfo=UTC))
    assert sum(h["sum"] for h in at_crest) == 0, "the path along the Mühlbach is flooded"


def _values(seeded: Seeded) -> list[tuple]:
    return seeded.sql(
        "SELECT s.name, o.phenomenon_time_start, o.result_type, o.result_number "
        "FROM observations o JOIN datastreams s ON s.id = o.datastream_id "
        "ORDER BY s.name, o.phenomenon_time_start")


def test_the_same_seed_gives_the_same_data(flood, tmp_path):
    again = seed_demo(tmp_path / "again", flood.start, flood.days)
    other = seed_demo(tmp_path / "other", flood.start, flood.days, seed=SEED + 1)
    first, second, third = _values(flood), _values(again), _values(other)
    assert len(first) > 10_000
    assert first == second
    assert len(third) == len(first)
    assert third != first
    changed = sum(1 for a, b in zip(first, third, strict=True) if a != b)
    assert changed > len(first) // 2


def test_seeding_refuses_a_database_with_other_data(tmp_path):
    run_cli("integration", "add", "ttn", "--name", "stadtwerke", "--data-dir", str(tmp_path))
    result = run_cli("demo", "seed", "--days", "1", "--data-dir", str(tmp_path), check=False)
    assert result.returncode == 2
    assert "leeren Datenordner" in result.stderr and "empty data folder" in result.stderr
    again = run_cli("serve", "--demo", "--port", "0", "--data-dir", str(tmp_path), check=False)
    assert again.returncode == 2


@pytest.mark.parametrize("args", [["--days", "0"], ["--start", "2999-01-01", "--days", "2"]])
def test_bad_periods_are_refused(tmp_path, args):
    result = run_cli("demo", "seed", "--data-dir", str(tmp_path), *args, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("ortspuls: ")
    assert "Traceback" not in result.stderr
