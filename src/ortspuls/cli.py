"""The `ortspuls` command line: serve, migrate, and API key administration."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import socket
import sys
from collections.abc import Sequence
from datetime import date

from ortspuls import __version__
from ortspuls.settings import Settings, SettingsError, load_settings


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def _database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML configuration file (also ORTSPULS_CONFIG)")
    parser.add_argument("--data-dir", help="folder for the SQLite database and other data "
                                           "(default ./ortspuls-data)")
    parser.add_argument("--database-url", help="sqlite:///path or postgresql://user@host/db")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ortspuls", description="Ortspuls urban data platform")
    parser.add_argument("--version", action="version", version=f"ortspuls {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    _database_options(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP port (default 8000)")
    serve.add_argument("--workers", type=int, help="number of API processes (default 1)")
    serve.add_argument("--read-database-url", help="read-only replica for queries")
    serve.add_argument("--query-timeout", type=float, metavar="SECONDS",
                       help="stop a request's read after this long with a 400 (default 20; "
                            "0: no limit)")
    serve.add_argument("--public-base-url", help="URL clients use, e.g. https://daten.example.de")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--mqtt-port", type=int,
                       help="port of the embedded MQTT broker (default 1883; 0: no MQTT)")
    serve.add_argument("--mqtt-ws-port", type=int,
                       help="MQTT-over-WebSocket port of the embedded broker "
                            "(default 9876; 0: off)")
    serve.add_argument("--mqtt-url", help="use an external MQTT broker instead, e.g. "
                                          "mqtt://localhost:1883 (Mosquitto, EMQX)")
    serve.add_argument("--demo", action="store_true",
                       help="the demo town Musterstadt: seed an empty data folder (default "
                            "./ortspuls-demo) with a year of data, then serve it with live "
                            "simulated sensors")
    from ortspuls.demo import cli as demo_cli

    demo_cli.add_period_options(serve.add_argument_group(
        "demo town", "with --demo, when its data folder is still empty"))

    migrate = sub.add_parser("migrate", help="create or upgrade the database schema")
    _database_options(migrate)

    partitions = sub.add_parser(
        "partitions", help="PostgreSQL: list, create or detach the monthly observation partitions")
    _database_options(partitions)
    partitions.add_argument("--ensure", type=int, metavar="MONTHS",
                            help="create partitions from this month to MONTHS months ahead")
    partitions.add_argument("--detach-before", type=date.fromisoformat, metavar="YYYY-MM-DD",
                            help="retention: detach every month that ends on or before DATE")
    partitions.add_argument("--drop", action="store_true",
                            help="with --detach-before: drop the months instead of keeping them "
                                 "as separate tables")

    apikey = sub.add_parser("apikey", help="manage API keys")
    key_sub = apikey.add_subparsers(dest="action", required=True)
    create = key_sub.add_parser("create", help="create a key; it is printed once")
    _database_options(create)
    create.add_argument("--name", required=True)
    create.add_argument("--scope", default="write", choices=["read", "ingest", "write", "admin"])
    listing = key_sub.add_parser("list", help="list keys (never the keys themselves)")
    _database_options(listing)
    revoke = key_sub.add_parser("revoke", help="revoke a key by name")
    _database_options(revoke)
    revoke.add_argument("name")
    for action in (create, listing, revoke):
        action.add_argument("--tenant", help="the municipality the key belongs to (slug); "
                                             "default: the first one")

    from ortspuls.tenancy import cli as tenancy_cli

    tenancy_cli.add_commands(sub, _database_options)

    from ortspuls.ingest import cli as ingest_cli

    ingest_cli.add_commands(sub, _database_options)
    demo_cli.add_commands(sub, _database_options)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    keys = ("data_dir", "database_url", "host", "port", "workers", "read_database_url",
            "query_timeout", "public_base_url", "log_level", "mqtt_port", "mqtt_ws_port",
            "mqtt_url")
    overrides = {k: getattr(args, k, None) for k in keys}
    return load_settings(overrides, config_file=getattr(args, "config", None))


async def _open(settings: Settings, migrate: bool = True):
    from ortspuls.db.engine import Database
    from ortspuls.db.migrate import check, upgrade

    db = Database(settings.effective_database_url)
    try:
        if migrate:
            await upgrade(db)
        else:
            await check(db)
    except Exception:
        await db.close()
        raise
    return db


def _check_port(host: str, port: int, option: str = "--port") -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            env = "ORTSPULS_" + option.lstrip("-").replace("-", "_").upper()
            if exc.errno == errno.EADDRINUSE:
                raise CliError(f"port {port} on {host} is already in use by another program; "
                               f"choose another with {option} (or {env})") from None
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _check_mqtt(settings: Settings) -> None:
    """The MQTT side can start: free ports for the embedded broker, or a reachable broker."""
    if settings.mqtt_url:
        from ortspuls.mqtt.external import broker_address

        host, port = broker_address(settings.mqtt_url)
        try:
            socket.create_connection((host, port), timeout=5).close()
        except OSError as exc:
            raise CliError(f"cannot reach the MQTT broker at {host}:{port} (--mqtt-url): "
                           f"{exc.strerror or exc}") from None
        return
    if settings.mqtt_port == 0:
        return
    if settings.workers > 1:
        raise CliError("the embedded MQTT broker runs in one process: with --workers > 1 use an "
                       "external broker (--mqtt-url mqtt://host:1883) or --mqtt-port 0")
    _check_port(settings.host, settings.mqtt_port, "--mqtt-port")
    if settings.mqtt_ws_port:
        _check_port(settings.host, settings.mqtt_ws_port, "--mqtt-ws-port")


def cmd_serve(settings: Settings) -> None:
    import uvicorn

    _check_port(settings.host, settings.port)
    _check_mqtt(settings)

    cmd_migrate(settings, quiet_if_current=True)
    from ortspuls.web.assets import ensure_assets

    # The dashboard's browser bundle (npm, never committed) is built once, before listening.
    ensure_assets(lambda message: print(message, flush=True))
    # Worker processes read their settings from the environment.
    os.environ.update(settings.to_env())
    print(f"Ortspuls {__version__}: SensorThings API at "
          f"http://{settings.host}:{settings.port}/v1.1", flush=True)
    if settings.mqtt_url:
        print(f"SensorThings MQTT through the broker at {settings.mqtt_url}", flush=True)
    elif settings.mqtt_port:
        ws = (f", WebSocket ws://{settings.host}:{settings.mqtt_ws_port}"
              if settings.mqtt_ws_port else "")
        print(f"SensorThings MQTT at mqtt://{settings.host}:{settings.mqtt_port}{ws}", flush=True)
    uvicorn.run(
        "ortspuls.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers if settings.workers > 1 else None,
        log_level=settings.log_level,
        access_log=settings.access_log,
        loop="uvloop",
        http="httptools",
        lifespan="on",
    )


def cmd_migrate(settings: Settings, quiet_if_current: bool = False) -> None:
    from ortspuls.db.engine import Database
    from ortspuls.db.migrate import upgrade

    async def run() -> tuple[str | None, str]:
        db = Database(settings.effective_database_url)
        try:
            return await upgrade(db)
        finally:
            await db.close()

    before, after = asyncio.run(run())
    if before == after:
        if not quiet_if_current:
            print(f"database schema is up to date ({after})")
    else:
        print(f"database schema upgraded from {before or 'nothing'} to {after}")


def cmd_partitions(settings: Settings, args: argparse.Namespace) -> None:
    from ortspuls.db import partitions

    async def run() -> list[str]:
        db = await _open(settings)
        try:
            return await partitions.command(db, args.ensure, args.detach_before, args.drop)
        except partitions.PartitionError as exc:
            raise CliError(str(exc)) from None
        finally:
            await db.close()

    print("\n".join(asyncio.run(run())))


def cmd_apikey(settings: Settings, args: argparse.Namespace) -> None:
    from ortspuls.tenancy import apikeys

    async def run() -> None:
        db = await _open(settings)
        try:
            tenant_id = apikeys.DEFAULT_TENANT_ID
            if args.tenant:
                from ortspuls.tenancy.tenants import load_tenants

                async with db.read() as conn:
                    found = {t.slug: t.id for t in await load_tenants(conn)}.get(args.tenant)
                if found is None:
                    raise CliError(f"no tenant {args.tenant!r}; see `ortspuls tenant list`")
                tenant_id = found
            if args.action == "create":
                try:
                    key = await apikeys.create_key(db, args.name, args.scope, tenant_id)
                except apikeys.ApiKeyError as exc:
                    raise CliError(str(exc)) from None
                print(f"API key {args.name!r} with scope {args.scope!r} created. It is shown "
                      "only now; store it safely:")
                print(key)
            elif args.action == "list":
                rows = await apikeys.list_keys(db, tenant_id if args.tenant else None)
                if not rows:
                    print("no API keys")
                for row in rows:
                    state = "revoked" if row["revoked_at"] else "active"
                    print(f"{row['name']}\t{row['scope']}\t{row['prefix']}…\t{state}\t"
                          f"created {row['created_at']:%Y-%m-%d %H:%M}")
            elif args.action == "revoke":
                if not await apikeys.revoke_key(db, args.name, tenant_id):
                    raise CliError(f"no active API key named {args.name!r}")
                print(f"API key {args.name!r} revoked")
        finally:
            await db.close()

    asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = _settings(args)
        if args.command == "serve":
            if args.demo:
                from ortspuls.demo import cli as demo_cli

                # Check the port before seeding for a minute, not after.
                _check_port(settings.host, settings.port)
                settings = demo_cli.prepare_serve(settings, args, _open)
            cmd_serve(settings)
        elif args.command == "demo":
            from ortspuls.demo import cli as demo_cli

            demo_cli.run(args, settings, _open)
        elif args.command == "migrate":
            cmd_migrate(settings)
        elif args.command == "partitions":
            cmd_partitions(settings, args)
        elif args.command == "apikey":
            cmd_apikey(settings, args)
        elif args.command in ("tenant", "user"):
            from ortspuls.tenancy import cli as tenancy_cli

            tenancy_cli.run(args, settings, _open)
        elif args.command in ("integration", "devices", "codecs", "mapping", "poller"):
            from ortspuls.ingest import cli as ingest_cli

            ingest_cli.run(args, settings, _open)
    except (CliError, SettingsError) as exc:
        print(f"ortspuls: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from ortspuls.db.engine import DatabaseUrlError
        from ortspuls.db.migrate import SchemaOutdated

        if isinstance(exc, DatabaseUrlError | SchemaOutdated):
            print(f"ortspuls: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, OSError) or type(exc).__module__.startswith("sqlalchemy"):
            print(f"ortspuls: cannot use the database: {exc}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
