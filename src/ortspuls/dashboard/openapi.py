"""The OpenAPI 3.1 document of the dashboard JSON API (`/api/v1`) and the SensorThings
`$aggregate` extension, written by hand as data: the endpoints are plain Starlette functions."""

from __future__ import annotations

from typing import Any

from ortspuls import __version__
from ortspuls.timeseries.rollups import INTERVALS, STATS


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = _json(_ref("Error"), "Bad parameters (400) or nothing found (404)")
_LANG = {"name": "lang", "in": "query", "required": False,
         "description": "Language of all texts: de (default) or en",
         "schema": {"type": "string", "enum": ["de", "en"], "default": "de"}}
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_ANY_VALUE = {"description": "The Observation result (number, boolean, text or JSON)"}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "integer"}, "type": {"type": "string"}, "error": {"type": "string"},
        "message": {"type": "string"}}},
    "Unit": {"type": ["object", "null"], "description": "SensorThings unitOfMeasurement",
             "properties": {"name": {"type": "string"}, "symbol": {"type": "string"},
                            "definition": {"type": "string"}}},
    "Status": {"type": "object", "required": ["level", "text"], "properties": {
        "level": {"type": "string", "enum": ["ok", "warn", "alert", "unknown"]},
        "text": {"type": "string", "description": "Plain-language status in the language"}}},
    "Headline": {"type": "object", "properties": {
        "value": {"description": "Number, text (e.g. an air quality band) or null"},
        "unit": {"type": "string"}, "label": {"type": "string"}}},
    "Figure": {"type": "object", "required": ["key", "label", "value", "unit"], "properties": {
        "key": {"type": "string"}, "label": {"type": "string"}, "value": {},
        "unit": {"type": "string"}, "time": {"type": ["string", "null"]},
        "datastream_id": {"type": "integer"}}},
    "LatestValue": {"type": "object", "properties": {
        "datastream_id": {"type": "integer"}, "thing_id": {"type": "integer"},
        "name": {"type": "string"}, "thing_name": {"type": "string"},
        "observed_property": {"type": "string"}, "observed_property_id": {"type": "integer"},
        "usecase": {"type": "string"}, "unit": _ref("Unit"),
        "time": {"type": ["string", "null"], "format": "date-time",
                 "description": "phenomenonTime (its end for an interval)"},
        "value": _ANY_VALUE, "age_seconds": _NULLABLE_NUMBER, "stale": {"type": "boolean"}}},
    "TileDatastream": {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"},
        "observed_property": {"type": "string"}, "observed_property_id": {"type": "integer"},
        "role": {"type": ["string", "null"]}, "unit": _ref("Unit"),
        "unit_symbol": {"type": "string"},
        "latest": {"type": ["object", "null"], "properties": {"time": _TIME,
                                                              "value": _ANY_VALUE}},
        "status": _ref("Status"), "sta_url": {"type": "string"}}},
    "Station": {"type": "object", "properties": {
        "thing_id": {"type": "integer"}, "name": {"type": "string"},
        "location": {"type": ["object", "null"], "description": "GeoJSON geometry"},
        "status": _ref("Status"),
        "datastreams": {"type": "array", "items": _ref("TileDatastream")}}},
    "Tile": {"type": "object", "properties": {
        "slug": {"type": "string"}, "title": {"type": "string"},
        "summary": {"type": "string"}, "icon": {"type": "string"},
        "status": _ref("Status"), "headline": _ref("Headline"),
        "updated": {"type": ["string", "null"], "format": "date-time"},
        "stale": {"type": "boolean"},
        "trend": {"type": "array", "items": _NULLABLE_NUMBER,
                  "description": "24 hourly values, oldest first (null: no data)"},
        "trend_interval": {"type": "string"}, "trend_start": _TIME,
        "stations": {"type": "array", "items": _ref("Station")},
        "figures": {"type": "array", "items": _ref("Figure")}}},
    "Chart": {"type": "object", "properties": {
        "datastream_id": {"type": "integer"}, "title": {"type": "string"},
        "unit": {"type": "string"}, "stat": {"type": "string"},
        "stats": {"type": "array", "items": {"type": "string"}},
        "ranges": {"type": "array", "items": {"type": "string"}},
        "series": {"type": "object", "description": "Per range: from, to, interval, label and "
                                                    "the series URL"},
        "sta_url": {"type": "string"}}},
    "UseCaseDetail": {"allOf": [_ref("Tile"), {"type": "object", "properties": {
        "charts": {"type": "array", "items": _ref("Chart")},
        "records": {"type": "array", "items": _ref("Figure")},
        "averages": {"type": "array", "items": _ref("Figure")},
        "profile": {"type": ["object", "null"], "properties": {
            "key": {"type": "string"}, "label": {"type": "string"},
            "hours": {"type": "array", "items": {"type": "integer"}},
            "unit": {"type": "string"},
            "series": {"type": "array", "items": {"type": "object", "properties": {
                "key": {"type": "string"}, "label": {"type": "string"},
                "values": {"type": "array", "items": _NULLABLE_NUMBER}}}}}},
        "timezone": {"type": "string"}}}]},
    "Bucket": {"type": "object", "required": ["start", "end"], "properties": {
        "start": _TIME, "end": _TIME, "mean": {"type": "number"}, "min": {"type": "number"},
        "max": {"type": "number"}, "sum": {"type": "number"}, "count": {"type": "integer"}}},
    "Series": {"type": "object", "properties": {
        "datastream_id": {"type": "integer"}, "name": {"type": "string"},
        "interval": {"type": "string", "enum": list(INTERVALS)},
        "timezone": {"type": "string"}, "unit": _ref("Unit"), "from": _TIME, "to": _TIME,
        "stats": {"type": "array", "items": {"type": "string", "enum": list(STATS)}},
        "value": {"type": "array", "items": _ref("Bucket"),
                  "description": "Buckets with data, in time order; empty buckets are left "
                                 "out"}}},
    "LiveEvent": {"type": "object", "properties": {
        "datastream_id": {"type": "integer"}, "thing_id": {"type": "integer"},
        "observation_id": {"type": "integer"}, "time": _TIME, "value": _ANY_VALUE,
        "usecase": {"type": "string"}}},
}

