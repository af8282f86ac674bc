"""The built-in dictionary of decoded field names: what a field measures and in which unit.

A decoded field such as `temperature`, `air.temperature` (TTN normalized payload), `water_SOIL`
(Dragino) or `temperature_c` is looked up here to name its ObservedProperty (German first, English
beside it) and to give its Datastream a UCUM `unitOfMeasurement`. Fields not found get the
unknown unit and are listed on the device for a clerk to map.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UCUM = "ucum:"
OBSERVED_PROPERTY_URN = "urn:ortspuls:def:observed-property:"
FIELD_URN = "urn:ortspuls:def:lorawan-field:"

OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
MEASUREMENT = OM + "OM_Measurement"
TRUTH = OM + "OM_TruthObservation"


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit of measurement; `code` is the UCUM code (None when the unit is unknown)."""

    code: str | None
    name: str
    symbol: str | None

    def as_sta(self) -> dict:
        return {"name": self.name, "symbol": self.symbol,
                "definition": UCUM + self.code if self.code else None}


UNKNOWN_UNIT = Unit(None, "unbekannte Einheit (unknown unit)", None)
NO_UNIT = Unit(None, "ohne Einheit (no unit)", None)  # booleans: occupied, motion, leak


def _u(code: str, name: str, symbol: str) -> Unit:
    return Unit(code, name, symbol)


# UCUM code -> unit. Names German first, English beside.
UNITS: dict[str, Unit] = {u.code: u for u in (  # type: ignore[misc]
    _u("Cel", "Grad Celsius (degree Celsius)", "°C"),
    _u("K", "Kelvin (kelvin)", "K"),
    _u("%", "Prozent (percent)", "%"),
    _u("hPa", "Hektopascal (hectopascal)", "hPa"),
    _u("Pa", "Pascal (pascal)", "Pa"),
    _u("kPa", "Kilopascal (kilopascal)", "kPa"),
    _u("bar", "Bar (bar)", "bar"),
    _u("mbar", "Millibar (millibar)", "mbar"),
    _u("[ppm]", "Teile pro Million (parts per million)", "ppm"),
    _u("[ppb]", "Teile pro Milliarde (parts per billion)", "ppb"),
    _u("ug/m3", "Mikrogramm pro Kubikmeter (microgram per cubic metre)", "µg/m³"),
    _u("mg/m3", "Milligramm pro Kubikmeter (milligram per cubic metre)", "mg/m³"),
    _u("lx", "Lux (lux)", "lx"),
    _u("mm", "Millimeter (millimetre)", "mm"),
    _u("cm", "Zentimeter (centimetre)", "cm"),
    _u("m", "Meter (metre)", "m"),
    _u("km", "Kilometer (kilometre)", "km"),
    _u("V", "Volt (volt)", "V"),
    _u("mV", "Millivolt (millivolt)", "mV"),
    _u("A", "Ampere (ampere)", "A"),
    _u("mA", "Milliampere (milliampere)", "mA"),
    _u("W", "Watt (watt)", "W"),
    _u("kW", "Kilowatt (kilowatt)", "kW"),
    _u("kW.h", "Kilowattstunde (kilowatt hour)", "kWh"),
    _u("W.h", "Wattstunde (watt hour)", "Wh"),
    _u("L", "Liter (litre)", "L"),
    _u("m3", "Kubikmeter (cubic metre)", "m³"),
    _u("m/s", "Meter pro Sekunde (metre per second)", "m/s"),
    _u("km/h", "Kilometer pro Stunde (kilometre per hour)", "km/h"),
    _u("deg", "Grad (degree)", "°"),
    _u("mm/h", "Millimeter pro Stunde (millimetre per hour)", "mm/h"),
    _u("dB", "Dezibel (decibel)", "dB"),
    _u("dB[mW]", "Dezibel-Milliwatt (decibel-milliwatt)", "dBm"),
    _u("uS/cm", "Mikrosiemens pro Zentimeter (microsiemens per centimetre)", "µS/cm"),
    _u("mS/cm", "Millisiemens pro Zentimeter (millisiemens per centimetre)", "mS/cm"),
    _u("[pH]", "pH-Wert (pH)", "pH"),
    _u("kg", "Kilogramm (kilogram)", "kg"),
    _u("g", "Gramm (gram)", "g"),
    _u("s", "Sekunde (second)", "s"),
    _u("min", "Minute (minute)", "min"),
    _u("h", "Stunde (hour)", "h"),
    _u("Hz", "Hertz (hertz)", "Hz"),
    _u("{#}", "Anzahl (count)", "#"),
    _u("{index}", "Index (index)", ""),
    _u("1", "dimensionslos (dimensionless)", ""),
)}

