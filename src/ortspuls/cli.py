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
    serve.add_argument("--public-base-url", help="URL clients use, e.g. https://daten.example.de")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])

    migrate = sub.add_parser("migrate", help="create or upgrade the database schema")
    _database_options(migrate)

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
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    keys = ("data_dir", "database_url", "host", "port", "workers", "read_database_url",
            "public_base_url", "log_level")
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


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CliError(f"port {port} on {host} is already in use by another program; "
                               "choose another with --port (or ORTSPULS_PORT)") from None
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def cmd_serve(settings: Settings) -> None:
    import uvicorn

    _check_port(settings.host, settings.port)

    cmd_migrate(settings, quiet_if_current=True)
    # Worker processes read their settings from the environment.
    os.environ.update(settings.to_env())
    print(f"Ortspuls {__version__}: SensorThings API at "
          f"http://{settings.host}:{settings.port}/v1.1", flush=True)
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


def cmd_apikey(settings: Settings, args: argparse.Namespace) -> None:
    from ortspuls.tenancy import apikeys

    async def run() -> None:
        db = await _open(settings)
        try:
            if args.action == "create":
                try:
                    key = await apikeys.create_key(db, args.name, args.scope)
                except apikeys.ApiKeyError as exc:
                    raise CliError(str(exc)) from None
                print(f"API key {args.name!r} with scope {args.scope!r} created. It is shown "
                      "only now; store it safely:")
                print(key)
            elif args.action == "list":
                rows = await apikeys.list_keys(db)
                if not rows:
                    print("no API keys")
                for row in rows:
                    state = "revoked" if row["revoked_at"] else "active"
                    print(f"{row['name']}\t{row['scope']}\t{row['prefix']}…\t{state}\t"
                          f"created {row['created_at']:%Y-%m-%d %H:%M}")
            elif args.action == "revoke":
                if not await apikeys.revoke_key(db, args.name):
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
            cmd_serve(settings)
        elif args.command == "migrate":
            cmd_migrate(settings)
        elif args.command == "apikey":
            cmd_apikey(settings, args)
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
