"""Use-case tiles on a known fixture: assignment (automatic and configured), values, statuses
and their German and English texts, details; and the catalogues themselves."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tests.dashboard.conftest import Town, make_internal

from ortspuls.dashboard.texts import catalogue
from ortspuls.dashboard.usecase import usecases

BERLIN = ZoneInfo("Europe/Berlin")
ORDER = ["radverkehr", "parken", "pegel", "baumbewaesserung", "luftqualitaet", "wetter",
         "laerm", "besucherfrequenz", "weitere"]


def number(value: float, lang: str) -> str:
    """Numbers as the catalogue sentences show them (one decimal at most, grouped)."""
    rounded = Decimal(repr(float(value))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    whole, _, fraction = f"{abs(rounded):f}".partition(".")
    group, decimal = (".", ",") if lang == "de" else (",", ".")
    digits = f"{int(whole):,}".replace(",", group)
    text = digits + (decimal + fraction if fraction.strip("0") else "")
    return ("-" if rounded < 0 else "") + text


def local_day(moment: datetime) -> date:
    return moment.astimezone(BERLIN).date()


class Fixture:
    """The known town: what was posted, so expectations are computed from it."""

    def __init__(self, town: Town) -> None:
        self.town = town
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.ids: dict[str, int] = {}
        self.things: dict[str, int] = {}
        self.raw: dict[str, list[tuple[datetime, Any]]] = {}

    def stream(self, key: str, thing: str, observed_property: str, symbol: str,
               rows: list[tuple[datetime, Any]], *, thing_properties: dict | None = None,
               properties: dict | None = None) -> None:
        if thing not in self.things:
            self.things[thing] = self.town.thing(name=thing, properties=thing_properties)
        self.ids[key] = self.town.datastream(self.things[thing], observed_property, symbol,
                                             name=f"{observed_property} {thing}",
                                             properties=properties)
        self.raw[key] = rows
        if rows:
            self.town.post_many(self.ids[key], rows)


@pytest.fixture(scope="module")
def fixture(town: Town) -> Fixture:
    f = Fixture(town)
    now = f.now
    ago = lambda **kw: now - timedelta(**kw)  # noqa: E731
    today = local_day(now)
    yesterday = datetime.combine(today - timedelta(days=1), datetime.min.time(), tzinfo=BERLIN)
    # Radverkehr: a counter found by its ObservedProperty, one assigned by its Thing.
    f.stream("bikes", "Zählstelle Wallring", "Radfahrende", "{#}", [
        (yesterday.replace(hour=8), 120), (yesterday.replace(hour=12), 80),
        (yesterday.replace(hour=17), 200), (ago(minutes=2), 15), (ago(minutes=1), 25)])
    f.stream("bikes_configured", "Zählstelle Brücke", "Zählung", "{#}",
             [(yesterday.replace(hour=9), 30), (ago(minutes=3), 5)],
             thing_properties={"usecase": "radverkehr"})
    # Parken: a car park with capacity, two single spaces (one occupied) = 30 of 200 free.
    f.stream("carpark", "Parkhaus Markt", "Freie Stellplätze", "{#}",
             [(ago(minutes=30), 90), (ago(minutes=4), 29)], properties={"capacity": 198})
    f.stream("space_taken", "Stellplatz 1", "Stellplatz belegt", "", [(ago(minutes=3), True)])
    f.stream("space_free", "Stellplatz 2", "Stellplatz belegt", "", [(ago(minutes=3), False)])
    # Pegel: one gauge above its own warning level and rising, one in metres without levels.
    f.stream("gauge", "Pegel Mühlbach", "Wasserstand", "cm",
             [(ago(minutes=70), 100), (ago(minutes=5), 130)],
             properties={"thresholds": {"warn": 120, "alert": 180}})
    f.stream("gauge_m", "Pegel Aue", "Wasserstand", "m", [(ago(minutes=6), 0.8)])
    # Baumbewässerung: dry, moist, and wet by tension.
    f.stream("tree_dry", "Linde am Markt", "Bodenfeuchte", "%", [(ago(minutes=10), 12)])
    f.stream("tree_ok", "Eiche am Rathaus", "Bodenfeuchte", "%", [(ago(minutes=10), 25)])
    f.stream("tree_wet", "Ahorn an der Schule", "Saugspannung", "kPa", [(ago(minutes=10), 5)])
    # Luftqualität: PM10 "mäßig", NO₂ "gut", PM2.5 "sehr gut".
    f.stream("pm10", "Luftmessstation Ring", "PM10", "ug/m3", [(ago(minutes=2), 30)])
    f.stream("no2", "Luftmessstation Ring", "NO₂", "ug/m3", [(ago(minutes=2), 25)])
    f.stream("pm25", "Luftmessstation Ring", "PM2.5", "ug/m3", [(ago(minutes=2), 4)])
    # Wetter: heat.
    f.stream("temp", "Wetterstation Rathaus", "Lufttemperatur", "Cel",
             [(ago(minutes=20), 29.0), (ago(minutes=2), 31.5)])
    f.stream("humidity", "Wetterstation Rathaus", "Relative Luftfeuchte", "%",
             [(ago(minutes=2), 40)])
    f.stream("wind", "Wetterstation Rathaus", "Windgeschwindigkeit", "m/s",
             [(ago(minutes=2), 5)])
    # Lärm.
    f.stream("noise", "Hauptstraße 5", "LAeq", "dB(A)",
             [(ago(minutes=3), 50), (ago(minutes=2), 60), (ago(minutes=1), 58)])
    # Besucherfrequenz: 50 people in every hour of the last two weeks, 100 in the last hour.
    history = []
    for days in range(1, 15):
        day = today - timedelta(days=days)
        for hour in range(24):
            moment = datetime(day.year, day.month, day.day, hour, 30, tzinfo=BERLIN)
            history.append((moment, 50))
    f.stream("people", "Marktplatz", "Passanten", "{#}",
             [*history, (ago(minutes=20), 60), (ago(minutes=10), 40)])
    # Weitere: an unmatched ObservedProperty, and a gauge sent there by configuration.
    f.stream("co2", "Klärwerk", "CO2", "ppm", [(ago(minutes=5), 420)])
    f.stream("gauge_none", "Pegel Test", "Wasserstand", "cm", [(ago(minutes=5), 500)],
             properties={"usecase": "none"})
    # Internal: never on the dashboard.
    f.stream("internal", "Pegel Betriebshof", "Wasserstand", "cm", [(ago(minutes=5), 999)])
    make_internal(town.server, f.ids["internal"])
    return f


def people_profile(f: Fixture) -> dict[str, list[float | None]]:
    """Mean people per local hour over the complete past days, weekdays and weekends apart."""
    today = local_day(datetime.now(UTC))
    per_hour: dict[tuple[date, int], float] = {}
    for moment, value in f.raw["people"]:
        local = moment.astimezone(BERLIN)
        if local.date() < today:
            key = (local.date(), local.hour)
            per_hour[key] = per_hour.get(key, 0) + value
    out = {}
    for kind in ("weekday", "weekend"):
        values = []
        for hour in range(24):
            totals = [v for (day, h), v in per_hour.items()
                      if h == hour and (day.weekday() >= 5) == (kind == "weekend")]
            values.append(sum(totals) / len(totals) if totals else None)
        out[kind] = values
    return out


def tiles(town: Town, lang: str) -> dict[str, dict]:
    body = town.ok("/api/v1/usecases", lang=lang)
    assert [t["slug"] for t in body["usecases"]] == ORDER
    return {t["slug"]: t for t in body["usecases"]}


def stream_ids(tile: dict) -> set[int]:
    return {d["id"] for s in tile["stations"] for d in s["datastreams"]}


def figures(tile: dict) -> dict[str, Any]:
    return {f["key"]: f["value"] for f in tile["figures"]}


def day_total(f: Fixture, keys: tuple[str, ...], day: date) -> float:
    return sum(v for k in keys for t, v in f.raw[k] if local_day(t) == day)


@pytest.mark.parametrize("lang", ["de", "en"])
def test_overview_assigns_datastreams_and_summarises_each_use_case(town, fixture, lang):
    f = fixture
    today = local_day(datetime.now(UTC))
    t = tiles(town, lang)
    ids = f.ids
    assert stream_ids(t["radverkehr"]) == {ids["bikes"], ids["bikes_configured"]}
    assert stream_ids(t["parken"]) == {ids["carpark"], ids["space_taken"], ids["space_free"]}
    assert stream_ids(t["pegel"]) == {ids["gauge"], ids["gauge_m"]}
    assert stream_ids(t["weitere"]) == {ids["co2"], ids["gauge_none"]}
    everywhere = set().union(*(stream_ids(tile) for tile in t.values()))
    assert ids["internal"] not in everywhere
    assert len(everywhere) == len(ids) - 1

    for tile in t.values():
        assert set(tile) >= {"slug", "title", "summary", "icon", "status", "headline",
                             "updated", "stale", "trend", "stations", "figures"}
        assert tile["status"]["level"] in ("ok", "warn", "alert", "unknown")
        assert len(tile["trend"]) == 24 and tile["stale"] is False
        for station in tile["stations"]:
            assert station["location"] == {"type": "Point", "coordinates": [10.52, 52.26]}
            for ds in station["datastreams"]:
                assert ds["sta_url"] == f"/v1.1/Datastreams({ds['id']})"
                assert ds["latest"] is not None
    n = lambda v: number(v, lang)  # noqa: E731
    de = lang == "de"

    # Radverkehr: today so far and yesterday of both counters.
    bikes = t["radverkehr"]
    today_total = day_total(f, ("bikes", "bikes_configured"), today)
    yesterday_total = day_total(f, ("bikes", "bikes_configured"), today - timedelta(days=1))
    assert bikes["title"] == ("Radverkehr" if de else "Cycling")
    assert bikes["headline"]["value"] == today_total
    assert figures(bikes) == {"today": today_total, "yesterday": yesterday_total}
    assert bikes["status"] == {"level": "ok", "text": (
        f"Heute bisher {n(today_total)} Radfahrende, gestern {n(yesterday_total)}" if de else
        f"{n(today_total)} cyclists so far today, {n(yesterday_total)} yesterday")}

    # Parken: 30 of 200 free = 85 % occupied: moderate pressure.
    parking = t["parken"]
    assert parking["headline"]["value"] == 30
    assert figures(parking) == {"free": 30, "capacity": 200, "occupancy": 85}
    assert parking["status"] == {"level": "warn", "text": (
        "Mäßiger Parkdruck: 85 % belegt" if de else
        "Moderate parking pressure: 85 % occupied")}
    spaces = {d["id"]: d["status"] for s in parking["stations"] for d in s["datastreams"]}
    assert spaces[ids["space_taken"]]["level"] == "alert"
    assert spaces[ids["space_free"]] == {"level": "ok", "text": "frei" if de else "free"}

    # Pegel: the gauge above its warning level leads; it rose 30 cm in 65 minutes.
    gauge = t["pegel"]
    assert gauge["headline"]["value"] == 130 and gauge["headline"]["unit"] == "cm"
    assert gauge["status"] == {"level": "warn", "text": (
        "Erhöhter Wasserstand: Warnstufe (120 cm) erreicht" if de else
        "High water: warning level (120 cm) reached")}
    gauge_figures = figures(gauge)
    assert gauge_figures["rise"] == pytest.approx(30 / (65 / 60), abs=0.01)
    assert (gauge_figures["warn"], gauge_figures["alert"]) == (120, 180)
    other = {d["id"]: d["status"] for s in gauge["stations"] for d in s["datastreams"]}
    assert other[ids["gauge_m"]] == {"level": "ok", "text": (
        "Normaler Wasserstand" if de else "Normal water level")}

    # Baumbewässerung: one of three trees is dry.
    trees = t["baumbewaesserung"]
    assert trees["headline"]["value"] == 1
    assert trees["status"] == {"level": "alert", "text": (
        "1 von 3 Bäumen braucht Wasser" if de else "1 of 3 trees needs water")}
    hints = {s["name"]: s["status"] for s in trees["stations"]}
    assert hints["Linde am Markt"] == {"level": "alert", "text": (
        "Baum braucht Wasser – bitte gießen" if de else "Tree needs water – please water it")}
    assert hints["Ahorn an der Schule"]["text"] == (
        "Boden nass – bitte nicht gießen" if de else "Soil wet – please do not water")
    assert figures(trees) == {"dry": 1, "moist": 1, "wet": 1, "trees": 3}

    # Luftqualität: PM10 30 µg/m³ is "mäßig" in the UBA index and decides the band.
    air = t["luftqualitaet"]
    assert air["headline"]["value"] == ("mäßig" if de else "moderate")
    assert air["headline"]["pollutant"] == "pm10"
    assert air["status"]["level"] == "warn"
    assert air["status"]["text"].startswith(
        "Luftqualität mäßig (Feinstaub PM10)" if de else
        "Air quality moderate (Particulate matter PM10)")
    assert {k: v for k, v in figures(air).items() if k != "trend_pollutant"} == {
        "pm10": 30, "pm25": 4, "no2": 25}

    # Wetter: 31.5 °C is heat.
    weather = t["wetter"]
    assert weather["headline"] == {"value": 31.5, "unit": "°C", "label": (
        "Lufttemperatur" if de else "Air temperature")}
    assert weather["status"] == {"level": "warn", "text": (
        f"Hitze: {n(31.5)} °C" if de else f"Heat: {n(31.5)} °C")}
    weather_figures = figures(weather)
    assert (weather_figures["humidity"], weather_figures["wind"]) == (40, 5)
    temps_today = [v for t_, v in f.raw["temp"] if local_day(t_) == today]
    assert weather_figures["temperature_max"] == max(temps_today)

    # Lärm: 58 dB(A) against the day or night limits, depending on the local time.
    noise = t["laerm"]
    hour = datetime.now(UTC).astimezone(BERLIN).hour
    night = hour >= 22 or hour < 6
    assert noise["headline"]["value"] == 58
    assert noise["status"] == ({"level": "alert", "text": (
        "Für die Nacht laut: 58 dB(A)" if de else "Loud for the night: 58 dB(A)")} if night else
        {"level": "warn", "text": "Mäßig laut: 58 dB(A)" if de else "Moderately loud: 58 dB(A)"})
    local_now = datetime.now(UTC).astimezone(BERLIN)
    start_day = local_now.date() - timedelta(days=1 if local_now.hour < 6 else 0)
    period_start = datetime.combine(start_day, datetime.min.time(), tzinfo=BERLIN).replace(
        hour=22 if night else 6)
    period_values = [v for t_, v in f.raw["noise"] if t_ >= period_start]
    laeq = 10 * math.log10(sum(10 ** (v / 10) for v in period_values) / len(period_values))
    assert figures(noise)["laeq_night" if night else "laeq_day"] == pytest.approx(laeq, abs=0.01)

    # Besucherfrequenz: 100 in the last hour where 50 is usual (each past hour): busy.
    people = t["besucherfrequenz"]
    assert people["headline"]["value"] == 100
    kind = "weekend" if local_now.weekday() >= 5 else "weekday"
    usual = people_profile(f)[kind][local_now.hour]
    assert figures(people)["usual"] == usual
    if usual == 50:  # always, except in the two weeks after a daylight-saving change
        assert people["status"] == {"level": "warn", "text": (
            "Viel los: 100 Personen in der letzten Stunde (üblich: 50)" if de else
            "Busy: 100 people in the last hour (usual: 50)")}

    # Weitere: the generic tile.
    generic = t["weitere"]
    assert generic["headline"]["value"] == 2
    assert generic["headline"]["label"] == ("2 Messreihen" if de else "2 data series")
    assert generic["title"] == ("Weitere Messwerte" if de else "More measurements")


def test_detail_has_charts_records_averages_and_profile(town, fixture):
    f = fixture
    today = local_day(datetime.now(UTC))
    bikes = town.ok("/api/v1/usecases/radverkehr", lang="de")
    assert bikes["slug"] == "radverkehr" and bikes["timezone"] == "Europe/Berlin"
    keys = ("bikes", "bikes_configured")
    totals = {day: day_total(f, keys, day) for day in (today, today - timedelta(days=1))}
    record = next(r for r in bikes["records"] if "datastream_id" not in r)
    assert record["key"] == "record_day" and record["value"] == max(totals.values())
    average = next(a for a in bikes["averages"] if a["key"] == "daily_average")
    assert average["value"] == totals[today - timedelta(days=1)] and average["days"] == 1
    assert bikes["profile"]["hours"] == list(range(24))
    assert {c["datastream_id"] for c in bikes["charts"]} == {f.ids[k] for k in keys}
    chart = next(c for c in bikes["charts"] if c["datastream_id"] == f.ids["bikes"])
    assert chart["ranges"] == ["24h", "7d", "1y"] and chart["stat"] == "sum"
    window = chart["series"]["24h"]
    first_hour = datetime.fromisoformat(window["from"]).replace(minute=0, second=0)
    day_chart = town.ok(window["url"])
    assert day_chart["interval"] == window["interval"] == "PT1H"
    assert sum(b["sum"] for b in day_chart["value"]) == sum(
        v for t_, v in f.raw["bikes"] if t_ >= first_hour)

    gauge = town.ok("/api/v1/usecases/pegel", lang="en")
    assert gauge["charts"][0]["ranges"] == ["48h", "7d", "1y"]
    highest = {r["datastream_id"]: r["value"] for r in gauge["records"]}
    assert highest[f.ids["gauge"]] == 130

    people = town.ok("/api/v1/usecases/besucherfrequenz")
    profile = {s["key"]: s["values"] for s in people["profile"]["series"]}
    assert profile == people_profile(f)

    parking = town.ok("/api/v1/usecases/parken")
    assert next(r for r in parking["records"] if r["key"] == "peak_hours")["unit"] == "h"

    for slug in ORDER:
        detail = town.ok(f"/api/v1/usecases/{slug}", lang="en")
        assert {"charts", "records", "averages", "profile"} <= set(detail)
    missing = town.get("/api/v1/usecases/kino")
    assert missing.status_code == 404 and "kino" in missing.json()["message"]
    assert town.get("/api/v1/usecases", lang="fr").status_code == 400


def test_catalogues_have_the_same_keys_and_every_use_case_its_texts():
    de, en = catalogue("de"), catalogue("en")
    assert set(de) == set(en)
    for slug in usecases():
        for key in ("title", "summary"):
            assert de[f"usecase.{slug}.{key}"] and en[f"usecase.{slug}.{key}"]
    assert set(usecases()) == set(ORDER)
