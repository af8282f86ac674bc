"""Tenancy commands of the `ortspuls` command line: tenant and user.

    ortspuls tenant add kreis-x --name "Landkreis X" --ags 09123000
    ortspuls tenant add musterstadt --name "Stadt Musterstadt" --parent kreis-x
    ortspuls tenant list
    ortspuls tenant set musterstadt --default-visibility internal
    ortspuls user add anna@musterstadt.de --tenant musterstadt --role admin   (asks for a password)
    printf '%s' "$PW" | ortspuls user add … --password-stdin
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable
from typing import Any

from ortspuls.settings import Settings
from ortspuls.tenancy.tables import ROLES

COMMANDS = ("tenant", "user")


def add_commands(sub: Any, database_options: Callable[[argparse.ArgumentParser], None]) -> None:
    tenant = sub.add_parser("tenant", help="municipalities and counties (tenants)")
    tsub = tenant.add_subparsers(dest="action", required=True)
    add = tsub.add_parser("add", help="add a municipality or a county")
    database_options(add)
    add.add_argument("slug", help="short name in URLs, e.g. musterstadt (/t/musterstadt/)")
    add.add_argument("--name", required=True, help='e.g. "Stadt Musterstadt"')
    add.add_argument("--parent", help="the county this municipality belongs to (its slug)")
    add.add_argument("--ags", help="official key: 8-digit AGS or 12-digit Regionalschlüssel")
    add.add_argument("--default-visibility", choices=["public", "internal"], default="public",
                     help="visibility of its new Things and Datastreams (default public)")
    listing = tsub.add_parser("list", help="list tenants")
    database_options(listing)
    change = tsub.add_parser("set", help="change a tenant's settings")
    database_options(change)
    change.add_argument("slug")
    change.add_argument("--default-visibility", choices=["public", "internal"], required=True)

    user = sub.add_parser("user", help="accounts for the admin UI")
    usub = user.add_subparsers(dest="action", required=True)
    uadd = usub.add_parser("add", help="create an account (or give an existing one a role)")
    database_options(uadd)
    uadd.add_argument("email")
    uadd.add_argument("--tenant", required=True, help="the municipality (slug)")
    uadd.add_argument("--role", required=True, choices=list(ROLES))
    uadd.add_argument("--name", default="", help="display name")
    uadd.add_argument("--operator", action="store_true",
                      help="also an operator of the installation (adds tenants, admin of all)")
    how = uadd.add_mutually_exclusive_group()
    how.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input instead of asking")
    how.add_argument("--no-password", action="store_true",
                     help="no password: the account logs in through an identity provider")


def _password(args: argparse.Namespace) -> str | None:
    from ortspuls.cli import CliError

    if args.no_password:
        return None
    if args.password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise CliError("no terminal to ask for the password: use --password-stdin (or "
                           "--no-password for an account of an identity provider)")
        password = getpass.getpass("Passwort / password: ")
        if getpass.getpass("Wiederholen / repeat: ") != password:
            raise CliError("the two passwords differ")
    return password


def run(args: argparse.Namespace, settings: Settings, open_db: Callable) -> None:
    from ortspuls.cli import CliError
    from ortspuls.tenancy import accounts, audit, tenants

    async def main() -> list[str]:
        db = await open_db(settings)
        try:
            if args.command == "tenant" and args.action == "add":
                tenant = await tenants.create_tenant(
                    db, args.slug, args.name, args.parent, args.ags,
                    default_public=args.default_visibility == "public")
                async with db.write() as conn:
                    await audit.record(conn, audit.Actor("system", None, "command line"),
                                       tenant.id, "create", "Tenant", tenant.id,
                                       {"slug": tenant.slug, "name": tenant.name})
                return [f"tenant {tenant.slug!r} ({tenant.name}) added with id {tenant.id}"]
            if args.command == "tenant" and args.action == "list":
                async with db.read() as conn:
                    rows = await tenants.load_tenants(conn)
                by_id = {t.id: t for t in rows}
                return [f"{t.slug}\t{t.name}\t"
                        f"{('member of ' + by_id[t.parent_id].slug) if t.parent_id else '-'}\t"
                        f"{t.ags or '-'}\t{'public' if t.default_public else 'internal'}"
                        for t in rows]
            if args.command == "tenant" and args.action == "set":
                async with db.write() as conn:
                    found = {t.slug: t for t in await tenants.load_tenants(conn)}.get(args.slug)
                    if found is None:
                        raise CliError(f"no tenant {args.slug!r}")
                    await tenants.set_default_public(conn, found.id,
                                                     args.default_visibility == "public")
                return [f"new Things and Datastreams of {args.slug!r} are "
                        f"{args.default_visibility}"]
            if args.command == "user" and args.action == "add":
                password = _password(args)
                hashed = await accounts.hash_password(password) if password is not None else None
                async with db.write() as conn:
                    found = {t.slug: t for t in await tenants.load_tenants(conn)}.get(args.tenant)
                    if found is None:
                        raise CliError(f"no tenant {args.tenant!r}; see `ortspuls tenant list`")
                    ident, created = await accounts.add_user(
                        conn, args.email, tenant_id=found.id, role=args.role,
                        password_hash=hashed, display_name=args.name, operator=args.operator)
                    await audit.record(conn, audit.Actor("system", None, "command line"),
                                       found.id, "create" if created else "update", "User",
                                       ident, {"email": args.email.strip().lower(),
                                               "role": args.role})
                what = "created" if created else "updated"
                return [f"account {args.email.strip().lower()} {what}: {args.role} of "
                        f"{found.slug}"]
            raise CliError(f"unknown command {args.command} {args.action}")
        except (tenants.TenantError, accounts.AccountError) as exc:
            raise CliError(str(exc)) from None
        finally:
            await db.close()

    for line in asyncio.run(main()):
        print(line)
