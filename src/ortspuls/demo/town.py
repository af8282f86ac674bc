"""Musterstadt: a fictional small town in Hesse and its ~40 sensors.

Positions are given in metres east and north of the market square and turned into WGS 84
coordinates here, so the catalogue reads like a town map. Every device names the kind of sensor
it is (`kind`, see `KINDS`), which decides its codec (a Device Repository model of the demo
vendor), its cadence and its fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOWN_NAME = "Musterstadt"
TENANT_NAME = "Stadt Musterstadt"
# Amtlicher Gemeindeschlüssel: 06 Hessen, 440 Wetteraukreis, 999 — not a real municipality.
TOWN_AGS = "06440999"
# The market square (Marktplatz), between Vogelsberg and Wetterau.
CENTRE_LAT = 50.4521
CENTRE_LON = 8.9174
OUTLINE_FILE = Path(__file__).parent / "musterstadt.geojson"
# The demo's device vendor in the Device Repository layout of `repository/`.
VENDOR = "ortspuls-demo"
APPLICATION = "musterstadt"
CHIRPSTACK_TENANT = "Stadtwerke Musterstadt"
TTS_INTEGRATION = "musterstadt-demo-tts"
CHIRPSTACK_INTEGRATION = "musterstadt-demo-chirpstack"
DEMO_EMAIL = "demo@musterstadt.example"
# Printed on every start: a demo login, never for a real installation.
DEMO_PASSWORD = "musterstadt-demo"

_M_PER_DEG_LAT = 111_320.0


def to_lat_lon(east_m: float, north_m: float) -> tuple[float, float]:
    lat = CENTRE_LAT + north_m / _M_PER_DEG_LAT
    lon = CENTRE_LON + east_m / (_M_PER_DEG_LAT * math.cos(math.radians(CENTRE_LAT)))
    return round(lat, 6), round(lon, 6)


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of device: its Device Repository model, cadence and fields."""

    model: str  # Device Repository device id (profile vendor/model)
    cadence_s: int  # measurement uplinks on fPort 1
    fields: tuple[str, ...]  # decoded fields of fPort 1, in payload order
    battery: bool = False  # a daily status uplink on fPort 2 with battery_voltage


KINDS: dict[str, Kind] = {
    "bike": Kind("radzaehler-rz15", 900, ("count",)),
    "visitors": Kind("frequenzzaehler-pf15", 900, ("count",)),
    "carpark": Kind("parkleitsystem-pl10", 600, ("free",)),
    "space": Kind("stellplatzsensor-ps1", 600, ("occupied",), battery=True),
    "gauge_ultrasonic": Kind("pegelsensor-us1", 600, ("distance",), battery=True),
    "gauge_pressure": Kind("drucksonde-dp1", 600, ("water_level",), battery=True),
    "soil": Kind("bodenfeuchte-sm1", 900, ("soil_moisture",), battery=True),
    "tension": Kind("tensiometer-wm1", 900, ("water_tension",), battery=True),
    "air": Kind("luftmessstation-aq3", 600, ("pm10", "pm2_5", "no2")),
    "air_pm": Kind("feinstaubsensor-aq2", 600, ("pm10", "pm2_5")),
    "weather_full": Kind("wetterstation-ws6", 600, ("air_temperature", "humidity", "pressure",
                                                    "wind_speed", "wind_direction", "rain")),
    "weather_small": Kind("wetterstation-ws4", 600, ("air_temperature", "humidity",
                                                     "wind_speed", "rain"), battery=True),
    "noise": Kind("laermsensor-ns1", 600, ("laeq",)),
}

# The use case each kind feeds (for tests and the printed summary; the dashboard finds it by
# the ObservedProperty).
USECASE_OF_KIND = {
    "bike": "radverkehr", "visitors": "besucherfrequenz", "carpark": "parken",
    "space": "parken", "gauge_ultrasonic": "pegel", "gauge_pressure": "pegel",
    "soil": "baumbewaesserung", "tension": "baumbewaesserung", "air": "luftqualitaet",
    "air_pm": "luftqualitaet", "weather_full": "wetter", "weather_small": "wetter",
    "noise": "laerm",
}