# Unit strings as codecs write them (Decentlab's {unit: …}, TTN normalized schema) -> UCUM.
SYMBOLS: dict[str, str] = {
    "°c": "Cel", "degc": "Cel", "celsius": "Cel", "cel": "Cel", "c": "Cel", "k": "K",
    "%": "%", "pct": "%", "percent": "%", "%rh": "%", "rh": "%",
    "hpa": "hPa", "pa": "Pa", "kpa": "kPa", "bar": "bar", "mbar": "mbar",
    "ppm": "[ppm]", "ppb": "[ppb]", "µg/m³": "ug/m3", "ug/m3": "ug/m3", "µg/m3": "ug/m3",
    "mg/m³": "mg/m3", "mg/m3": "mg/m3", "lx": "lx", "lux": "lx",
    "mm": "mm", "cm": "cm", "m": "m", "km": "km", "v": "V", "mv": "mV", "a": "A", "ma": "mA",
    "w": "W", "kw": "kW", "kwh": "kW.h", "wh": "W.h", "l": "L", "m³": "m3", "m3": "m3",
    "m/s": "m/s", "km/h": "km/h", "°": "deg", "deg": "deg", "mm/h": "mm/h",
    "db": "dB", "dba": "dB", "db(a)": "dB", "dbm": "dB[mW]", "µs/cm": "uS/cm", "us/cm": "uS/cm",
    "ms/cm": "mS/cm", "ph": "[pH]", "kg": "kg", "g": "g", "s": "s", "min": "min", "h": "h",
    "hz": "Hz",
}

# Unit suffixes in field names: temperature_c, humidity_pct, battery_v, distance_mm, …
SUFFIXES: dict[str, str] = {
    "c": "Cel", "degc": "Cel", "pct": "%", "percent": "%", "v": "V", "mv": "mV", "mm": "mm",
    "cm": "cm", "hpa": "hPa", "pa": "Pa", "kpa": "kPa", "bar": "bar", "ppm": "[ppm]",
    "ppb": "[ppb]", "lux": "lx", "lx": "lx", "db": "dB", "dbm": "dB[mW]", "kwh": "kW.h",
    "wh": "W.h", "w": "W", "kw": "kW", "l": "L", "m3": "m3", "ma": "mA", "kmh": "km/h",
}


@dataclass(frozen=True, slots=True)
class Quantity:
    """What a field measures: the ObservedProperty and the Datastream's unit."""

    slug: str
    name: str  # German, the ObservedProperty name
    name_en: str
    unit: Unit
    boolean: bool = False
    known: bool = True

    @property
    def definition(self) -> str:
        return (OBSERVED_PROPERTY_URN if self.known else FIELD_URN) + self.slug

    @property
    def description(self) -> str:
        return f"{self.name} ({self.name_en})" if self.name_en != self.name else self.name

    @property
    def observation_type(self) -> str:
        return TRUTH if self.boolean else MEASUREMENT

    def with_unit(self, unit: Unit) -> Quantity:
        return Quantity(self.slug, self.name, self.name_en, unit, self.boolean, self.known)


