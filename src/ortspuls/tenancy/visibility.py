"""Who may see which entity, as SQL where-clauses.

`visibility_for(principal, view)` returns a `Visibility`: a callable `(entity, table) -> clause`
that every read path adds to its statements (STA collections, entities, path checks, `$expand`,
navigation inside `$filter`, `$count`, DataArray, batch parts, MQTT delivery, the dashboard's
series and latest values). The rules, with O the caller's own tenants (none for anonymous
callers) and V the tenants of a `/t/<slug>/` view (all tenants without one):

- Thing: public, or of a tenant in O.
- Datastream / MultiDatastream: public with a visible Thing, or of a tenant in O, or shared
  with a tenant in O (`stream_shares`). A county's users see their members' internal streams
  only when these were shared with the county.
- Observation: its (Multi)Datastream is visible.
- HistoricalLocation: its Thing is visible.
- Location, FeatureOfInterest, Sensor, ObservedProperty: of a tenant in O, or used by something
  visible (a Location by a Thing, now or historically; a feature by an Observation; a Sensor or
  ObservedProperty by a (Multi)Datastream). One that is used by nothing at all takes its
  tenant's default visibility (`tenant_settings.default_public`), like a new Thing: public in a
  town that publishes by default, hidden in one that keeps new data internal. Hidden, in short:
  another tenant's, used only by internal data.

A view V additionally keeps only entities of V's tenants (a county's view: the county and its
member towns). All subqueries use fresh aliases, so they never correlate with the statement
they are added to.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from sqlalchemy import and_, exists, literal, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement, FromClause

from ortspuls.db.schema import entity_tables, link_tables
from ortspuls.model import ENTITY_TYPES, EntityType
from ortspuls.tenancy.apikeys import Principal
from ortspuls.tenancy.tables import stream_shares, tenant_settings
from ortspuls.timeseries.events import EntityEvent

THINGS = entity_tables["Thing"]
DATASTREAMS = entity_tables["Datastream"]
MULTI_DATASTREAMS = entity_tables["MultiDatastream"]
OBSERVATIONS = entity_tables["Observation"]
HISTORICAL_LOCATIONS = entity_tables["HistoricalLocation"]
THING_LOCATIONS = link_tables["thing_locations"]
HISTORICAL_LOCATION_LOCATIONS = link_tables["historical_location_locations"]
MULTI_OBSERVED_PROPERTIES = link_tables["multi_datastream_observed_properties"]


class Visibility:
    """The visibility rules for one caller (own tenants) and one view (or all tenants)."""

    __slots__ = ("own", "own_in_view", "view")

    def __init__(self, own: Iterable[int] = (), view: Iterable[int] | None = None) -> None:
        self.own = frozenset(own)
        self.view = None if view is None else frozenset(view)
        self.own_in_view = self.own if self.view is None else self.own & self.view

    def __repr__(self) -> str:
        return f"Visibility(own={sorted(self.own)}, view={self.view and sorted(self.view)})"

    def __call__(self, entity: EntityType | str, table: FromClause) -> ColumnElement | None:
        name = entity if isinstance(entity, str) else entity.name
        build = _RULES.get(name)
        return None if build is None else build(self, table)

    # -- building blocks ------------------------------------------------------------------------

    def _in_view(self, table: FromClause, condition: ColumnElement) -> ColumnElement:
        if self.view is None:
            return condition
        return and_(table.c.tenant_id.in_(sorted(self.view)), condition)

    def _own(self, table: FromClause) -> list[ColumnElement]:
        return [table.c.tenant_id.in_(sorted(self.own_in_view))] if self.own_in_view else []

    def thing(self, t: FromClause) -> ColumnElement:
        condition = t.c.is_public
        if self.own:
            condition = or_(condition, t.c.tenant_id.in_(sorted(self.own)))
        return self._in_view(t, condition)

    def thing_ids(self):
        t = THINGS.alias()
        return select(t.c.id).where(self.thing(t))

    def stream(self, d: FromClause, multi: bool = False) -> ColumnElement:
        terms = [and_(d.c.is_public, d.c.thing_id.in_(self.thing_ids()))]
        if self.own:
            own = sorted(self.own)
            terms.append(d.c.tenant_id.in_(own))
            s = stream_shares.alias()
            column = s.c.multi_datastream_id if multi else s.c.datastream_id
            terms.append(d.c.id.in_(select(column).where(s.c.shared_with_id.in_(own),
                                                          column.is_not(None))))
        return self._in_view(d, or_(*terms))

    def stream_ids(self, multi: bool = False):
        d = (MULTI_DATASTREAMS if multi else DATASTREAMS).alias()
        return select(d.c.id).where(self.stream(d, multi))

    def observation(self, o: FromClause) -> ColumnElement:
        return or_(o.c.datastream_id.in_(self.stream_ids()),
                   o.c.multi_datastream_id.in_(self.stream_ids(multi=True)))

    def historical_location(self, h: FromClause) -> ColumnElement:
        return h.c.thing_id.in_(self.thing_ids())

    def location(self, loc: FromClause) -> ColumnElement:
        tl, tl2 = THING_LOCATIONS.alias(), THING_LOCATIONS.alias()
        hll, hll2 = HISTORICAL_LOCATION_LOCATIONS.alias(), HISTORICAL_LOCATION_LOCATIONS.alias()
        hl = HISTORICAL_LOCATIONS.alias()
        return self._used(
            loc,
            [loc.c.id.in_(select(tl.c.location_id).where(tl.c.thing_id.in_(self.thing_ids()))),
             loc.c.id.in_(select(hll.c.location_id)
                          .select_from(hll.join(hl, hl.c.id == hll.c.historical_location_id))
                          .where(hl.c.thing_id.in_(self.thing_ids())))],
            [exists(select(literal(1)).select_from(tl2).where(tl2.c.location_id == loc.c.id)),
             exists(select(literal(1)).select_from(hll2)
                    .where(hll2.c.location_id == loc.c.id))],
        )

    def feature(self, f: FromClause) -> ColumnElement:
        o, o2 = OBSERVATIONS.alias(), OBSERVATIONS.alias()
        return self._used(
            f,
            [exists(select(literal(1)).select_from(o)
                    .where(o.c.feature_id == f.c.id, self.observation(o)))],
            [exists(select(literal(1)).select_from(o2).where(o2.c.feature_id == f.c.id))],
        )

    def _used(self, table: FromClause, used: list, any_use: list) -> ColumnElement:
        """Own, used by something visible, or used by nothing in a tenant that publishes new
        data by default."""
        settings = tenant_settings.alias()
        orphan = and_(*(~u for u in any_use), ~table.c.tenant_id.in_(
            select(settings.c.tenant_id).where(~settings.c.default_public)))
        if self.view is not None:
            orphan = and_(table.c.tenant_id.in_(sorted(self.view)), orphan)
        return or_(*self._own(table), *used, orphan)

    def sensor(self, s: FromClause) -> ColumnElement:
        d, m = DATASTREAMS.alias(), MULTI_DATASTREAMS.alias()
        d2, m2 = DATASTREAMS.alias(), MULTI_DATASTREAMS.alias()
        return self._used(
            s,
            [s.c.id.in_(select(d.c.sensor_id).where(self.stream(d))),
             s.c.id.in_(select(m.c.sensor_id).where(self.stream(m, multi=True)))],
            [exists(select(literal(1)).select_from(d2).where(d2.c.sensor_id == s.c.id)),
             exists(select(literal(1)).select_from(m2).where(m2.c.sensor_id == s.c.id))],
        )

    def observed_property(self, p: FromClause) -> ColumnElement:
        d, d2 = DATASTREAMS.alias(), DATASTREAMS.alias()
        link, link2 = MULTI_OBSERVED_PROPERTIES.alias(), MULTI_OBSERVED_PROPERTIES.alias()
        return self._used(
            p,
            [p.c.id.in_(select(d.c.observed_property_id).where(self.stream(d))),
             p.c.id.in_(select(link.c.observed_property_id).where(
                 link.c.multi_datastream_id.in_(self.stream_ids(multi=True))))],
            [exists(select(literal(1)).select_from(d2)
                    .where(d2.c.observed_property_id == p.c.id)),
             exists(select(literal(1)).select_from(link2)
                    .where(link2.c.observed_property_id == p.c.id))],
        )


_RULES = {
    "Thing": Visibility.thing,
    "Datastream": lambda v, t: v.stream(t),
    "MultiDatastream": lambda v, t: v.stream(t, multi=True),
    "Observation": Visibility.observation,
    "HistoricalLocation": Visibility.historical_location,
    "Location": Visibility.location,
    "FeatureOfInterest": Visibility.feature,
    "Sensor": Visibility.sensor,
    "ObservedProperty": Visibility.observed_property,
}

ANONYMOUS = Visibility()


def visibility_for(principal: Principal | None, tenant_view: Iterable[int] | None = None
                   ) -> Visibility:
    """The visibility of `principal` (None: anonymous) within `tenant_view` (None: all tenants;
    else the ids of the viewed tenant and, for a county, its members)."""
    own = principal.own_tenants if principal is not None else frozenset()
    if not own and tenant_view is None:
        return ANONYMOUS
    return Visibility(own, tenant_view)


async def visible_ids(conn: AsyncConnection, visibility: Visibility, entity: EntityType | str,
                      ids: Iterable[int]) -> set[int]:
    """Which of `ids` (of one entity type) `visibility` lets the caller see: one query."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    name = entity if isinstance(entity, str) else entity.name
    table = entity_tables[ENTITY_TYPES[name].name]
    clause = visibility(name, table)
    stmt = select(table.c.id).where(table.c.id.in_(wanted), clause if clause is not None
                                    else true())
    return set((await conn.execute(stmt)).scalars())


