"""MQTT mode: subscribe to the network server's own broker instead of receiving webhooks.

The Things Stack publishes uplinks on `v3/{application id}@{tenant id}/devices/{device id}/up`,
ChirpStack on `application/{application id}/device/{DevEUI}/event/{up|status|join|location}`;
the message bodies are the same JSON as the webhooks', so the same adapters and the same
pipeline handle them. Each integration with MQTT options gets one subscriber task that
reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import orjson

from ortspuls.ingest.adapters import (
    chirpstack_device_event,
    chirpstack_uplink,
    tts_message_kind,
    tts_uplink,
)
from ortspuls.ingest.registry import Integration
from ortspuls.sta.errors import StaError

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 500


@dataclass(frozen=True, slots=True)
class MqttConfig:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    topic: str
    client_id: str | None

    @classmethod
    def of(cls, integration: Integration) -> MqttConfig:
        options: dict[str, Any] = integration.option("mqtt") or {}
        url = urlsplit(options.get("url") or "")
        if url.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not url.hostname:
            raise ValueError(f"MQTT URL {options.get('url')!r}: use mqtt://host:port or "
                             "mqtts://host:port")
        tls = url.scheme in ("mqtts", "ssl")
        topic = options.get("topic") or default_topic(integration.kind)
        return cls(url.hostname, url.port or (8883 if tls else 1883), tls,
                   options.get("username") or url.username,
                   options.get("password") or url.password, topic,
                   options.get("client_id"))


def default_topic(kind: str) -> str:
    return "v3/+/devices/+/up" if kind == "ttn" else "application/+/device/+/event/+"


def parse_message(kind: str, topic: str, payload: bytes) -> dict[str, Any] | None:
    """One broker message -> the pipeline item for it (None: not for us)."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise StaError("the MQTT message is not JSON") from None
    if not isinstance(message, dict):
        raise StaError("the MQTT message is not a JSON object")
    if kind == "ttn":
        if tts_message_kind(message) != "uplink_message":
            return None
        return {"uplink": tts_uplink(message)}
    event = topic.rsplit("/", 1)[-1]
    if event == "up":
        return {"uplink": chirpstack_uplink(message)}
    if event in ("status", "location", "join"):
        return {"event": chirpstack_device_event(event, message)}
    return None


class MqttManager:
    """One subscriber task per integration in MQTT mode."""

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self._tasks: dict[int, tuple[MqttConfig, asyncio.Task]] = {}
        self.received = 0

    def sync(self, integrations: list[Integration]) -> None:
        wanted: dict[int, tuple[Integration, MqttConfig]] = {}
        for integration in integrations:
            try:
                wanted[integration.id] = (integration, MqttConfig.of(integration))
            except ValueError as exc:
                log.warning("integration %s: %s", integration.name, exc)
        for ident, (config, task) in list(self._tasks.items()):
            if ident not in wanted or wanted[ident][1] != config:
                task.cancel()
                del self._tasks[ident]
        for ident, (integration, config) in wanted.items():
            if ident not in self._tasks:
                task = asyncio.get_running_loop().create_task(
                    self._loop(integration, config), name=f"mqtt-{integration.name}")
                self._tasks[ident] = (config, task)

    async def stop(self) -> None:
        tasks = [task for _, task in self._tasks.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def _loop(self, integration: Integration, config: MqttConfig) -> None:
        delay = 1.0
        in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        pending: set[asyncio.Task] = set()
        while True:
            try:
                async with aiomqtt.Client(
                    config.host, config.port, username=config.username,
                    password=config.password, identifier=config.client_id,
                    tls_context=ssl.create_default_context() if config.tls else None,
                ) as client:
                    await client.subscribe(config.topic, qos=1)
                    log.info("integration %s: subscribed to %s on %s:%d", integration.name,
                             config.topic, config.host, config.port)
                    delay = 1.0
                    async for message in client.messages:
                        await in_flight.acquire()
                        task = asyncio.get_running_loop().create_task(self._handle(
                            integration, str(message.topic), bytes(message.payload)))
                        pending.add(task)
                        task.add_done_callback(pending.discard)
                        task.add_done_callback(lambda _: in_flight.release())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("integration %s: MQTT connection to %s:%d failed (%s); retrying "
                            "in %.0f s", integration.name, config.host, config.port, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)

    async def _handle(self, integration: Integration, topic: str, payload: bytes) -> None:
        self.received += 1
        try:
            item = parse_message(integration.kind, topic, payload)
        except StaError as exc:
            log.warning("integration %s: message on %s refused: %s", integration.name, topic,
                        exc.message)
            return
        if item is None:
            return
        try:
            await self.pipeline.submit(integration.tenant_id, integration, **item)
        except Exception:
            log.exception("integration %s: message on %s not stored", integration.name, topic)
