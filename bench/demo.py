"""Benchmark: the demo town Musterstadt, as a new user meets it.

1. Seeding: `ortspuls demo seed --years 1` into a fresh data folder, as a timed CLI run
   (about 2.3 million observations on SQLite); the seeder's own phase times are read from its
   output.
2. Time to dashboard: `ortspuls serve --demo` on another fresh data folder, the README's first
   command, from the start of the process until the dashboard page answers and its use-case
   API shows all eight use cases with current data (a live uplink newer than the start).

    python bench/demo.py [--years 1] [--skip-seed] [--skip-serve]

Prints the numbers and writes bench/results/demo.json. The machine's load average is recorded
beside them: the machine is shared, so wall times vary with what else runs.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import free_port, save

USECASES = 8


def _cpu_seconds() -> float:
    """CPU time of the finished child processes (the CLI runs measured here)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_seed(years: float) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="ortspuls-demo-seed-"))
    try:
        load = os.getloadavg()[0]
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "ortspuls", "demo", "seed", "--years", str(years),
             "--data-dir", str(folder)], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_before
        with sqlite3.connect(folder / "ortspuls.sqlite3") as conn:
            observations = conn.execute("SELECT count(*) FROM observations").fetchone()[0]
            datastreams = conn.execute("SELECT count(*) FROM datastreams").fetchone()[0]
            rollups = conn.execute("SELECT count(*) FROM rollups_hourly").fetchone()[0]
        size = sum(p.stat().st_size for p in folder.iterdir())
        seeded = re.search(r"in ([\d.]+) s", result.stdout)
        return {"years": years, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                "seeder_s": float(seeded.group(1)) if seeded else None,
                "observations": observations, "datastreams": datastreams,
                "hourly_rollups": rollups, "database_mb": round(size / 2**20, 1),
                "rows_per_s": round(observations / wall), "loadavg_before": load,
                "output": result.stdout.strip().splitlines()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_serve() -> dict:
    folder = Path(tempfile.mkdtemp(prefix="ortspuls-demo-serve-"))
    port = free_port()
    log = folder / "serve.log"
    load = os.getloadavg()[0]
    started = time.perf_counter()
    started_epoch = time.time()
    with log.open("w") as out:
        # The README's command, with free ports (this machine runs Mosquitto on 1883).
        process = subprocess.Popen(
            [sys.executable, "-m", "ortspuls", "serve", "--demo", "--data-dir",
             str(folder / "data"), "--port", str(port), "--mqtt-port", str(free_port()),
             "--mqtt-ws-port", str(free_port())],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    first_answer = dashboard = None
    try:
        deadline = started + 300
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited:\n{log.read_text()[-3000:]}")
            try:
                page = httpx.get(f"{url}/", timeout=10)
                if first_answer is None and page.status_code == 200:
                    first_answer = time.perf_counter() - started
                tiles = httpx.get(f"{url}/api/v1/usecases", timeout=10).json()["usecases"]
                live = [t for t in tiles if t.get("updated") and not t.get("stale")
                        and _epoch(t["updated"]) > started_epoch - 900]
                if page.status_code == 200 and len(live) >= USECASES:
                    dashboard = time.perf_counter() - started
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.25)
        text = log.read_text()
        seeded = re.search(r"in ([\d.]+) s", text)
        return {"time_to_first_page_s": round(first_answer, 2) if first_answer else None,
                "time_to_dashboard_s": round(dashboard, 2) if dashboard else None,
                "seeding_s": float(seeded.group(1)) if seeded else None,
                "loadavg_before": load}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, default=1.0)
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument("--skip-serve", action="store_true")
    args = parser.parse_args()
    data: dict = {}
    if not args.skip_seed:
        data["seed"] = bench_seed(args.years)
        s = data["seed"]
        print(f"seed {args.years:g} year(s): {s['observations']:,} observations in "
              f"{s['wall_s']} s wall ({s['cpu_s']} s CPU, seeder {s['seeder_s']} s), "
              f"{s['rows_per_s']:,} rows/s, {s['database_mb']} MB, "
              f"load average before {s['loadavg_before']:.1f}")
    if not args.skip_serve:
        data["serve"] = bench_serve()
        s = data["serve"]
        print(f"serve --demo on an empty folder: first page after {s['time_to_first_page_s']} s,"
              f" dashboard with all {USECASES} use cases live after "
              f"{s['time_to_dashboard_s']} s (seeding {s['seeding_s']} s), "
              f"load average before {s['loadavg_before']:.1f}")
    path = save("demo", data)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
