"""Managing ingest: integrations and their tokens, codecs (Device Repository import or upload),
device settings, mapping overrides and pollers. Used by the CLI now and the admin UI later.

Every change bumps the ingest configuration version in the same transaction, so running server
processes pick it up at their next batch.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ortspuls.db.engine import Database
from ortspuls.db.schema import DEFAULT_TENANT_ID, entity_tables, tenants
from ortspuls.ingest import tables as t
from ortspuls.ingest.codecs import Codec, CodecError, CodecRunner, script_digest
from ortspuls.ingest.mapping import ExpressionError, compile_expression
from ortspuls.ingest.pollers import PathError, parse_path
from ortspuls.ingest.registry import PREFIX_LENGTH, TOKEN_PREFIX, bump_config_version, hash_token
from ortspuls.ingest.units import unit_from_argument

KINDS = ("ttn", "chirpstack")
REGION = "EU863-870"
MAX_CODEC_BYTES = 512 * 1024


class AdminError(ValueError):
    """A request a clerk can correct; the message says how."""


def _now() -> datetime:
    return datetime.now(UTC)


async def tenant_id(conn: AsyncConnection, tenant: str | None) -> int:
    if tenant is None:
        return DEFAULT_TENANT_ID
    column = tenants.c.id if tenant.isdigit() else tenants.c.slug
    found = (await conn.execute(select(tenants.c.id).where(
        column == (int(tenant) if tenant.isdigit() else tenant)))).scalar()
    if found is None:
        raise AdminError(f"no municipality (tenant) {tenant!r}")
    return found


def new_token() -> str:
    return TOKEN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


# ---------------------------------------------------------------------------------------------
# Integrations


async def create_integration(db: Database, kind: str, name: str, tenant: str | None = None,
                             options: dict[str, Any] | None = None) -> tuple[int, str]:
    """Create an integration; returns its id and its token (shown once, stored hashed)."""
    if kind not in KINDS:
        raise AdminError(f"unknown network server {kind!r}; choose ttn or chirpstack")
    if not name or len(name) > 128:
        raise AdminError("an integration needs a name of 1 to 128 characters")
    options = {k: v for k, v in (options or {}).items() if v not in (None, "", {})}
    if options.get("simulated", "mark") not in ("mark", "drop"):
        raise AdminError("simulated uplinks are either marked (mark) or dropped (drop)")
    if options.get("payload", "decoded") not in ("decoded", "normalized"):
        raise AdminError("payload is decoded or normalized")
    token = new_token()
    async with db.write() as conn:
        tenant_ = await tenant_id(conn, tenant)
        exists = (await conn.execute(select(t.integrations.c.id).where(
            t.integrations.c.tenant_id == tenant_, t.integrations.c.name == name))).first()
        if exists:
            raise AdminError(f"an integration named {name!r} exists already")
        ident = (await conn.execute(insert(t.integrations).values(
            tenant_id=tenant_, kind=kind, name=name, token_prefix=token[:PREFIX_LENGTH],
            token_hash=hash_token(token), options=options, created_at=_now(),
        ).returning(t.integrations.c.id))).scalar_one()
        await bump_config_version(conn)
    return ident, token


async def list_integrations(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(select(t.integrations).order_by(t.integrations.c.id))
        out = []
        for r in rows:
            options = dict(r.options or {})
            if isinstance(options.get("mqtt"), dict) and options["mqtt"].get("password"):
                options["mqtt"] = {**options["mqtt"], "password": "***"}
            out.append({"id": r.id, "tenant_id": r.tenant_id, "kind": r.kind, "name": r.name,
                        "prefix": r.token_prefix, "options": options,
                        "created_at": r.created_at, "last_seen_at": r.last_seen_at,
                        "revoked": r.revoked_at is not None})
        return out


async def revoke_integration(db: Database, name: str, tenant: str | None = None) -> None:
    async with db.write() as conn:
        tenant_ = await tenant_id(conn, tenant)
        result = await conn.execute(update(t.integrations).where(
            t.integrations.c.tenant_id == tenant_, t.integrations.c.name == name,
            t.integrations.c.revoked_at.is_(None)).values(revoked_at=_now()))
        if not result.rowcount:
            raise AdminError(f"no active integration named {name!r}")
        await bump_config_version(conn)


# ---------------------------------------------------------------------------------------------
# Devices


async def list_devices(db: Database, tenant: str | None = None) -> list[dict[str, Any]]:
    async with db.read() as conn:
        tenant_ = await tenant_id(conn, tenant)
        d = t.devices
        rows = (await conn.execute(select(d).where(d.c.tenant_id == tenant_)
                                   .order_by(d.c.dev_eui))).all()
        profiles = {r.id: r.name for r in await conn.execute(
            select(t.device_profiles.c.id, t.device_profiles.c.name))}
        return [{
            "dev_eui": r.dev_eui, "name": r.name, "status": r.status,
            "last_error": r.last_error, "last_seen_at": r.last_seen_at,
            "uplinks": r.uplink_count, "errors": r.error_count, "thing_id": r.thing_id,
            "health": r.health or {}, "unmapped": r.unmapped or [],
            "profile": profiles.get(r.profile_id), "variables": r.variables or {},
            "network": r.network or {},
        } for r in rows]


async def _device(conn: AsyncConnection, tenant_: int, dev_eui: str) -> Any:
    key = dev_eui.strip()
    key = key.upper() if len(key) == 16 and all(c in "0123456789abcdefABCDEF" for c in key) \
        else key
    row = (await conn.execute(select(t.devices).where(
        t.devices.c.tenant_id == tenant_, t.devices.c.dev_eui == key))).first()
    if row is None:
        raise AdminError(f"no device {dev_eui!r}; `ortspuls devices list` shows the known ones")
    return row


async def device_log(db: Database, dev_eui: str, tenant: str | None = None,
                     limit: int = 20) -> list[dict[str, Any]]:
    """The newest raw uplinks of a device ("what did it send?")."""
    async with db.read() as conn:
        tenant_ = await tenant_id(conn, tenant)
        device = await _device(conn, tenant_, dev_eui)
        r = t.raw_uplinks
        rows = await conn.execute(select(r).where(r.c.device_id == device.id)
                                  .order_by(r.c.id.desc()).limit(limit))
        return [{"received_at": x.received_at, "f_port": x.f_port, "f_cnt": x.f_cnt,
                 "payload": x.payload, "decoded": x.decoded, "status": x.status,
                 "error": x.error, "meta": x.meta or {}} for x in rows]


async def set_device(db: Database, dev_eui: str, tenant: str | None = None, *,
                     profile: str | None = None, codec: str | None = None,
                     variables: dict[str, Any] | None = None) -> None:
    async with db.write() as conn:
        tenant_ = await tenant_id(conn, tenant)
        device = await _device(conn, tenant_, dev_eui)
        values: dict[str, Any] = {}
        if profile is not None:
            values["profile_id"] = await _profile_id(conn, tenant_, profile)
        if codec is not None:
            values["codec_id"] = await _codec_id(conn, tenant_, codec)
        if variables:
            values["variables"] = {**(device.variables or {}), **variables}
        if values:
            await conn.execute(update(t.devices).where(t.devices.c.id == device.id)
                               .values(values))
            await bump_config_version(conn)


async def _profile_id(conn: AsyncConnection, tenant_: int, name: str) -> int:
    found = (await conn.execute(select(t.device_profiles.c.id).where(
        t.device_profiles.c.tenant_id == tenant_, t.device_profiles.c.name == name))).scalar()
    if found is None:
        raise AdminError(f"no device profile {name!r}; `ortspuls codecs list` shows them")
    return found


async def _codec_id(conn: AsyncConnection, tenant_: int, name: str) -> int:
    found = (await conn.execute(select(t.codecs.c.id).where(
        t.codecs.c.tenant_id == tenant_, t.codecs.c.name == name))).scalar()
    if found is None:
        raise AdminError(f"no codec {name!r}; `ortspuls codecs list` shows them")
    return found


# ---------------------------------------------------------------------------------------------
# Codecs and device profiles


def _check_codec(name: str, script: str) -> None:
    if len(script.encode()) > MAX_CODEC_BYTES:
        raise AdminError(f"codec {name}: larger than {MAX_CODEC_BYTES // 1024} KiB")
    try:
        CodecRunner().check(Codec.of(0, name, script))
    except CodecError as exc:
        raise AdminError(f"codec {name}: {exc}") from None


async def _upsert_codec(conn: AsyncConnection, tenant_: int, name: str, script: str,
                        source: str, examples: list | None) -> int:
    now = _now()
    found = (await conn.execute(select(t.codecs.c.id).where(
        t.codecs.c.tenant_id == tenant_, t.codecs.c.name == name))).scalar()
    values = {"script": script, "digest": script_digest(script), "source": source,
              "examples": examples, "updated_at": now}
    if found is not None:
        await conn.execute(update(t.codecs).where(t.codecs.c.id == found).values(values))
        return found
    return (await conn.execute(insert(t.codecs).values(
        tenant_id=tenant_, name=name, created_at=now, **values).returning(t.codecs.c.id)
    )).scalar_one()


async def _upsert_profile(conn: AsyncConnection, tenant_: int, name: str, **values: Any) -> int:
    found = (await conn.execute(select(t.device_profiles.c.id).where(
        t.device_profiles.c.tenant_id == tenant_, t.device_profiles.c.name == name))).scalar()
    if found is not None:
        await conn.execute(update(t.device_profiles).where(t.device_profiles.c.id == found)
                           .values(values))
        return found
    return (await conn.execute(insert(t.device_profiles).values(
        tenant_id=tenant_, name=name, created_at=_now(), **values
    ).returning(t.device_profiles.c.id))).scalar_one()


async def add_codec(db: Database, name: str, script: str, tenant: str | None = None, *,
                    vendor: str | None = None, model: str | None = None,
                    profile: str | None = None) -> None:
    """Upload a codec; with --vendor/--model or --profile it also becomes a device profile's."""
    _check_codec(name, script)
    async with db.write() as conn:
        tenant_ = await tenant_id(conn, tenant)
        codec_id = await _upsert_codec(conn, tenant_, name, script, "upload", None)
        if profile or (vendor and model):
            await _upsert_profile(conn, tenant_, profile or f"{vendor}/{model}",
                                  vendor_id=vendor, model_id=model, codec_id=codec_id)
        await bump_config_version(conn)


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise AdminError(f"cannot read {path}: {exc}") from None