_QUANTITIES: list[tuple[str, str, str, str | None, tuple[str, ...]]] = [
    # slug, German name, English name, UCUM code (None: boolean), field names
    ("air-temperature", "Lufttemperatur", "air temperature", "Cel",
     ("air.temperature", "air_temperature", "airtemp", "air_temp", "ambient_temperature",
      "outdoor_temperature")),
    ("temperature", "Temperatur", "temperature", "Cel",
     ("temperature", "temp", "tempc", "temperaturec", "internal_temperature",
      "device_temperature", "tempc_ds18b20", "tempc_sht", "temperature_1")),
    ("soil-temperature", "Bodentemperatur", "soil temperature", "Cel",
     ("soil.temperature", "soil_temperature", "temp_soil", "soil_temp")),
    ("water-temperature", "Wassertemperatur", "water temperature", "Cel",
     ("water.temperature", "water_temperature", "water_temp")),
    ("surface-temperature", "Oberflächentemperatur", "surface temperature", "Cel",
     ("surface_temperature", "road_temperature")),
    ("relative-humidity", "Relative Luftfeuchte", "relative humidity", "%",
     ("humidity", "hum", "rh", "air.relativehumidity", "relative_humidity",
      "relativehumidity")),
    ("air-pressure", "Luftdruck", "air pressure", "hPa",
     ("pressure", "air.pressure", "barometric_pressure", "barometer", "baro",
      "atmospheric_pressure")),
    ("co2", "CO₂-Konzentration", "CO₂ concentration", "[ppm]",
     ("co2", "air.co2", "carbon_dioxide", "co2_concentration")),
    ("tvoc", "Flüchtige organische Verbindungen (TVOC)", "total volatile organic compounds",
     "[ppb]", ("tvoc", "voc")),
    ("pm1", "Feinstaub PM1", "particulate matter PM1", "ug/m3", ("pm1", "pm1_0", "pm1.0")),
    ("pm2-5", "Feinstaub PM2,5", "particulate matter PM2.5", "ug/m3",
     ("pm2_5", "pm25", "pm2.5", "air.pm25")),
    ("pm10", "Feinstaub PM10", "particulate matter PM10", "ug/m3", ("pm10", "air.pm10")),
    ("no2", "Stickstoffdioxid (NO₂)", "nitrogen dioxide", "ug/m3", ("no2",)),
    ("o3", "Ozon (O₃)", "ozone", "ug/m3", ("o3", "ozone")),
    ("illuminance", "Beleuchtungsstärke", "illuminance", "lx",
     ("light", "lux", "illuminance", "light_intensity", "air.lightintensity", "luminosity")),
    ("uv-index", "UV-Index", "UV index", "{index}", ("uv", "uvindex", "uv_index")),
    ("distance", "Abstand", "distance", "mm", ("distance", "dist", "range")),
    ("fill-level", "Füllstand", "fill level", "%", ("fill_level", "filllevel", "fill")),
    ("water-level", "Wasserstand", "water level", "cm", ("water_level", "waterlevel")),
    ("depth", "Tiefe", "depth", "cm", ("depth", "soil.depth")),
    ("battery-voltage", "Batteriespannung", "battery voltage", "V",
     ("battery_voltage", "batteryvoltage", "battery_v", "bat_v", "batv", "vbat", "bat", "batt")),
    ("battery-level", "Batteriestand", "battery level", "%",
     ("battery_level", "batterylevel", "battery_percent", "battery_percentage", "bat_pct")),
    ("voltage", "Spannung", "voltage", "V", ("voltage",)),
    ("soil-moisture", "Bodenfeuchte", "soil moisture", "%",
     ("soil.moisture", "soil_moisture", "soilmoisture", "moisture", "water_soil", "vwc")),
    ("soil-water-tension", "Bodenwasserspannung", "soil water tension", "kPa",
     ("water_tension", "soil_tension", "tension", "matric_potential")),
    ("electrical-conductivity", "Elektrische Leitfähigkeit", "electrical conductivity", "uS/cm",
     ("conductivity", "ec", "soil.ec", "conduct_soil")),
    ("ph", "pH-Wert", "pH", "[pH]", ("ph", "soil.ph")),
    ("occupied", "Belegt", "occupied", None,
     ("occupied", "occupancy", "car_present", "presence", "parking_occupied")),
    ("motion", "Bewegung erkannt", "motion detected", None,
     ("motion", "pir", "action.motion.detected", "motion_detected")),
    ("motion-count", "Anzahl Bewegungen", "motion count", "{#}",
     ("motion_count", "action.motion.count", "motioncount")),
    ("count", "Anzahl", "count", "{#}", ("count", "counter", "people_count", "visitors")),
    ("count-in-total", "Eingänge gesamt", "total in", "{#}", ("total_in",)),
    ("count-out-total", "Ausgänge gesamt", "total out", "{#}", ("total_out",)),
    ("count-in-period", "Eingänge im Intervall", "in per period", "{#}", ("period_in",)),
    ("count-out-period", "Ausgänge im Intervall", "out per period", "{#}", ("period_out",)),
    ("wind-speed", "Windgeschwindigkeit", "wind speed", "m/s",
     ("wind.speed", "windspeed", "wind_speed")),
    ("wind-direction", "Windrichtung", "wind direction", "deg",
     ("wind.direction", "winddirection", "wind_direction")),
    ("rain-intensity", "Niederschlagsintensität", "rain intensity", "mm/h",
     ("rain.intensity", "rain_intensity", "rain_rate", "precipitation_intensity")),
    ("precipitation", "Niederschlag", "precipitation", "mm",
     ("rain.cumulative", "rain", "rainfall", "precipitation")),
    ("sound-level", "Schallpegel (LAeq)", "sound level (LAeq)", "dB",
     ("laeq", "sound", "soundavg", "sound_avg", "noise", "sound_level")),
    ("sound-level-max", "Schallpegel (Maximum)", "maximum sound level", "dB",
     ("lafmax", "lamax", "soundpeak", "sound_peak")),
    ("leak", "Wasseraustritt", "water leak", None, ("leak", "water.leak", "leakage", "water_leak")),
    ("water-meter", "Wasserzählerstand", "water meter reading", "L",
     ("metering.water.total", "water_total")),
    ("energy", "Energie (Zählerstand)", "energy meter reading", "kW.h", ("energy",)),
    ("power", "Leistung", "power", "W", ("power", "active_power")),
    ("current", "Stromstärke", "electric current", "mA", ("current",)),
    ("weight", "Gewicht", "weight", "kg", ("weight",)),
    ("latitude", "Geografische Breite", "latitude", "deg", ("latitude", "lat",
                                                             "position.latitude")),
    ("longitude", "Geografische Länge", "longitude", "deg", ("longitude", "lon", "lng",
                                                              "position.longitude")),
    ("rssi", "Signalstärke (RSSI)", "signal strength (RSSI)", "dB[mW]", ("rssi", "radio.rssi")),
    ("snr", "Signal-Rausch-Abstand (SNR)", "signal-to-noise ratio (SNR)", "dB",
     ("snr", "radio.snr")),
]

