"""Automatic provisioning: a new device becomes a Thing (with its Location), a Sensor and one
Datastream per decoded field, created through the SensorThings write path (`sta/write.py`) in the
ingest batch's transaction.

ObservedProperties are shared by name and definition within a tenant, Sensors by model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ortspuls.db.schema import entity_tables
from ortspuls.ingest import tables as t
from ortspuls.ingest.adapters import Uplink
from ortspuls.ingest.mapping import MappedValue
from ortspuls.ingest.registry import Device, Profile, Registry
from ortspuls.ingest.units import UNKNOWN_UNIT
from ortspuls.model import ENTITY_TYPES
from ortspuls.sta.write import WriteContext, create

NETWORK_NAMES = {"ttn": "The Things Stack", "chirpstack": "ChirpStack", "http": "HTTP-Abruf"}


def location_entity(name: str, location: dict) -> dict[str, Any]:
    # Two-dimensional: the altitude goes to the properties (spatial columns are 2D).
    coordinates = [location["longitude"], location["latitude"]]
    source = location.get("source")
    if source == "gateway":
        description = (f"ungefährer Standort: Gateway {location.get('gateway') or ''} "
                       "(approximate: location of the receiving gateway)").replace("  ", " ")
    elif source == "network":
        description = "vom Netzwerk bestimmter Standort (location solved by the network)"
    else:
        description = "Standort aus dem Geräteregister (location from the device registry)"
    return {
        "name": f"Standort {name}",
        "description": description,
        "encodingType": "application/geo+json",
        "location": {"type": "Point", "coordinates": coordinates},
        "properties": {k: v for k, v in (("source", source or "device"),
                                         ("altitude", location.get("altitude"))) if v is not None},
    }


def sensor_name(uplink: Uplink, profile: Profile | None) -> tuple[str, dict[str, Any]]:
    """The Sensor (device model) an uplink's device is an instance of."""
    info = profile.sensor if profile else {}
    if info.get("name"):
        name = info["name"]
    elif uplink.brand and uplink.model:
        name = f"{uplink.brand} {uplink.model}"
    elif profile is not None:
        name = profile.name
    elif uplink.profile_name:
        name = uplink.profile_name
    else:
        name = f"LoRaWAN-Gerät {uplink.dev_eui}" if uplink.network != "http" else (
            f"HTTP-Quelle {uplink.dev_eui}")
    url = info.get("dataSheetURL") or info.get("productURL")
    description = info.get("description") or (
        f"{name} (Gerätemodell / device model)" if uplink.network != "http"
        else f"{name} (HTTP-Datenquelle / HTTP data source)")
    body = {
        "name": name,
        "description": description,
        "encodingType": "application/pdf" if url and url.lower().endswith(".pdf") else (
            "text/html" if url else "text/plain"),
        "metadata": url or description,
    }
    props = {k: v for k, v in (("vendor", uplink.brand), ("model", uplink.model),
                               ("productURL", info.get("productURL"))) if v}
    if props:
        body["properties"] = props
    return name, body


async def ensure_thing(ctx: WriteContext, registry: Registry, device: Device, uplink: Uplink
                       ) -> None:
    """The device's Thing (and, without a location, a FeatureOfInterest of its own)."""
    if device.thing_id is not None:
        return
    network = NETWORK_NAMES.get(uplink.network, uplink.network)
    properties: dict[str, Any] = {"devEui": device.dev_eui, "network": uplink.network}
    properties.update({k: v for k, v in uplink.ids.items() if isinstance(v, str)})
    if uplink.brand:
        properties["vendor"] = uplink.brand
    if uplink.model:
        properties["model"] = uplink.model
    if uplink.tags:
        properties["tags"] = uplink.tags
    body: dict[str, Any] = {
        "name": device.name,
        "description": (f"Gerät {device.dev_eui}, angebunden über {network} "
                        f"(device {device.dev_eui}, connected through {network})"),
        "properties": properties,
    }
    location = uplink.location or device.network.get("location")
    if location:
        body["Locations"] = [location_entity(device.name, location)]
    device.thing_id = await create(ctx, ENTITY_TYPES["Thing"], body)
    if not location:
        # Observations need a FeatureOfInterest; without a place, the device itself is one.
        device.feature_id = await create(ctx, ENTITY_TYPES["FeatureOfInterest"], {
            "name": device.name,
            "description": (f"Messobjekt von {device.name}, Standort unbekannt "
                            f"(feature of {device.name}, location unknown)"),
            "encodingType": "application/json",
            "feature": {"devEui": device.dev_eui},
        })
    await ctx.conn.execute(update(t.devices).where(t.devices.c.id == device.id).values(
        thing_id=device.thing_id, feature_id=device.feature_id))


