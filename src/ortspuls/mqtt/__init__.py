"""The SensorThings MQTT extension: create Observations and receive updates over MQTT.

`MqttService` wires the parts into the application (see `app.py`):

- a broker: `embedded.EmbeddedBroker` (amqtt in this process, TCP and WebSocket) by default, or
  `external.ExternalBroker` (a client of Mosquitto, EMQX …) with `mqtt_url`;
- `intake.ObservationIntake`: published Observations -> the observation writer;
- `notify.Notifier`: event bus -> messages to the subscribed topics.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from ortspuls.mqtt.intake import ObservationIntake
from ortspuls.mqtt.notify import Notifier
from ortspuls.settings import Settings

log = logging.getLogger(__name__)

CONFORMANCE_CREATE = ("http://www.opengis.net/spec/iot_sensing/1.1/req/"
                      "create-observations-via-mqtt/observations-creation")
CONFORMANCE_RECEIVE = ("http://www.opengis.net/spec/iot_sensing/1.1/req/"
                       "receive-updates-via-mqtt/receive-updates")


def enabled(settings: Settings) -> bool:
    return bool(settings.mqtt_url) or settings.mqtt_port != 0


class MqttService:
    def __init__(self, settings: Settings, state: Any) -> None:
        self.settings = settings
        self.state = state
        self.intake = ObservationIntake(state.writer)
        self.broker: Any = None
        self.notifier: Notifier | None = None
        self._unsubscribe = None

    async def start(self) -> None:
        settings, state = self.settings, self.state
        if settings.mqtt_url:
            from ortspuls.mqtt.external import ExternalBroker

            self.broker = ExternalBroker(settings.mqtt_url, self.intake)
            subscriptions = None
        else:
            from ortspuls.mqtt.embedded import EmbeddedBroker, Hub

            self.broker = EmbeddedBroker(settings.host, settings.mqtt_port,
                                         settings.mqtt_ws_port, Hub(state.keys, self.intake))
            subscriptions = self.broker.subscriptions
        base = settings.public_base_url or f"http://{settings.host}:{settings.port}"
        # Visibility: internal changes reach only subscribers whose API key may see them.
        from ortspuls.tenancy.subscribers import SubscriberAudience

        audience = SubscriberAudience(state.db, getattr(self.broker, "clients", None))
        self.notifier = Notifier(self.broker.publish, state.db, base, subscriptions,
                                 audience=audience,
                                 publish_to=getattr(self.broker, "publish_to", None))
        await self.broker.start()
        self.intake.start()
        self.notifier.start()
        self._unsubscribe = state.bus.subscribe(self.notifier.on_events)

    async def stop(self) -> None:
        """Stop taking messages, store what arrived, then close the broker connection."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self.intake.stop()
        if self.notifier is not None:
            await self.notifier.stop()
        if self.broker is not None:
            await self.broker.stop()

    def endpoints(self, request: Any) -> dict[str, list[str]]:
        """The MQTT addresses for the service root, as the asking client sees the server."""
        settings = self.settings
        if settings.mqtt_public_endpoints:
            return {"endpoints": [e.strip() for e in settings.mqtt_public_endpoints.split(",")
                                  if e.strip()]}
        if settings.mqtt_url:
            from ortspuls.mqtt.external import public_url

            return {"endpoints": [public_url(settings.mqtt_url)]}
        from ortspuls.sta.http import external_base

        host = urlsplit(external_base(request)).hostname or settings.host
        if ":" in host:
            host = f"[{host}]"
        endpoints = [f"mqtt://{host}:{settings.mqtt_port}"]
        if settings.mqtt_ws_port:
            endpoints.append(f"ws://{host}:{settings.mqtt_ws_port}")
        return {"endpoints": endpoints}
