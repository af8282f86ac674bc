"""Dashboard pages: server time of the overview page (and the other pages) and what a browser
transfers to show the overview.

Uses the data set of `bench/dashboard.py` (1,000 Datastreams over the eight use cases, two years
of 10-minute observations, about 105 million rows in SQLite, kept under $ORTSPULS_BENCH_DATA and
topped up to now), so page and API numbers come from the same data. A real `ortspuls serve`
runs on it; each page is requested over loopback HTTP (after warm-up, memoised figures warm as
in production) and its time to the complete response is taken; the overview is also timed right
after a new observation (its tiles recomputed, as while sensors deliver), and its template is
rendered alone in process, to show the page layer's share. Then Chromium loads the overview
and the transferred bytes of the document and every resource it pulls (the live SSE stream
excluded) are summed from the browser's resource timing.

    python -m bench.pages [--streams 1000] [--days 730] [--runs 30]

Prints a table and writes bench/results/pages.json; nothing is asserted.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench import dashboard
from bench.common import cli, free_port, save, table

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TARGETS = {"overview_ms": 50, "overview_transfer_kb": 500}


def _complete(path: Path) -> bool:
    """The data set is finished: its build writes `bench_dashboard` after the observations and
    then fills the rollups in one transaction."""
    if not path.exists():
        return False
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return bool(conn.execute("SELECT count(*) FROM sqlite_master WHERE name = "
                                     "'bench_dashboard'").fetchone()[0]
                        and conn.execute("SELECT 1 FROM rollups_daily LIMIT 1").fetchone())
    except sqlite3.Error:
        return False


def data_set(streams: int, days: int) -> tuple[Path, dict[str, float]]:
    path = dashboard.DATA_DIR / f"dashboard-{streams}x{days}d.sqlite3"
    timings: dict[str, float] = {}
    if path.exists() and not _complete(path):
        # Another run (bench/dashboard.py) is building it: wait rather than build twice.
        print(f"waiting for the data set {path} to be finished …", flush=True)
        while not _complete(path):
            time.sleep(10)
    if not path.exists():
        print(f"building {path} ({streams} Datastreams, {days} days of 10-minute data)",
              flush=True)
        timings = dashboard.build(path, streams, days)
    dashboard.top_up(path)
    return path, timings


class RunningServer:
    def __init__(self, path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = path.parent / "pages-bench-server.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ortspuls", "serve", "--port", str(self.port),
                 "--database-url", f"sqlite:///{path}", "--data-dir", str(path.parent),
                 "--mqtt-port", "0", "--mqtt-ws-port", "0", "--log-level", "warning"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def time_pages(base: str, paths: dict[str, str], runs: int) -> dict[str, Any]:
    results = {}
    with httpx.Client(base_url=base, timeout=120) as client:
        for name, path in paths.items():
            samples, size = [], 0
            for i in range(runs + 3):
                began = time.perf_counter()
                response = client.get(path)
                elapsed = (time.perf_counter() - began) * 1000
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
                size = len(response.content)
                if i >= 3:  # warm-up: first renders fill the memoised figures
                    samples.append(elapsed)
            samples.sort()
            results[name] = {"path": path, "median_ms": round(statistics.median(samples), 2),
                             "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 2),
                             "min_ms": round(samples[0], 2), "bytes": size}
    return results


def overview_after_writes(base: str, key: str, datastream: int, runs: int) -> dict[str, Any]:
    """`GET /` right after a new observation: the shared tiles are recomputed, as they are
    while sensors deliver (otherwise readers share the tiles of the last change)."""
    samples = []
    with httpx.Client(base_url=base, timeout=120) as client:
        for i in range(runs + 3):
            response = client.post(f"/v1.1/Datastreams({datastream})/Observations",
                                   headers={"Authorization": f"Bearer {key}"},
                                   json={"result": 20 + i % 7})
            if response.status_code != 201:
                raise RuntimeError(f"POST: {response.status_code} {response.text[:300]}")
            began = time.perf_counter()
            page = client.get("/")
            elapsed = (time.perf_counter() - began) * 1000
            if page.status_code != 200:
                raise RuntimeError(f"/: {page.status_code}")
            if i >= 3:
                samples.append(elapsed)
    samples.sort()
    return {"path": "/ after POST", "median_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 2),
            "min_ms": round(samples[0], 2), "bytes": len(page.content)}


def render_only(base: str, runs: int) -> dict[str, Any]:
    """The page layer's own share: rendering the overview from tiles already computed (the
    tiles come from the running server's JSON API, the same data the page handler gets)."""
    from starlette.applications import Starlette
    from starlette.requests import Request

    from ortspuls.settings import load_settings
    from ortspuls.web.render import browser_config, page_context, render

    tiles = httpx.get(f"{base}/api/v1/usecases", timeout=120).json()["usecases"]
    app = Starlette()
    app.state.settings = load_settings(environ={})
    scope = {"type": "http", "method": "GET", "path": "/", "raw_path": b"/",
             "query_string": b"", "headers": [(b"host", b"127.0.0.1")], "scheme": "http",
             "server": ("127.0.0.1", 80), "root_path": "", "app": app}
    samples = []
    for i in range(runs + 3):
        began = time.perf_counter()
        ctx = page_context(Request(scope))
        body = render(ctx, "overview.html", page="overview", tiles=tiles,
                      config=browser_config(ctx, tiles="/_fragments/tiles")).body
        if i >= 3:
            samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 3),
            "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 3),
            "tiles": len(tiles), "bytes": len(body)}


