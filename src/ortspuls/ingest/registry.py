"""In-memory view of the ingest configuration, so an uplink needs no database lookups.

Devices (with their field -> Datastream map), device profiles, codecs, mapping rules and
integrations are cached per process. Every configuration change (CLI, admin) bumps
`ingest_state.config_version`; the pipeline reads that one number per batch and drops its caches
when it moved. Integrations are cached for a few seconds so a revoked token stops working soon.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ortspuls.ingest import tables as t
from ortspuls.ingest.adapters import Uplink
from ortspuls.ingest.codecs import Codec
from ortspuls.ingest.mapping import FieldRule

TOKEN_PREFIX = "opi_"
PREFIX_LENGTH = 12  # "opi_" + 8 characters: finds the integration, not a secret
INTEGRATION_CACHE_SECONDS = 5.0


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(slots=True)
class Integration:
    id: int
    tenant_id: int
    kind: str
    name: str
    token_hash: str
    options: dict[str, Any]

    def option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)


@dataclass(slots=True)
class Profile:
    id: int
    tenant_id: int
    name: str
    vendor_id: str | None
    model_id: str | None
    codec_id: int | None
    sensor: dict[str, Any]
    firmware_codecs: dict[str, int]


@dataclass(slots=True)
class Device:
    id: int
    tenant_id: int
    dev_eui: str
    name: str
    integration_id: int | None
    profile_id: int | None
    codec_id: int | None
    thing_id: int | None
    sensor_id: int | None
    feature_id: int | None
    variables: dict[str, Any]
    health: dict[str, Any]
    unmapped: list[str]
    fields: dict[str, int] = field(default_factory=dict)  # field -> Datastream id
    network: dict[str, Any] = field(default_factory=dict)


def device_from_row(row: Any) -> Device:
    return Device(
        id=row.id, tenant_id=row.tenant_id, dev_eui=row.dev_eui, name=row.name,
        integration_id=row.integration_id, profile_id=row.profile_id, codec_id=row.codec_id,
        thing_id=row.thing_id, sensor_id=row.sensor_id, feature_id=row.feature_id,
        variables=dict(row.variables or {}), health=dict(row.health or {}),
        unmapped=list(row.unmapped or []), network=dict(row.network or {}),
    )


class Registry:
    def __init__(self) -> None:
        self.version: int | None = None
        self._integrations: dict[str, tuple[float, list[Integration]]] = {}
        self.devices: dict[tuple[int, str], Device] = {}
        self.profiles: dict[int, Profile] = {}
        self._by_model: dict[tuple[int, str, str], Profile] = {}
        self._by_name: dict[tuple[int, str], Profile] = {}
        self.codecs: dict[int, Codec] = {}
        self._codec_names: dict[tuple[int, str], int] = {}
        # (tenant, "device"|"profile"|"tenant", id or 0) -> field -> rule
        self.rules: dict[tuple[int, str, int], dict[str, FieldRule]] = {}
        # Provisioning caches: ObservedProperties and Sensors reused by name.
        self.observed_properties: dict[tuple[int, str, str], int] = {}
        self.sensors: dict[tuple[int, str], int] = {}

    # -- integrations -----------------------------------------------------------------------

    async def integration_for_token(self, db, token: str) -> Integration | None:
        """The integration a token belongs to; the hash is compared in constant time."""
        if not token.startswith(TOKEN_PREFIX) or len(token) < PREFIX_LENGTH + 8:
            return None
        prefix = token[:PREFIX_LENGTH]
        now = time.monotonic()
        cached = self._integrations.get(prefix)
        if cached is None or cached[0] < now:
            async with db.read() as conn:
                rows = (await conn.execute(select(
                    t.integrations.c.id, t.integrations.c.tenant_id, t.integrations.c.kind,
                    t.integrations.c.name, t.integrations.c.token_hash, t.integrations.c.options,
                ).where(t.integrations.c.token_prefix == prefix,
                        t.integrations.c.revoked_at.is_(None)))).all()
            found = [Integration(r.id, r.tenant_id, r.kind, r.name, r.token_hash,
                                 dict(r.options or {})) for r in rows]
            if len(self._integrations) > 10_000:
                self._integrations.clear()
            cached = (now + INTEGRATION_CACHE_SECONDS, found)
            self._integrations[prefix] = cached
        digest = hash_token(token)
        match = None
        for integration in cached[1]:
            if hmac.compare_digest(integration.token_hash, digest):
                match = integration
        return match

    async def integrations_with(self, conn: AsyncConnection, option: str) -> list[Integration]:
        rows = (await conn.execute(select(
            t.integrations.c.id, t.integrations.c.tenant_id, t.integrations.c.kind,
            t.integrations.c.name, t.integrations.c.token_hash, t.integrations.c.options,
        ).where(t.integrations.c.revoked_at.is_(None)))).all()
        out = []
        for r in rows:
            options = dict(r.options or {})
            if options.get(option):
                out.append(Integration(r.id, r.tenant_id, r.kind, r.name, r.token_hash,
                                       options))
        return out

    # -- configuration version --------------------------------------------------------------

    async def refresh(self, conn: AsyncConnection) -> bool:
        """Reload the configuration if another process (or the CLI) changed it."""
        version = (await conn.execute(select(t.ingest_state.c.config_version)
                                      .where(t.ingest_state.c.id == 1))).scalar()
        if version == self.version:
            return False
        await self._load_config(conn)
        self.version = version
        return True

    async def changed(self, conn: AsyncConnection) -> bool:
        """Whether the configuration moved since it was loaded (one small read)."""
        version = (await conn.execute(select(t.ingest_state.c.config_version)
                                      .where(t.ingest_state.c.id == 1))).scalar()
        return version != self.version

    def invalidate(self) -> None:
        """Forget everything cached (after a failed batch, or a change seen on the event bus)."""
        self.version = None
        self.devices.clear()
        self.observed_properties.clear()
        self.sensors.clear()
        self._integrations.clear()

    async def _load_config(self, conn: AsyncConnection) -> None:
        self.devices.clear()
        self.observed_properties.clear()
        self.sensors.clear()
        self._integrations.clear()
        self.codecs = {r.id: Codec(r.id, r.name, r.script, r.digest) for r in await conn.execute(
            select(t.codecs.c.id, t.codecs.c.name, t.codecs.c.script, t.codecs.c.digest))}
        self._codec_names = {}
        for r in await conn.execute(select(t.codecs.c.id, t.codecs.c.tenant_id,
                                           t.codecs.c.name)):
            self._codec_names[(r.tenant_id, r.name)] = r.id
        self.profiles, self._by_model, self._by_name = {}, {}, {}
        for r in await conn.execute(select(t.device_profiles)):
            options = r.options or {}
            profile = Profile(r.id, r.tenant_id, r.name, r.vendor_id, r.model_id, r.codec_id,
                              dict(r.sensor or {}),
                              dict(options.get("firmware_codecs") or {}))
            self.profiles[r.id] = profile
            self._by_name[(r.tenant_id, r.name)] = profile
            if r.vendor_id and r.model_id:
                self._by_model[(r.tenant_id, r.vendor_id.lower(), r.model_id.lower())] = profile
        self.rules = {}
        for r in await conn.execute(select(t.field_mappings)):
            if r.device_id is not None:
                scope = (r.tenant_id, "device", r.device_id)
            elif r.profile_id is not None:
                scope = (r.tenant_id, "profile", r.profile_id)
            else:
                scope = (r.tenant_id, "tenant", 0)
            self.rules.setdefault(scope, {})[r.field] = FieldRule(
                r.field, bool(r.ignore), r.name, r.definition, r.unit, r.scale, r.offset,
                r.expression)

    # -- devices ----------------------------------------------------------------------------

    async def load_devices(self, conn: AsyncConnection, keys: set[tuple[int, str]]) -> None:
        """Load the devices not cached yet (one query for a whole batch)."""
        missing = [k for k in keys if k not in self.devices]
        if not missing:
            return
        by_tenant: dict[int, list[str]] = {}
        for tenant, eui in missing:
            by_tenant.setdefault(tenant, []).append(eui)
        loaded: dict[int, Device] = {}
        for tenant, euis in by_tenant.items():
            for chunk in _chunks(euis, 500):
                rows = await conn.execute(select(t.devices).where(
                    t.devices.c.tenant_id == tenant, t.devices.c.dev_eui.in_(chunk)))
                for row in rows:
                    device = device_from_row(row)
                    loaded[device.id] = device
        for chunk in _chunks(sorted(loaded), 500):
            for row in await conn.execute(select(
                    t.device_fields.c.device_id, t.device_fields.c.field,
                    t.device_fields.c.datastream_id).where(
                    t.device_fields.c.device_id.in_(chunk))):
                loaded[row.device_id].fields[row.field] = row.datastream_id
        for device in loaded.values():
            self.devices[(device.tenant_id, device.dev_eui)] = device

    def device(self, tenant_id: int, dev_eui: str) -> Device | None:
        return self.devices.get((tenant_id, dev_eui))

    # -- profiles, codecs, rules ------------------------------------------------------------

    def profile_for(self, tenant_id: int, uplink: Uplink, device: Device | None) -> Profile | None:
        if device is not None and device.profile_id is not None:
            found = self.profiles.get(device.profile_id)
            if found is not None:
                return found
        if uplink.brand and uplink.model:
            found = self._by_model.get((tenant_id, uplink.brand.lower(), uplink.model.lower()))
            if found is not None:
                return found
        if uplink.profile_name:
            return self._by_name.get((tenant_id, uplink.profile_name))
        return None

    def codec_for(self, integration: Integration, uplink: Uplink, device: Device | None,
                  profile: Profile | None) -> Codec | None:
        if device is not None and device.codec_id is not None and device.codec_id in self.codecs:
            return self.codecs[device.codec_id]
        if profile is not None:
            codec_id = None
            if uplink.firmware:
                codec_id = profile.firmware_codecs.get(uplink.firmware)
            codec_id = codec_id or profile.codec_id
            if codec_id in self.codecs:
                return self.codecs[codec_id]
        default = integration.option("codec")
        if default:
            codec_id = self._codec_names.get((integration.tenant_id, default))
            if codec_id in self.codecs:
                return self.codecs[codec_id]
        return None

    def rules_for(self, device: Device, profile: Profile | None) -> dict[str, FieldRule]:
        from ortspuls.ingest.mapping import merge_rules

        return merge_rules(
            self.rules.get((device.tenant_id, "device", device.id)),
            self.rules.get((device.tenant_id, "profile", profile.id)) if profile else None,
            self.rules.get((device.tenant_id, "tenant", 0)),
        )


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


async def bump_config_version(conn: AsyncConnection) -> None:
    """Tell every server process to reload the ingest configuration."""
    await conn.execute(update(t.ingest_state).where(t.ingest_state.c.id == 1).values(
        config_version=t.ingest_state.c.config_version + 1))
