"""`ortspuls serve --workers 2`: two API processes on one port, concurrent single POSTs, and not
one acknowledged observation lost or duplicated, on SQLite (WAL, BEGIN IMMEDIATE, busy
timeout) and on PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.conftest import TEST_DATABASES
from tests.db.servers import child_pids, observation_ids, own_server

CLIENTS, POSTS_EACH = 16, 40


@pytest.mark.parametrize("kind", TEST_DATABASES)
def test_two_workers_store_every_concurrent_post(kind, tmp_path):
    with own_server(kind, tmp_path, ("--workers", "2")) as srv:
        assert len(child_pids(srv.process.pid)) >= 2  # the two worker processes

        def client_run(n: int) -> list[tuple[int, int | None]]:
            out = []
            with srv.client("admin") as client:
                for i in range(POSTS_EACH):
                    response = client.post("/Observations", json={
                        "result": n * 1000 + i, "phenomenonTime": "2024-05-01T10:00:00Z",
                        "Datastream": {"@iot.id": srv.datastream}})
                    out.append((response.status_code,
                                response.json()["@iot.id"] if response.status_code == 201
                                else None))
            return out

        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = [a for chunk in pool.map(client_run, range(CLIENTS)) for a in chunk]

        assert [status for status, _ in answers] == [201] * (CLIENTS * POSTS_EACH)
        acknowledged = [ident for _, ident in answers]
        assert len(set(acknowledged)) == len(acknowledged)
        assert observation_ids(srv, srv.datastream) == set(acknowledged)
        # Every result value arrived exactly once.
        with srv.client("admin") as client:
            body = client.get(f"/Datastreams({srv.datastream})/Observations",
                              params={"$select": "result", "$top": 10000}).json()
        assert sorted(o["result"] for o in body["value"]) == sorted(
            n * 1000 + i for n in range(CLIENTS) for i in range(POSTS_EACH))
