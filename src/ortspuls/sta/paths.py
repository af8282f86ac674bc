"""Resource paths of the SensorThings API, resolved against the model.

`Things(1)/Datastreams`, `Observations(7)/Datastream/Thing`, `Things(1)/name/$value`,
`Things/$ref` … become a `ResourcePath`: a chain of segments (entity type, the relation used to
reach it, an optional id) plus an optional property, `$value` or `$ref` at the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ortspuls.model import ENTITY_SETS, ENTITY_TYPES, EntityType, Field, Relation
from ortspuls.sta.errors import BadRequest, NotFound

_SEGMENT = re.compile(r"^([A-Za-z]+)(?:\((.*)\))?$")
# Ids are 64-bit integers; a larger number names nothing (and must not reach the database).
MAX_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Segment:
    entity: EntityType
    via: Relation | None  # None for the first segment (an entity set)
    id: int | None

    @property
    def is_collection(self) -> bool:
        return self.id is None and (self.via is None or self.via.many)


@dataclass(frozen=True, slots=True)
class ResourcePath:
    segments: tuple[Segment, ...]
    member: Field | None = None
    value: bool = False  # …/$value
    ref: bool = False  # …/$ref

    @property
    def target(self) -> Segment:
        return self.segments[-1]

    @property
    def is_collection(self) -> bool:
        return self.member is None and self.target.is_collection

    @property
    def parent(self) -> Segment | None:
        return self.segments[-2] if len(self.segments) > 1 else None


def _parse_id(text: str, where: str) -> int:
    text = text.strip()
    if text.startswith("'") and text.endswith("'"):
        text = text[1:-1]
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{where}: the id {text!r} is not an integer") from None
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"{where}: no entity with id {value}")
    return value


def parse_path(path: str) -> ResourcePath:
    """Resolve the part of the URL after the version, e.g. `Things(1)/Locations`."""
    parts = [p for p in path.strip("/").split("/")]
    if not parts or parts == [""]:
        raise BadRequest("empty resource path")
    if any(p == "" for p in parts):
        raise BadRequest(f"malformed resource path {path!r}: empty segment")

    segments: list[Segment] = []
    prop: Field | None = None
    value = ref = False
    for index, part in enumerate(parts):
        if value or ref:
            raise BadRequest(f"malformed resource path {path!r}: nothing may follow "
                             f"{parts[index - 1]}")
        if part == "$value":
            if prop is None:
                raise BadRequest("$value must follow a property, e.g. Things(1)/name/$value")
            value = True
            continue
        if part == "$ref":
            if prop is not None or not segments:
                raise BadRequest("$ref must follow an entity set or a navigation property")
            ref = True
            continue
        if prop is not None:
            raise BadRequest(f"malformed resource path {path!r}: {prop.name} is not a navigation "
                             "property")
        match = _SEGMENT.match(part)
        if match is None:
            raise BadRequest(f"malformed resource path segment {part!r}")
        name, id_text = match.group(1), match.group(2)
        if not segments:
            entity = ENTITY_SETS.get(name)
            if entity is None:
                raise NotFound(f"no entity set {name!r}; the entity sets are "
                               + ", ".join(ENTITY_SETS))
            seg_id = _parse_id(id_text, name) if id_text is not None else None
            segments.append(Segment(entity, None, seg_id))
            continue
        current = segments[-1]
        if current.is_collection:
            raise BadRequest(f"{current.entity.set_name} is a collection: choose one entity by "
                             f"id, e.g. {current.entity.set_name}(1)/{name}")
        relation = current.entity.relation_by_name.get(name)
        if relation is not None:
            target = ENTITY_TYPES[relation.target]
            if id_text is not None and not relation.many:
                raise BadRequest(f"{name} is a single entity; it takes no id")
            seg_id = _parse_id(id_text, name) if id_text is not None else None
            segments.append(Segment(target, relation, seg_id))
            continue
        field = current.entity.field_by_name.get(name)
        if field is None and name == "id":
            field = Field("id", None)  # type: ignore[arg-type]
        if field is None or id_text is not None:
            raise BadRequest(f"{current.entity.name} has no property or navigation {name!r}")
        prop = field
    return ResourcePath(tuple(segments), prop, value, ref)