def _inside(root: Path, name: str) -> Path:
    path = (root / name).resolve()
    if not path.is_relative_to(root.resolve()):
        raise AdminError(f"{name!r} points outside {root}")
    return path


def check_examples(codec: Codec, examples: list | None) -> tuple[int, list[str]]:
    """Run a codec's Device Repository examples; returns (passed, failures)."""
    runner = CodecRunner()
    passed, failures = 0, []
    for example in examples or []:
        if not isinstance(example, dict) or not isinstance(example.get("input"), dict):
            continue
        data_in = example["input"]
        expected = example.get("output") or {}
        label = example.get("description") or str(data_in)
        try:
            decoded = runner.decode(codec, bytes(data_in.get("bytes") or []),
                                    int(data_in.get("fPort") or 0), _now())
        except CodecError as exc:
            if expected.get("errors"):
                passed += 1
            else:
                failures.append(f"{codec.name}: {label}: {exc}")
            continue
        except (TypeError, ValueError) as exc:
            failures.append(f"{codec.name}: {label}: bad example input ({exc})")
            continue
        if expected.get("errors"):
            failures.append(f"{codec.name}: {label}: expected errors, got data")
        elif "data" in expected and decoded.data != expected["data"]:
            failures.append(f"{codec.name}: {label}: got {decoded.data}, expected "
                            f"{expected['data']}")
        else:
            passed += 1
    return passed, failures