@dataclass(frozen=True, slots=True)
class Device:
    """One demo device: a Thing with its Datastreams once provisioned."""

    index: int  # stable number: part of the DevEUI and of every random stream
    key: str  # device id at the network server (lower case, hyphens)
    name: str  # the Thing's name
    kind: str
    east_m: float
    north_m: float
    network: str = "ttn"  # ttn | chirpstack
    params: dict[str, Any] = field(default_factory=dict)
    gateway: str = "gw-rathaus"

    @property
    def dev_eui(self) -> str:
        return f"D3E0A1{self.index:010X}"

    @property
    def lat_lon(self) -> tuple[float, float]:
        return to_lat_lon(self.east_m, self.north_m)

    @property
    def spec(self) -> Kind:
        return KINDS[self.kind]

    @property
    def usecase(self) -> str:
        return USECASE_OF_KIND[self.kind]

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)


def _d(index: int, key: str, name: str, kind: str, east: float, north: float, **kw: Any
       ) -> Device:
    network = kw.pop("network", "ttn")
    gateway = kw.pop("gateway", "gw-rathaus")
    return Device(index, key, name, kind, east, north, network, kw, gateway)


# Bicycle counters: `volume` cyclists on an average weekday, `commute` the share of commuters
# and pupils (peaks at 7–8 and 16–18 h), `school` an extra peak of pupils at 7 and 13 h.
DEVICES: tuple[Device, ...] = (
    _d(1, "rad-bahnhofstrasse", "Radzählstelle Bahnhofstraße", "bike", 420, -380,
       volume=1450, commute=0.75, school=0.05),
    _d(2, "rad-muehlbachweg", "Radzählstelle Mühlbachweg", "bike", -520, 160,
       volume=900, commute=0.55, school=0.05),
    _d(3, "rad-schulzentrum", "Radzählstelle Schulzentrum", "bike", -300, 640,
       volume=780, commute=0.45, school=0.35),
    _d(4, "rad-frankfurter-strasse", "Radzählstelle Frankfurter Straße", "bike", 60, -900,
       volume=1100, commute=0.7, school=0.05),
    _d(5, "rad-erlenbach-radweg", "Radzählstelle Erlenbach-Radweg", "bike", 1350, 420,
       volume=520, commute=0.3, school=0.0, gateway="gw-klaeranlage"),
    _d(6, "rad-lindenallee", "Radzählstelle Lindenallee", "bike", -150, -250,
       volume=640, commute=0.6, school=0.1),
    # People counters in the town centre: `volume` passers-by on an average Saturday.
    _d(7, "frequenz-marktplatz", "Frequenzzähler Marktplatz", "visitors", 0, 10,
       volume=5200, market=0.6),
    _d(8, "frequenz-lange-gasse", "Frequenzzähler Lange Gasse", "visitors", 110, -60,
       volume=7400, market=0.2),
    _d(9, "frequenz-rathausplatz", "Frequenzzähler Rathausplatz", "visitors", -90, 70,
       volume=3600, market=0.1, christmas=1.0),
    _d(10, "frequenz-bahnhofsvorplatz", "Frequenzzähler Bahnhofsvorplatz", "visitors", 480,
       -420, volume=2900, commuter=0.5),
    # Car parks (free spaces of `capacity`) and single spaces (occupied or not).
    _d(11, "parkhaus-marktplatz", "Parkhaus Am Markt", "carpark", 60, 120, capacity=320,
       pattern="shopping"),
    _d(12, "parkplatz-bahnhof", "P+R-Parkplatz Bahnhof", "carpark", 520, -450, capacity=180,
       pattern="commuter"),
    _d(13, "tiefgarage-rathaus", "Tiefgarage Rathaus", "carpark", -120, 90, capacity=140,
       pattern="office"),
    _d(14, "stellplatz-markt-1", "Kurzzeitparkplatz Marktplatz 1", "space", 25, -15,
       demand=0.85, pattern="shopping"),
    _d(15, "stellplatz-markt-2", "Kurzzeitparkplatz Marktplatz 2", "space", 31, -15,
       demand=0.8, pattern="shopping"),
    _d(16, "stellplatz-markt-3", "Kurzzeitparkplatz Marktplatz 3", "space", 37, -15,
       demand=0.7, pattern="shopping"),
    _d(17, "stellplatz-rathaus-bf", "Behindertenparkplatz Rathaus", "space", -110, 60,
       demand=0.35, pattern="office"),
    _d(18, "ladeplatz-bahnhof-1", "E-Ladeplatz Bahnhofstraße 1", "space", 400, -360,
       demand=0.6, pattern="commuter"),
    _d(19, "ladeplatz-bahnhof-2", "E-Ladeplatz Bahnhofstraße 2", "space", 406, -360,
       demand=0.45, pattern="commuter"),
    # Stream gauges: warning and alert levels in cm (Datastream property `thresholds`).
    _d(20, "pegel-muehlbach", "Pegel Mühlbach (Mühlstraße)", "gauge_ultrasonic", -460, 210,
       mounting_height=2600, warn=120, alert=160, river="muehlbach"),
    _d(21, "pegel-erlenbach", "Pegel Erlenbach (Wehr)", "gauge_pressure", 1420, 380,
       network="chirpstack", warn=180, alert=240, river="erlenbach", gateway="gw-klaeranlage"),
    # Street trees: soil moisture (%) in the root zone; `watered` trees get water from the
    # Bauhof when they are dry; `soil` sandy soils dry faster.
    _d(22, "baum-marktplatz-linde", "Linde am Marktplatz", "soil", -30, 40,
       species="Winterlinde", planted=2019, fc=33, wp=10, et=1.0, watered=True),
    _d(23, "baum-lindenallee-3", "Linde Lindenallee 3", "soil", -180, -220,
       species="Winterlinde", planted=2021, fc=30, wp=9, et=1.1),
    _d(24, "baum-lindenallee-7", "Linde Lindenallee 7", "soil", -200, -300,
       species="Winterlinde", planted=2021, fc=31, wp=9, et=1.05),
    _d(25, "baum-stadtpark-ahorn", "Spitzahorn Stadtpark", "soil", -640, 420,
       species="Spitzahorn", planted=2018, fc=36, wp=11, et=0.85),
    _d(26, "baum-stadtpark-eiche", "Traubeneiche Stadtpark", "soil", -700, 470,
       species="Traubeneiche", planted=2020, fc=35, wp=11, et=0.8, watered=True),
    _d(27, "baum-schulhof-platane", "Platane Schulhof", "soil", -320, 700,
       species="Platane", planted=2017, fc=34, wp=10, et=1.0),
    _d(28, "baum-bahnhof-gleditschie", "Gleditschie Bahnhofsvorplatz", "soil", 460, -400,
       species="Gleditschie", planted=2022, fc=27, wp=8, et=1.25, watered=True),
    _d(29, "baum-kirchberg-buche", "Hainbuche Am Kirchberg", "soil", 250, 950,
       species="Hainbuche", planted=2016, fc=37, wp=12, et=0.75, gateway="gw-kirchberg"),
    _d(30, "baum-friedhof-ulme", "Flatterulme Friedhof", "soil", 820, 760,
       species="Flatterulme", planted=2020, fc=35, wp=11, et=0.9, gateway="gw-kirchberg"),
    _d(31, "baum-rathaus-tensiometer", "Amberbaum Rathausplatz (Tensiometer)", "tension",
       -100, 85, network="chirpstack", species="Amberbaum", planted=2021, fc=32, wp=10,
       et=1.0),
    # Air quality: near the main road, in the park (urban background), at the school.
    _d(32, "luft-frankfurter-strasse", "Luftmessstation Frankfurter Straße", "air", 80, -820,
       traffic=1.0),
    _d(33, "luft-stadtpark", "Luftmessstation Stadtpark", "air", -600, 380, traffic=0.25),
    _d(34, "luft-schulzentrum", "Feinstaubsensor Schulzentrum", "air_pm", -280, 610,
       traffic=0.4),
    # Weather: on the town hall roof and on the Kirchberg (60 m higher, windier).
    _d(35, "wetter-rathaus", "Wetterstation Rathaus", "weather_full", -95, 75,
       altitude=152, offset_t=0.4, wind=1.0),
    _d(36, "wetter-kirchberg", "Wetterstation Kirchberg", "weather_small", 280, 1020,
       altitude=212, offset_t=-0.5, wind=1.35, gateway="gw-kirchberg"),
    # Noise at the main road through town (B 457-like, about 14 000 vehicles a day).
    _d(37, "laerm-frankfurter-strasse", "Lärmsensor Frankfurter Straße", "noise", 40, -780,
       distance_m=8),
)