_SERIES_PARAMETERS = [
    {"name": "from", "in": "query", "schema": {"type": "string"},
     "description": "ISO 8601 start, rounded down to its bucket. A date alone is local "
                    "midnight; a time without offset is local time. Default: `to` minus one day "
                    "(PT10M, PT1H), one year (P1D) or two years (P1M)."},
    {"name": "to", "in": "query", "schema": {"type": "string"},
     "description": "ISO 8601 end, exclusive (buckets starting before it). Default: now."},
    {"name": "interval", "in": "query",
     "schema": {"type": "string", "enum": list(INTERVALS), "default": "PT1H"},
     "description": "PT10M from the raw observations; PT1H from hourly rollups (UTC hours); "
                    "P1D local days and P1M local months (DST included) from daily rollups"},
    {"name": "stats", "in": "query",
     "schema": {"type": "string", "default": ",".join(STATS)},
     "description": f"Comma-separated statistics: {', '.join(STATS)}"},
]


def document(server_url: str = "") -> dict[str, Any]:
    """The OpenAPI document; `server_url` is the server root as the client sees it."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ortspuls dashboard API",
            "version": __version__,
            "description": (
                "Public dashboard data of the town: use-case tiles, latest values, aggregated "
                "time series and live observations. Only public Datastreams appear. All texts "
                "come in German (default) and English. Days and months are local to the "
                "server's time zone. The SensorThings API itself is at /v1.1."),
        },
        "servers": [{"url": server_url or "/"}],
        "paths": {
            "/api/v1/usecases": {"get": {
                "summary": "One tile per use case that has public Datastreams",
                "operationId": "listUseCases", "parameters": [_LANG],
                "responses": {"200": _json({"type": "object", "properties": {
                    "usecases": {"type": "array", "items": _ref("Tile")}}}, "The tiles"),
                    "400": _ERROR}}},
            "/api/v1/usecases/{slug}": {"get": {
                "summary": "A use case with stations, charts, records, averages and profile",
                "operationId": "getUseCase",
                "parameters": [{"name": "slug", "in": "path", "required": True,
                                "schema": {"type": "string"},
                                "description": "e.g. radverkehr, parken, pegel, "
                                               "baumbewaesserung, luftqualitaet, wetter, laerm, "
                                               "besucherfrequenz, weitere"}, _LANG],
                "responses": {"200": _json(_ref("UseCaseDetail"), "The use case"),
                              "400": _ERROR, "404": _ERROR}}},
            "/api/v1/latest": {"get": {
                "summary": "Newest value of every public Datastream (from the cache)",
                "operationId": "latestValues",
                "parameters": [
                    {"name": "thing", "in": "query", "schema": {"type": "integer"},
                     "description": "only Datastreams of this Thing"},
                    {"name": "observed_property", "in": "query", "schema": {"type": "integer"},
                     "description": "only Datastreams of this ObservedProperty"},
                    {"name": "usecase", "in": "query", "schema": {"type": "string"},
                     "description": "only Datastreams of this use case (slug)"}],
                "responses": {"200": _json({"type": "object", "properties": {
                    "value": {"type": "array", "items": _ref("LatestValue")}}},
                    "The latest values"), "400": _ERROR}}},
            "/api/v1/datastreams/{id}/series": {"get": {
                "summary": "Aggregated time series of one public Datastream",
                "operationId": "datastreamSeries",
                "parameters": [{"name": "id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}, *_SERIES_PARAMETERS],
                "responses": {"200": _json(_ref("Series"), "The buckets"), "400": _ERROR,
                              "404": _ERROR}}},
            "/api/v1/live": {"get": {
                "summary": "Server-Sent Events: every new public observation",
                "description": ("Each event's data is one JSON object (schema LiveEvent). "
                                "A comment line is sent every 15 seconds as heartbeat. A slow "
                                "client loses events (a comment says how many) rather than "
                                "slowing the server."),
                "operationId": "liveObservations",
                "parameters": [
                    {"name": "usecase", "in": "query", "schema": {"type": "string"},
                     "description": "only observations of this use case"},
                    {"name": "datastream", "in": "query", "schema": {"type": "integer"},
                     "description": "only observations of this Datastream"}],
                "responses": {"200": {"description": "An endless event stream", "content": {
                    "text/event-stream": {"schema": _ref("LiveEvent")}}}, "400": _ERROR}}},
            "/api/v1/openapi.json": {"get": {
                "summary": "This document", "operationId": "openapi",
                "responses": {"200": {"description": "OpenAPI 3.1 document"}}}},
            "/v1.1/Datastreams({id})/Observations": {"get": {
                "summary": "SensorThings extension: aggregated Observations ($aggregate)",
                "description": (
                    "With `$aggregate` the collection holds one aggregate Observation per "
                    "bucket with data: `phenomenonTime` is the bucket interval, `result` the "
                    "first requested statistic, `parameters` all requested statistics. No other "
                    "query options can be combined with it. Advertised in the service root's "
                    "serverSettings as urn:ortspuls:sta:extension:aggregate:1.0."),
                "operationId": "staAggregate",
                "parameters": [
                    {"name": "id", "in": "path", "required": True,
                     "schema": {"type": "integer"}},
                    {"name": "$aggregate", "in": "query", "required": True,
                     "schema": {"type": "string", "enum": list(INTERVALS)}},
                    {"name": "$stats", "in": "query", "schema": {"type": "string"},
                     "description": f"Comma-separated: {', '.join(STATS)}"},
                    {"name": "$from", "in": "query", "schema": {"type": "string"}},
                    {"name": "$to", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": _json({"type": "object", "properties": {
                    "aggregate": {"type": "object"},
                    "value": {"type": "array", "items": {"type": "object", "properties": {
                        "phenomenonTime": {"type": "string"}, "result": {"type": "number"},
                        "parameters": {"type": "object"}}}}}}, "Aggregate Observations"),
                    "400": _ERROR, "404": _ERROR}}},
        },
        "components": {"schemas": SCHEMAS},
    }
