"""The demo on the command line: `ortspuls demo seed` and the preparation of
`ortspuls serve --demo` (seed an empty data folder, then say where to look).

Without `--data-dir` or `--database-url` the demo lives in `./ortspuls-demo`, apart from a
town's real data in `./ortspuls-data`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import socket
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from ortspuls.settings import Settings

DEMO_DATA_DIR = Path("ortspuls-demo")
# Texts of the command line, German first with English beside it.
TEXTS = {
    "seeding": "Musterstadt wird angelegt (seeding the demo town): {first} – {last}, "
               "Seed {seed} …",
    "seeded": "Musterstadt angelegt (seeded) in {seconds} s: {devices} Geräte (devices), "
              "{datastreams} Datastreams, {observations} Beobachtungen (observations)",
    "events": "  {key}: {value}",
    "existing": "Musterstadt ist schon angelegt (the demo town exists): {path}",
    "other": "In dieser Datenbank liegen schon andere Daten (this database holds other data); "
             "die Demo braucht einen leeren Datenordner (the demo needs an empty data folder), "
             "z. B. (e.g.) --data-dir ./ortspuls-demo",
    "port": "MQTT-Port {wanted} ist belegt (in use), die Demo nimmt (the demo uses) {port}",
}


def add_commands(sub: Any, database_options: Callable[[argparse.ArgumentParser], None]) -> None:
    demo = sub.add_parser("demo", help="the demo town Musterstadt")
    dsub = demo.add_subparsers(dest="action", required=True)
    seed = dsub.add_parser("seed", help="seed Musterstadt into an empty database (no server)")
    database_options(seed)
    add_period_options(seed)


def add_period_options(parser: Any) -> None:
    """--years/--days, --start, --seed (on `demo seed`, and on `serve` for --demo)."""
    span = parser.add_mutually_exclusive_group()
    span.add_argument("--years", type=float, help="length of the history in years "
                                                  "(default 1; fractions allowed)")
    span.add_argument("--days", type=float, help="length of the history in days")
    parser.add_argument("--start", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="first day of the history (default: it ends now)")
    parser.add_argument("--seed", type=int, help="the model's seed (default 42): the same "
                                                 "seed and period give the same data")


class DemoCliError(Exception):
    """A problem the user can fix: printed as `ortspuls: …`, exit status 2."""


def _say(message: str) -> None:
    print(message, flush=True)


def _run(coroutine: Any) -> None:
    # Reported here rather than through ortspuls.cli.CliError: under `python -m ortspuls.cli`
    # that module runs as __main__ and its CliError is another class than the imported one.
    try:
        asyncio.run(coroutine)
    except DemoCliError as exc:
        print(f"ortspuls: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


async def _seed(db: Any, settings: Settings, args: argparse.Namespace, *, quiet_if_seeded: bool
                ) -> bool:
    """Seed if the database is empty; False if it holds the demo already."""
    from ortspuls.demo import seed as seeding

    state = await seeding.database_state(db)
    if state == "demo":
        if not quiet_if_seeded:
            raise DemoCliError(TEXTS["existing"].format(path=settings.effective_database_url))
        return False
    if state == "other":
        raise DemoCliError(TEXTS["other"])
    try:
        first, last = seeding.period(years=getattr(args, "years", None),
                                     days=getattr(args, "days", None),
                                     start=getattr(args, "start", None))
        seed_value = getattr(args, "seed", None)
        seed_value = seeding.DEFAULT_SEED if seed_value is None else seed_value
        from datetime import UTC, datetime

        _say(TEXTS["seeding"].format(
            first=datetime.fromtimestamp(first, UTC).strftime("%Y-%m-%d %H:%M UTC"),
            last=datetime.fromtimestamp(last, UTC).strftime("%Y-%m-%d %H:%M UTC"),
            seed=seed_value))
        report = await seeding.seed(db, settings, seed=seed_value, first=first, last=last,
                                    say=_say)
    except seeding.DemoError as exc:
        raise DemoCliError(str(exc)) from None
    _say(TEXTS["seeded"].format(seconds=report.seconds, devices=report.devices,
                                datastreams=report.datastreams,
                                observations=report.observations))
    for key, value in report.events.items():
        _say(TEXTS["events"].format(key=key, value=value))
    return True


def run(args: argparse.Namespace, settings: Settings, open_db: Callable) -> None:
    """`ortspuls demo seed`."""

    async def main() -> None:
        db = await open_db(settings)
        try:
            await _seed(db, settings, args, quiet_if_seeded=False)
        finally:
            await db.close()

    _run(main())


# ---------------------------------------------------------------------------------------------
# serve --demo


def _explicit(args: argparse.Namespace, name: str) -> bool:
    return getattr(args, name, None) is not None or f"ORTSPULS_{name.upper()}" in os.environ


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def demo_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    """The settings of a demo server: its own data folder, the town's name and outline, one
    process, and free MQTT ports if the usual ones are taken (and were not asked for)."""
    from ortspuls.demo.town import OUTLINE_FILE, TOWN_NAME

    changes: dict[str, Any] = {"demo": True, "workers": 1}
    if (not settings.database_url and not _explicit(args, "data_dir")
            and not getattr(args, "config", None) and settings.data_dir == Settings().data_dir):
        changes["data_dir"] = DEMO_DATA_DIR
    if not settings.town_name:
        changes["town_name"] = TOWN_NAME
    if not settings.town_outline:
        changes["town_outline"] = str(OUTLINE_FILE)
    if not settings.mqtt_url:
        for name in ("mqtt_port", "mqtt_ws_port"):
            port = getattr(settings, name)
            if port and not _explicit(args, name) and not _port_free(settings.host, port):
                changes[name] = _free_port(settings.host)
                _say(TEXTS["port"].format(wanted=port, port=changes[name]))
    return dataclasses.replace(settings, **changes)


def prepare_serve(settings: Settings, args: argparse.Namespace, open_db: Callable) -> Settings:
    """Before `serve --demo`: settings for the demo, the town seeded if the folder is empty,
    and where to look printed."""
    settings = demo_settings(settings, args)

    async def main() -> None:
        db = await open_db(settings)
        try:
            await _seed(db, settings, args, quiet_if_seeded=True)
        finally:
            await db.close()

    _run(main())
    _where_to_look(settings)
    return settings


def _where_to_look(settings: Settings) -> None:
    from ortspuls.demo.town import DEMO_EMAIL, DEMO_PASSWORD

    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    base = settings.public_base_url.rstrip("/") or f"http://{host}:{settings.port}"
    lines = [
        "",
        "Demostadt Musterstadt (demo town) — hier schauen (where to look):",
        f"  Dashboard:            {base}/",
        f"  Verwaltung (admin):   {base}/admin  — Login {DEMO_EMAIL} / {DEMO_PASSWORD} "
        "(nur für die Demo / demo only)",
        f"  SensorThings API:     {base}/v1.1",
    ]
    if settings.mqtt_url:
        lines.append(f"  MQTT:                 {settings.mqtt_url}")
    elif settings.mqtt_port:
        lines.append(f"  MQTT:                 mqtt://{host}:{settings.mqtt_port} (Topics z. B. "
                     "v1.1/Datastreams(1)/Observations)")
    faster = (f", {settings.demo_speed:g}× schneller / faster" if settings.demo_speed > 1
              else "")
    lines.append(f"  LoRaWAN-Webhooks:     {base}/ingest/ttn, {base}/ingest/chirpstack "
                 f"(simuliert, alle 10 Minuten / simulated, every 10 minutes{faster})")
    lines.append(f"  Daten (data):         {settings.effective_database_url}")
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        lines.append(f"  Achtung (caution): {settings.host} ist aus dem Netz erreichbar, das "
                     "Demo-Login ist öffentlich bekannt (reachable from the network; the demo "
                     "login is publicly known)")
    lines.append("")
    print("\n".join(lines), file=sys.stdout, flush=True)
