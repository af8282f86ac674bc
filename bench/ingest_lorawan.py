"""Benchmark: The Things Stack uplinks through the webhook into the database, end to end.

Starts `ortspuls serve` on a fresh SQLite database (or `--database-url`), connects a TTS
integration with a JavaScript codec (the CO₂ sensor codec of the tests: four fields per uplink),
provisions the devices with one uplink each, then sends uplinks over keep-alive HTTP/1.1
connections and waits for every answer (an answer comes after the commit). Afterwards it counts
the stored observations. The JavaScript decode cost per uplink is measured separately, in this
process, with the same codec and payloads.

    python bench/ingest_lorawan.py [--uplinks 20000] [--devices 200] [--concurrency 64]

Prints the numbers and writes bench/results/ingest_lorawan.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CODEC = ROOT / "tests" / "ingest" / "codecs" / "raum-co2.js"
RESULTS = ROOT / "bench" / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "ortspuls", *args], check=True,
                          capture_output=True, text=True).stdout


def co2_payload(n: int) -> bytes:
    temperature = 180 + n % 60  # 18.0 … 23.9 °C
    return bytes([0x01, 0x75, 50 + n % 50, 0x03, 0x67, temperature & 0xFF, temperature >> 8,
                  0x04, 0x68, 80 + n % 20, 0x07, 0x7D, (400 + n % 900) & 0xFF,
                  (400 + n % 900) >> 8])


def uplink(eui: str, n: int, when: datetime) -> bytes:
    """One TTS v3 uplink message (webhook JSON), without decoded_payload."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    message = {
        "end_device_ids": {"device_id": f"co2-{eui.lower()}",
                           "application_ids": {"application_id": "schulen"},
                           "dev_eui": eui, "join_eui": "0000000000000000",
                           "dev_addr": "260B1234"},
        "correlation_ids": [f"as:up:{secrets.token_hex(13).upper()}",
                            f"gs:uplink:{secrets.token_hex(13).upper()}"],
        "received_at": stamp,
        "uplink_message": {
            "session_key_id": "AWNbm/4zfqx0jZ5q1NlBmw==", "f_port": 85, "f_cnt": n,
            "frm_payload": base64.b64encode(co2_payload(n)).decode(),
            "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-rathaus",
                                             "eui": "58A0CBFFFE800000"},
                             "time": stamp, "timestamp": 1234567, "rssi": -97,
                             "channel_rssi": -97, "snr": 7.5, "channel_index": 2,
                             "received_at": stamp}],
            "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 9,
                                                "coding_rate": "4/5"}},
                         "frequency": "867700000", "timestamp": 1234567},
            "received_at": stamp, "consumed_airtime": "0.185344s",
            "version_ids": {"brand_id": "ortspuls-bench", "model_id": "co2",
                            "firmware_version": "1.0", "band_id": "EU_863_870"},
            "network_ids": {"net_id": "000013", "tenant_id": "ttn", "cluster_id": "eu1"},
        },
    }
    return json.dumps(message, separators=(",", ":")).encode()


