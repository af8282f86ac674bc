"""uvicorn (uvloop + httptools) against granian, both serving the Ortspuls app with the same
database and worker count: single-observation POSTs (32 clients) and a small GET."""

from __future__ import annotations

from bench.common import fresh_database, make_datastreams, running_server, save, table, wrk
from bench.ingest import CLIENTS, single_posts

SERVERS = ("uvicorn", "granian")


def run(duration: float = 10, databases=("sqlite", "postgresql")) -> dict:
    results = []
    for kind in databases:
        for workers in (1, 2):
            for http_server in SERVERS:
                with fresh_database(kind) as target, running_server(
                        target, workers=workers, http_server=http_server) as server:
                    datastreams = make_datastreams(server, 10)
                    posts = single_posts(server, target, datastreams, duration)
                    get_script = (f'wrk.headers["Authorization"] = "Bearer {server.key}"\n')
                    gets = wrk(f"{server.sta}/Datastreams({datastreams[0]})", get_script,
                               CLIENTS, duration / 2)
                results.append({"database": kind, "workers": workers, "server": http_server,
                                "post": posts, "get": gets})
    rows = [[r["database"], r["workers"], r["server"], r["post"]["created_per_s"],
             r["post"]["p50_ms"], r["post"]["p99_ms"], r["get"]["rps"], r["get"]["p50_ms"],
             r["get"]["p99_ms"]] for r in results]
    print(table(f"ASGI servers, {CLIENTS} clients",
                ["database", "workers", "server", "POST 201/s", "p50 ms", "p99 ms",
                 "GET req/s", "p50 ms", "p99 ms"], rows))
    data = {"duration_s": duration, "results": results}
    save("servers", data)
    return data
