"""SensorThings MQTT topics, resolved against the model.

Subscriptions (OGC 18-088 clause 14.2), each delivering the entity as JSON:

- `v1.1/Things`                    every Thing created or updated
- `v1.1/Things?$select=name,id`    the same, with the selected properties only
- `v1.1/Things(1)`                 Thing 1 whenever it changes (`?$select` allowed)
- `v1.1/Things(1)/name`            `{"name": …}` whenever Thing 1 is updated
- `v1.1/Datastreams(1)/Observations`  every Observation created or updated in Datastream 1
  (`?$select` allowed)

Creating (clause 14.1): an Observation published to `v1.1/Datastreams(1)/Observations`,
`v1.1/MultiDatastreams(1)/Observations` or `v1.1/Observations` (with a Datastream link).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from ortspuls.model import ENTITY_TYPES, EntityType, Relation
from ortspuls.query import QuerySyntaxError, parse_select
from ortspuls.sta.errors import StaError
from ortspuls.sta.paths import parse_path

VERSION = "v1.1"
PREFIX = VERSION + "/"
# The MQTT filters on which the server takes Observations to create.
CREATE_FILTERS = (f"{VERSION}/+/Observations", f"{VERSION}/Observations")

Kind = Literal["collection", "entity", "property", "navigation"]


class TopicError(ValueError):
    """A topic under v1.1/ that names nothing the server can deliver; the message says why."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """What one topic asks for."""

    topic: str
    kind: Kind
    entity: EntityType  # the type of the delivered entities
    id: int | None = None  # entity, property
    prop: str | None = None  # property
    relation: Relation | None = None  # navigation: from the parent to the delivered entities
    parent_id: int | None = None  # navigation
    select: tuple[str, ...] | None = None


@functools.lru_cache(maxsize=4096)
def parse_subscription(topic: str) -> Subscription:
    """Resolve a subscription topic (no wildcards) or raise TopicError."""
    from ortspuls.sta.read import select_names

    if not topic.startswith(PREFIX):
        raise TopicError(f"SensorThings topics start with {PREFIX}")
    path, _, query = topic[len(PREFIX):].partition("?")
    names = None
    try:
        resource = parse_path(path)
    except StaError as exc:
        raise TopicError(exc.message) from None
    if resource.value or resource.ref:
        raise TopicError("$value and $ref have no MQTT topic")
    segments = resource.segments
    target = segments[-1]
    if query:
        option, eq, value = query.partition("=")
        if option != "$select" or not eq or not value:
            raise TopicError("the only query option a topic may carry is $select=…")
        try:
            names = select_names(target.entity, parse_select(value))
        except (QuerySyntaxError, StaError) as exc:
            raise TopicError(f"$select: {exc}") from None
    if len(segments) == 1:
        if resource.member is not None:
            if target.id is None or names is not None:
                raise TopicError("a property topic names one entity, e.g. v1.1/Things(1)/name")
            return Subscription(topic, "property", target.entity, target.id,
                                prop=resource.member.name)
        if target.id is None:
            return Subscription(topic, "collection", target.entity, select=names)
        return Subscription(topic, "entity", target.entity, target.id, select=names)
    parent = segments[0]
    if (len(segments) == 2 and parent.id is not None and target.id is None
            and target.via is not None and target.via.many and resource.member is None):
        return Subscription(topic, "navigation", target.entity, relation=target.via,
                            parent_id=parent.id, select=names)
    raise TopicError("topics are v1.1/<EntitySet>, v1.1/<EntitySet>(id), "
                     "v1.1/<EntitySet>(id)/<property> or v1.1/<EntitySet>(id)/<NavigationSet>")


_CREATE = re.compile(r"^v1\.1/(?:(Datastreams|MultiDatastreams)\((\d+)\)/)?Observations$")


@functools.lru_cache(maxsize=4096)
def create_target(topic: str) -> dict[str, int] | None:
    """The links a create topic implies ({"Datastream": 1}, {} for v1.1/Observations), or None
    if Observations are not created by publishing to this topic."""
    match = _CREATE.match(topic)
    if match is None:
        return None
    if match.group(1) is None:
        return {}
    name = "Datastream" if match.group(1) == "Datastreams" else "MultiDatastream"
    return {name: int(match.group(2))}


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic filter matching (`+` one level, `#` the rest)."""
    if "+" not in topic_filter and "#" not in topic_filter:
        return topic_filter == topic
    levels = topic.split("/")
    for index, level in enumerate(topic_filter.split("/")):
        if level == "#":
            return True
        if index >= len(levels) or (level != "+" and level != levels[index]):
            return False
    return len(topic_filter.split("/")) == len(levels)


def is_wildcard(topic_filter: str) -> bool:
    return "+" in topic_filter or "#" in topic_filter


def navigation_parents(entity: EntityType) -> list[tuple[Relation, EntityType, Relation]]:
    """For an entity type, the to-one relations whose inverse is a navigation set:
    (relation on `entity`, parent type, the parent's relation back to `entity`)."""
    out = []
    for rel in entity.to_one:
        parent = ENTITY_TYPES[rel.target]
        back = parent.relation_by_name.get(rel.inverse)
        if back is not None and back.many:
            out.append((rel, parent, back))
    return out
