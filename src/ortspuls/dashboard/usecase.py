"""Use-case templates (`usecases/*.toml`) and the assignment of Datastreams to them.

A template names its use case (`slug`), the summariser that computes its tile (`summary`), the
keywords that recognise its ObservedProperties, the roles its Datastreams play (PM10 or NO₂,
free spaces or one occupied space, …) and its default thresholds. Texts are not in the
templates but in the catalogues (`catalogues/<lang>.toml`, keys `usecase.<slug>.…`).

Assignment, per Datastream:

1. `properties.usecase` of the Datastream, else of its Thing, names the use case (a slug;
   `"weitere"` or `"none"` sends it to the generic tile);
2. otherwise the first template (by `priority`) whose keywords occur in the ObservedProperty's
   name or definition — and none of whose `exclude` words do — takes it;
3. otherwise the generic tile (`weitere`) shows it.

Within the use case the first role whose conditions hold gives the Datastream's role;
`properties.role` overrides it. Matching ignores case, umlauts (ä = ae) and subscripts (NO₂).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

USECASE_DIR = Path(__file__).parent / "usecases"
GENERIC = "weitere"
_NO_USECASE = {"none", "generic", GENERIC}
_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "₂": "2", "₅": "5",
                       "₁": "1", "₀": "0", "₃": "3", "_": " ", "-": " "})


def normalise(text: str) -> str:
    return text.casefold().translate(_FOLD)


@dataclass(frozen=True, slots=True)
class Role:
    key: str
    keywords: tuple[str, ...] = ()
    units: tuple[str, ...] = ()

    def matches(self, text: str, unit_symbol: str) -> bool:
        if self.keywords and not any(k in text for k in self.keywords):
            return False
        return not (self.units and unit_symbol not in self.units)


@dataclass(frozen=True, slots=True)
class UseCase:
    slug: str
    order: int
    priority: int
    icon: str
    summary: str
    stat: str
    stale_after_minutes: float
    chart_ranges: tuple[str, ...]
    keywords: tuple[str, ...]
    exclude: tuple[str, ...]
    roles: tuple[Role, ...]
    thresholds: Mapping[str, Any] = field(default_factory=dict)

    def matches(self, text: str) -> bool:
        return any(k in text for k in self.keywords) and not any(x in text for x in self.exclude)

    def role_for(self, text: str, unit_symbol: str) -> str | None:
        for role in self.roles:
            if role.matches(text, unit_symbol):
                return role.key
        return None

    @property
    def role_keys(self) -> set[str]:
        return {r.key for r in self.roles}


def _load(path: Path) -> UseCase:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    words = lambda key: tuple(normalise(w) for w in data.get(key, ()))  # noqa: E731
    roles = tuple(
        Role(r["key"], tuple(normalise(w) for w in r.get("keywords", ())),
             tuple(r.get("units", ())))
        for r in data.get("roles", ())
    )
    return UseCase(
        slug=data["slug"], order=int(data["order"]), priority=int(data["priority"]),
        icon=data.get("icon", "sensor"), summary=data["summary"], stat=data.get("stat", "mean"),
        stale_after_minutes=float(data.get("stale_after_minutes", 60)),
        chart_ranges=tuple(data.get("chart_ranges", ("24h", "7d", "1y"))),
        keywords=words("keywords"), exclude=words("exclude"), roles=roles,
        thresholds=data.get("thresholds", {}),
    )


@functools.cache
def usecases(directory: Path = USECASE_DIR) -> dict[str, UseCase]:
    """All templates by slug, in overview order (loaded once per process)."""
    loaded = [_load(p) for p in sorted(directory.glob("*.toml"))]
    if GENERIC not in {u.slug for u in loaded}:
        raise RuntimeError(f"the generic use case template {GENERIC}.toml is missing")
    return {u.slug: u for u in sorted(loaded, key=lambda u: (u.order, u.slug))}


def _override(properties: Any, key: str) -> str | None:
    if isinstance(properties, Mapping):
        value = properties.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


@functools.lru_cache(maxsize=4096)
def _assign(op_text: str, unit_symbol: str, ds_usecase: str | None, thing_usecase: str | None,
            ds_role: str | None) -> tuple[str, str | None]:
    templates = usecases()
    chosen: UseCase | None = None
    configured = ds_usecase or thing_usecase
    if configured is not None:
        slug = configured.casefold()
        chosen = templates[GENERIC] if slug in _NO_USECASE else templates.get(slug)
    if chosen is None:
        for template in sorted(templates.values(), key=lambda u: u.priority):
            if template.slug != GENERIC and template.matches(op_text):
                chosen = template
                break
    if chosen is None:
        chosen = templates[GENERIC]
    if ds_role is not None and ds_role in chosen.role_keys:
        return chosen.slug, ds_role
    return chosen.slug, chosen.role_for(op_text, unit_symbol)


def assign(op_name: str, op_definition: str, unit_symbol: str,
           datastream_properties: Any = None, thing_properties: Any = None
           ) -> tuple[str, str | None]:
    """(use-case slug, role) of a Datastream."""
    op_text = normalise(f"{op_name} {op_definition}")
    return _assign(op_text, unit_symbol or "", _override(datastream_properties, "usecase"),
                   _override(thing_properties, "usecase"),
                   _override(datastream_properties, "role"))


def threshold(template: UseCase, key: str, *sources: Any, default: Any = None) -> Any:
    """A threshold: `properties.thresholds[key]` of the first source that has it (Datastream,
    then Thing), else the template's."""
    for props in sources:
        if isinstance(props, Mapping):
            table = props.get("thresholds")
            if isinstance(table, Mapping) and isinstance(table.get(key), int | float):
                return table[key]
    return template.thresholds.get(key, default)
