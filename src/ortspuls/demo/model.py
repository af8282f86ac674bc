"""The deterministic model of Musterstadt: weather, water, trees, traffic and people.

One seed drives everything, coherently: the same rain that raises the streams wets the tree
pits and keeps cyclists and shoppers at home; commuters make peaks on workdays, not on weekends
or public holidays; a summer dry spell dries the trees out until the Bauhof waters them; one
winter flood takes both gauges over their warning levels (and closes the path along the
Mühlbach).

Every random number is a hash of (seed, what, when): a value at a given moment does not depend
on the period generated around it, so the live simulator continues the history seamlessly.
Quantities with memory (soil water, groundwater, stream levels) are integrated from an
`anchor` a month before the seeded period; the live simulator uses the same anchor.

Times are UTC epoch seconds (numpy int64); the grid has five-minute steps.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from ortspuls.demo.calendar import DAY_S, LocalDays
from ortspuls.demo.town import DEVICES, Device

STEP_S = 300
HOUR_S = 3600
SPINUP_DAYS = 35
_KERNEL_DAYS = 21
_U64 = np.uint64


# ---------------------------------------------------------------------------------------------
# Counter-based random numbers


def _stream(name: str) -> int:
    return zlib.crc32(name.encode())


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a well-mixed 64-bit value for each input."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
        return x ^ (x >> _U64(31))


def uniform(seed: int, name: str, keys: np.ndarray | int) -> np.ndarray:
    """Uniform numbers in [0, 1), one per key, fixed by (seed, name, key)."""
    base = _mix(np.array([(seed * 0x9E3779B97F4A7C15 + _stream(name)) & (2**64 - 1)],
                         dtype=np.uint64))[0]
    k = np.atleast_1d(np.asarray(keys, dtype=np.int64)).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = _mix(k * _U64(0xD1B54A32D192ED03) + base)
    return (x >> _U64(11)).astype(np.float64) * (1.0 / 2**53)


def normal(seed: int, name: str, keys: np.ndarray | int) -> np.ndarray:
    """Standard normal numbers (Box-Muller on two hashed uniforms)."""
    u1 = uniform(seed, name + "/a", keys)
    u2 = uniform(seed, name + "/b", keys)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2 * math.pi * u2)


def poisson(lam: np.ndarray, u: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Poisson counts for rates `lam` from a uniform `u` (small rates, exact inverse CDF) or a
    normal `z` (large rates)."""
    lam = np.maximum(lam, 0.0)
    out = np.maximum(np.rint(lam + np.sqrt(lam) * z), 0).astype(np.int64)
    small = lam < 12
    if small.any():
        ls, us = lam[small], u[small]
        k = np.zeros(ls.shape, dtype=np.int64)
        p = np.exp(-ls)
        cdf = p.copy()
        for i in range(1, 40):
            more = us > cdf
            if not more.any():
                break
            k[more] += 1
            p = p * ls / i
            cdf = cdf + p
        out[small] = k
    return out


def _smooth(seed: int, name: str, days: np.ndarray, decay: float) -> np.ndarray:
    """A slowly varying daily anomaly with unit variance: noise of the past days, weighted
    by decay**age (window independent: a day's value uses only days before it)."""
    weights = decay ** np.arange(_KERNEL_DAYS)
    weights /= math.sqrt(float((weights**2).sum()))
    first = int(days[0]) - _KERNEL_DAYS + 1
    noise = normal(seed, name, np.arange(first, int(days[-1]) + 1))
    return np.convolve(noise, weights, mode="valid")