DEVICES_BY_KEY = {d.key: d for d in DEVICES}

GATEWAYS: dict[str, tuple[float, float, float]] = {
    # gateway id -> east m, north m, altitude m
    "gw-rathaus": (-95, 75, 168),
    "gw-kirchberg": (280, 1020, 225),
    "gw-klaeranlage": (1500, 300, 140),
}

# Mapping rules the demo sets per device profile (as a clerk would with `ortspuls mapping
# set`): names the dashboard's use cases recognise, and the ultrasonic gauge's level derived
# from its distance reading and mounting height.
PROFILE_RULES: tuple[dict[str, Any], ...] = (
    {"profile": "radzaehler-rz15", "field": "count", "name": "Fahrradzählung",
     "definition": "urn:ortspuls:def:observed-property:bicycle-count"},
    {"profile": "frequenzzaehler-pf15", "field": "count", "name": "Passantenzählung",
     "definition": "urn:ortspuls:def:observed-property:pedestrian-count"},
    {"profile": "parkleitsystem-pl10", "field": "free", "name": "Freie Stellplätze",
     "definition": "urn:ortspuls:def:observed-property:free-parking-spaces", "unit": "{#}"},
    {"profile": "stellplatzsensor-ps1", "field": "occupied", "name": "Stellplatz belegt",
     "definition": "urn:ortspuls:def:observed-property:parking-space-occupied"},
    {"profile": "pegelsensor-us1", "field": "distance", "ignore": True},
    {"profile": "pegelsensor-us1", "field": "water_level", "name": "Pegelstand", "unit": "cm",
     "expression": "(mounting_height - distance) / 10"},
    {"profile": "drucksonde-dp1", "field": "water_level", "name": "Pegelstand", "unit": "cm"},
)


def outline() -> dict[str, Any]:
    """The town boundary as a GeoJSON FeatureCollection (file `musterstadt.geojson`)."""
    import orjson

    return orjson.loads(OUTLINE_FILE.read_bytes())


def outline_geojson() -> dict[str, Any]:
    """Build the outline from its corner points (used to write `musterstadt.geojson`)."""
    corners = [(-1150, -300), (-1020, 380), (-820, 900), (-380, 1180), (180, 1320),
               (720, 1160), (1180, 980), (1620, 640), (1700, 120), (1380, -380),
               (900, -760), (420, -1180), (-160, -1240), (-640, -980), (-1000, -700)]
    ring = [[to_lat_lon(e, n)[1], to_lat_lon(e, n)[0]] for e, n in corners]
    ring.append(ring[0])
    return {"type": "FeatureCollection", "features": [{
        "type": "Feature",
        "properties": {"name": TOWN_NAME, "ags": TOWN_AGS,
                       "description": "Gemarkungsgrenze der fiktiven Stadt Musterstadt "
                                      "(boundary of the fictional town)"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }]}