async def import_repository(db: Database, path: str | Path, tenant: str | None = None
                            ) -> dict[str, Any]:
    """Import codecs and device profiles from a local copy of the TTN Device Repository.

    Reads `vendor/<vendor>/index.yaml` (endDevices), each device's YAML (firmware versions with
    their EU863-870 codec) and each codec's YAML (uplinkDecoder.fileName and examples); the
    examples are run against the codec and reported.
    """
    root = Path(path)
    vendor_root = root / "vendor" if (root / "vendor").is_dir() else root
    if not vendor_root.is_dir():
        raise AdminError(f"{root} is not a folder; give the Device Repository folder")
    root_index = vendor_root / "index.yaml"
    index_doc = (_yaml(root_index) or {}) if root_index.is_file() else {}
    single = isinstance(index_doc, dict) and "endDevices" in index_doc  # one vendor's folder
    vendor_names: dict[str, str] = {}
    if not single and isinstance(index_doc, dict):
        for v in index_doc.get("vendors") or []:
            if isinstance(v, dict) and v.get("id"):
                vendor_names[str(v["id"])] = str(v.get("name") or v["id"])
    codecs_found: dict[str, tuple[str, list | None]] = {}
    profiles: list[dict[str, Any]] = []
    problems: list[str] = []
    folders = [vendor_root] if single else sorted(p for p in vendor_root.iterdir() if p.is_dir())
    for folder in folders:
        vendor = folder.name
        vindex = folder / "index.yaml"
        if not vindex.is_file():
            continue
        for device_id in (_yaml(vindex) or {}).get("endDevices") or []:
            device_file = folder / f"{device_id}.yaml"
            if not device_file.is_file():
                problems.append(f"{vendor}/{device_id}: no {device_file.name}")
                continue
            device = _yaml(device_file) or {}
            firmware_codecs: dict[str, str] = {}
            latest = None
            for fw in device.get("firmwareVersions") or []:
                region = (fw.get("profiles") or {}).get(REGION) or next(
                    iter((fw.get("profiles") or {}).values()), None)
                if isinstance(region, dict) and region.get("codec"):
                    firmware_codecs[str(fw.get("version"))] = region["codec"]
                    latest = region["codec"]
            for codec_name in set(firmware_codecs.values()):
                key = f"{vendor}/{codec_name}"
                if key in codecs_found:
                    continue
                codec_file = folder / f"{codec_name}.yaml"
                if not codec_file.is_file():
                    problems.append(f"{key}: no {codec_file.name}")
                    continue
                decoder = (_yaml(codec_file) or {}).get("uplinkDecoder") or {}
                if not decoder.get("fileName"):
                    problems.append(f"{key}: no uplinkDecoder")
                    continue
                js = _inside(folder, decoder["fileName"])
                try:
                    script = js.read_text(encoding="utf-8")
                except OSError as exc:
                    problems.append(f"{key}: {exc}")
                    continue
                codecs_found[key] = (script, decoder.get("examples"))
            vendor_name = vendor_names.get(vendor, vendor)
            profiles.append({
                "name": f"{vendor}/{device_id}", "vendor_id": vendor, "model_id": device_id,
                "codec": f"{vendor}/{latest}" if latest else None,
                "firmware": {fw: f"{vendor}/{c}" for fw, c in firmware_codecs.items()},
                "sensor": {k: v for k, v in (
                    ("name", f"{vendor_name} {device.get('name') or device_id}"),
                    ("description", device.get("description")),
                    ("productURL", device.get("productURL")),
                    ("dataSheetURL", device.get("dataSheetURL")),
                    ("sensors", device.get("sensors"))) if v},
            })
    passed, failures = 0, []
    for name, (script, examples) in codecs_found.items():
        try:
            _check_codec(name, script)
        except AdminError as exc:
            problems.append(str(exc))
            continue
        ok, bad = check_examples(Codec.of(0, name, script), examples)
        passed += ok
        failures.extend(bad)
    async with db.write() as conn:
        tenant_ = await tenant_id(conn, tenant)
        ids: dict[str, int] = {}
        for name, (script, examples) in codecs_found.items():
            if any(p.startswith(f"codec {name}:") for p in problems):
                continue
            ids[name] = await _upsert_codec(conn, tenant_, name, script, "repository", examples)
        for p in profiles:
            await _upsert_profile(
                conn, tenant_, p["name"], vendor_id=p["vendor_id"], model_id=p["model_id"],
                codec_id=ids.get(p["codec"]) if p["codec"] else None, sensor=p["sensor"],
                options={"firmware_codecs": {fw: ids[c] for fw, c in p["firmware"].items()
                                             if c in ids}})
        await bump_config_version(conn)
    return {"codecs": len(ids), "profiles": len(profiles), "examples_passed": passed,
            "examples_failed": failures, "problems": problems}


