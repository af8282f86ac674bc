"""The time limit of reads over HTTP (`query_timeout`), on both databases.

A normal server stores 300,000 Observations (CreateObservations); a second server on the same
database runs with `ORTSPULS_QUERY_TIMEOUT=0.001`. Its expensive reads are stopped and answered
with the JSON error of the API (400; 503 where the client did not shape the query), one warning
line in the log and no traceback, and the server goes on answering.

Nothing here measures time: the reads asked for touch all 300,000 rows, far more work than
a millisecond allows on either database (PostgreSQL's statement_timeout of 1 ms; SQLite's
progress handler only looks at the clock after 3 million instructions, later than that).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from tests.conftest import (
    TEST_DATABASES,
    Server,
    create_key,
    database_args_for,
    start_server,
    stop_server,
)
from tests.db.servers import NO_MQTT, make_datastream

# Enough rows that each statement of the expensive read runs millions of SQLite instructions
# (the progress handler looks at the clock every 3 million).
ROWS = 300_000
T0 = datetime(2024, 1, 1, tzinfo=UTC)
EXPENSIVE = {"$count": "true", "$orderby": "result desc",
             "$filter": "result mul 2 add 1 gt -1000000"}
STOPPED = "the query was stopped after 0.001 s"


def seed(server: Server) -> int:
    """One Datastream with ROWS observations, one a minute, through CreateObservations."""
    datastream = make_datastream(server)
    rows = [[(T0 + timedelta(minutes=i)).isoformat().replace("+00:00", "Z"), (i * 37) % 1000]
            for i in range(ROWS)]
    with server.client("admin") as client:
        response = client.post("/CreateObservations", timeout=300, json=[{
            "Datastream": {"@iot.id": datastream},
            "components": ["phenomenonTime", "result"], "dataArray": rows}])
    assert response.status_code == 201, response.text[:500]
    return datastream


@pytest.fixture(scope="module", params=TEST_DATABASES)
def limited(request, tmp_path_factory) -> Iterator[Server]:
    """A server with a 1 ms read limit on a database seeded by a server without one."""
    data_dir = tmp_path_factory.mktemp(f"query-timeout-{request.param}")
    with database_args_for(request.param, data_dir) as args:
        key = create_key(args, "admin", "admin")
        seeder = start_server(data_dir, args, NO_MQTT)
        seeder.keys = {"admin": key}
        try:
            datastream = seed(seeder)
        finally:
            stop_server(seeder)
        # Its start and background jobs (the latest-value refresh, here every 50 ms) read
        # without the limit; on PostgreSQL the start would fail otherwise.
        server = start_server(data_dir, args, {**NO_MQTT, "ORTSPULS_QUERY_TIMEOUT": "0.001",
                                               "ORTSPULS_LATEST_REFRESH_SECONDS": "0.05"})
        server.keys = {"admin": key}
        server.datastream = datastream
        server.database = request.param
        try:
            yield server
        finally:
            stop_server(server)


def assert_stopped(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status
    assert body["type"] == "error"
    assert STOPPED in body["message"]
    return body["message"]


def assert_answers(server: Server) -> None:
    root = httpx.get(f"{server.sta}/", timeout=30)
    assert root.status_code == 200
    assert root.json()["value"]


def test_an_expensive_read_is_stopped_with_advice(limited: Server):
    response = httpx.get(f"{limited.sta}/Observations", params=EXPENSIVE, timeout=60)
    message = assert_stopped(response)
    assert "$filter" in message and "$top" in message
    assert_answers(limited)
    log = limited.log()
    assert "read stopped at the time limit of 0.001 s: GET /v1.1/Observations" in log
    assert "Traceback" not in log


def test_the_same_read_with_a_key_and_in_a_tenant_view(limited: Server):
    with limited.client("admin") as client:
        assert_stopped(client.get("/Observations", params=EXPENSIVE))
    assert_stopped(httpx.get(f"{limited.url}/t/default/v1.1/Observations", params=EXPENSIVE,
                             timeout=60))
    assert_answers(limited)


def test_a_batch_part_is_stopped(limited: Server):
    query = "&".join(f"{k}={v}" for k, v in EXPENSIVE.items())
    with limited.client("admin") as client:
        response = client.post("/$batch", json={"requests": [
            {"id": "1", "method": "get", "url": f"Observations?{query}"}]})
    assert response.status_code == 200, response.text
    [part] = response.json()["responses"]
    assert part["status"] == 400
    assert STOPPED in part["body"]["message"]
    assert_answers(limited)
    assert "Traceback" not in limited.log()


@pytest.mark.parametrize("fmt", ["CSV", "GeoJSON"])
@pytest.mark.parametrize("count", ["true", "false"])
def test_a_streamed_format_is_stopped_before_it_starts(limited: Server, fmt: str, count: str):
    """$count runs before the answer starts; without it, the sort runs at the first fetch,
    which also happens before the first byte is sent."""
    response = httpx.get(f"{limited.sta}/Observations", timeout=60, params={
        **EXPENSIVE, "$count": count, "$resultFormat": fmt})
    assert_stopped(response)
    assert_answers(limited)
    assert "Traceback" not in limited.log()


def test_the_dashboard_api_and_download_are_stopped(limited: Server):
    params = {"from": T0.isoformat(), "to": (T0 + timedelta(minutes=ROWS)).isoformat(),
              "interval": "PT10M"}
    series = f"{limited.url}/api/v1/datastreams/{limited.datastream}/series"
    message = assert_stopped(httpx.get(series, params=params, timeout=60))
    assert "shorter period" in message
    # The CSV download has no handler of its own: the app's answers, 503.
    assert_stopped(httpx.get(series + ".csv", params=params, timeout=60), 503)
    assert_answers(limited)
    log = limited.log()
    assert f"GET /api/v1/datastreams/{limited.datastream}/series.csv" in log
    assert "Traceback" not in log


def test_the_server_still_takes_writes(limited: Server):
    with limited.client("admin") as client:
        response = client.post("/CreateObservations", json=[{
            "Datastream": {"@iot.id": limited.datastream},
            "components": ["phenomenonTime", "result"],
            "dataArray": [[(T0 - timedelta(minutes=i + 1)).isoformat(), i] for i in range(50)]}])
        assert response.status_code == 201, response.text


def test_a_stream_stopped_later_is_cut_off_not_completed():
    """After the first byte no error status is possible: the answer must end without its last
    chunk (the client sees an incomplete body), not look complete, and raise nothing."""
    import asyncio

    from ortspuls.db.engine import QueryTimeout
    from ortspuls.sta.formats import _Stream

    async def body():
        yield b"id\r\n1\r\n"
        raise QueryTimeout(0.5)

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        await asyncio.Event().wait()
        return {}

    scope = {"type": "http", "asgi": {"spec_version": "2.4"}}
    asyncio.run(_Stream(body(), media_type="text/csv")(scope, receive, send))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[-1]["more_body"] is True
