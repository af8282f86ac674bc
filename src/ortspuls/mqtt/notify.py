"""Committed changes -> MQTT messages (receive updates via MQTT).

The notifier subscribes to the event bus, so every change is announced whatever path made it
(HTTP, batch, DataArray, MQTT, ingest). Events are queued and turned into messages by one task,
away from the request that caused them.

With the embedded broker the notifier knows the subscribed topics and publishes only to those.
With an external broker it cannot know them, so it publishes every event to all topic forms
that need no query option: `v1.1/<Set>`, the navigation sets of the entity's parents
(`v1.1/Datastreams(1)/Observations`) and, for updates, `v1.1/<Set>(id)` and
`v1.1/<Set>(id)/<property>`. `?$select` topics are served by the embedded broker only.

Entity set and navigation topics deliver creations and updates; an entity's own topic and its
property topics deliver its updates (before its creation no one knows its id). Deletions are
not announced (the standard defines no message for them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence

import orjson
from sqlalchemy import select

from ortspuls.db.schema import link_tables
from ortspuls.model import ENTITY_TYPES, EntityType, Relation
from ortspuls.mqtt.topics import (
    PREFIX,
    Subscription,
    TopicError,
    is_wildcard,
    matches,
    navigation_parents,
    parse_subscription,
)
from ortspuls.sta.serialize import GETTERS, Serializer
from ortspuls.timeseries.events import EntityEvent, EventBatch

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], Awaitable[None]]


class _Row(dict):
    """A stored row as events carry it; columns a create did not set read as None."""

    def __missing__(self, key: str) -> None:
        return None


class _Index:
    """The subscribed topics, resolved once per change of the subscription set."""

    def __init__(self, filters: Iterable[str]) -> None:
        self.filters = tuple(sorted(filters))
        self.by_entity: dict[str, list[Subscription]] = defaultdict(list)
        self.wildcards: list[str] = []
        for topic in self.filters:
            if is_wildcard(topic):
                if topic.startswith(PREFIX) or topic.startswith(("#", "+")):
                    self.wildcards.append(topic)
                continue
            try:
                sub = parse_subscription(topic)
            except TopicError:
                continue
            self.by_entity[sub.entity.name].append(sub)

    def wants(self, entity: str) -> bool:
        return bool(self.wildcards) or entity in self.by_entity


class Notifier:
    """Publishes events from the bus; `subscriptions` is None for an external broker."""

    def __init__(self, publish: Publish, db, base_url: str,
                 subscriptions: Callable[[], Iterable[str]] | None = None,
                 audience=None, publish_to=None) -> None:
        self.publish = publish
        # ortspuls.tenancy.subscribers.SubscriberAudience, and the broker's publish to a set
        # of client ids (embedded broker only).
        self.audience = audience
        self.publish_to = publish_to
        self.db = db
        self.serializer = Serializer(base_url.rstrip("/") + "/v1.1")
        self.subscriptions = subscriptions
        self._queue: asyncio.Queue[list[EntityEvent]] = asyncio.Queue()
        self._index: _Index | None = None
        self._task: asyncio.Task | None = None
        self.sent = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def on_events(self, events: Sequence[EntityEvent]) -> None:
        """Event bus subscriber: must return at once, so the work is queued."""
        self._queue.put_nowait(events)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mqtt-notifier")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            # The bus's sequences are shared with other subscribers: gather, never extend them.
            batches = [await self._queue.get()]
            count = len(batches[0])
            while not self._queue.empty() and count < 10_000:
                batches.append(self._queue.get_nowait())
                count += len(batches[-1])
            events = batches[0] if len(batches) == 1 else [e for b in batches for e in b]
            try:
                await self.handle(events)
            except Exception:  # a broken message must not stop the notifier
                log.exception("MQTT notification of %d events failed", len(events))

    # -- messages -------------------------------------------------------------------------------

    def _current_index(self) -> _Index | None:
        if self.subscriptions is None:
            return None
        filters = tuple(self.subscriptions())
        if self._index is None or len(filters) != len(self._index.filters) or \
                tuple(sorted(filters)) != self._index.filters:
            self._index = _Index(filters)
        return self._index

    async def handle(self, events: Sequence[EntityEvent]) -> None:
        index = None
        if self.subscriptions is not None:
            # Before reading any row: a bulk insert's rows are built only when read.
            index = self._current_index()
            if not index.filters:
                return
            if isinstance(events, EventBatch) and not index.wants(events.entity):
                return
            events = [e for e in events if index.wants(e.entity)]
        events = [e for e in events if e.op != "delete" and e.row is not None]
        if not events:
            return
        # Visibility (ortspuls.tenancy): public changes go to every subscriber, internal ones
        # only to clients whose API key sees them (embedded broker), or to no one.
        for audience, group in await self._audiences(events):
            if self.subscriptions is not None:
                messages = await self._subscribed_messages(index, group)
            else:
                messages = await self._all_messages(group)
            for topic, payload in messages:
                if audience is None:
                    await self.publish(topic, payload)
                else:
                    await self.publish_to(topic, payload, audience)
            self.sent += len(messages)

    async def _audiences(self, events: list[EntityEvent]
                         ) -> list[tuple[frozenset[str] | None, list[EntityEvent]]]:
        """The events grouped by who may receive them (None: everyone)."""
        if self.audience is None:
            return [(None, events)]
        marks = await self.audience.audiences(events)
        groups: dict[frozenset[str] | None, list[EntityEvent]] = defaultdict(list)
        for event, mark in zip(events, marks, strict=True):
            if mark is True:
                groups[None].append(event)
            elif mark and self.publish_to is not None:
                groups[mark].append(event)
        return list(groups.items())

    async def _subscribed_messages(self, index: _Index,
                                   events: list[EntityEvent]) -> list[tuple[str, bytes]]:
        linked = await self._links_for_subscriptions(index, events)
        out: list[tuple[str, bytes]] = []
        for event in events:
            entity = ENTITY_TYPES[event.entity]
            row = _Row(event.row)
            full: bytes | None = None
            for sub in index.by_entity.get(event.entity, ()):
                if not _delivers(sub, event, row, linked):
                    continue
                if sub.kind == "property":
                    value = row["id"] if sub.prop == "id" else GETTERS[entity.name][sub.prop](row)
                    payload = orjson.dumps({"@iot.id" if sub.prop == "id" else sub.prop: value})
                elif sub.select is not None:
                    payload = orjson.dumps(self.serializer.entity(entity, row, sub.select))
                else:
                    if full is None:
                        full = orjson.dumps(self.serializer.entity(entity, row))
                    payload = full
                out.append((sub.topic, payload))
            if index.wildcards:
                topics = [t for t in self._plain_topics(entity, event, row, {})
                          if any(matches(f, t) for f in index.wildcards)]
                if topics:
                    if full is None:
                        full = orjson.dumps(self.serializer.entity(entity, row))
                    out.extend((t, full) for t in dict.fromkeys(topics))
        return out

    async def _all_messages(self, events: list[EntityEvent]) -> list[tuple[str, bytes]]:
        parents = await self._links_for_events(events)
        out: list[tuple[str, bytes]] = []
        for event in events:
            entity = ENTITY_TYPES[event.entity]
            row = _Row(event.row)
            value = self.serializer.entity(entity, row)
            full = orjson.dumps(value)
            out.extend((t, full) for t in self._plain_topics(entity, event, row, parents))
            if event.op == "update":
                base = f"{PREFIX}{entity.set_name}({event.id})/"
                for name in GETTERS[entity.name]:
                    out.append((base + name, orjson.dumps({name: value[name]})))
        return out

    @staticmethod
    def _plain_topics(entity: EntityType, event: EntityEvent, row: _Row,
                      parents: dict[tuple[str, int], list[tuple[EntityType, Relation, int]]]
                      ) -> list[str]:
        """The topics without query options that announce this event."""
        topics = [f"{PREFIX}{entity.set_name}"]
        if event.op == "update":
            topics.append(f"{PREFIX}{entity.set_name}({event.id})")
        for rel, parent, back in navigation_parents(entity):
            parent_id = row[rel.fk]
            if parent_id is not None:
                topics.append(f"{PREFIX}{parent.set_name}({parent_id})/{back.name}")
        for parent, back, parent_id in parents.get((entity.name, event.id), ()):
            topics.append(f"{PREFIX}{parent.set_name}({parent_id})/{back.name}")
        return topics

    # -- many-to-many navigation (Things <-> Locations …): one query per batch and relation ----

    async def _linked(self, rel_from_parent: Relation, child_ids: list[int],
                      parent_ids: list[int] | None) -> dict[int, set[int]]:
        link = link_tables[rel_from_parent.link_table]
        parent_col, child_col = (link.c[c] for c in rel_from_parent.link_columns)
        stmt = select(child_col, parent_col).where(child_col.in_(child_ids))
        if parent_ids is not None:
            stmt = stmt.where(parent_col.in_(parent_ids))
        out: dict[int, set[int]] = defaultdict(set)
        async with self.db.read() as conn:
            for child, parent in await conn.execute(stmt):
                out[child].add(parent)
        return out

    async def _links_for_subscriptions(self, index: _Index, events: list[EntityEvent]
                                       ) -> dict[tuple[str, int], set[int]]:
        """(subscription topic, entity id) -> parent ids, for link-table navigation topics."""
        out: dict[tuple[str, int], set[int]] = {}
        for name, subs in index.by_entity.items():
            ids = [e.id for e in events if e.entity == name]
            if not ids:
                continue
            for sub in subs:
                if sub.kind == "navigation" and sub.relation.link_table is not None:
                    found = await self._linked(sub.relation, ids, [sub.parent_id])
                    for child, parents in found.items():
                        out[(sub.topic, child)] = parents
        return out

    async def _links_for_events(self, events: list[EntityEvent]
                                ) -> dict[tuple[str, int], list[tuple[EntityType, Relation, int]]]:
        out: dict[tuple[str, int], list] = defaultdict(list)
        by_type: dict[str, list[int]] = defaultdict(list)
        for event in events:
            by_type[event.entity].append(event.id)
        for name, ids in by_type.items():
            entity = ENTITY_TYPES[name]
            for rel in entity.to_many:
                if rel.link_table is None:
                    continue
                parent = ENTITY_TYPES[rel.target]
                back = parent.relation_by_name[rel.inverse]
                found = await self._linked(back, ids, None)
                for child, parent_ids in found.items():
                    for parent_id in sorted(parent_ids):
                        out[(name, child)].append((parent, back, parent_id))
        return out


def _delivers(sub: Subscription, event: EntityEvent, row: _Row,
              linked: dict[tuple[str, int], set[int]]) -> bool:
    if sub.kind == "collection":
        return True
    if sub.kind in ("entity", "property"):
        return sub.id == event.id and event.op == "update"
    rel = sub.relation
    if rel.remote_fk is not None:
        return row[rel.remote_fk] == sub.parent_id
    return sub.parent_id in linked.get((sub.topic, event.id), ())
