"""Fixtures for the query-option tests: a small, known world per test module.

Every module builds its own entities on the shared server (one per database kind) and tags them
with a unique `properties/suite` value (Things, Locations, FeaturesOfInterest) or reaches them
through its own Datastream, so a test only ever sees the data it created.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from tests.sta.conftest import GEOJSON, MEASUREMENT

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}-{next(_counter)}"


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return response.json()


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return response.json()


def geometry(kind: str, coordinates: Any) -> dict[str, Any]:
    return {"type": kind, "coordinates": coordinates}


@dataclass
class World:
    """A tagged set of entities; `ids[name]` maps a display name to its @iot.id."""

    api: httpx.Client
    suite: str
    ids: dict[str, int] = field(default_factory=dict)
    # (entity set, id) -> label; ids of different entity types overlap.
    names: dict[tuple[str, int], str] = field(default_factory=dict)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return created(self.api.post(path, json=body))

    def remember(self, entity: dict[str, Any], label: str) -> dict[str, Any]:
        self.ids[label] = entity["@iot.id"]
        self.names[(_entity_set(entity["@iot.selfLink"]), entity["@iot.id"])] = label
        return entity

    # -- builders ---------------------------------------------------------------------------

    def thing(self, name: str, description: str = "Messstelle", properties: dict | None = None,
              location: dict | None = None, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "description": description,
                                "properties": {"suite": self.suite, **(properties or {})},
                                **extra}
        if location is not None:
            body["Locations"] = [self.location_body(f"Ort {name}", location)]
        return self.remember(self.post("/Things", body), name)

    def location_body(self, name: str, geo: dict, properties: dict | None = None
                      ) -> dict[str, Any]:
        return {"name": name, "description": "Ort", "encodingType": GEOJSON, "location": geo,
                "properties": {"suite": self.suite, **(properties or {})}}

    def location(self, name: str, geo: dict, **properties: Any) -> dict[str, Any]:
        return self.remember(self.post("/Locations", self.location_body(name, geo, properties)),
                             name)

    def feature(self, name: str, geo: dict, **properties: Any) -> dict[str, Any]:
        body = {"name": name, "description": "Beobachtetes Objekt", "encodingType": GEOJSON,
                "feature": geo, "properties": {"suite": self.suite, **properties}}
        return self.remember(self.post("/FeaturesOfInterest", body), name)

    def datastream(self, thing: dict[str, Any], name: str, **extra: Any) -> dict[str, Any]:
        body = {
            "name": name, "description": f"Reihe {name}",
            "unitOfMeasurement": {"name": "Zentimeter", "symbol": "cm",
                                  "definition": "http://unitsofmeasure.org/ucum.html#cm"},
            "observationType": MEASUREMENT,
            "Thing": {"@iot.id": thing["@iot.id"]},
            "Sensor": {"name": f"Sensor {name}", "description": "Sonde",
                       "encodingType": "application/pdf", "metadata": "https://example.org/s"},
            "ObservedProperty": {"name": f"Größe {name}", "description": "Wasserstand",
                                 "definition": "https://example.org/level"},
            "properties": {"suite": self.suite, **extra.pop("properties", {})},
            **extra,
        }
        return self.remember(self.post("/Datastreams", body), name)

    def observation(self, datastream: dict[str, Any], label: str, result: Any,
                    time: str, **extra: Any) -> dict[str, Any]:
        body = {"result": result, "phenomenonTime": time, **extra}
        obs = self.post(f"/Datastreams({datastream['@iot.id']})/Observations", body)
        return self.remember(obs, label)

    # -- queries ----------------------------------------------------------------------------

    def query(self, path: str, **params: str) -> dict[str, Any]:
        return ok(self.api.get(path, params={f"${k}": v for k, v in params.items()}))

    def labels(self, path: str, condition: str, scope: str | None = None, **params: str
               ) -> list[str]:
        """Labels of the entities in `path` matching `condition` (ANDed with `scope`),
        following next links; sorted."""
        text = condition if scope is None else f"{scope} and ({condition})"
        body = self.query(path, filter=text, select="id", top="1000", **params)
        assert "@iot.nextLink" not in body
        kind = _entity_set(path)
        return sorted(self.names[(kind, e["@iot.id"])] for e in body["value"])

    def things(self, condition: str) -> list[str]:
        return self.labels("/Things", condition, f"properties/suite eq '{self.suite}'")

    def locations(self, condition: str) -> list[str]:
        return self.labels("/Locations", condition, f"properties/suite eq '{self.suite}'")

    def features(self, condition: str) -> list[str]:
        return self.labels("/FeaturesOfInterest", condition,
                           f"properties/suite eq '{self.suite}'")

    def datastreams(self, condition: str) -> list[str]:
        return self.labels("/Datastreams", condition, f"properties/suite eq '{self.suite}'")

    def observations(self, datastream: str, condition: str) -> list[str]:
        return self.labels(f"/Datastreams({self.ids[datastream]})/Observations", condition)

    def error(self, path: str, **params: str) -> str:
        response = self.api.get(path, params={f"${k}": v for k, v in params.items()})
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["code"] == 400 and body["type"] == "error"
        return body["message"]


def _entity_set(path: str) -> str:
    """`…/Datastreams(3)/Observations` -> `Observations`; `…/Things(7)` -> `Things`."""
    return path.rstrip("/").rsplit("/", 1)[-1].split("(", 1)[0]


@pytest.fixture(scope="module")
def new_world(server):
    """A factory for tagged worlds on the shared server (admin client kept open per module)."""
    clients: list[httpx.Client] = []

    def make() -> World:
        client = server.client("admin")
        clients.append(client)
        return World(client, unique("suite"))

    yield make
    for client in clients:
        client.close()


# ---------------------------------------------------------------------------------------------
# The standard world: five Things, three Datastreams, nine Observations of every result type.

THINGS = {
    "A": ("Pegel Mühlbach", "Wasserstand am Mühlbach",
          {"kind": "pegel", "level": 3, "active": True, "owner": {"name": "Stadtwerke"},
           "tags": ["a", "b"]}),
    "B": ("Luftgüte Markt", "Feinstaub am Markt", {"kind": "luft", "level": 7.5, "active": False}),
    "C": ("  Parkhaus Nord ", "Belegung", {"kind": "parken", "level": "9"}),
    "D": ("Bodenfeuchte", "Sensor im Park", {}),
    "E": ("Müller's Wetterstation", "Wetter", {"kind": "wetter", "level": 0}),
}

# label: (result, phenomenonTime, extra fields)
OBSERVATIONS = {
    "o1": (1, "2024-03-01T10:15:30.250Z",
           {"resultTime": "2024-03-01T10:16:00Z", "parameters": {"n": 1, "s": "a", "flag": True},
            "validTime": "2024-03-01T00:00:00Z/2024-03-02T00:00:00Z"}),
    "o2": (2.5, "2024-03-02T12:00:00Z/2024-03-02T13:00:00Z", {"parameters": {"n": 2.5}}),
    "o3": ("hoch", "2024-03-03T00:00:00Z", {"parameters": {"n": "3", "s": "b"}}),
    "o4": (None, "2024-03-04T23:59:59Z", {"parameters": {"flag": False}}),
    "o5": (True, "2024-03-05T06:30:00Z", {}),
    "o6": ({"a": 1}, "2024-03-06T00:00:00Z", {"parameters": {"n": -1}}),
    "o7": (10, "2025-01-01T00:00:00Z", {}),
    "o8": (-4, "2024-01-01T00:00:00+02:00", {}),
}


@pytest.fixture(scope="module")
def world(new_world) -> World:
    """Things A–E (see THINGS); Datastream `ops` of Thing A with Observations o1–o8 (see
    OBSERVATIONS); Datastream `late` of Thing B with one Observation `l1` in 2026; Datastream
    `empty` of Thing C without Observations."""
    w = new_world()
    point = geometry("Point", [8.4, 49.0])
    things = {label: w.thing(name, description, props, location=point)
              for label, (name, description, props) in THINGS.items()}
    # Things are found by label in assertions.
    for label, thing in things.items():
        w.remember(thing, label)
    ops = w.datastream(things["A"], "ops")
    for label, (result, time, extra) in OBSERVATIONS.items():
        w.observation(ops, label, result, time, **extra)
    late = w.datastream(things["B"], "late")
    w.observation(late, "l1", 5, "2026-01-01T00:00:00Z")
    w.datastream(things["C"], "empty")
    return w
