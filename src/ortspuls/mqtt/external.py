"""An external MQTT broker (Mosquitto, EMQX …) shared by several API processes.

The server connects as an MQTT 5 client (paho-mqtt, its network loop in a background thread):

- it takes Observations to create from the shared subscriptions `$share/ortspuls/v1.1/+/
  Observations` and `$share/ortspuls/v1.1/Observations`, so each published Observation is
  stored by exactly one of the API processes;
- it publishes notifications to all topic forms of each change (see `notify.py`), marked with
  the MQTT 5 user property `ortspuls=notification`, so that they are never taken for Observations
  to create when they come back on the create topics.

The server cannot see who published a message on the external broker. Who may publish to the
create topics (and who may subscribe to what) is decided by the broker's own access control
(Mosquitto: `password_file` and `acl_file`); the server stores what reaches it there.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import uuid
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ortspuls.mqtt.intake import ObservationIntake
from ortspuls.mqtt.topics import CREATE_FILTERS

log = logging.getLogger(__name__)

SHARE_GROUP = "ortspuls"
MARKER = ("ortspuls", "notification")


def broker_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "localhost", parts.port or 1883


def public_url(url: str) -> str:
    """The broker URL without credentials, for the service root."""
    parts = urlsplit(url)
    host, port = broker_address(url)
    return f"mqtt://{host}:{port}" if parts.scheme in ("mqtt", "tcp") else url


class ExternalBroker:
    """Two connections: one takes Observations to create, one publishes notifications, so the
    acknowledgements of incoming QoS 1 messages never wait behind a burst of notifications."""

    def __init__(self, url: str, intake: ObservationIntake) -> None:
        self.url = url
        self.host, self.port = broker_address(url)
        self.intake = intake
        self.loop: asyncio.AbstractEventLoop | None = None
        self._connected: dict[str, asyncio.Future] = {}
        # Messages from paho's thread wait here; one wake-up of the event loop takes them all.
        self._arrived: collections.deque[tuple[str, bytes]] = collections.deque()
        self._wake_pending = False
        self.receiver = self._client("in")
        self.receiver.on_message = self._on_message
        self.sender = self._client("out")
        self.properties = Properties(PacketTypes.PUBLISH)
        self.properties.UserProperty = [MARKER]

    def _client(self, role: str) -> paho.Client:
        client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                             client_id=f"ortspuls-{role}-{uuid.uuid4().hex[:12]}",
                             protocol=paho.MQTTv5, userdata=role)
        parts = urlsplit(self.url)
        if parts.username:
            client.username_pw_set(unquote(parts.username),
                                   unquote(parts.password) if parts.password else None)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        return client

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        for client in (self.sender, self.receiver):
            role = client.user_data_get()
            self._connected[role] = self.loop.create_future()
            await self.loop.run_in_executor(None, client.connect, self.host, self.port, 30)
            client.loop_start()
            try:
                await asyncio.wait_for(self._connected[role], 15)
            except TimeoutError:
                await self.stop()
                raise RuntimeError(f"the MQTT broker at {self.host}:{self.port} did not accept "
                                   "the connection within 15 s") from None
        log.info("connected to the MQTT broker at %s:%s", self.host, self.port)

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for client in (self.receiver, self.sender):
            client.disconnect()
            await loop.run_in_executor(None, client.loop_stop)

    async def publish(self, topic: str, payload: bytes) -> None:
        # QoS 0: a notification is worth less than the time a slow subscriber would cost.
        self.sender.publish(topic, payload, qos=0, properties=self.properties)

    # -- paho callbacks, in paho's network threads ----------------------------------------------

    def _on_connect(self, client, role, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("the MQTT broker at %s:%s refused the connection: %s", self.host,
                      self.port, reason_code)
            self._resolve(role, RuntimeError(f"MQTT broker refused the connection: "
                                             f"{reason_code}"))
            return
        if role == "in":
            # (Re)subscribing on every connect keeps the create topics after a broker restart.
            client.subscribe([(f"$share/{SHARE_GROUP}/{f}", SubscribeOptions(qos=1))
                              for f in CREATE_FILTERS])
        self._resolve(role, None)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("lost the MQTT broker at %s:%s (%s); reconnecting", self.host,
                        self.port, reason_code)

    def _resolve(self, role: str, error: Exception | None) -> None:
        future, loop = self._connected.get(role), self.loop
        if future is None or loop is None:
            return

        def settle() -> None:
            if not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

        loop.call_soon_threadsafe(settle)

    def _on_message(self, client, userdata, message) -> None:
        props = getattr(message, "properties", None)
        user = getattr(props, "UserProperty", None) if props is not None else None
        if user and MARKER in user:
            return  # our own (or another API process's) notification, not a create
        if self.loop is None:
            return
        self._arrived.append((message.topic, bytes(message.payload)))
        if not self._wake_pending:
            self._wake_pending = True
            self.loop.call_soon_threadsafe(self._hand_over)

    def _hand_over(self) -> None:
        """In the event loop: move what paho received to the intake."""
        self._wake_pending = False
        arrived = self._arrived
        while arrived:
            topic, payload = arrived.popleft()
            self.intake.offer(topic, payload, None)
