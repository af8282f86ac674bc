"""A fresh data folder gets its schema by migration; a second start does not migrate again."""

from __future__ import annotations

from tests.conftest import create_key, run_cli, start_server, stop_server
from tests.sta.conftest import read_sqlite

from ortspuls.db.migrate import head_revision


def test_fresh_folder_is_migrated_once(fresh_server):
    srv = fresh_server(keys=())  # no CLI call before: `serve` itself creates the schema
    assert "database schema upgraded from nothing" in srv.log()
    tables = {r[0] for r in read_sqlite(srv, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"alembic_version", "things", "observations", "api_keys"} <= tables
    versions = sorted(r[0] for r in read_sqlite(srv, "SELECT version_num FROM alembic_version"))
    assert ",".join(versions) == head_revision()
    assert read_sqlite(srv, "PRAGMA journal_mode")[0][0] == "wal"

    srv.keys["admin"] = create_key(srv.database_args, "admin", "admin")
    with srv.client("admin") as api:
        thing = api.post("/Things", json={"name": "bleibt", "description": "d"}).json()
    stop_server(srv)

    again = start_server(srv.data_dir, srv.database_args)
    try:
        assert "upgraded" not in again.log() and "Running upgrade" not in again.log()
        assert sorted(r[0] for r in read_sqlite(
            again, "SELECT version_num FROM alembic_version")) == versions
        with again.client(None) as anon:
            assert anon.get(f"/Things({thing['@iot.id']})").json()["name"] == "bleibt"
    finally:
        stop_server(again)


def test_migrate_command_reports_state(tmp_path):
    args = ["--data-dir", str(tmp_path / "daten")]
    first = run_cli("migrate", *args)
    assert "upgraded from nothing" in first.stdout
    second = run_cli("migrate", *args)
    assert "up to date" in second.stdout
    assert (tmp_path / "daten" / "ortspuls.sqlite3").exists()
