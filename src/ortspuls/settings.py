"""All configuration in one place.

Values come, in rising priority, from the defaults below, an optional TOML file (`--config` or
`ORTSPULS_CONFIG`), environment variables `ORTSPULS_<NAME>` and command-line options. Nothing
else in Ortspuls reads the environment.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_PREFIX = "ORTSPULS_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    data_dir: Path = Path("ortspuls-data")
    # Empty: an SQLite database `ortspuls.sqlite3` in data_dir.
    database_url: str = ""
    # Optional read-only replica for queries.
    read_database_url: str = ""
    # The longest a read of a request may run (seconds, on the primary and the replica alike);
    # the database then stops it and the client gets a 400 saying how to narrow the query.
    # Writes, migrations and background work are never limited. 0: no limit.
    query_timeout: float = 20.0
    # The URL clients use to reach the server; empty: derived from each request and the
    # X-Forwarded-* headers of a trusted reverse proxy.
    public_base_url: str = ""
    trust_forwarded_headers: bool = True
    default_top: int = 100
    max_top: int = 10_000
    max_body_bytes: int = 32 * 1024 * 1024
    # For local experiments only: accept writes without an API key.
    allow_anonymous_write: bool = False
    # Observation writer: how long a batch may wait for more observations, and its size.
    writer_max_delay_ms: float = 2.0
    writer_max_batch: int = 5_000
    # Ingest (LoRaWAN webhooks, MQTT mode, pollers): the header that may carry an ingest token,
    # per-call limits of payload codecs, retention of the raw uplink log and of replay keys,
    # and whether this process may run MQTT subscribers and pollers.
    ingest_token_header: str = "X-Ortspuls-Token"
    codec_time_limit_ms: float = 100.0
    codec_memory_limit_mb: float = 16.0
    raw_log_retention_days: float = 7.0
    raw_log_max_rows: int = 1_000_000
    uplink_key_retention_days: float = 30.0
    ingest_background: bool = True
    log_level: str = "info"
    access_log: bool = False
    # SensorThings MQTT: the embedded broker's TCP port (0: no embedded broker) and its
    # MQTT-over-WebSocket port (0: none); or an external broker (mqtt://host:port, with
    # optional user:password@) that several API processes share instead.
    mqtt_port: int = 1883
    mqtt_ws_port: int = 9876
    mqtt_url: str = ""
    # The MQTT addresses clients use, listed in the service root (comma-separated); empty:
    # derived from the request's host and the ports above (or mqtt_url).
    mqtt_public_endpoints: str = ""
    # The town's time zone (IANA name): local days and months of the dashboard and its rollups.
    timezone: str = "Europe/Berlin"
    # Each worker's latest-value cache re-reads every Datastream's newest observation this often
    # (seconds), to pick up writes of other worker processes; 0 turns the refresh off.
    latest_refresh_seconds: float = 5.0
    # Dashboard pages: the town's name in titles; the map's tile URL template ({z}/{x}/{y}),
    # empty for a plain background that asks no third party; its attribution text; a GeoJSON
    # file with the town's outline drawn on the map; the feedback address (e-mail or URL) of
    # the accessibility statement.
    town_name: str = ""
    map_tile_url: str = ""
    map_tile_attribution: str = ""
    town_outline: str = ""
    accessibility_contact: str = ""
    # The demo town Musterstadt (`ortspuls serve --demo`): run its live simulator in this
    # process; demo_speed > 1 makes the simulated devices send that many times more often.
    demo: bool = False
    demo_speed: float = 1.0
    # Accounts (admin UI, /admin): a session ends session_hours after login or after
    # session_idle_minutes without a request; after login_max_failures wrong passwords for one
    # e-mail address (or login_max_failures_per_ip from one client address) within
    # login_window_minutes, further logins are refused until the window has passed.
    session_hours: float = 12.0
    session_idle_minutes: float = 60.0
    login_max_failures: int = 5
    login_max_failures_per_ip: int = 50
    login_window_minutes: float = 15.0

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "ortspuls.sqlite3"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.sqlite_path.resolve()}"

    def to_env(self) -> dict[str, str]:
        """The settings as environment variables, for worker processes."""
        env = {}
        for f in fields(self):
            value = getattr(self, f.name)
            env[ENV_PREFIX + f.name.upper()] = (
                ("true" if value else "false") if isinstance(value, bool) else str(value)
            )
        return env


def _convert(name: str, raw: Any, kind: Any) -> Any:
    try:
        if kind in (bool, "bool"):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind in (int, "int"):
            return int(raw)
        if kind in (float, "float"):
            return float(raw)
        if kind in (Path, "Path"):
            return Path(raw).expanduser()
        return str(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"setting {name!r}: {raw!r} is not a valid {kind}") from None


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
) -> Settings:
    """Merge defaults, TOML file, environment and explicit overrides (None values are skipped)."""
    environ = os.environ if environ is None else environ
    types = {f.name: f.type for f in fields(Settings)}
    values: dict[str, Any] = {}

    config_file = config_file or environ.get(ENV_PREFIX + "CONFIG")
    if config_file:
        path = Path(config_file)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"configuration file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"configuration file {path} is not valid TOML: {exc}") from None
        section = data.get("ortspuls", data)
        for key, raw in section.items():
            name = key.replace("-", "_")
            if name not in types:
                raise SettingsError(f"configuration file {path}: unknown setting {key!r}")
            values[name] = _convert(name, raw, types[name])

    for name, kind in types.items():
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = _convert(name, raw, kind)

    for name, raw in (overrides or {}).items():
        if raw is not None:
            if name not in types:
                raise SettingsError(f"unknown setting {name!r}")
            values[name] = _convert(name, raw, types[name])

    settings = Settings(**values)
    if not 1 <= settings.default_top <= settings.max_top:
        raise SettingsError("default_top must be between 1 and max_top")
    if settings.workers < 1:
        raise SettingsError("workers must be at least 1")
    if not (settings.query_timeout >= 0 and math.isfinite(settings.query_timeout)):
        raise SettingsError("query_timeout must be a number of seconds, e.g. 20 (0: no limit)")
    for name in ("mqtt_port", "mqtt_ws_port"):
        if not 0 <= getattr(settings, name) <= 65535:
            raise SettingsError(f"{name} must be a port number (0 turns it off)")
    if settings.mqtt_url and not settings.mqtt_url.startswith(("mqtt://", "tcp://")):
        raise SettingsError(f"mqtt_url {settings.mqtt_url!r} must look like mqtt://host:1883")
    try:
        ZoneInfo(settings.timezone)
    except (ValueError, ZoneInfoNotFoundError):
        raise SettingsError(f"timezone {settings.timezone!r} is not a known IANA time zone "
                            "(example: Europe/Berlin)") from None
    return dataclasses.replace(settings)