async def send_all(port: int, token: str, bodies: list[bytes], concurrency: int
                   ) -> tuple[float, list[float], dict[int, int], list[bytes]]:
    """Keep-alive HTTP/1.1 clients; returns wall time, latencies, status counts, bad bodies."""
    head = (f"POST /ingest/ttn HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n").encode()
    queue = list(reversed(bodies))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    unexpected: list[bytes] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                body = queue.pop()
                request = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
                started = time.perf_counter()
                writer.write(request)
                header = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in header.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                answer = await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                status = int(header.split(b" ", 2)[1])
                statuses[status] = statuses.get(status, 0) + 1
                if status != 200 or b'"stored"' not in answer:
                    unexpected.append(answer)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, statuses, unexpected


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), to report the server's cost
    per uplink independent of what else runs on the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def decode_cost(payloads: list[bytes]) -> float:
    """Microseconds per decode with the server's codec runner, same codec, same payloads."""
    from ortspuls.ingest.codecs import Codec, CodecRunner

    runner = CodecRunner()
    codec = Codec.of(1, "co2", CODEC.read_text())
    now = datetime.now(UTC)
    for payload in payloads[:200]:
        runner.decode(codec, payload, 85, now)
    started = time.perf_counter()
    for payload in payloads:
        runner.decode(codec, payload, 85, now)
    return (time.perf_counter() - started) / len(payloads) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uplinks", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ortspuls-bench-ingest-"))
    database = ["--data-dir", str(work)]
    if args.database_url:
        database += ["--database-url", args.database_url]
    cli("migrate", *database)
    token = cli("integration", "add", "ttn", "--name", "bench", *database).strip().splitlines()[-1]
    cli("codecs", "add", "--name", "co2", "--file", str(CODEC), "--vendor", "ortspuls-bench",
        "--model", "co2", *database)
    port = free_port()
    env = {**os.environ, "ORTSPULS_ACCESS_LOG": "false"}
    log = (work / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "ortspuls", "serve", "--port",
                               str(port), "--mqtt-port", "0", "--mqtt-ws-port", "0", *database],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"server did not start: {(work / 'server.log').read_text()}")
            time.sleep(0.1)

        euis = [secrets.token_hex(8).upper() for _ in range(args.devices)]
        start = datetime(2026, 1, 1, tzinfo=UTC)
        warmup = [uplink(eui, 1, start) for eui in euis]
        bodies, payloads = [], []
        for n in range(args.uplinks):
            eui = euis[n % len(euis)]
            f_cnt = 2 + n // len(euis)
            bodies.append(uplink(eui, f_cnt, start + timedelta(seconds=n)))
            payloads.append(co2_payload(f_cnt))

        # Provisioning (Things, Sensors, Datastreams) is not part of the measurement.
        _, _, statuses, bad = asyncio.run(send_all(port, token, warmup, 16))
        if bad:
            raise SystemExit(f"warm-up failed: {statuses} {bad[:3]}")
        cpu_before = cpu_seconds(server.pid)
        seconds, latencies, statuses, bad = asyncio.run(
            send_all(port, token, bodies, args.concurrency))
        server_cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()

    batches = next((line.split("ingest: ", 1)[1] for line in
                    (work / "server.log").read_text().splitlines() if "ingest: " in line
                    and "batches" in line), None)
    fields = 4
    expected = (args.uplinks + args.devices) * fields
    stored = None
    if not args.database_url:
        conn = sqlite3.connect(work / "ortspuls.sqlite3")
        stored = conn.execute("SELECT count(*) FROM observations").fetchone()[0]
        conn.close()
    decode_us = decode_cost(payloads)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    result = {
        "benchmark": "ingest_lorawan: TTS webhook -> codec -> observations committed",
        "database": "postgresql" if args.database_url else "sqlite",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before": os.getloadavg()[0]},
        "uplinks": args.uplinks,
        "devices": args.devices,
        "fields_per_uplink": fields,
        "concurrency": args.concurrency,
        "seconds": round(seconds, 3),
        "uplinks_per_s": round(args.uplinks / seconds, 1),
        "observations_per_s": round(args.uplinks * fields / seconds, 1),
        "latency_ms": {"p50": round(pct(0.5), 2), "p95": round(pct(0.95), 2),
                       "p99": round(pct(0.99), 2), "max": round(latencies[-1] * 1000, 2),
                       "mean": round(statistics.fmean(latencies) * 1000, 2)},
        "statuses": statuses,
        "unexpected_answers": len(bad),
        "observations_expected": expected,
        "observations_stored": stored,
        "decode_us_per_uplink": round(decode_us, 2),
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_us_per_uplink": round(server_cpu / args.uplinks * 1e6, 1),
        "uplinks_per_server_cpu_s": round(args.uplinks / server_cpu, 1),
        "batches": batches,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "ingest_lorawan.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.uplinks} uplinks ({fields} fields each) from {args.devices} devices, "
          f"{args.concurrency} connections, {result['database']}:")
    print(f"  {result['uplinks_per_s']:.0f} uplinks/s end to end "
          f"({result['observations_per_s']:.0f} observations/s), {seconds:.2f} s")
    print(f"  latency p50 {result['latency_ms']['p50']} ms, p99 {result['latency_ms']['p99']} "
          f"ms, max {result['latency_ms']['max']} ms")
    print(f"  JavaScript decode: {decode_us:.1f} µs per uplink (measured separately)")
    print(f"  server CPU: {result['server_cpu_us_per_uplink']} µs per uplink, i.e. "
          f"{result['uplinks_per_server_cpu_s']:.0f} uplinks per CPU second "
          f"(load average before: {result['machine']['load_before']:.1f}); {batches}")
    print(f"  answers {statuses}, unexpected {len(bad)}; observations stored {stored} of "
          f"{expected}")
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
