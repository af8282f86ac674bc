"""Schema migrations (Alembic), run explicitly by `ortspuls migrate` or at server start.

The revisions live in `ortspuls/db/migrations/versions`; each one is an explicit list of schema
operations, so an existing database is upgraded step by step and a new one is built by the same
steps.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ortspuls.db.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaOutdated(RuntimeError):
    pass


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest revision(s); independent features may add branches, joined by commas."""
    return ",".join(sorted(ScriptDirectory.from_config(_config()).get_heads()))


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        heads = await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_heads()
        )
    return ",".join(sorted(heads)) or None


async def upgrade(db: Database, revision: str = "heads") -> tuple[str | None, str]:
    """Bring the schema to `revision`; returns (revision before, revision after)."""
    before = await current_revision(db)
    cfg = _config()

    def run(sync_conn) -> None:
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    if db._write_lock is not None:
        async with db._write_lock, db.engine.connect() as conn:
            await conn.run_sync(run)
            await conn.commit()
    else:
        async with db.engine.connect() as conn:
            # One migrator at a time when several workers start against one PostgreSQL.
            await conn.exec_driver_sql("SELECT pg_advisory_lock(74201)")
            try:
                await conn.run_sync(run)
                await conn.commit()
            finally:
                await conn.exec_driver_sql("SELECT pg_advisory_unlock(74201)")
                await conn.commit()
    if not db.is_sqlite:
        # This month's and the next months' observation partitions (at every migrate and serve).
        from ortspuls.db.partitions import ensure_ahead

        await ensure_ahead(db)
    return before, await current_revision(db)


async def check(db: Database) -> None:
    """Raise SchemaOutdated unless the database is at the newest revision."""
    current, head = await current_revision(db), head_revision()
    if current != head:
        raise SchemaOutdated(
            f"database schema is at {current or 'nothing'}, this version needs {head}; "
            "run `ortspuls migrate`"
        )
