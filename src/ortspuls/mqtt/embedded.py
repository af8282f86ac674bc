"""The embedded MQTT broker (amqtt), running in the API process's event loop.

Two broker plugins connect it to Ortspuls:

- `StaAuthPlugin`: anyone may connect and subscribe (public data); a client that sends a
  password must send a valid API key (the user name is free), else the connection is refused.
- `StaTopicPlugin`: subscriptions under `v1.1/` must be SensorThings topics (others are refused
  with a SUBACK failure); clients may publish only to the Observation create topics, and those
  messages are not forwarded as they are: they go to the intake, which needs an API key with
  the `ingest` (or higher) scope, and subscribers then receive the stored Observation.

Listeners: TCP on `mqtt_port`, WebSocket (subprotocol `mqtt`) on `mqtt_ws_port`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from ortspuls.mqtt.intake import ObservationIntake
from ortspuls.mqtt.topics import PREFIX, TopicError, create_target, is_wildcard, parse_subscription
from ortspuls.tenancy.apikeys import KeyVerifier, Principal

log = logging.getLogger(__name__)


@dataclass
class Hub:
    """What the broker plugins need from the application."""

    keys: KeyVerifier
    intake: ObservationIntake


# amqtt builds its plugins from configuration; they find their Hub by this key.
_HUBS: dict[str, Hub] = {}


def _hub(config: Any) -> Hub:
    return _HUBS[config.hub]


async def _principal(keys: KeyVerifier, session: Session | None) -> Principal | None:
    password = getattr(session, "password", None) if session is not None else None
    if not password:
        return None
    if isinstance(password, bytes):
        password = password.decode("utf-8", "replace")
    return await keys.verify(password)


class StaAuthPlugin(BaseAuthPlugin):
    @dataclass
    class Config:
        hub: str = ""

    async def authenticate(self, *, session: Session) -> bool | None:
        if not getattr(session, "password", None):
            return True  # anonymous: may subscribe to public data
        principal = await _principal(_hub(self.config).keys, session)
        if principal is None:
            log.info("MQTT client %s refused: the password is not a valid API key",
                     session.client_id)
            return False
        return True


class StaTopicPlugin(BaseTopicPlugin):
    @dataclass
    class Config:
        hub: str = ""

    async def topic_filtering(self, *, session: Session | None = None, topic: str | None = None,
                              action: Action | None = None) -> bool | None:
        if topic is None:
            return False
        if action == Action.SUBSCRIBE:
            if topic.startswith(PREFIX) and not is_wildcard(topic):
                try:
                    parse_subscription(topic)
                except TopicError as exc:
                    log.info("MQTT subscription to %s refused: %s", topic, exc)
                    return False
            return True
        # Create topics are consumed by the server (on_broker_message_received); nothing a
        # client publishes is forwarded, so no one can fake SensorThings notifications.
        return action != Action.PUBLISH

    async def on_broker_message_received(self, *, client_id: str, message: Any) -> None:
        if message is None or not message.topic:
            return
        topic = message.topic
        if create_target(topic) is None:
            log.info("MQTT client %s published to %s, which is not an Observation create "
                     "topic; ignored", client_id, topic)
            return
        hub = _hub(self.config)
        session = self.context.get_session(client_id)
        principal = await _principal(hub.keys, session)
        if principal is None or not principal.allows("ingest"):
            hub.intake.reject(topic, f"client {client_id} has no API key with the ingest scope "
                                     "(send one as MQTT password)")
            return
        hub.intake.offer(topic, bytes(message.data or b""), principal.tenant_id)


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class EmbeddedBroker:
    """amqtt in this process; `publish` hands a message to the broker's fan-out."""

    def __init__(self, host: str, port: int, ws_port: int, hub: Hub) -> None:
        self.key = uuid.uuid4().hex
        _HUBS[self.key] = hub
        listeners: dict[str, Any] = {"default": {"type": "tcp", "bind": _bind(host, port)}}
        if ws_port:
            listeners["ws"] = {"type": "ws", "bind": _bind(host, ws_port)}
        plugin = {"hub": self.key}
        self.config = {
            "listeners": listeners,
            "plugins": {
                f"{__name__}.StaAuthPlugin": plugin,
                f"{__name__}.StaTopicPlugin": plugin,
            },
        }
        self.broker: Broker | None = None
        self._deliveries: set[asyncio.Task] = set()

    async def start(self) -> None:
        # amqtt reports every connection at INFO; keep the server log for what matters.
        for name in ("amqtt", "transitions"):
            if logging.getLogger(name).getEffectiveLevel() < logging.WARNING:
                logging.getLogger(name).setLevel(logging.WARNING)
        self.broker = Broker(self.config)
        await self.broker.start()

    async def stop(self) -> None:
        if self.broker is not None:
            await self.broker.shutdown()
            self.broker = None
        _HUBS.pop(self.key, None)

    async def publish(self, topic: str, payload: bytes) -> None:
        if self.broker is not None:
            # No QoS given: each subscriber gets the QoS it subscribed with.
            await self.broker.internal_message_broadcast(topic, payload)

    async def publish_to(self, topic: str, payload: bytes, client_ids: frozenset[str]) -> None:
        """Deliver to the connected subscribers among `client_ids` only (internal data that
        only their API keys may see)."""
        broker = self.broker
        if broker is None:
            return
        for topic_filter, subscribers in list(broker.subscriptions.items()):
            if not broker._matches(topic, topic_filter):
                continue
            for session, qos in subscribers:
                if session.client_id not in client_ids or \
                        session.transitions.state != "connected":
                    continue
                handler = broker._get_handler(session)
                if handler is not None:
                    task = asyncio.ensure_future(handler.mqtt_publish(topic, payload, qos,
                                                                      retain=False))
                    self._deliveries.add(task)
                    task.add_done_callback(self._deliveries.discard)

    async def clients(self) -> dict[str, Principal | None]:
        """The connected clients that sent an API key, with its Principal."""
        out: dict[str, Principal | None] = {}
        if self.broker is None:
            return out
        keys = _HUBS[self.key].keys
        for client_id, (session, _) in list(self.broker.sessions.items()):
            if getattr(session, "password", None) and \
                    session.transitions.state == "connected":
                out[client_id] = await _principal(keys, session)
        return out

    def subscriptions(self) -> Iterable[str]:
        return self.broker.subscriptions.keys() if self.broker is not None else ()
