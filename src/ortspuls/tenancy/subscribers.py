"""Visibility for MQTT subscriptions: who may receive the message of a change.

`SubscriberAudience.audiences(events)` answers, per event, True (public: every subscriber may
receive it) or the set of client ids whose credentials (an API key as MQTT password) let them
see it; an empty set means no one. It costs one query per entity type for the public check and,
only for events that are not public, one more per group of clients with the same tenants.
Without a way to list clients (an external broker, whose own ACLs decide who reads), internal
changes go to no one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence

from ortspuls.db.engine import Database
from ortspuls.tenancy.apikeys import Principal
from ortspuls.tenancy.visibility import ANONYMOUS, Visibility, visible_events
from ortspuls.timeseries.events import EntityEvent

# () -> {client id: Principal or None} of the connected clients.
Clients = Callable[[], Awaitable[dict[str, Principal | None]]]


class SubscriberAudience:
    def __init__(self, db: Database, clients: Clients | None = None) -> None:
        self.db = db
        self.clients = clients

    async def audiences(self, events: Sequence[EntityEvent]) -> list[bool | frozenset[str]]:
        async with self.db.read() as conn:
            public = await visible_events(conn, ANONYMOUS, events)
            out: list[bool | frozenset[str]] = [
                True if i in public else frozenset() for i in range(len(events))]
            hidden = [i for i in range(len(events)) if i not in public]
            if not hidden or self.clients is None:
                return out
            groups: dict[frozenset[int], list[str]] = defaultdict(list)
            for client_id, principal in (await self.clients()).items():
                if principal is not None:
                    groups[principal.own_tenants].append(client_id)
            allowed: dict[int, set[str]] = defaultdict(set)
            subset = [events[i] for i in hidden]
            for own, client_ids in groups.items():
                for j in await visible_events(conn, Visibility(own), subset):
                    allowed[hidden[j]].update(client_ids)
        for i, client_ids in allowed.items():
            out[i] = frozenset(client_ids)
        return out