_BY_NAME: dict[str, Quantity] = {}
for _slug, _de, _en, _code, _names in _QUANTITIES:
    _q = Quantity(_slug, _de, _en, UNITS[_code] if _code else NO_UNIT, boolean=_code is None)
    for _name in _names:
        _BY_NAME[_name] = _q
        _BY_NAME.setdefault(_name.replace("_", "").replace(".", ""), _q)

_BATTERY_V = _BY_NAME["battery_voltage"]
_BATTERY_PCT = _BY_NAME["battery_level"]
_NORMALIZE = re.compile(r"[\s\-]+")


def normalize_key(key: str) -> str:
    return _NORMALIZE.sub("_", key.strip()).lower()


def unit_from_symbol(symbol: str | None) -> Unit | None:
    """A unit string as a codec writes it ('°C', 'mm', 'V') or a UCUM code -> Unit."""
    if not symbol:
        return None
    if symbol in UNITS:
        return UNITS[symbol]
    code = SYMBOLS.get(symbol.strip().lower())
    return UNITS.get(code) if code else None


def unit_from_argument(text: str) -> Unit:
    """A unit named by a clerk: a known symbol or UCUM code, else taken as a UCUM code."""
    unit = unit_from_symbol(text)
    if unit is not None:
        return unit
    return Unit(text, text, text)


def _lookup(key: str) -> Quantity | None:
    q = _BY_NAME.get(key) or _BY_NAME.get(key.replace("_", "").replace(".", ""))
    if q is not None:
        return q
    last = key.rsplit(".", 1)[-1]
    if last != key:
        return _BY_NAME.get(last) or _BY_NAME.get(last.replace("_", ""))
    return None


def quantity_for(field: str, value: object = None, unit_hint: str | None = None) -> Quantity:
    """The quantity of a decoded field; unknown fields get the unknown unit."""
    key = normalize_key(field)
    hinted = unit_from_symbol(unit_hint)
    q = _lookup(key)
    if q is None and "_" in key:
        # temperature_c, humidity_pct, battery_v: a known name with a unit suffix.
        base, _, suffix = key.rpartition("_")
        code = SUFFIXES.get(suffix)
        base_q = _lookup(base)
        if base_q is not None and code is not None:
            q = base_q.with_unit(UNITS[code])
        elif base_q is not None:
            q = base_q
        elif code is not None and len(suffix) > 1:
            # An unknown name with an unambiguous unit suffix (level_mm, flow_m3): the unit.
            return Quantity(key, field, field, UNITS[code], known=False)
    if q is None and (key in ("battery", "battery_status") or key.endswith(".battery")):
        # Codecs disagree: TTN's normalized schema uses volts, Milesight percent.
        q = _BATTERY_V if isinstance(value, int | float) and value <= 5 else _BATTERY_PCT
    if q is None:
        if isinstance(value, bool):
            return Quantity(key, field, field, NO_UNIT, boolean=True, known=False)
        if hinted is not None:
            return Quantity(key, field, field, hinted, known=False)
        return Quantity(key, field, field, UNKNOWN_UNIT, known=False)
    if hinted is not None and not q.boolean:
        q = q.with_unit(hinted)
    if isinstance(value, bool) and not q.boolean:
        q = Quantity(q.slug, q.name, q.name_en, NO_UNIT, boolean=True, known=q.known)
    return q