def transfer_of_overview(base: str) -> dict[str, Any]:
    """Bytes a fresh browser transfers to show the overview (document + every resource)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/", wait_until="load")
            page.wait_for_timeout(500)
            entries = page.evaluate("""() => {
              const nav = performance.getEntriesByType("navigation")[0];
              return [nav, ...performance.getEntriesByType("resource")]
                .filter((e) => !e.name.includes("/api/v1/live"))
                .map((e) => ({name: e.name, transfer: e.transferSize, body: e.encodedBodySize}));
            }""")
        finally:
            browser.close()
    total = sum(e["transfer"] or e["body"] for e in entries)
    return {"total_bytes": total, "total_kb": round(total / 1024, 1),
            "files": [{"url": e["name"].replace(base, ""), "bytes": e["transfer"] or e["body"]}
                      for e in entries]}


def run(streams: int, days: int, runs: int) -> dict[str, Any]:
    path, build = data_set(streams, days)
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT max(id) FROM observations").fetchone()[0]
        detail_ds = conn.execute("SELECT min(id) FROM datastreams").fetchone()[0]
    key = cli("apikey", "create", "--name", f"pages-bench-{os.getpid()}", "--scope", "write",
              "--database-url", f"sqlite:///{path}", "--data-dir",
              str(path.parent)).strip().splitlines()[-1]
    server = RunningServer(path)
    try:
        pages = time_pages(server.url, {
            "overview": "/",
            "overview_en": "/?lang=en",
            "tile_fragments": "/_fragments/tiles",
            "detail_radverkehr": "/usecase/radverkehr",
            "detail_wetter": "/usecase/wetter",
            "map": "/map",
            "csv_year_daily": f"/api/v1/datastreams/{detail_ds}/series.csv?interval=P1D",
        }, runs)
        pages["overview_after_write"] = overview_after_writes(server.url, key, detail_ds, runs)
        rendering = render_only(server.url, runs)
        transfer = transfer_of_overview(server.url)
    finally:
        server.stop()
    result = {"streams": streams, "days": days, "observations": rows, "build": build,
              "pages": pages, "overview_render_only": rendering,
              "overview_transfer": transfer, "targets": TARGETS,
              "load_average_after": os.getloadavg()}
    print(table(f"Dashboard pages, SQLite, {streams} Datastreams, {rows:,} observations",
                ["page", "median ms", "p95 ms", "bytes", "target ms"],
                [[f"GET {v['path']}", v["median_ms"], v["p95_ms"], v["bytes"],
                  TARGETS["overview_ms"] if name.startswith("overview") else None]
                 for name, v in pages.items()]
                + [["overview template alone (in process)", rendering["median_ms"],
                    rendering["p95_ms"], rendering["bytes"], None]]))
    print(f"load average (1 min) after the run: {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    print(table("Overview page in Chromium: transferred",
                ["file", "bytes"],
                [[f["url"][:70], f["bytes"]] for f in transfer["files"]]
                + [["total (target ≤ 500 KB)", transfer["total_bytes"]]]))
    out = save("pages", result)
    print(f"written to {out}")
    return result


def main(argv: list[str] | None = None) -> int:
    return dashboard.data_set_main("python -m bench.pages", run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
