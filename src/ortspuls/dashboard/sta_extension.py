"""SensorThings extension: aggregated Observations of a Datastream (`$aggregate`).

    GET /v1.1/Datastreams(5)/Observations?$aggregate=PT1H&$stats=mean,min,max
        &$from=2024-01-01T00:00:00Z&$to=2024-02-01T00:00:00Z

- `$aggregate`: the bucket, one of PT10M, PT1H, P1D (local days) and P1M (local months);
- `$stats`: any of mean, min, max, sum, count (default: all five);
- `$from`, `$to`: ISO 8601 times (a date alone is local midnight; no offset means local time);
  default: the last day (PT10M, PT1H), year (P1D) or two years (P1M).

The answer is a collection of aggregate Observations: one per bucket with data, its
`phenomenonTime` the bucket interval, `result` the first requested statistic, and all requested
statistics in `parameters`. Days and months follow the server's time zone (`timezone` setting),
named in the response and in `serverSettings`. Other query options cannot be combined with it.
The service root advertises it in `serverSettings.conformance` and under the same URI key.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ortspuls.dashboard import service
from ortspuls.query.ast import QueryOptions
from ortspuls.sta import http as sta_http
from ortspuls.sta import read as reading
from ortspuls.sta.errors import BadRequest
from ortspuls.sta.paths import ResourcePath
from ortspuls.timeseries.rollups import INTERVALS, STATS

AGGREGATE_URI = "urn:ortspuls:sta:extension:aggregate:1.0"
PARAMETERS = ("$aggregate", "$stats", "$from", "$to")


def server_settings(timezone: str) -> dict[str, Any]:
    """The `serverSettings` entry that describes the extension."""
    return {
        "description": "Aggregated Observations: Datastreams(id)/Observations?$aggregate=…",
        "parameters": {
            "$aggregate": f"bucket interval: {', '.join(INTERVALS)}",
            "$stats": f"comma-separated statistics: {', '.join(STATS)} (default: all)",
            "$from": "ISO 8601 start (rounded down to its bucket)",
            "$to": "ISO 8601 end (exclusive)",
        },
        "intervals": list(INTERVALS),
        "stats": list(STATS),
        "timezone": timezone,
        "documentation": "/api/v1/openapi.json",
    }


async def aggregate(request: Request, path: ResourcePath) -> Response | None:
    """The `$aggregate` read, or None when the request does not ask for it."""
    params = request.query_params
    if "$aggregate" not in params:
        return None
    segments = path.segments
    if (len(segments) != 2 or segments[0].entity.name != "Datastream" or segments[0].id is None
            or segments[1].entity.name != "Observation" or segments[1].id is not None
            or path.member is not None or path.ref):
        raise BadRequest("$aggregate applies to the Observations of one Datastream, e.g. "
                         "Datastreams(5)/Observations?$aggregate=PT1H")
    for key in params:
        if key not in PARAMETERS:
            raise BadRequest(f"{key} cannot be combined with $aggregate; use "
                             f"{', '.join(PARAMETERS)}")
        if len(params.getlist(key)) > 1:
            raise BadRequest(f"{key} is given more than once")
    datastream_id = segments[0].id
    state = request.app.state
    async with state.db.read() as conn:
        # 404 exactly when the Datastream cannot be read through SensorThings (its
        # visibility rules apply here, not the dashboard's public-only rule).
        ctx = sta_http.read_context(request, conn)
        await reading.read_entity(ctx, ResourcePath((segments[0],)), QueryOptions())
    result = await service.series(state, datastream_id, params.get("$from"), params.get("$to"),
                                  params["$aggregate"], params.get("$stats"),
                                  public_only=False)
    stats = result["stats"]
    first = stats[0]
    body = {
        "aggregate": {"datastream": f"{sta_http.service_root(request)}/Datastreams"
                                    f"({datastream_id})",
                      "interval": result["interval"], "timezone": result["timezone"],
                      "stats": stats, "from": result["from"], "to": result["to"],
                      "unitOfMeasurement": result["unit"]},
        "value": [{"phenomenonTime": f"{b['start']}/{b['end']}", "result": b[first],
                   "parameters": {s: b[s] for s in stats}} for b in result["value"]],
    }
    return sta_http.json_response(body)


__all__ = ["AGGREGATE_URI", "aggregate", "server_settings"]
