"""Rows to SensorThings JSON: fields by kind, self and navigation links, expanded relations."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ortspuls.model import ENTITY_TYPES, EntityType, FieldKind
from ortspuls.sta.values import decode_result, format_interval, format_time

Getter = Callable[[Mapping[str, Any]], Any]


def _getter(field) -> Getter:
    match field.kind:
        case FieldKind.TIME:
            col = field.column
            return lambda row: format_time(row[col])
        case FieldKind.INTERVAL | FieldKind.TIME_OR_INTERVAL:
            start, end = field.columns
            return lambda row: format_interval(row[start], row[end])
        case FieldKind.RESULT:
            return lambda row: decode_result(row["result_type"], row["result_number"],
                                             row["result_string"], row["result_json"])
        case _:
            col = field.column
            return lambda row: row[col]


GETTERS: dict[str, dict[str, Getter]] = {
    name: {f.name: _getter(f) for f in entity.fields} for name, entity in ENTITY_TYPES.items()
}


def field_value(entity: EntityType, name: str, row: Mapping[str, Any]) -> Any:
    if name == "id":
        return row["id"]
    return GETTERS[entity.name][name](row)


def columns_for(entity: EntityType, select: Iterable[str] | None) -> set[str]:
    """The SQL columns needed to serialize the selected fields (None: all fields)."""
    names = entity.field_by_name if select is None else select
    cols = {"id"}
    for name in names:
        field = entity.field_by_name.get(name)
        if field is not None:
            cols.update(field.columns)
    return cols


class Serializer:
    """Builds entity dicts for one request; `base` is the service root, e.g. http://h/v1.1."""

    __slots__ = ("base",)

    def __init__(self, base: str) -> None:
        self.base = base

    def self_link(self, entity: EntityType, id_: int) -> str:
        return f"{self.base}/{entity.set_name}({id_})"

    def entity(
        self,
        entity: EntityType,
        row: Mapping[str, Any],
        select: tuple[str, ...] | None = None,
    ) -> dict[str, Any]:
        id_ = row["id"]
        self_link = f"{self.base}/{entity.set_name}({id_})"
        getters = GETTERS[entity.name]
        if select is None:
            out: dict[str, Any] = {"@iot.id": id_, "@iot.selfLink": self_link}
            for name, get in getters.items():
                out[name] = get(row)
            for rel in entity.relations:
                out[f"{rel.name}@iot.navigationLink"] = f"{self_link}/{rel.name}"
            return out
        out = {}
        for name in select:
            if name == "id":
                out["@iot.id"] = id_
            elif name == "selfLink":
                out["@iot.selfLink"] = self_link
            elif name in getters:
                out[name] = getters[name](row)
            elif name in entity.relation_by_name:
                out[f"{name}@iot.navigationLink"] = f"{self_link}/{name}"
        return out