async def _sensor_id(ctx: WriteContext, registry: Registry, device: Device, uplink: Uplink,
                     profile: Profile | None) -> int:
    if device.sensor_id is not None:
        return device.sensor_id
    name, body = sensor_name(uplink, profile)
    key = (ctx.tenant_id, name)
    sensor_id = registry.sensors.get(key)
    if sensor_id is None:
        sensors = entity_tables["Sensor"]
        sensor_id = (await ctx.conn.execute(select(sensors.c.id).where(
            sensors.c.tenant_id == ctx.tenant_id, sensors.c.name == name
        ).order_by(sensors.c.id).limit(1))).scalar()
        if sensor_id is None:
            sensor_id = await create(ctx, ENTITY_TYPES["Sensor"], body)
        registry.sensors[key] = sensor_id
    device.sensor_id = sensor_id
    await ctx.conn.execute(update(t.devices).where(t.devices.c.id == device.id).values(
        sensor_id=sensor_id))
    return sensor_id


async def _observed_property_id(ctx: WriteContext, registry: Registry, mapped: MappedValue
                                ) -> int:
    q = mapped.quantity
    definition = (mapped.rule.definition if mapped.rule and mapped.rule.definition
                  else q.definition)
    key = (ctx.tenant_id, q.name, definition)
    found = registry.observed_properties.get(key)
    if found is not None:
        return found
    ops = entity_tables["ObservedProperty"]
    found = (await ctx.conn.execute(select(ops.c.id).where(
        ops.c.tenant_id == ctx.tenant_id, ops.c.name == q.name, ops.c.definition == definition
    ).order_by(ops.c.id).limit(1))).scalar()
    if found is None:
        found = await create(ctx, ENTITY_TYPES["ObservedProperty"], {
            "name": q.name, "definition": definition, "description": q.description})
    registry.observed_properties[key] = found
    return found


def unit_known(mapped: MappedValue) -> bool:
    return mapped.quantity.boolean or mapped.unit != UNKNOWN_UNIT.as_sta()


async def ensure_datastream(ctx: WriteContext, registry: Registry, device: Device,
                            uplink: Uplink, profile: Profile | None, mapped: MappedValue) -> int:
    """The Datastream of one field of a device, created on first sight."""
    found = device.fields.get(mapped.field)
    if found is not None:
        return found
    await ensure_thing(ctx, registry, device, uplink)
    sensor_id = await _sensor_id(ctx, registry, device, uplink, profile)
    op_id = await _observed_property_id(ctx, registry, mapped)
    known = unit_known(mapped)
    q = mapped.quantity
    datastream_id = await create(ctx, ENTITY_TYPES["Datastream"], {
        "name": f"{device.name} – {q.name}",
        "description": (f"{q.description}: Feld „{mapped.field}“ von {device.name} "
                        f"(field '{mapped.field}' of {device.name})"),
        "unitOfMeasurement": mapped.unit,
        "observationType": q.observation_type,
        "properties": {"ingest": {"devEui": device.dev_eui, "field": mapped.field,
                                  "unitKnown": known}},
        "Thing": {"@iot.id": device.thing_id},
        "Sensor": {"@iot.id": sensor_id},
        "ObservedProperty": {"@iot.id": op_id},
    })
    await ctx.conn.execute(insert(t.device_fields).values(
        tenant_id=ctx.tenant_id, device_id=device.id, field=mapped.field,
        datastream_id=datastream_id, unit_known=known, created_at=datetime.now(UTC)))
    device.fields[mapped.field] = datastream_id
    if not known and mapped.field not in device.unmapped:
        device.unmapped.append(mapped.field)
    return datastream_id


async def move_thing(ctx: WriteContext, device: Device, location: dict) -> None:
    """A new position for a device (ChirpStack location event): a new Location of its Thing."""
    if device.thing_id is None:
        return
    body = location_entity(device.name, location)
    body["Things"] = [{"@iot.id": device.thing_id}]
    await create(ctx, ENTITY_TYPES["Location"], body)
    # From now on the writer derives the FeatureOfInterest from the Thing's Location.
    device.feature_id = None
    await ctx.conn.execute(update(t.devices).where(t.devices.c.id == device.id).values(
        feature_id=None))


async def new_device_rows(conn: AsyncConnection, rows: list[dict]) -> list[int]:
    stmt = insert(t.devices).returning(t.devices.c.id, sort_by_parameter_order=True)
    return list((await conn.execute(stmt, rows)).scalars().all())
