"""CSV download of an aggregated series: `GET /api/v1/datastreams/{id}/series.csv`.

Takes the parameters of the JSON series API (`from`, `to`, `interval`, `stats`), which the
dashboard service validates the same way for both, and writes the same buckets as RFC 4180 CSV
with ISO 8601 UTC times and full-precision numbers, so spreadsheets and scripts read exactly what
the chart showed.
"""

from __future__ import annotations

import csv
import io

from starlette.requests import Request
from starlette.responses import Response

from ortspuls.dashboard import service
from ortspuls.sta.errors import StaError


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _stamp(iso: str | None) -> str:
    return (iso or "").replace("-", "").replace(":", "").removesuffix("00Z").rstrip("T") or "now"


async def series_csv(request: Request) -> Response:
    params = request.query_params
    ds_id = request.path_params["id"]
    try:
        # Internal Datastreams for callers who may see them (API key or login).
        from ortspuls.tenancy.http import caller_visibility

        series = await service.series(request.app.state, ds_id, params.get("from"),
                                      params.get("to"), params.get("interval") or "PT1H",
                                      params.get("stats"),
                                      visibility=await caller_visibility(request))
    except StaError as exc:
        return exc.response()
    stats = series["stats"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["start", "end", *stats])
    for row in series["value"]:
        writer.writerow([row["start"], row["end"], *(_cell(row.get(s)) for s in stats)])
    filename = (f"datastream-{ds_id}-{series['interval']}-{_stamp(series.get('from'))}-"
                f"{_stamp(series.get('to'))}.csv")
    return Response(out.getvalue().encode(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-cache",
    })
