"""The model over whole years (no database): one flood a year crosses the warning levels and
nothing else does; the dry spell is dry; public holidays look like Sundays; same seed, same
numbers, whatever period is asked for."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from ortspuls.demo import model
from ortspuls.demo.calendar import easter, public_holidays
from ortspuls.demo.town import DEVICES_BY_KEY

YEAR_START = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
YEAR_END = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())


@pytest.mark.parametrize("seed", [1, 42, 2024])
def test_one_flood_a_year_crosses_the_warning_levels(seed):
    env = model.Environment(seed, YEAR_START - 40 * 86_400, YEAR_END)
    year = (env.t >= YEAR_START) & (env.t < YEAR_END)
    crest = model.flood_peak(seed, 2025)
    for key in ("pegel-muehlbach", "pegel-erlenbach"):
        device = DEVICES_BY_KEY[key]
        level = env.levels[device.param("river")]
        above = env.t[year & (level > device.param("warn"))]
        assert len(above), f"{key}: the flood stays below the warning level"
        days = {datetime.fromtimestamp(int(x), UTC).date() for x in above}
        assert all(abs((d - crest).days) <= 2 for d in days), (key, sorted(days))
    first, last = model.dry_spell(seed, 2025)
    dry = (env.t >= _ts(first)) & (env.t < _ts(last + timedelta(days=1)))
    assert env.rain_rate[dry].max() == 0
    trees = [v for k, v in env.trees.items() if not _watered(k)]
    for theta in trees:
        assert theta[dry][-1] < theta[dry][0] - 5


def _ts(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _watered(index: int) -> bool:
    return bool(next(d for d in DEVICES_BY_KEY.values() if d.index == index).param("watered"))


def test_values_do_not_depend_on_the_period_asked_for():
    device = DEVICES_BY_KEY["wetter-rathaus"]
    anchor = YEAR_START - 40 * 86_400
    short = model.Environment(5, anchor, YEAR_START + 20 * 86_400)
    long = model.Environment(5, anchor, YEAR_START + 90 * 86_400)
    times = model.measurement_times(device, YEAR_START, YEAR_START + 19 * 86_400)
    a = model.sample(short, device, times, 600)
    b = model.sample(long, device, times, 600)
    for field in a:
        assert np.array_equal(a[field], b[field]), field
    bike = DEVICES_BY_KEY["rad-bahnhofstrasse"]
    times = model.measurement_times(bike, YEAR_START, YEAR_START + 19 * 86_400)
    assert np.array_equal(model.sample(short, bike, times, 900)["count"],
                          model.sample(long, bike, times, 900)["count"])


def test_holidays_of_hesse():
    assert easter(2025) == date(2025, 4, 20)
    assert easter(2026) == date(2026, 4, 5)
    holidays = public_holidays(2025)
    assert holidays[date(2025, 6, 19)] == "Fronleichnam"  # a holiday in Hesse
    assert date(2025, 10, 31) not in holidays  # Reformationstag is not
    # Whit Monday 2025 (a Monday) has the cyclists of a Sunday, not the commuters' peak.
    env = model.Environment(9, _ts(date(2025, 5, 20)), _ts(date(2025, 6, 20)))
    bike = DEVICES_BY_KEY["rad-bahnhofstrasse"]
    # Without the weather: the calendar's shape of the day (times the slow season).
    rate = env.bike_rate(bike) / (env.weather_factor() * np.where(env.daily_wet_step(), 0.85, 1))

    def peak(day: date) -> float:
        inside = (env.t >= _ts(day)) & (env.t < _ts(day + timedelta(days=1)))
        return float(rate[inside].max())

    assert peak(date(2025, 6, 9)) < 0.6 * peak(date(2025, 6, 16))  # Whit Monday, a Monday
    assert peak(date(2025, 6, 9)) == pytest.approx(peak(date(2025, 6, 8)), rel=0.05)  # Sunday
