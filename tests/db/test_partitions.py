"""Monthly observation partitions on PostgreSQL: created ahead, created by the writer for a new
month, rows moved out of the default partition, retention by detaching months (real server,
real PostgreSQL, the real CLI)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest
from tests.conftest import database_args_for, run_cli, start_server, stop_server
from tests.db.servers import NO_MQTT, make_datastream, thing_with_datastream

from ortspuls.db import partitions
from ortspuls.db.engine import Database


def fetch(url: str, sql: str, *args):
    async def run():
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    """A PostgreSQL server of our own: these tests detach partitions."""
    data_dir = tmp_path_factory.mktemp("partitions")
    with database_args_for("postgresql", data_dir) as args:
        key = run_cli("apikey", "create", "--name", "p", "--scope", "admin", *args
                      ).stdout.strip().splitlines()[-1]
        srv = start_server(data_dir, args, NO_MQTT)
        srv.keys = {"admin": key}
        srv.url_db = args[args.index("--database-url") + 1]
        try:
            srv.datastream = make_datastream(srv)
            yield srv
        finally:
            stop_server(srv)


def partition_of(url: str, obs_id: int) -> str | None:
    rows = fetch(url, "SELECT tableoid::regclass::text AS p FROM observations WHERE id = $1",
                 obs_id)
    return rows[0]["p"] if rows else None


def post(srv, when: str, result: float = 1.0) -> int:
    with srv.client("admin") as client:
        response = client.post("/Observations", json={
            "phenomenonTime": when, "result": result, "Datastream": {"@iot.id": srv.datastream}})
        assert response.status_code == 201, response.text
        return response.json()["@iot.id"]


def test_schema_is_partitioned_by_month_with_composite_primary_key(pg):
    rows = fetch(pg.url_db, "SELECT partstrat, pg_get_partkeydef('observations'::regclass) AS k "
                            "FROM pg_partitioned_table WHERE partrelid = 'observations'::regclass")
    assert rows[0]["k"] == "RANGE (phenomenon_time_start)"
    pk = fetch(pg.url_db, "SELECT pg_get_constraintdef(oid) AS d FROM pg_constraint "
                          "WHERE conname = 'pk_observations'")
    assert pk[0]["d"] == "PRIMARY KEY (id, phenomenon_time_start)"
    names = {r["relname"] for r in fetch(
        pg.url_db, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                   "WHERE i.inhparent = 'observations'::regclass")}
    now = partitions.month_of(datetime.now(UTC))
    ahead = {partitions.partition_name(partitions.add_months(now, n)) for n in range(4)}
    assert ahead | {"observations_default"} <= names


def test_writer_creates_the_partition_of_a_new_month(pg):
    obs = post(pg, "2019-03-10T12:00:00Z")
    assert partition_of(pg.url_db, obs) == "observations_y2019m03"
    with pg.client("admin") as client:
        assert client.get(f"/Observations({obs})").json()["result"] == 1.0


def test_rows_in_the_default_partition_move_when_their_month_is_created(pg):
    # Year 2250 is outside the months created automatically: the row waits in the default.
    obs = post(pg, "2250-01-05T00:00:00Z", 7.5)
    assert partition_of(pg.url_db, obs) == "observations_default"

    async def ensure():
        db = Database(pg.url_db)
        try:
            return await partitions.ensure_months(db, [(2250, 1)])
        finally:
            await db.close()

    assert asyncio.run(ensure()) == ["observations_y2250m01"]
    assert partition_of(pg.url_db, obs) == "observations_y2250m01"
    assert fetch(pg.url_db, "SELECT count(*) AS n FROM observations_default")[0]["n"] == 0
    with pg.client("admin") as client:
        assert client.get(f"/Observations({obs})").json()["result"] == 7.5


def test_cli_detaches_old_months_for_retention(pg):
    old = post(pg, "2018-06-01T00:00:00Z")
    kept = post(pg, "2018-07-01T00:00:00Z")
    args = ["--database-url", pg.url_db, "--data-dir", str(pg.data_dir)]
    out = run_cli("partitions", "--detach-before", "2018-07-01", *args).stdout
    assert "observations_y2018m06" in out.splitlines()[0]
    with pg.client("admin") as client:
        assert client.get(f"/Observations({old})").status_code == 404
        assert client.get(f"/Observations({kept})").status_code == 200
    # Detached, the month is still a table of its own (to archive), until --drop.
    assert fetch(pg.url_db, "SELECT count(*) AS n FROM observations_y2018m06")[0]["n"] == 1
    listing = run_cli("partitions", *args).stdout
    assert "observations_y2018m07" in listing
    assert "observations_y2018m06" not in listing

    run_cli("partitions", "--detach-before", "2018-08-01", "--drop", *args)
    assert fetch(pg.url_db, "SELECT to_regclass('observations_y2018m07') AS t")[0]["t"] is None
    with pg.client("admin") as client:
        assert client.get(f"/Observations({kept})").status_code == 404


def test_cli_ensure_creates_months_ahead(pg):
    args = ["--database-url", pg.url_db, "--data-dir", str(pg.data_dir)]
    out = run_cli("partitions", "--ensure", "6", *args).stdout
    month = partitions.add_months(partitions.month_of(datetime.now(UTC)), 6)
    assert partitions.partition_name(month) in out


def test_partitions_on_sqlite_is_a_clear_error(tmp_path):
    result = run_cli("partitions", "--detach-before", "2020-01-01", "--data-dir", str(tmp_path),
                     check=False)
    assert result.returncode == 2
    assert "SQLite has no partitions" in result.stderr


def test_deep_insert_of_a_new_month_is_in_its_partition_when_the_201_arrives(pg):
    # Observations inside a deep insert are written in the request's transaction; their month
    # is created once that transaction has committed, and the answer waits for it, so a read
    # right after the 201 finds the row, already in its own month.
    with pg.client("admin") as client:
        body = thing_with_datastream("Neu", [{"phenomenonTime": "2017-02-03T04:05:06Z",
                                              "result": 3.0}])
        response = client.post("/Things", json=body)
        assert response.status_code == 201, response.text
        ds = client.get(response.headers["location"] + "/Datastreams").json()["value"][0]
        found = client.get(f"/Datastreams({ds['@iot.id']})/Observations").json()["value"]
        assert [o["result"] for o in found] == [3.0]
    assert partition_of(pg.url_db, found[0]["@iot.id"]) == "observations_y2017m02"
