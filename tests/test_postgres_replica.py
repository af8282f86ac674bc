"""`read_database_url`: GETs are answered through the read connection, writes (and the reads
inside a write) through the primary one. The "replica" is the same PostgreSQL database reached
as a role that may only SELECT and that row-level security shows less, so the answers tell which
connection served them."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg
import pytest
from tests.conftest import PG_ADMIN_URL, create_key, database_args_for, start_server, stop_server
from tests.db.servers import NO_MQTT, make_datastream


def pg(url: str, sql: str, *args):
    async def run():
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture
def readonly_role():
    role = f"ortspuls_ro_{secrets.token_hex(4)}"
    pg(PG_ADMIN_URL, f"CREATE ROLE {role} LOGIN")
    yield role
    pg(PG_ADMIN_URL, f"DROP ROLE IF EXISTS {role}")


def test_reads_go_to_the_read_database_and_writes_do_not(tmp_path, readonly_role):
    with database_args_for("postgresql", tmp_path) as args:
        url = args[args.index("--database-url") + 1]
        database = url.rsplit("/", 1)[1]
        key = create_key(args, "admin", "admin")  # migrates the schema first
        pg(url, f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {readonly_role}")
        read_url = url.replace("postgres@", f"{readonly_role}@")
        # The role really cannot write.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            pg(read_url, "UPDATE tenants SET name = 'x'")

        srv = start_server(tmp_path, args, NO_MQTT, ("--read-database-url", read_url))
        srv.keys = {"admin": key}
        try:
            datastream = make_datastream(srv)  # POSTs: through the primary
            with srv.client("admin") as client:
                created = client.post(f"/Datastreams({datastream})/Observations",
                                      json={"result": 4.5})
                assert created.status_code == 201, created.text
                obs = created.json()["@iot.id"]
                assert client.get(f"/Observations({obs})").json()["result"] == 4.5
                assert client.get("/Things").json()["value"][0]["name"] == "Pegel"

                # Row-level security hides one Thing from the read role only (the owner, used
                # for writes, is not subject to it): GETs that run as the read role miss it,
                # the POST's own answer (read back on the primary) has it.
                pg(url, "ALTER TABLE things ENABLE ROW LEVEL SECURITY")
                pg(url, f"CREATE POLICY replica_view ON things FOR SELECT TO {readonly_role} "
                        "USING (name <> 'Nur primär')")
                posted = client.post("/Things", json={"name": "Nur primär", "description": "d"})
                assert posted.status_code == 201
                assert posted.json()["name"] == "Nur primär"
                names = {t["name"] for t in client.get("/Things").json()["value"]}
                assert names == {"Pegel"}
                assert client.get(posted.headers["location"]).status_code == 404
            roles = {r["usename"] for r in pg(
                PG_ADMIN_URL, "SELECT usename FROM pg_stat_activity WHERE datname = $1 AND "
                              "backend_type = 'client backend'", database)}
            assert readonly_role in roles
        finally:
            stop_server(srv)
