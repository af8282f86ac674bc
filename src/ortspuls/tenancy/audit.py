"""The audit log: who (user or API key) changed which entity when.

Entries are written in the same transaction as the change, so a change without its entry cannot
happen. They name the actor and the entity by value, without foreign keys, so they remain when
either is deleted. New Observations are not logged one by one (ingest writes thousands a
minute); changes and deletions of Observations are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ortspuls.tenancy.apikeys import Principal
from ortspuls.tenancy.tables import audit_log
from ortspuls.timeseries.events import EntityEvent


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str  # "user", "key", "system"
    id: int | None
    name: str

    @classmethod
    def of(cls, principal: Principal | None) -> Actor:
        if principal is None:
            return cls("system", None, "system")
        kind = principal.actor_kind
        ident = principal.user_id if kind == "user" else principal.key_id
        return cls(kind, ident, principal.name)


async def record(conn: AsyncConnection, actor: Actor, tenant_id: int | None, action: str,
                 entity_type: str, entity_id: int | None = None,
                 detail: dict[str, Any] | None = None) -> None:
    await conn.execute(insert(audit_log).values(
        tenant_id=tenant_id, at=datetime.now(UTC), actor_kind=actor.kind, actor_id=actor.id,
        actor_name=actor.name[:200], action=action[:32], entity_type=entity_type[:32],
        entity_id=entity_id, detail=detail))


async def record_events(conn: AsyncConnection, principal: Principal | None,
                        events: Iterable[EntityEvent]) -> None:
    """One entry per changed entity of a SensorThings write (new Observations excepted)."""
    actor = Actor.of(principal)
    now = datetime.now(UTC)
    rows = [{
        "tenant_id": e.tenant_id, "at": now, "actor_kind": actor.kind, "actor_id": actor.id,
        "actor_name": actor.name[:200], "action": e.op, "entity_type": e.entity,
        "entity_id": e.id, "detail": _detail(e),
    } for e in events if not (e.entity == "Observation" and e.op == "create")]
    if rows:
        await conn.execute(insert(audit_log), rows)


def _detail(event: EntityEvent) -> dict[str, Any] | None:
    row = event.row or {}
    name = row.get("name")
    return {"name": name} if isinstance(name, str) else None


async def entries(conn: AsyncConnection, tenant_id: int, limit: int = 100,
                  offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The newest entries of a tenant first, and how many there are."""
    rows = await conn.execute(select(audit_log).where(audit_log.c.tenant_id == tenant_id)
                              .order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
                              .limit(limit).offset(offset))
    total = (await conn.execute(select(func.count()).select_from(audit_log).where(
        audit_log.c.tenant_id == tenant_id))).scalar_one()
    return [dict(r._mapping) for r in rows], total