async def is_visible(conn: AsyncConnection, visibility: Visibility, entity: EntityType | str,
                     ident: int) -> bool:
    return ident in await visible_ids(conn, visibility, entity, (ident,))


async def visible_events(conn: AsyncConnection, visibility: Visibility,
                         events: Sequence[EntityEvent]) -> set[int]:
    """The indexes of `events` (creates and updates) whose entity the caller may see as it is
    stored now: one query per entity type; Observations by their (Multi)Datastream."""
    out: set[int] = set()
    by_type: dict[str, list[int]] = defaultdict(list)
    streams: dict[str, set[int]] = {"d": set(), "m": set()}
    for index, event in enumerate(events):
        if event.row is None:
            continue
        if event.entity == "Observation":
            if event.row.get("multi_datastream_id") is not None:
                streams["m"].add(event.row["multi_datastream_id"])
            elif event.row.get("datastream_id") is not None:
                streams["d"].add(event.row["datastream_id"])
        else:
            by_type[event.entity].append(index)
    seen: dict[str, set[int]] = {}
    for key, ids in streams.items():
        if ids:
            d = (MULTI_DATASTREAMS if key == "m" else DATASTREAMS).alias()
            seen[key] = set((await conn.execute(select(d.c.id).where(
                d.c.id.in_(sorted(ids)), visibility.stream(d, multi=key == "m")))).scalars())
    for index, event in enumerate(events):
        if event.row is not None and event.entity == "Observation":
            multi = event.row.get("multi_datastream_id")
            if multi is not None:
                if multi in seen.get("m", ()):
                    out.add(index)
            elif event.row.get("datastream_id") in seen.get("d", ()):
                out.add(index)
    for name, indexes in by_type.items():
        found = await visible_ids(conn, visibility, name, (events[i].id for i in indexes))
        out.update(i for i in indexes if events[i].id in found)
    return out


def datastream_clause(visibility: Visibility, table: FromClause) -> ColumnElement:
    """For callers that select from `datastreams` themselves (dashboard, downloads)."""
    return visibility.stream(table)


__all__ = ["ANONYMOUS", "Visibility", "datastream_clause", "is_visible", "visibility_for",
           "visible_events", "visible_ids"]
