"""The town's calendar: local time, public holidays of Hesse and (approximate) school holidays.

Everything works on numpy arrays of UTC epoch seconds, so a year of five-minute steps is
classified at once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

TIMEZONE = ZoneInfo("Europe/Berlin")
DAY_S = 86_400


def easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    lw = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * lw) // 451
    month = (h + lw - 7 * m + 114) // 31
    day = (h + lw - 7 * m + 114) % 31 + 1
    return date(year, month, day)


@lru_cache(maxsize=64)
def public_holidays(year: int) -> dict[date, str]:
    """The public holidays of Hesse in `year` (German names)."""
    e = easter(year)
    return {
        date(year, 1, 1): "Neujahr",
        e - timedelta(days=2): "Karfreitag",
        e + timedelta(days=1): "Ostermontag",
        date(year, 5, 1): "Tag der Arbeit",
        e + timedelta(days=39): "Christi Himmelfahrt",
        e + timedelta(days=50): "Pfingstmontag",
        e + timedelta(days=60): "Fronleichnam",
        date(year, 10, 3): "Tag der Deutschen Einheit",
        date(year, 12, 25): "1. Weihnachtstag",
        date(year, 12, 26): "2. Weihnachtstag",
    }


def _monday_on_or_after(day: date) -> date:
    return day + timedelta(days=(7 - day.weekday()) % 7)


@lru_cache(maxsize=64)
def school_holidays(year: int) -> tuple[tuple[date, date], ...]:
    """Hessian school holidays of `year`, approximated (first and last day, inclusive):
    Easter, summer (six weeks from early July, moving with the years as in Hesse), autumn and
    Christmas."""
    e = easter(year)
    summer = _monday_on_or_after(date(year, 6, 23) + timedelta(days=7 * (year % 3)))
    autumn = _monday_on_or_after(date(year, 10, 6) + timedelta(days=7 * (year % 2)))
    return (
        (date(year, 1, 1), date(year, 1, 10)),
        (e - timedelta(days=6), e + timedelta(days=11)),
        (summer, summer + timedelta(days=41)),
        (autumn, autumn + timedelta(days=11)),
        (date(year, 12, 22), date(year, 12, 31)),
    )


class LocalDays:
    """Per-step local calendar facts for an array of UTC epoch seconds."""

    def __init__(self, t: np.ndarray) -> None:
        t = np.asarray(t, dtype=np.int64)
        first = datetime.fromtimestamp(int(t.min()) - DAY_S, UTC)
        last = datetime.fromtimestamp(int(t.max()) + DAY_S, UTC)
        # UTC offset per hour of the range (DST changes happen on whole UTC hours).
        hour0 = int(first.timestamp()) // 3600
        hours = int(last.timestamp()) // 3600 - hour0 + 1
        offsets = np.empty(hours, dtype=np.int64)
        for i in range(hours):
            moment = datetime.fromtimestamp((hour0 + i) * 3600, UTC)
            offsets[i] = int(moment.astimezone(TIMEZONE).utcoffset().total_seconds())
        self.offset = offsets[t // 3600 - hour0]
        local = t + self.offset
        self.local_day = local // DAY_S  # days since 1970-01-01, local
        self.hour = (local % DAY_S) / 3600.0  # local hour of day, fractional
        self.weekday = (self.local_day + 3) % 7  # Monday = 0 (1970-01-01 was a Thursday)
        days = np.unique(self.local_day)
        holiday, school, names = [], [], {}
        for d in days.tolist():
            day = date(1970, 1, 1) + timedelta(days=d)
            name = public_holidays(day.year).get(day)
            if name:
                names[d] = name
            holiday.append(name is not None)
            school.append(any(a <= day <= b for a, b in school_holidays(day.year)))
        position = np.searchsorted(days, self.local_day)
        self.holiday = np.asarray(holiday, dtype=bool)[position]
        self.school_holiday = np.asarray(school, dtype=bool)[position] | self.holiday
        # Christmas to New Year: offices half empty, shops busy before, quiet after.
        doy = _day_of_year(self.local_day)
        self.day_of_year = doy
        self.between_years = (doy >= 358) | (doy <= 1)
        self.sunday_like = (self.weekday == 6) | self.holiday
        self.saturday = (self.weekday == 5) & ~self.holiday
        self.workday = ~self.sunday_like & ~self.saturday
        self.holiday_names = names


def _day_of_year(local_day: np.ndarray) -> np.ndarray:
    """Day of the year (0-based) of days since 1970-01-01 (vectorised through numpy dates)."""
    days = local_day.astype("datetime64[D]")
    years = days.astype("datetime64[Y]")
    return (days - years).astype(np.int64)


def local_date(t: int) -> date:
    return datetime.fromtimestamp(t, UTC).astimezone(TIMEZONE).date()
