"""Building blocks of the declarative model: entity types, their fields and relations."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field


class FieldKind(enum.Enum):
    """How a field is typed in JSON and stored in SQL."""

    STRING = "string"  # text column
    JSON = "json"  # any JSON value, stored as JSON/JSONB
    OBJECT = "object"  # a JSON object (properties, parameters, unitOfMeasurement)
    TIME = "time"  # one instant, stored as one timestamp column
    INTERVAL = "interval"  # a time interval, stored as <col>_start and <col>_end
    TIME_OR_INTERVAL = "time_or_interval"  # an instant or an interval (Observation.phenomenonTime)
    GEOMETRY = "geometry"  # GeoJSON as given, plus a derived geometry column for spatial queries
    RESULT = "result"  # Observation.result: typed columns so numbers filter and sort as numbers
    ARRAY = "array"  # a JSON array (MultiDatastream types)


def snake(name: str) -> str:
    """`phenomenonTime` -> `phenomenon_time`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True, slots=True)
class Field:
    """One property of an entity type as the API shows it."""

    name: str
    kind: FieldKind
    required: bool = False
    # Server-maintained fields (Datastream.phenomenonTime …) are not accepted in requests.
    editable: bool = True
    # A value used when a create request leaves the field out (a callable is evaluated then).
    default: object = None

    @property
    def column(self) -> str:
        return snake(self.name)

    @property
    def columns(self) -> tuple[str, ...]:
        """The SQL columns that store this field."""
        base = self.column
        if self.kind in (FieldKind.INTERVAL, FieldKind.TIME_OR_INTERVAL):
            return (f"{base}_start", f"{base}_end")
        if self.kind is FieldKind.GEOMETRY:
            return (base, f"{base}_geom")
        if self.kind is FieldKind.RESULT:
            return ("result_type", "result_number", "result_string", "result_json")
        return (base,)


@dataclass(frozen=True, slots=True)
class Relation:
    """A navigation property from one entity type to another.

    Exactly one storage form applies:
    - `fk`: a column on this entity's table pointing at the target (to-one);
    - `remote_fk`: a column on the target's table pointing back at this entity (to-many);
    - `link_table` with `link_columns` (this side, target side): many-to-many.
    """

    name: str
    target: str
    many: bool
    inverse: str
    fk: str | None = None
    remote_fk: str | None = None
    link_table: str | None = None
    link_columns: tuple[str, str] | None = None
    required: bool = False
    # Deleting the target deletes entities that reference it through this relation.
    cascade_delete: bool = False


@dataclass(slots=True)
class EntityType:
    """An entity type: its name, entity set, table, fields and relations."""

    name: str
    set_name: str
    table: str
    fields: tuple[Field, ...]
    relations: tuple[Relation, ...]
    field_by_name: dict[str, Field] = field(init=False)
    relation_by_name: dict[str, Relation] = field(init=False)

    def __post_init__(self) -> None:
        self.field_by_name = {f.name: f for f in self.fields}
        self.relation_by_name = {r.name: r for r in self.relations}

    @property
    def to_one(self) -> tuple[Relation, ...]:
        return tuple(r for r in self.relations if not r.many)

    @property
    def to_many(self) -> tuple[Relation, ...]:
        return tuple(r for r in self.relations if r.many)

    def member(self, name: str) -> Field | Relation | None:
        return self.field_by_name.get(name) or self.relation_by_name.get(name)
