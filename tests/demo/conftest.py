"""Fixtures for the demo tests: Musterstadt seeded with the real CLI into fresh data folders.

Short periods keep the tests quick and are chosen from the model's events, so they contain
what is checked: a flood period around the year's flood crest, and a week inside the summer
dry spell (which always spans a weekend).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from tests.conftest import Server, run_cli, start_server, stop_server

from ortspuls.demo.model import dry_spell, flood_peak

SEED = 7
YEAR = 2025
NO_MQTT = {"ORTSPULS_MQTT_PORT": "0", "ORTSPULS_MQTT_WS_PORT": "0"}


@dataclass
class Seeded:
    data_dir: Path
    start: date
    days: int
    seed: int
    output: str

    @property
    def args(self) -> list[str]:
        return ["--data-dir", str(self.data_dir)]

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        with sqlite3.connect(self.data_dir / "ortspuls.sqlite3") as conn:
            return conn.execute(query, params).fetchall()


def seed_demo(data_dir: Path, start: date | None, days: float, seed: int = SEED) -> Seeded:
    args = ["demo", "seed", "--data-dir", str(data_dir), "--days", str(days),
            "--seed", str(seed)]
    if start is not None:
        args += ["--start", start.isoformat()]
    result = run_cli(*args)
    return Seeded(data_dir, start or date.today(), int(days), seed, result.stdout)


def flood_start() -> date:
    return flood_peak(SEED, YEAR) - timedelta(days=3)


def dry_start() -> date:
    return dry_spell(SEED, YEAR)[0] + timedelta(days=2)


@pytest.fixture(scope="session")
def summer(tmp_path_factory) -> Seeded:
    """A week inside the dry spell of 2025."""
    return seed_demo(tmp_path_factory.mktemp("demo-summer"), dry_start(), 7)


@pytest.fixture(scope="session")
def flood(tmp_path_factory) -> Seeded:
    """Five days around the flood crest of 2025."""
    return seed_demo(tmp_path_factory.mktemp("demo-flood"), flood_start(), 5)


@pytest.fixture(scope="session")
def summer_server(summer: Seeded) -> Iterator[Server]:
    """The summer week served (without the simulator: the history alone)."""
    srv = start_server(summer.data_dir, summer.args, NO_MQTT)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def flood_server(flood: Seeded) -> Iterator[Server]:
    srv = start_server(flood.data_dir, flood.args, NO_MQTT)
    yield srv
    stop_server(srv)