async def list_codecs(db: Database) -> dict[str, list[dict[str, Any]]]:
    async with db.read() as conn:
        codecs = [dict(r._mapping) for r in await conn.execute(select(
            t.codecs.c.id, t.codecs.c.tenant_id, t.codecs.c.name, t.codecs.c.source,
            t.codecs.c.updated_at).order_by(t.codecs.c.name))]
        names = {c["id"]: c["name"] for c in codecs}
        profiles = [{"name": r.name, "vendor": r.vendor_id, "model": r.model_id,
                     "codec": names.get(r.codec_id)} for r in await conn.execute(
            select(t.device_profiles).order_by(t.device_profiles.c.name))]
    return {"codecs": codecs, "profiles": profiles}


# ---------------------------------------------------------------------------------------------
# Mappings


async def set_mapping(db: Database, field: str, tenant: str | None = None, *,
                      device: str | None = None, profile: str | None = None,
                      ignore: bool = False, name: str | None = None,
                      definition: str | None = None, unit: str | None = None,
                      scale: float | None = None, offset: float | None = None,
                      expression: str | None = None, remove: bool = False) -> int:
    """Create, replace or remove a mapping rule; returns how many Datastreams were updated."""
    if not field or len(field) > 200:
        raise AdminError("a field name has 1 to 200 characters")
    if device and profile:
        raise AdminError("a mapping belongs to a device or a profile, not both")
    if expression is not None:
        try:
            compile_expression(expression)
        except ExpressionError as exc:
            raise AdminError(str(exc)) from None
    unit_value = unit_from_argument(unit).as_sta() if unit else None
    m = t.field_mappings
    async with db.write() as conn:
        tenant_ = await tenant_id(conn, tenant)
        device_row = await _device(conn, tenant_, device) if device else None
        profile_id = await _profile_id(conn, tenant_, profile) if profile else None
        scope = and_(m.c.tenant_id == tenant_, m.c.field == field,
                     m.c.device_id.is_(None) if device_row is None
                     else m.c.device_id == device_row.id,
                     m.c.profile_id.is_(None) if profile_id is None
                     else m.c.profile_id == profile_id)
        await conn.execute(m.delete().where(scope))
        updated = 0
        if not remove:
            now = _now()
            await conn.execute(insert(m).values(
                tenant_id=tenant_, device_id=device_row.id if device_row else None,
                profile_id=profile_id, field=field, ignore=ignore, name=name,
                definition=definition, unit=unit_value, scale=scale, offset=offset,
                expression=expression, created_at=now, updated_at=now))
            if unit_value or name:
                updated = await _update_datastreams(conn, tenant_, field, device_row,
                                                    profile_id, unit_value, name)
        await bump_config_version(conn)
    return updated


