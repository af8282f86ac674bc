"""The in-process event bus: every committed change is announced here, once.

MQTT publication, the latest-value cache, alerts and live dashboard updates subscribe to it;
nothing else is told about changes. Subscribers must return quickly (hand work to a queue).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)

Operation = Literal["create", "update", "delete"]


@dataclass(frozen=True, slots=True)
class EntityEvent:
    op: Operation
    entity: str  # entity type name, e.g. "Observation"
    id: int
    tenant_id: int | None
    # The stored columns after the change (create/update); None for delete.
    row: dict[str, Any] | None = None


Subscriber = Callable[[list[EntityEvent]], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def publish(self, events: Iterable[EntityEvent]) -> None:
        batch = list(events)
        if not batch:
            return
        for subscriber in tuple(self._subscribers):
            try:
                subscriber(batch)
            except Exception:  # one broken subscriber must not stop the others
                log.exception("event subscriber %r failed", subscriber)