def _gauss(h: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """A bump over the hour of day `h`, wrapping around midnight."""
    d = (h - mu + 12.0) % 24.0 - 12.0
    return np.exp(-0.5 * (d / sigma) ** 2)


def _norm_gauss(h: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """`_gauss` scaled to integrate to one over a day (per hour)."""
    return _gauss(h, mu, sigma) / (sigma * math.sqrt(2 * math.pi))


def _plateau(h: np.ndarray, start: float, end: float, ramp: float) -> np.ndarray:
    return 1 / (1 + np.exp(-(h - start) / ramp)) * 1 / (1 + np.exp(-(end - h) / ramp))


# ---------------------------------------------------------------------------------------------
# Events of a year


def _day_number(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def flood_peak(seed: int, year: int) -> date:
    """The day of the year's flood crest (late January to early March)."""
    u = float(uniform(seed, "flood-day", year)[0])
    return date(year, 1, 22) + timedelta(days=int(u * 44))


def dry_spell(seed: int, year: int) -> tuple[date, date]:
    """The summer dry spell (first and last day without rain), July to mid-August."""
    u = float(uniform(seed, "dry-start", year)[0])
    v = float(uniform(seed, "dry-length", year)[0])
    start = date(year, 6, 28) + timedelta(days=int(u * 22))
    return start, start + timedelta(days=17 + int(v * 6))


# ---------------------------------------------------------------------------------------------
# The environment


@dataclass(frozen=True, slots=True)
class River:
    tau_fast_h: float
    base_cm: float
    scale: float
    exponent: float


RIVERS = {
    "muehlbach": River(tau_fast_h=7.0, base_cm=18.0, scale=95.0, exponent=0.6),
    "erlenbach": River(tau_fast_h=20.0, base_cm=42.0, scale=175.0, exponent=0.65),
}


class Environment:
    """Everything that happens in Musterstadt on a five-minute grid from `anchor` to `end`."""

    def __init__(self, seed: int, anchor: int, end: int) -> None:
        self.seed = seed
        self.anchor = anchor - anchor % DAY_S
        self.end = end + HOUR_S - end % HOUR_S + HOUR_S
        self.t = np.arange(self.anchor, self.end + 1, STEP_S, dtype=np.int64)
        self.cal = LocalDays(self.t)
        self._memo: dict[tuple[str, str], np.ndarray] = {}
        self._weather()
        self._hydrology()
        self._activity()

    # -- helpers --------------------------------------------------------------------------------

    def memo(self, key: tuple[str, str], compute) -> np.ndarray:
        """A per-device grid array, computed once (the live simulator samples single times)."""
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = compute()
        return found

    def at(self, values: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Values of a grid quantity at arbitrary times (linear between grid points)."""
        return np.interp(np.asarray(t, dtype=np.float64), self.t.astype(np.float64), values)

    def integral(self, cumulative: np.ndarray, t: np.ndarray, span_s: float) -> np.ndarray:
        """The integral of a rate over (t - span, t] from its cumulative grid array."""
        t = np.asarray(t, dtype=np.float64)
        grid = self.t.astype(np.float64)
        return np.interp(t, grid, cumulative) - np.interp(t - span_s, grid, cumulative)

    @staticmethod
    def cumulate(rate_per_h: np.ndarray) -> np.ndarray:
        """Cumulative integral (per hour rates on the five-minute grid)."""
        out = np.empty_like(rate_per_h)
        out[0] = 0.0
        np.cumsum(rate_per_h[:-1] * (STEP_S / HOUR_S), out=out[1:])
        return out

    # -- weather --------------------------------------------------------------------------------

    def _weather(self) -> None:
        seed, t = self.seed, self.t
        day_of_step = t // DAY_S
        days = np.arange(int(day_of_step[0]), int(day_of_step[-1]) + 1)
        n_days = len(days)
        dates = [date(1970, 1, 1) + timedelta(days=int(d)) for d in days]
        doy = np.array([d.timetuple().tm_yday for d in dates], dtype=np.float64)
        season = np.cos(2 * math.pi * (doy - 200) / 365.25)  # +1 mid-July, -1 mid-January
        summer = 0.5 + 0.5 * season

        regime = _smooth(seed, "wet-regime", days, 0.55)
        wet = regime + 0.9 * normal(seed, "wet-day", days) > 0.05 + 0.3 * summer
        amount = np.where(wet, (3.2 + 1.6 * summer) * -np.log1p(-uniform(seed, "rain", days)),
                          0.0)
        amount = np.minimum(amount, 15.0 + 10.0 * summer)
        temp_anom = 2.6 * _smooth(seed, "temperature", days, 0.78)
        cloud = np.where(wet, 0.8 + 0.15 * uniform(seed, "cloud-wet", days),
                         0.15 + 0.55 * uniform(seed, "cloud", days))
        spread = np.where(wet, 1.6, 3.5 + 3.0 * summer * uniform(seed, "spread", days))
        pressure = 1016.0 + 7.0 * _smooth(seed, "pressure", days, 0.7) - 6.0 * regime
        wind = (3.0 + 1.1 * (1 - summer)) * np.exp(0.35 * normal(seed, "wind-day", days))
        wind += np.where(wet, 1.3, 0.0)
        direction = 235.0 + 45.0 * _smooth(seed, "wind-dir", days, 0.6)
        heat = np.zeros(n_days)
        self.flood_days: list[int] = []
        self.dry_days: list[tuple[int, int]] = []
        self.storm_days: list[int] = []

        for year in sorted({d.year for d in dates}):
            crest = _day_number(flood_peak(seed, year))
            self.flood_days.append(crest)
            for offset, mm in ((-9, 4.0), (-8, 6.0), (-6, 5.0), (-5, 7.0), (-4, 9.0),
                               (-3, 16.0), (-2, 28.0), (-1, 38.0), (0, 9.0)):
                i = crest + offset - int(days[0])
                if 0 <= i < n_days:
                    wet[i], amount[i], cloud[i], spread[i] = True, mm, 0.95, 1.0
                    temp_anom[i] = max(temp_anom[i], 3.5)  # mild: snow melts, rain falls
                    pressure[i] = min(pressure[i], 1000.0)
            storm = crest - 2 - int(days[0])
            self.storm_days.append(crest - 2)
            if 0 <= storm < n_days:
                wind[storm] = 8.0
                direction[storm] = 245.0
            first, last = dry_spell(seed, year)
            a, b = _day_number(first), _day_number(last)
            self.dry_days.append((a, b))
            for d in range(a, b + 1):
                i = d - int(days[0])
                if 0 <= i < n_days:
                    middle = 1.0 - abs((d - a) / max(b - a, 1) * 2 - 1)  # 0 at the ends, 1 mid
                    wet[i], amount[i] = False, 0.0
                    cloud[i] = 0.08 + 0.1 * uniform(seed, "cloud-dry", d)[0]
                    spread[i] = 8.0 + 5.0 * middle
                    heat[i] = 3.0 + 6.5 * middle
                    pressure[i] = max(pressure[i], 1021.0 + 4 * middle)
                    direction[i] = 80.0
                    wind[i] = min(wind[i], 2.8)
            storm_after = b + 1 - int(days[0])
            if 0 <= storm_after < n_days:  # the thunderstorm that ends the dry spell
                wet[storm_after], amount[storm_after], cloud[storm_after] = True, 21.0, 0.7

        self.day0 = int(days[0])
        # Snow melting in the mild rain before the crest feeds the streams (not the gauges).
        self.melt = np.zeros(n_days)
        for crest in self.flood_days:
            for offset, mm in ((-3, 10.0), (-2, 16.0), (-1, 14.0)):
                i = crest + offset - self.day0
                if 0 <= i < n_days:
                    self.melt[i] = mm
        self.daily_rain = amount
        self.daily_wet = wet
        day_index = day_of_step - self.day0
        cal = self.cal
        hour = cal.hour
        season_step = season[day_index]

        # Rain: showers in the summer afternoon, longer rain in the cold season.
        rate = np.zeros(len(t))
        convective = summer > 0.55
        starts = np.where(convective, 13.0 + 5.0 * uniform(seed, "rain-start", days),
                          24.0 * uniform(seed, "rain-start", days))
        hours_long = np.where(convective, 1.0 + 2.5 * uniform(seed, "rain-dur", days),
                              4.0 + 9.0 * uniform(seed, "rain-dur", days))
        for i in np.flatnonzero(amount > 0):
            s = (self.day0 + i) * DAY_S + int(starts[i] * HOUR_S) - self.anchor
            e = s + int(hours_long[i] * HOUR_S)
            lo, hi = max(s // STEP_S, 0), min(-(-e // STEP_S), len(t))
            if hi > lo:
                rate[lo:hi] += amount[i] / hours_long[i]
        self.rain_rate = rate  # mm/h
        self.rain_cum = self.cumulate(rate)
        raining = rate > 0.05

        # Temperature: climate, weather anomaly, heat of the dry spell, day and night.
        noon = (days * DAY_S + 12 * HOUR_S).astype(np.float64)
        tf = t.astype(np.float64)
        clim = 9.8 + 9.2 * season + temp_anom + heat
        daily_mean = np.interp(tf, noon, clim)
        cloud_s = np.interp(tf, noon, cloud)
        amplitude = (3.0 + 3.5 * (0.5 + 0.5 * season_step)) * (1.3 - cloud_s)
        diurnal = np.cos(2 * math.pi * (hour - 15.0) / 24.0) + 0.25 * np.cos(
            4 * math.pi * (hour - 15.0) / 24.0)
        temperature = daily_mean + amplitude * diurnal / 1.25 - 1.8 * raining
        self.temperature = temperature
        self.daily_mean_temperature = np.interp(tf, noon, clim)
        dew = self.daily_mean_temperature - np.interp(tf, noon, spread)
        rh = 100 * np.exp(17.62 * dew / (243.12 + dew)
                          - 17.62 * temperature / (243.12 + temperature))
        self.humidity = np.clip(np.where(raining, np.maximum(rh, 93.0), rh), 18.0, 100.0)
        self.pressure = np.interp(tf, noon, pressure) + 0.6 * np.sin(2 * math.pi * (hour - 10) / 12)
        gust = np.exp(np.clip(0.16 * normal(seed, "wind-gust", t // STEP_S), -0.5, 0.4))
        day_wind = np.interp(tf, noon, wind)
        self.wind = day_wind * (0.75 + 0.45 * _gauss(hour, 14.5, 3.5)) * gust
        self.wind_direction = (np.interp(tf, noon, direction) + 18.0 * normal(
            seed, "wind-veer", t // STEP_S)) % 360.0
        self.sunshine = 1.0 - cloud_s
        # Potential evapotranspiration (mm/h): warmth, sun, day length.
        radiation = 0.28 + 0.72 * (0.5 + 0.5 * np.cos(2 * math.pi * (
            np.array(cal.day_of_year, dtype=np.float64) - 172) / 365.25))
        pet_day = 0.16 * np.maximum(self.daily_mean_temperature + 3.0, 0.0) * (
            0.35 + 0.9 * self.sunshine) * radiation
        self.pet = pet_day * _norm_gauss(hour, 13.5, 3.2)  # mm/h, mostly around midday
        # Traffic on the main road (vehicles per hour) drives NO₂ and noise.
        self.traffic = self._traffic()

    def _traffic(self) -> np.ndarray:
        cal, h = self.cal, self.cal.hour
        workday = (0.30 * _norm_gauss(h, 7.6, 1.0) + 0.32 * _norm_gauss(h, 17.0, 1.6)
                   + 0.38 * _norm_gauss(h, 12.5, 3.6)) * 14200
        saturday = (0.8 * _norm_gauss(h, 12.5, 3.6) + 0.2 * _norm_gauss(h, 18.5, 3.0)) * 11000
        sunday = _norm_gauss(h, 15.0, 4.2) * 7400
        traffic = np.where(cal.workday, workday, np.where(cal.saturday, saturday, sunday))
        traffic = np.where(cal.between_years, traffic * 0.7, traffic)
        return traffic + 35.0  # the night never quite empties

    # -- water -----------------------------------------------------------------------------------

    def _hydrology(self) -> None:
        """Catchment soil, groundwater and two streams (hourly steps); the tree pits."""
        per_hour = HOUR_S // STEP_S
        n_hours = len(self.t) // per_hour
        rain_h = self.rain_rate[: n_hours * per_hour].reshape(n_hours, per_hour).mean(axis=1)
        melt_day = self.t[: n_hours * per_hour: per_hour] // DAY_S - self.day0
        water_h = rain_h + self.melt[np.clip(melt_day, 0, len(self.melt) - 1)] / 24.0
        pet_h = self.pet[: n_hours * per_hour].reshape(n_hours, per_hour).mean(axis=1)
        levels = {}
        for name, river in RIVERS.items():
            soil, ground, fast = 80.0, 300.0, 0.0
            level = np.empty(n_hours)
            tau = river.tau_fast_h
            for i in range(n_hours):
                r = water_h[i]
                wetness = soil / 150.0
                runoff = r * (0.03 + 0.62 * wetness**3)
                infiltration = r - runoff
                soil += infiltration - pet_h[i] * min(1.0, wetness * 1.6)
                percolation = max(soil - 60.0, 0.0) * 0.004
                soil = min(max(soil - percolation, 5.0), 150.0)
                ground += percolation
                base = ground / (55 * 24)
                ground -= base
                fast += runoff
                out = fast / tau
                fast -= out
                level[i] = river.base_cm + river.scale * (out + base) ** river.exponent
            levels[name] = level
        hours = self.t[: n_hours * per_hour: per_hour].astype(np.float64)
        tf = self.t.astype(np.float64)
        self.levels = {k: np.interp(tf, hours, v) for k, v in levels.items()}
        self.trees = self._trees(rain_h, pet_h, hours)

    def _trees(self, rain_h: np.ndarray, pet_h: np.ndarray, hours: np.ndarray
               ) -> dict[int, np.ndarray]:
        trees = [d for d in DEVICES if d.kind in ("soil", "tension")]
        fc = np.array([d.param("fc") for d in trees], dtype=np.float64)
        wp = np.array([d.param("wp") for d in trees], dtype=np.float64)
        et = np.array([d.param("et") for d in trees], dtype=np.float64)
        watered = np.array([bool(d.param("watered")) for d in trees])
        theta = fc - 3.0
        out = np.empty((len(hours), len(trees)))
        cal = LocalDays(hours.astype(np.int64))
        morning = (cal.hour >= 8) & (cal.hour < 9) & cal.workday
        for i in range(len(hours)):
            theta = theta + rain_h[i] * 0.36  # pavement runoff makes up for the canopy
            theta = np.minimum(theta, fc + 9.0)
            theta = theta - np.maximum(theta - fc, 0.0) * 0.07
            stress = np.clip((theta - wp) / (fc - wp), 0.0, 1.0) ** 0.8
            theta = theta - pet_h[i] * et * 0.36 * stress
            if morning[i]:
                theta = np.where(watered & (theta < 15.0), theta + 13.0, theta)
            out[i] = theta
        tf = self.t.astype(np.float64)
        return {d.index: np.interp(tf, hours, out[:, j]) for j, d in enumerate(trees)}

    # -- people ----------------------------------------------------------------------------------

    def _activity(self) -> None:
        cal, _h = self.cal, self.cal.hour
        doy = np.array(cal.day_of_year, dtype=np.float64)
        self.season = 0.5 + 0.5 * np.cos(2 * math.pi * (doy - 195) / 365.25)
        self.raining = self.rain_rate
        # Rain over the last hours, decaying (washes out particles, wets the road).
        decay = math.exp(-STEP_S / (6 * HOUR_S))
        recent = np.empty_like(self.rain_rate)
        acc = 0.0
        for i, r in enumerate(self.rain_rate * (STEP_S / HOUR_S)):
            acc = acc * decay + r
            recent[i] = acc
        self.recent_rain = recent
        self.school_day = cal.workday & ~cal.school_holiday
        flooded = np.zeros(len(self.t), dtype=bool)
        for crest in self.flood_days:
            lo = (crest - 1) * DAY_S - self.anchor
            hi = (crest + 2) * DAY_S - self.anchor
            flooded[max(lo // STEP_S, 0): max(hi // STEP_S, 0)] = True
        self.path_flooded = flooded

    def weather_factor(self) -> np.ndarray:
        """How much the weather invites people outdoors (rain, cold and heat keep them in)."""
        t = self.temperature
        cold = np.clip(1 - 0.035 * (8.0 - t), 0.45, 1.0)
        hot = np.clip(1 - 0.04 * (t - 29.0), 0.7, 1.0)
        rain = np.exp(-0.55 * self.rain_rate)
        return cold * hot * rain

    # -- per device ------------------------------------------------------------------------------

    def bike_rate(self, device: Device) -> np.ndarray:
        """Cyclists per hour at a counter."""
        cal, h = self.cal, self.cal.hour
        v = device.param("volume")
        commute, school = device.param("commute"), device.param("school")
        leisure = max(1.0 - commute - school, 0.0)
        commute_shape = 0.55 * _norm_gauss(h, 7.6, 0.75) + 0.45 * _norm_gauss(h, 16.9, 1.25)
        school_shape = 0.6 * _norm_gauss(h, 7.3, 0.45) + 0.4 * _norm_gauss(h, 13.2, 0.6)
        leisure_shape = 0.75 * _norm_gauss(h, 15.0, 2.8) + 0.25 * _norm_gauss(h, 11.0, 2.0)
        commuting = np.where(cal.between_years, 0.45, 1.0) * np.where(
            cal.school_holiday & cal.workday, 0.8, 1.0)
        workday = v * (commute * commuting * commute_shape
                       + school * self.school_day * school_shape + leisure * leisure_shape)
        saturday = v * (0.18 * commute * leisure_shape + leisure * 1.25 * leisure_shape)
        sunday = v * (0.08 * commute * leisure_shape + leisure * 1.15 * leisure_shape)
        rate = np.where(cal.workday, workday, np.where(cal.saturday, saturday, sunday))
        rate = rate * (0.42 + 0.58 * self.season) * self.weather_factor()
        rate = rate * np.where(self.daily_wet_step(), 0.85, 1.0)
        if device.key == "rad-muehlbachweg":
            rate = np.where(self.path_flooded, 0.0, rate)  # the path is under water
        return rate

    def daily_wet_step(self) -> np.ndarray:
        index = self.t // DAY_S - self.day0
        return self.daily_wet[np.clip(index, 0, len(self.daily_wet) - 1)]

    def visitor_rate(self, device: Device) -> np.ndarray:
        """Passers-by per hour at a people counter in the town centre."""
        cal, h = self.cal, self.cal.hour
        v = device.param("volume")
        workday = 0.62 * v * (0.45 * _norm_gauss(h, 11.8, 1.7) + 0.55 * _norm_gauss(h, 16.3, 1.9))
        saturday = v * _norm_gauss(h, 12.6, 2.3)
        sunday = 0.16 * v * _norm_gauss(h, 15.0, 2.8)
        rate = np.where(cal.workday, workday, np.where(cal.saturday, saturday, sunday))
        market = device.param("market", 0.0)
        if market:
            market_day = ((cal.weekday == 2) | (cal.weekday == 5)) & ~cal.holiday
            rate = rate + market * 0.35 * v * market_day * _norm_gauss(h, 10.0, 1.5)
        commuter = device.param("commuter", 0.0)
        if commuter:
            rate = rate + commuter * 0.5 * v * cal.workday * (
                0.5 * _norm_gauss(h, 7.3, 0.8) + 0.5 * _norm_gauss(h, 17.2, 1.1))
        month = np.array(cal.day_of_year)
        advent = (month >= 330) & (month <= 357)
        christmas = device.param("christmas", 0.0)
        rate = rate * np.where(advent, 1.25, 1.0) * np.where(month < 59, 0.85, 1.0)
        if christmas:
            rate = rate + christmas * 0.3 * v * advent * _norm_gauss(h, 18.5, 1.4)
        warm_evening = (self.temperature > 19) & (h > 18) & (h < 22.5)
        rate = rate * np.where(warm_evening, 1.25, 1.0)
        return rate * (0.35 + 0.65 * self.weather_factor())

    def occupancy(self, pattern: str) -> np.ndarray:
        """Share of a car park's spaces taken (0…1)."""
        cal, h = self.cal, self.cal.hour
        if pattern == "shopping":
            workday = 0.1 + 0.62 * _plateau(h, 9.0, 19.0, 0.6) * (
                0.8 + 0.2 * _gauss(h, 11.5, 1.5) + 0.2 * _gauss(h, 16, 1.5))
            workday = workday + 0.12 * (cal.weekday == 2) * _gauss(h, 10, 1.5)
            saturday = 0.12 + 0.8 * _plateau(h, 8.7, 17.5, 0.7) * (0.85 + 0.15 * _gauss(h, 12, 2))
            sunday = 0.08 + 0.14 * _gauss(h, 15, 3)
        elif pattern == "commuter":
            workday = 0.08 + 0.86 * _plateau(h, 6.9, 17.6, 0.55)
            workday = workday * np.where(cal.school_holiday, 0.85, 1.0)
            saturday = 0.14 + 0.1 * _gauss(h, 13, 3)
            sunday = 0.1 + 0.05 * _gauss(h, 15, 3)
        else:  # office
            workday = 0.06 + 0.78 * _plateau(h, 7.7, 16.6, 0.5) * (0.92 + 0.08 * _gauss(h, 10, 2))
            evening = ((cal.weekday == 4) | (cal.weekday == 5)) * 0.25 * _plateau(h, 19, 23, 0.4)
            saturday = 0.08 + 0.15 * _gauss(h, 11, 2)
            sunday = 0.04 + 0.03 * _gauss(h, 15, 3)
            workday = workday + evening
            saturday = saturday + evening
        occ = np.where(cal.workday, workday, np.where(cal.saturday, saturday, sunday))
        advent = (np.array(cal.day_of_year) >= 330) & (np.array(cal.day_of_year) <= 357)
        occ = occ + np.where(advent & (pattern == "shopping"), 0.08, 0.0)
        occ = occ + 0.06 * np.clip(self.rain_rate, 0, 1)  # rain: more people drive
        return np.clip(occ, 0.0, 0.99)

    def no2(self, device: Device) -> np.ndarray:
        winter = 1.0 - self.season
        h = self.cal.hour
        stable = 1 + 0.7 * winter * ((h < 9) | (h > 18))
        traffic = device.param("traffic") * self.traffic / 1000.0 * 24.0
        return 8.0 + 5.0 * winter + traffic * stable / (0.55 + 0.22 * self.wind)

    def pm10(self, device: Device) -> np.ndarray:
        winter = 1.0 - self.season
        synoptic = np.interp(self.t.astype(np.float64),
                             (np.arange(len(self.daily_rain)) + self.day0) * DAY_S + 43200.0,
                             _smooth(self.seed, "pm-synoptic", np.arange(
                                 self.day0, self.day0 + len(self.daily_rain)), 0.7))
        heating = 0.55 * np.maximum(10.0 - self.daily_mean_temperature, 0.0)
        background = (13.0 + 5.0 * winter + heating) * np.exp(0.32 * synoptic)
        traffic = 3.5 * device.param("traffic") * self.traffic / 1000.0
        washout = 0.5 + 0.5 * np.exp(-0.35 * self.recent_rain)
        return (background + traffic) * washout / (0.8 + 0.07 * self.wind) + self.fireworks()

    def fireworks(self) -> np.ndarray:
        """New Year's Eve: the particle peak of the year, in the first hours of January 1."""
        cal = self.cal
        new_year = (np.array(cal.day_of_year) == 0) & (cal.hour < 8)
        return np.where(new_year, 190.0 * np.exp(-np.maximum(cal.hour - 0.3, 0) / 1.3), 0.0)

    def laeq(self, device: Device) -> np.ndarray:
        distance = device.param("distance_m", 8)
        vehicles = self.traffic * 10 / 60
        wet_road = 2.5 * np.clip(self.recent_rain, 0, 1)
        return (10 * np.log10(vehicles + 0.5) + 38.5 + wet_road
                - 10 * np.log10(distance / 8.0) + 0.4 * np.clip(self.wind - 6, 0, None))


# ---------------------------------------------------------------------------------------------
# What each device reports: payload integers per field


def _at(env: Environment, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    return env.at(values, t)


def sample(env: Environment, device: Device, t: np.ndarray, span_s: float) -> dict[str, np.ndarray]:
    """The raw payload values (integers as the device encodes them) of `device` at times `t`
    (UTC seconds); counts and rain are over (t - span_s, t]."""
    seed, k = env.seed, device.kind
    key = np.asarray(t, dtype=np.int64)
    noise = lambda name: normal(seed, f"{device.key}/{name}", key)  # noqa: E731
    if k in ("bike", "visitors"):
        cumulative = env.memo((k, device.key), lambda: Environment.cumulate(
            env.bike_rate(device) if k == "bike" else env.visitor_rate(device)))
        lam = env.integral(cumulative, t, span_s)
        counts = poisson(lam, uniform(seed, f"{device.key}/count-u", key), noise("count-z"))
        return {"count": counts}
    if k == "carpark":
        cap = device.param("capacity")
        occ = _at(env, env.memo(("occupancy", device.param("pattern")),
                                lambda: env.occupancy(device.param("pattern"))), t)
        free = np.rint(cap * (1 - occ) + 1.5 * noise("free"))
        return {"free": np.clip(free, 0, cap).astype(np.int64)}
    if k == "space":
        occupancy = env.memo(("occupancy", device.param("pattern")),
                             lambda: env.occupancy(device.param("pattern")))
        demand = _at(env, occupancy, t) * device.param("demand") / 0.8
        block_s = 1800 + 600 * (device.index % 4)
        block = (key + 337 * device.index) // block_s
        occupied = uniform(seed, f"{device.key}/space", block) < np.clip(demand, 0.02, 0.97)
        return {"occupied": occupied.astype(np.int64)}
    if k == "gauge_ultrasonic":
        level_cm = _at(env, env.levels[device.param("river")], t) + 0.4 * noise("level")
        distance = np.rint(device.param("mounting_height") - level_cm * 10)
        return {"distance": distance.astype(np.int64)}
    if k == "gauge_pressure":
        level_cm = _at(env, env.levels[device.param("river")], t) + 0.3 * noise("level")
        return {"water_level": np.rint(level_cm * 10).astype(np.int64)}
    if k == "soil":
        theta = _at(env, env.trees[device.index], t) + 0.25 * noise("theta")
        return {"soil_moisture": np.rint(np.clip(theta, 2, 55) * 10).astype(np.int64)}
    if k == "tension":
        theta = _at(env, env.trees[device.index], t)
        fc, wp = device.param("fc"), device.param("wp")
        rel = np.clip((theta - wp) / (fc - wp), 0.05, 1.4)
        kpa = np.minimum(7.5 * rel ** -1.9 * np.exp(0.02 * noise("tension")), 239.0)
        return {"water_tension": np.rint(kpa * 10).astype(np.int64)}
    if k in ("air", "air_pm"):
        pm10 = _at(env, env.memo(("pm10", device.key), lambda: env.pm10(device)), t) * np.exp(
            0.12 * noise("pm10"))
        fire = _at(env, env.memo(("fireworks", ""), env.fireworks), t)
        pm25 = (0.6 * (pm10 - fire) + 0.85 * fire) * np.exp(0.1 * noise("pm25"))
        out = {"pm10": np.rint(np.clip(pm10, 0.5, 999) * 10).astype(np.int64),
               "pm2_5": np.rint(np.clip(pm25, 0.3, 999) * 10).astype(np.int64)}
        if k == "air":
            no2 = _at(env, env.memo(("no2", device.key), lambda: env.no2(device)), t) * np.exp(
                0.15 * noise("no2"))
            out["no2"] = np.rint(np.clip(no2, 0.5, 999) * 10).astype(np.int64)
        return out
    if k in ("weather_full", "weather_small"):
        temp = _at(env, env.temperature, t) + device.param("offset_t") + 0.08 * noise("t")
        hum = np.clip(_at(env, env.humidity, t) - 2.2 * device.param("offset_t")
                      + 0.6 * noise("rh"), 5, 100)
        wind = _at(env, env.wind, t) * device.param("wind") * np.exp(0.08 * noise("ws"))
        rain = env.integral(env.rain_cum, t, span_s)
        out = {"air_temperature": np.rint(temp * 100).astype(np.int64),
               "humidity": np.rint(hum * 2).astype(np.int64),
               "wind_speed": np.rint(wind * 10).astype(np.int64),
               "rain": np.rint(rain / 0.2).astype(np.int64)}
        if k == "weather_full":
            pressure = _at(env, env.pressure, t) - device.param("altitude") / 8.3
            out["pressure"] = np.rint(pressure * 10).astype(np.int64)
            out["wind_direction"] = np.rint(
                _at(env, env.wind_direction, t) + 4 * noise("wd")).astype(np.int64) % 360
        return out
    if k == "noise":
        laeq = _at(env, env.memo(("laeq", device.key), lambda: env.laeq(device)), t) + (
            0.7 * noise("laeq"))
        loud = uniform(seed, f"{device.key}/event", key) < 0.035
        laeq = laeq + loud * (3.0 + 5.0 * uniform(seed, f"{device.key}/event-db", key))
        return {"laeq": np.rint(laeq * 10).astype(np.int64)}
    raise ValueError(f"unknown device kind {k!r}")


def battery_mv(env: Environment, device: Device, t: np.ndarray) -> np.ndarray:
    """Battery voltage (mV) of a daily status uplink: a lithium cell slowly running down,
    a little lower in the cold."""
    age_days = (np.asarray(t, dtype=np.float64) - 1.6e9) / DAY_S + 97 * device.index
    level = 3640 - 0.12 * (age_days % 1400)
    cold = 4.0 * np.minimum(_at(env, env.temperature, t), 5.0)
    return np.rint(level + cold - 20).astype(np.int64)


def status_times(device: Device, first: int, last: int) -> np.ndarray:
    """The daily status uplinks (fPort 2) in [first, last]: each device at its own minute."""
    offset = (device.index * 2113) % DAY_S // 600 * 600
    start = first - first % DAY_S + offset
    if start < first:
        start += DAY_S
    return np.arange(start, last + 1, DAY_S, dtype=np.int64)


def measurement_times(device: Device, first: int, last: int) -> np.ndarray:
    """The measurement uplinks (fPort 1) in [first, last], on the cadence grid."""
    step = device.spec.cadence_s
    start = -(-first // step) * step
    return np.arange(start, last + 1, step, dtype=np.int64)


def describe_year(seed: int, year: int) -> dict[str, str]:
    """The year's notable events, for people and tests."""
    a, b = dry_spell(seed, year)
    return {"flood_peak": flood_peak(seed, year).isoformat(),
            "dry_spell_first": a.isoformat(), "dry_spell_last": b.isoformat()}


def utc(t: int) -> datetime:
    return datetime.fromtimestamp(int(t), UTC)