async def _update_datastreams(conn: AsyncConnection, tenant_: int, field: str, device_row: Any,
                              profile_id: int | None, unit: dict | None, name: str | None
                              ) -> int:
    """Existing Datastreams of the field take the new unit and name at once."""
    d, f = t.devices, t.device_fields
    query = select(f.c.datastream_id, d.c.id, d.c.name, d.c.unmapped).join(
        d, d.c.id == f.c.device_id).where(d.c.tenant_id == tenant_, f.c.field == field)
    if device_row is not None:
        query = query.where(d.c.id == device_row.id)
    elif profile_id is not None:
        query = query.where(d.c.profile_id == profile_id)
    ds = entity_tables["Datastream"]
    rows = (await conn.execute(query)).all()
    for row in rows:
        values: dict[str, Any] = {}
        if unit:
            values["unit_of_measurement"] = unit
        if name:
            values["name"] = f"{row.name} – {name}"
        await conn.execute(update(ds).where(ds.c.id == row.datastream_id).values(values))
        if unit:
            await conn.execute(update(f).where(f.c.datastream_id == row.datastream_id)
                               .values(unit_known=True))
            unmapped = [u for u in (row.unmapped or []) if u != field]
            await conn.execute(update(d).where(d.c.id == row.id).values(
                unmapped=unmapped or None))
    return len(rows)


