"""Ingest commands of the `ortspuls` command line: integration, devices, codecs, mapping, poller.

`ortspuls integration add ttn --name stadtwerke` prints the URL to paste into the network server
and the token once, the token alone on the last line so scripts can capture it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ortspuls.settings import Settings

COMMANDS = ("integration", "devices", "codecs", "mapping", "poller")


def add_commands(sub: Any, database_options: Callable[[argparse.ArgumentParser], None]) -> None:
    def command(parent: Any, name: str, help: str) -> argparse.ArgumentParser:
        parser = parent.add_parser(name, help=help)
        database_options(parser)
        parser.add_argument("--tenant", help="municipality (slug or id); default: the only one")
        return parser

    integration = sub.add_parser("integration", help="connect a LoRaWAN network server")
    isub = integration.add_subparsers(dest="action", required=True)
    add = command(isub, "add", "create an integration; prints the URL and the token once")
    add.add_argument("kind", choices=["ttn", "chirpstack"],
                     help="ttn: The Things Stack v3; chirpstack: ChirpStack v4")
    add.add_argument("--name", required=True)
    add.add_argument("--simulated", choices=["mark", "drop"], default="mark",
                     help="uplinks simulated in the TTS console: marked (default) or dropped")
    add.add_argument("--payload", choices=["decoded", "normalized"], default="decoded",
                     help="take Datastreams from the decoded (default) or normalized payload")
    add.add_argument("--codec", help="codec for devices without a profile")
    add.add_argument("--radio-datastreams", action="store_true",
                     help="also store RSSI and SNR as Datastreams")
    add.add_argument("--mqtt-url", help="MQTT mode: the network server's broker, "
                                        "mqtt://host:1883 or mqtts://host:8883")
    add.add_argument("--mqtt-username")
    add.add_argument("--mqtt-password")
    add.add_argument("--mqtt-topic", help="default: v3/+/devices/+/up (TTS) or "
                                          "application/+/device/+/event/+ (ChirpStack)")
    command(isub, "list", "list integrations (never their tokens)")
    revoke = command(isub, "revoke", "revoke an integration's token")
    revoke.add_argument("name")

    devices = sub.add_parser("devices", help="devices seen by the integrations")
    dsub = devices.add_subparsers(dest="action", required=True)
    listing = command(dsub, "list", "devices with their status and health")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    log = command(dsub, "log", "the newest raw uplinks of a device")
    log.add_argument("dev_eui")
    log.add_argument("--limit", type=int, default=20)
    log.add_argument("--json", action="store_true")
    dset = command(dsub, "set", "assign a profile, a codec or variables to a device")
    dset.add_argument("dev_eui")
    dset.add_argument("--profile")
    dset.add_argument("--codec")
    dset.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                      help="a device variable, e.g. mounting_height=2000 (repeatable)")

    codecs = sub.add_parser("codecs", help="payload codecs and device profiles")
    csub = codecs.add_subparsers(dest="action", required=True)
    imp = command(csub, "import", "import a local copy of the TTN Device Repository")
    imp.add_argument("path")
    cadd = command(csub, "add", "upload a codec (JavaScript, TTN Device Repository convention)")
    cadd.add_argument("--name", required=True)
    cadd.add_argument("--file", required=True)
    cadd.add_argument("--vendor", help="with --model: used for TTS uplinks with these "
                                       "version_ids brand_id/model_id")
    cadd.add_argument("--model")
    cadd.add_argument("--profile", help="device profile name (e.g. the ChirpStack device "
                                        "profile name)")
    command(csub, "list", "codecs and device profiles")

    mapping = sub.add_parser("mapping", help="mapping overrides for decoded fields")
    msub = mapping.add_subparsers(dest="action", required=True)
    mset = command(msub, "set", "set the rule for one field")
    mset.add_argument("field", help="decoded field, e.g. distance or air.temperature; for "
                                    "--derive the new field's name")
    scope = mset.add_mutually_exclusive_group()
    scope.add_argument("--device", help="DevEUI: only this device")
    scope.add_argument("--profile", help="only devices of this profile")
    mset.add_argument("--name", help="ObservedProperty / display name, e.g. Pegelstand")
    mset.add_argument("--definition", help="ObservedProperty definition (URI)")
    mset.add_argument("--unit", help="unit: a UCUM code or symbol, e.g. cm, Cel, %%, [ppm]")
    mset.add_argument("--scale", type=float, help="multiply values by this")
    mset.add_argument("--offset", type=float, help="then add this")
    mset.add_argument("--ignore", action="store_true", help="store no values of this field")
    mset.add_argument("--derive", metavar="EXPRESSION",
                      help="a derived field, e.g. 'mounting_height - distance'")
    mset.add_argument("--remove", action="store_true", help="remove the rule")
    command(msub, "list", "list mapping rules")

    poller = sub.add_parser("poller", help="HTTP pollers for JSON APIs")
    psub = poller.add_subparsers(dest="action", required=True)
    padd = command(psub, "add", "create or replace a poller")
    padd.add_argument("--name", required=True)
    padd.add_argument("--url", required=True)
    padd.add_argument("--interval", type=float, default=300.0, help="seconds (default 300)")
    padd.add_argument("--field", action="append", default=[], metavar="KEY=PATH",
                      help="e.g. free=$.carparks[?(@.id=='P1')].free (repeatable)")
    padd.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'")
    padd.add_argument("--time-path", help="path of the values' time (ISO 8601 or epoch s)")
    command(psub, "list", "list pollers and their state")


def _pairs(items: list[str], sep: str, what: str) -> dict[str, str]:
    from ortspuls.ingest.admin import AdminError

    out = {}
    for item in items:
        key, found, value = item.partition(sep)
        if not found or not key.strip():
            raise AdminError(f"{what} {item!r}: write it as NAME{sep}VALUE")
        out[key.strip()] = value.strip()
    return out


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _base_url(settings: Settings) -> str:
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://{host}:{settings.port}"


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "—"


def run(args: argparse.Namespace, settings: Settings, open_db: Callable) -> None:
    """Run one ingest command; a problem the user can fix exits with status 2 and a message."""
    from ortspuls.ingest import admin

    async def main() -> None:
        db = await open_db(settings)
        try:
            await _dispatch(args, settings, db)
        finally:
            await db.close()

    try:
        asyncio.run(main())
    except admin.AdminError as exc:
        print(f"ortspuls: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


async def _dispatch(args: argparse.Namespace, settings: Settings, db: Any) -> None:
    from ortspuls.ingest import admin

    tenant = getattr(args, "tenant", None)
    command, action = args.command, args.action
    if command == "integration" and action == "add":
        options: dict[str, Any] = {"simulated": args.simulated, "payload": args.payload,
                                   "codec": args.codec,
                                   "radio_datastreams": args.radio_datastreams or None}
        if args.mqtt_url:
            options["mqtt"] = {k: v for k, v in (
                ("url", args.mqtt_url), ("username", args.mqtt_username),
                ("password", args.mqtt_password), ("topic", args.mqtt_topic)) if v}
        _, token = await admin.create_integration(db, args.kind, args.name, tenant, options)
        base = _base_url(settings)
        path = "/ingest/ttn" if args.kind == "ttn" else "/ingest/chirpstack"
        network = "The Things Stack" if args.kind == "ttn" else "ChirpStack"
        print(f"Integration {args.name!r} ({network}) angelegt (created).")
        if args.mqtt_url:
            print(f"MQTT-Modus (MQTT mode): Ortspuls abonniert (subscribes to) {args.mqtt_url}")
        elif args.kind == "ttn":
            print(f"Webhook in der TTS-Konsole (webhook in the TTS console): base URL {base}"
                  f"{path}, uplink message enabled, additional header "
                  f"'Authorization: Bearer <token>' (or '{settings.ingest_token_header}: "
                  "<token>').")
            print(f"Ohne Header (without headers): base URL {base}{path}/<token>")
        else:
            print(f"HTTP-Integration in ChirpStack: endpoint {base}{path}, header "
                  f"'Authorization: Bearer <token>', payload encoding JSON.")
            print(f"Ohne Header (without headers): endpoint {base}{path}/<token>")
        print("Das Token wird nur jetzt angezeigt (the token is shown only now):")
        print(token)
    elif command == "integration" and action == "list":
        rows = await admin.list_integrations(db)
        if not rows:
            print("keine Integrationen (no integrations)")
        for r in rows:
            state = "widerrufen (revoked)" if r["revoked"] else "aktiv (active)"
            mode = "mqtt" if r["options"].get("mqtt") else "webhook"
            print(f"{r['name']}\t{r['kind']}\t{mode}\t{r['prefix']}…\t{state}\t"
                  f"zuletzt (last seen) {_when(r['last_seen_at'])}")
    elif command == "integration" and action == "revoke":
        await admin.revoke_integration(db, args.name, tenant)
        print(f"Integration {args.name!r} widerrufen (revoked)")
    elif command == "devices" and action == "list":
        rows = await admin.list_devices(db, tenant)
        if args.json:
            print(json.dumps(rows, default=str, ensure_ascii=False, indent=1))
            return
        if not rows:
            print("keine Geräte (no devices)")
        for r in rows:
            h = r["health"]
            battery = h.get("battery") or {}
            parts = [r["dev_eui"], r["name"], r["status"],
                     f"zuletzt {_when(r['last_seen_at'])}",
                     f"uplinks {r['uplinks']}", f"Fehler/errors {r['errors']}",
                     f"RSSI {h.get('rssi', '—')}", f"SNR {h.get('snr', '—')}",
                     f"Gateway {h.get('gateway', '—')}",
                     f"Batterie {battery.get('value', '—')} {battery.get('unit') or ''}".strip()]
            if r["unmapped"]:
                parts.append("nicht zugeordnet (unmapped): " + ", ".join(r["unmapped"]))
            if r["last_error"]:
                parts.append(f"Meldung (message): {r['last_error']}")
            print("\t".join(str(p) for p in parts))
    elif command == "devices" and action == "log":
        rows = await admin.device_log(db, args.dev_eui, tenant, args.limit)
        if args.json:
            print(json.dumps(rows, default=str, ensure_ascii=False, indent=1))
            return
        for r in rows:
            print(f"{_when(r['received_at'])}\tport {r['f_port']}\tfcnt {r['f_cnt']}\t"
                  f"{r['payload'] or '—'}\t{r['status']}\t"
                  f"{json.dumps(r['decoded'], ensure_ascii=False) if r['decoded'] else ''}"
                  f"{chr(9) + r['error'] if r['error'] else ''}")
    elif command == "devices" and action == "set":
        variables = {k: _number(v) for k, v in _pairs(args.var, "=", "variable").items()}
        await admin.set_device(db, args.dev_eui, tenant, profile=args.profile,
                               codec=args.codec, variables=variables)
        print(f"Gerät (device) {args.dev_eui} geändert (updated)")
    elif command == "codecs" and action == "import":
        report = await admin.import_repository(db, args.path, tenant)
        print(f"{report['codecs']} Codecs, {report['profiles']} Geräteprofile (device profiles) "
              f"importiert; Beispiele (examples): {report['examples_passed']} ok, "
              f"{len(report['examples_failed'])} abweichend (failed)")
        for line in report["examples_failed"] + report["problems"]:
            print(f"  {line}")
    elif command == "codecs" and action == "add":
        try:
            script = Path(args.file).read_text(encoding="utf-8")
        except OSError as exc:
            raise admin.AdminError(f"cannot read {args.file}: {exc.strerror}") from None
        await admin.add_codec(db, args.name, script, tenant, vendor=args.vendor,
                              model=args.model, profile=args.profile)
        print(f"Codec {args.name!r} gespeichert (saved)")
    elif command == "codecs" and action == "list":
        listing = await admin.list_codecs(db)
        for c in listing["codecs"]:
            print(f"codec\t{c['name']}\t{c['source']}\t{_when(c['updated_at'])}")
        for p in listing["profiles"]:
            print(f"profile\t{p['name']}\t{p['vendor'] or '—'}/{p['model'] or '—'}\t"
                  f"codec {p['codec'] or '—'}")
    elif command == "mapping" and action == "set":
        updated = await admin.set_mapping(
            db, args.field, tenant, device=args.device, profile=args.profile,
            ignore=args.ignore, name=args.name, definition=args.definition, unit=args.unit,
            scale=args.scale, offset=args.offset, expression=args.derive, remove=args.remove)
        verb = "entfernt (removed)" if args.remove else "gespeichert (saved)"
        print(f"Zuordnung für (mapping for) {args.field!r} {verb}; {updated} Datastream(s) "
              "angepasst (updated)")
    elif command == "mapping" and action == "list":
        for r in await admin.list_mappings(db, tenant):
            print("\t".join(f"{k}={v}" for k, v in r.items() if v not in (None, False)))
    elif command == "poller" and action == "add":
        fields = _pairs(args.field, "=", "field")
        headers = _pairs(args.header, ":", "header")
        await admin.add_poller(db, args.name, args.url, args.interval, fields, tenant,
                               headers=headers, time_path=args.time_path)
        print(f"Abruf (poller) {args.name!r} gespeichert (saved): alle (every) "
              f"{args.interval:g} s {args.url}")
    elif command == "poller" and action == "list":
        for r in await admin.list_pollers(db):
            print(f"{r['name']}\t{r['url']}\t{r['interval_s']:g} s\t"
                  f"ok {_when(r['last_ok_at'])}\tFehler/failures {r['failures']}\t"
                  f"{r['last_error'] or ''}")
