"""The SensorThings data model, described once as data.

Everything that knows about entity types (the SQL schema, resource paths, query compilation,
serialization, navigation links) reads it from here.
"""

from ortspuls.model.entities import (
    CORE_ENTITY_SETS,
    ENTITY_SETS,
    ENTITY_TYPES,
    MODEL,
)
from ortspuls.model.types import EntityType, Field, FieldKind, Relation

__all__ = [
    "CORE_ENTITY_SETS",
    "ENTITY_SETS",
    "ENTITY_TYPES",
    "MODEL",
    "EntityType",
    "Field",
    "FieldKind",
    "Relation",
]
