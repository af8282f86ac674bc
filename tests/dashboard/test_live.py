"""Live values: new public observations arrive as Server-Sent Events; internal ones never."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
from tests.dashboard.conftest import Town, make_internal


def events(lines: Iterator[str]) -> Iterator[dict]:
    """The data of each event in an SSE line stream (comments and blank lines skipped)."""
    for line in lines:
        if line.startswith("data: "):
            yield json.loads(line[len("data: "):])


def connected(lines: Iterator[str]) -> None:
    for line in lines:
        if line == ": connected":
            return
    raise AssertionError("the stream ended before it was ready")


def test_a_posted_observation_arrives_on_the_live_stream(dash: Town):
    thing = dash.thing(name="Pegel Live")
    public = dash.datastream(thing, "Wasserstand", "cm")
    internal = dash.datastream(thing, "Wasserstand", "cm")
    make_internal(dash.server, internal)
    with httpx.Client(base_url=dash.server.url, timeout=20) as client, \
            client.stream("GET", "/api/v1/live") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        connected(lines)
        dash.post(internal, 1.0)  # posted first: if it leaked, it would arrive first
        observation = dash.post(public, 42.5)
        event = next(events(lines))
    assert event["datastream_id"] == public
    assert event["observation_id"] == observation
    assert event["value"] == 42.5
    assert event["usecase"] == "pegel"
    assert event["thing_id"] == thing
    assert event["time"].endswith("Z")


def test_the_live_stream_can_be_narrowed_to_a_use_case(dash: Town):
    thing = dash.thing()
    level = dash.datastream(thing, "Wasserstand", "cm")
    noise = dash.datastream(thing, "LAeq", "dB(A)")
    with httpx.Client(base_url=dash.server.url, timeout=20) as client, \
            client.stream("GET", "/api/v1/live", params={"usecase": "laerm"}) as response:
        lines = response.iter_lines()
        connected(lines)
        dash.post(level, 3.0)
        dash.post(noise, 61.0)
        event = next(events(lines))
    assert (event["datastream_id"], event["value"], event["usecase"]) == (noise, 61.0, "laerm")


def test_bad_live_parameters_are_400(dash: Town):
    for params in ({"usecase": "kino"}, {"datastream": "x"}, {"since": "1"}):
        response = dash.get("/api/v1/live", **params)
        assert response.status_code == 400, params
        assert response.json()["code"] == 400


def test_the_server_stops_while_a_live_stream_is_open(tmp_path_factory):
    """An event stream never ends by itself; shutdown must end it instead of waiting forever."""
    import subprocess

    from tests.conftest import create_key, start_server, stop_server

    data_dir = tmp_path_factory.mktemp("live-stop")
    args = ["--data-dir", str(data_dir)]
    create_key(args, "live-admin", "admin")
    server = start_server(data_dir, args)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client, \
                client.stream("GET", "/api/v1/live") as response:
            lines = response.iter_lines()
            connected(lines)
            server.process.terminate()
            try:
                server.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                raise AssertionError("the server kept waiting for the open live stream") from None
        assert "Application shutdown complete" in server.log()
    finally:
        stop_server(server)