async def list_mappings(db: Database, tenant: str | None = None) -> list[dict[str, Any]]:
    async with db.read() as conn:
        tenant_ = await tenant_id(conn, tenant)
        devices = {r.id: r.dev_eui for r in await conn.execute(
            select(t.devices.c.id, t.devices.c.dev_eui).where(t.devices.c.tenant_id == tenant_))}
        profiles = {r.id: r.name for r in await conn.execute(
            select(t.device_profiles.c.id, t.device_profiles.c.name))}
        rows = await conn.execute(select(t.field_mappings).where(
            t.field_mappings.c.tenant_id == tenant_).order_by(t.field_mappings.c.id))
        return [{"scope": (f"device {devices.get(r.device_id)}" if r.device_id
                           else f"profile {profiles.get(r.profile_id)}" if r.profile_id
                           else "all devices"),
                 "field": r.field, "ignore": r.ignore, "name": r.name, "unit": r.unit,
                 "scale": r.scale, "offset": r.offset, "expression": r.expression}
                for r in rows]


# ---------------------------------------------------------------------------------------------
# Pollers


async def add_poller(db: Database, name: str, url: str, interval_s: float,
                     fields: dict[str, str], tenant: str | None = None, *,
                     headers: dict[str, str] | None = None, time_path: str | None = None) -> None:
    if not name or len(name) > 128:
        raise AdminError("a poller needs a name of 1 to 128 characters")
    if not url.startswith(("http://", "https://")):
        raise AdminError("the poller URL must start with http:// or https://")
    if interval_s < 1:
        raise AdminError("the interval is at least 1 second")
    if not fields:
        raise AdminError("give at least one field: --field KEY=$.path.to.value")
    for path in [*fields.values(), *([time_path] if time_path else [])]:
        try:
            parse_path(path)
        except PathError as exc:
            raise AdminError(str(exc)) from None
    async with db.write() as conn:
        tenant_ = await tenant_id(conn, tenant)
        p = t.pollers
        exists = (await conn.execute(select(p.c.id).where(
            p.c.tenant_id == tenant_, p.c.name == name))).first()
        values = {"url": url, "interval_s": interval_s, "headers": headers or None,
                  "fields": [{"key": k, "path": v} for k, v in fields.items()],
                  "time_path": time_path, "enabled": True}
        if exists:
            await conn.execute(update(p).where(p.c.id == exists.id).values(values))
        else:
            await conn.execute(insert(p).values(tenant_id=tenant_, name=name,
                                                created_at=_now(), failures=0, **values))
        await bump_config_version(conn)


async def list_pollers(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(select(t.pollers).order_by(t.pollers.c.name))
        return [{"name": r.name, "url": r.url, "interval_s": r.interval_s,
                 "fields": r.fields, "last_ok_at": r.last_ok_at, "last_run_at": r.last_run_at,
                 "last_error": r.last_error, "failures": r.failures, "enabled": r.enabled}
                for r in rows]
