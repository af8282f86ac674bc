"""Monthly partitions of the observations table on PostgreSQL, and retention by partition.

`observations` is partitioned by range on `phenomenon_time_start`, one partition per calendar
month (UTC), named `observations_yYYYYmMM`, plus `observations_default` for rows of months
without a partition yet. Partitions are created ahead of time (at migration and server start),
and by the observation writer when it sees a month for the first time.

A new partition is built beside the table and then attached (`ATTACH PARTITION` takes a weaker
lock on the parent than `CREATE TABLE … PARTITION OF`, so reads and inserts go on); rows of that
month that already landed in the default partition are moved into it first.

Retention is detaching (and optionally dropping) whole months: no row-by-row DELETE.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ortspuls.db.engine import Database

log = logging.getLogger(__name__)

PARENT = "observations"
DEFAULT_PARTITION = "observations_default"
_NAME = re.compile(r"^observations_y(\d{4})m(\d{2})$")
# Months created automatically; rows outside (a typo like year 20240) stay in the default
# partition instead of creating a table each.
AUTO_YEARS = range(1900, 2201)
_LOCK_ID = 74202
# Below PostgreSQL's deadlock_timeout (1 s): in a lock cycle with a writer, the attach gives up
# first, so the writer's transaction goes on.
LOCK_TIMEOUT_MS = 500

Month = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    month: Month | None  # None for the default partition
    rows: int  # estimate from the planner statistics (-1: never analysed)

    @property
    def start(self) -> datetime | None:
        return None if self.month is None else month_start(self.month)

    @property
    def end(self) -> datetime | None:
        return None if self.month is None else month_start(next_month(self.month))


class PartitionError(RuntimeError):
    pass


def month_of(value: datetime | date) -> Month:
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.year, value.month


def next_month(month: Month) -> Month:
    year, m = month
    return (year + 1, 1) if m == 12 else (year, m + 1)


def add_months(month: Month, n: int) -> Month:
    index = month[0] * 12 + month[1] - 1 + n
    return index // 12, index % 12 + 1


def month_start(month: Month) -> datetime:
    return datetime(month[0], month[1], 1, tzinfo=UTC)


def partition_name(month: Month) -> str:
    return f"observations_y{month[0]:04d}m{month[1]:02d}"


def months_between(first: datetime, last: datetime) -> list[Month]:
    months, current, end = [], month_of(first), month_of(last)
    while current <= end:
        months.append(current)
        current = next_month(current)
    return months


async def list_partitions(conn: AsyncConnection) -> list[Partition]:
    rows = await conn.execute(text(
        "SELECT c.relname, c.reltuples::bigint AS rows FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'observations'::regclass ORDER BY c.relname"))
    out = []
    for name, rows_estimate in rows:
        match = _NAME.match(name)
        month = (int(match[1]), int(match[2])) if match else None
        out.append(Partition(name, month, int(rows_estimate)))
    return out


async def _attach_month(conn: AsyncConnection, month: Month) -> bool:
    """Create and attach one month's partition inside the caller's transaction."""
    # Attaching locks the default partition and, to clone the foreign keys, the referenced
    # tables. Give up quickly instead of waiting (or deadlocking) behind busy write
    # transactions; the rows wait in the default partition and a later batch tries again.
    await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'"))
    await conn.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK_ID})"))
    name = partition_name(month)
    exists = (await conn.execute(text("SELECT to_regclass(:n)"), {"n": name})).scalar()
    if exists is not None:
        return False
    start = month_start(month).strftime("%Y-%m-%d %H:%M:%S+00")
    end = month_start(next_month(month)).strftime("%Y-%m-%d %H:%M:%S+00")
    # Wait for transactions that are writing into the default partition (maybe rows of this
    # month): their rows must be committed and visible before they are moved.
    await conn.execute(text(f"LOCK TABLE {DEFAULT_PARTITION} IN ACCESS EXCLUSIVE MODE"))
    await conn.execute(text(
        f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
    # The CHECK lets ATTACH skip scanning the new table; rows of this month that are already in
    # the default partition move over, or ATTACH would refuse.
    await conn.execute(text(
        f"ALTER TABLE {name} ADD CONSTRAINT {name}_range CHECK (phenomenon_time_start >= "
        f"'{start}' AND phenomenon_time_start < '{end}')"))
    await conn.execute(text(
        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE phenomenon_time_start >= "
        f"'{start}' AND phenomenon_time_start < '{end}' RETURNING *) "
        f"INSERT INTO {name} SELECT * FROM moved"))
    await conn.execute(text(
        f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ('{start}') TO ('{end}')"))
    await conn.execute(text(f"ALTER TABLE {name} DROP CONSTRAINT {name}_range"))
    return True


async def ensure_months(db: Database, months: Iterable[Month]) -> list[str]:
    """Make sure each month has its partition; returns the names created."""
    if db.is_sqlite:
        return []
    created = []
    for month in sorted(set(months)):
        # One transaction per month keeps the lock on the default partition short.
        async with db.engine.begin() as conn:
            if await _attach_month(conn, month):
                created.append(partition_name(month))
    if created:
        log.info("created observation partitions %s", ", ".join(created))
    return created


async def ensure_ahead(db: Database, months_ahead: int = 3, now: datetime | None = None,
                       months_back: int = 0) -> list[str]:
    """Partitions from `months_back` months ago to `months_ahead` months after this one."""
    current = month_of(now or datetime.now(UTC))
    return await ensure_months(
        db, [add_months(current, n) for n in range(-months_back, months_ahead + 1)])


async def detach_before_date(db: Database, cutoff: date | datetime,
                             drop: bool = False) -> list[str]:
    """Detach (or drop) every monthly partition that ends on or before `cutoff`."""
    if db.is_sqlite:
        raise PartitionError("SQLite has no partitions; retention by partition needs PostgreSQL")
    if not isinstance(cutoff, datetime):
        cutoff = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC)
    elif cutoff.tzinfo is None:
        cutoff = cutoff.replace(tzinfo=UTC)
    async with db.engine.begin() as conn:
        partitions = await list_partitions(conn)
    done = []
    for part in partitions:
        if part.end is None or part.end > cutoff:
            continue
        async with db.engine.begin() as conn:
            await conn.execute(text(f"ALTER TABLE {PARENT} DETACH PARTITION {part.name}"))
            if drop:
                await conn.execute(text(f"DROP TABLE {part.name}"))
        done.append(part.name)
    return done


class PartitionKeeper:
    """Remembers which months have a partition, so the writer asks the catalogue only for new
    months; shared by all batches of one process."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.known: set[Month] = set()

    async def refresh(self) -> None:
        async with self.db.engine.connect() as conn:
            self.known = {p.month for p in await list_partitions(conn) if p.month is not None}

    def missing(self, months: set[Month]) -> set[Month]:
        return {m for m in months if m not in self.known and m[0] in AUTO_YEARS}

    async def ensure(self, months: set[Month], attempts: int = 3) -> None:
        missing = self.missing(months)
        for attempt in range(attempts):
            if not missing:
                return
            try:
                await self.refresh()
                missing -= self.known
                if missing:
                    await ensure_months(self.db, missing)
                    self.known |= missing
                return
            except Exception as exc:
                # Never fails a write: the rows wait in the default partition, and the next
                # batch of that month tries again.
                log.warning("could not create observation partitions %s (attempt %d): %s",
                            sorted(missing), attempt + 1, exc)
                await asyncio.sleep(0.2 * 4**attempt)

    async def ensure_after(self, conn: AsyncConnection, months: set[Month]) -> None:
        """Ensure once the caller's transaction on `conn` has ended: attaching must wait for
        its locks, and it must not be waited for by that transaction (a deadlock)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 600
        while conn.in_transaction() and loop.time() < deadline:
            await asyncio.sleep(0.02)
        await self.ensure(months)


async def command(db: Database, ensure: int | None = None, detach_before: date | None = None,
                  drop: bool = False) -> list[str]:
    """`ortspuls partitions`: what it did, then the partitions, as lines to print."""
    if db.is_sqlite:
        raise PartitionError("SQLite has no partitions; monthly partitions and retention by "
                             "partition need PostgreSQL")
    lines = []
    if ensure is not None:
        created = await ensure_ahead(db, ensure)
        lines.append(f"created {', '.join(created)}" if created else "no partition was missing")
    if detach_before is not None:
        done = await detach_before_date(db, detach_before, drop)
        verb = "dropped" if drop else "detached (kept as tables)"
        lines.append(f"{verb}: {', '.join(done)}" if done else
                     f"no partition ends on or before {detach_before:%Y-%m-%d}")
    async with db.engine.connect() as conn:
        for part in await list_partitions(conn):
            span = (f"{part.start:%Y-%m-%d} … {part.end:%Y-%m-%d}" if part.month
                    else "months without a partition")
            rows = "not analysed" if part.rows < 0 else f"~{part.rows} rows"
            lines.append(f"{part.name}\t{span}\t{rows}")
    return lines
