"""The in-process event bus: every committed change is announced here, once.

MQTT publication, the latest-value cache, alerts and live dashboard updates subscribe to it;
nothing else is told about changes. Subscribers must return quickly (hand work to a queue).

A subscriber receives a sequence of `EntityEvent`s. The observation writer's bulk path
publishes an `EventBatch` instead of a list: the same sequence to a subscriber that iterates
it, but neither the events nor their rows exist until someone reads them, so a bulk insert of
10,000 observations costs nothing per row when no subscriber needs rows (and a subscriber that
needs only part, like the latest-value cache, can ask the batch's `source` for it).
"""

from __future__ import annotations

import itertools
import logging
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal, Protocol, overload

log = logging.getLogger(__name__)

Operation = Literal["create", "update", "delete"]


class EntityEvent(tuple):
    """One committed change: (op, entity type name, id, tenant id, row). Immutable.

    `row` holds the stored columns after the change (create/update), None for delete. A
    tuple, so that the events of an `EventBatch` are made by C loops (10,000 of them in well
    under a millisecond); their rows are built on first access.
    """

    __slots__ = ()

    def __new__(cls, op: Operation, entity: str, id: int, tenant_id: int | None,
                row: dict[str, Any] | None = None) -> EntityEvent:
        return tuple.__new__(cls, (op, entity, id, tenant_id, row))

    # (op, entity, id, tenant_id, rows, index) -> an event whose row is rows.get(index)
    _make = classmethod(tuple.__new__)

    op: Operation = property(operator.itemgetter(0))  # type: ignore[assignment]
    entity: str = property(operator.itemgetter(1))  # type: ignore[assignment]
    id: int = property(operator.itemgetter(2))  # type: ignore[assignment]
    tenant_id: int | None = property(operator.itemgetter(3))  # type: ignore[assignment]

    @property
    def row(self) -> dict[str, Any] | None:
        if len(self) == 6:  # an EventBatch's event
            return self[4].get(self[5])
        return self[4]

    def __repr__(self) -> str:
        return (f"EntityEvent(op={self.op!r}, entity={self.entity!r}, id={self.id!r}, "
                f"tenant_id={self.tenant_id!r})")


class RowSource(Protocol):
    """Rows stored together: their ids, and each row as a dict on demand."""

    ids: Sequence[int]

    def row(self, index: int) -> dict[str, Any]: ...


class _Rows:
    """A batch's rows, each built once on first access."""

    __slots__ = ("_built", "_source")

    def __init__(self, source: RowSource) -> None:
        self._source = source
        self._built: dict[int, dict[str, Any]] = {}

    def get(self, index: int) -> dict[str, Any]:
        row = self._built.get(index)
        if row is None:
            row = self._built[index] = self._source.row(index)
        return row


class EventBatch(Sequence[EntityEvent]):
    """'create' events of rows of one entity type and tenant, stored together.

    Iterating builds the events once (tuples, C loops); a row dict is built only when an
    event's `row` is read. `source` is the writer's column view, for subscribers that read
    columns.
    """

    op: Operation = "create"

    def __init__(self, entity: str, tenant_id: int | None, source: RowSource) -> None:
        self.entity = entity
        self.tenant_id = tenant_id
        self.source = source
        self._events: list[EntityEvent] | None = None

    def _all(self) -> list[EntityEvent]:
        if self._events is None:
            repeat = itertools.repeat
            self._events = list(map(EntityEvent._make, zip(
                repeat("create"), repeat(self.entity), self.source.ids, repeat(self.tenant_id),
                repeat(_Rows(self.source)), itertools.count())))
        return self._events

    def __len__(self) -> int:
        return len(self.source.ids)

    def __iter__(self) -> Iterator[EntityEvent]:
        return iter(self._all())

    @overload
    def __getitem__(self, index: int) -> EntityEvent: ...

    @overload
    def __getitem__(self, index: slice) -> list[EntityEvent]: ...

    def __getitem__(self, index):
        return self._all()[index]

    def __repr__(self) -> str:
        return f"EventBatch({self.entity!r}, {len(self)} rows)"


Subscriber = Callable[[Sequence[EntityEvent]], None]


def kinds(events: Sequence[EntityEvent]) -> set[tuple[Operation, str]]:
    """The (operation, entity type) pairs among `events`: for subscribers that watch only some
    kinds of change. An EventBatch answers without building its events."""
    if isinstance(events, EventBatch):
        return {(events.op, events.entity)}
    return {(e.op, e.entity) for e in events}


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def publish(self, events: Iterable[EntityEvent]) -> None:
        # An EventBatch is passed on as it is: copying it would build every event.
        batch = events if isinstance(events, EventBatch) else list(events)
        if not batch:
            return
        for subscriber in tuple(self._subscribers):
            try:
                subscriber(batch)
            except Exception:  # one broken subscriber must not stop the others
                log.exception("event subscriber %r failed", subscriber)
