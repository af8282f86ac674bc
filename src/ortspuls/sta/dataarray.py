"""The DataArray extension: compact Observation lists in and out.

- `GET …/Observations?$resultFormat=dataArray` groups a page of Observations by their Datastream
  (or MultiDatastream) and lists each Observation as one array of values in `components` order
  (`data_array_value`, called by `sta/read.py`).
- `POST /v1.1/CreateObservations` takes such groups and stores every row through the observation
  writer's bulk path (`submit_many`: large transactions, no per-row statement). The answer is one
  array with, per row in request order, the new Observation's selfLink or the string "error",
  as OGC 18-088 (14.3.2) prescribes; the reasons of rejected rows go to the server log.

A request whose structure is wrong (not an array, unknown components, a row with the wrong number
of values, an unknown Datastream) is refused as a whole with 400 before anything is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from ortspuls.db.schema import entity_tables
from ortspuls.model import ENTITY_TYPES
from ortspuls.sta.errors import BadRequest, Forbidden, MethodNotAllowed, StaError
from ortspuls.sta.serialize import GETTERS, Serializer
from ortspuls.sta.values import encode_result, parse_interval, parse_time, parse_time_or_interval
from ortspuls.timeseries.writer import NewObservation

log = logging.getLogger(__name__)

OBSERVATION = ENTITY_TYPES["Observation"]
# Components of a dataArray answer when $select does not name them.
DEFAULT_COMPONENTS = ("id", "phenomenonTime", "resultTime", "result", "resultQuality",
                      "validTime", "parameters")
ERROR = "error"


# ---------------------------------------------------------------------------------------------
# Reading


def data_array_value(serializer: Serializer, rows: list[Mapping[str, Any]],
                     names: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """One page of Observation rows as dataArray groups, in the order the rows came."""
    components = [n for n in (names or DEFAULT_COMPONENTS)
                  if n == "id" or n in GETTERS["Observation"]]
    if not components:
        raise BadRequest("$resultFormat=dataArray needs at least one Observation property in "
                         "$select, e.g. $select=phenomenonTime,result")
    getters = [_id_getter if n == "id" else GETTERS["Observation"][n] for n in components]
    groups: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows:
        if row.get("multi_datastream_id") is not None:
            key = ("MultiDatastream", row["multi_datastream_id"])
        else:
            key = ("Datastream", row["datastream_id"])
        group = groups.get(key)
        if group is None:
            entity = ENTITY_TYPES[key[0]]
            group = groups[key] = {
                f"{key[0]}@iot.navigationLink": serializer.self_link(entity, key[1]),
                "components": components,
                "dataArray@iot.count": 0,
                "dataArray": [],
            }
        group["dataArray"].append([get(row) for get in getters])
    for group in groups.values():
        group["dataArray@iot.count"] = len(group["dataArray"])
    return list(groups.values())


def _id_getter(row: Mapping[str, Any]) -> Any:
    return row["id"]


# ---------------------------------------------------------------------------------------------
# Creating

Converter = Callable[[Any, dict[str, Any]], None]


def _phenomenon_time(value: Any, out: dict[str, Any]) -> None:
    out["phenomenon_time_start"], out["phenomenon_time_end"] = parse_time_or_interval(
        value, "phenomenonTime")


def _result_time(value: Any, out: dict[str, Any]) -> None:
    out["result_time"] = None if value is None else parse_time(value, "resultTime")


def _result(value: Any, out: dict[str, Any]) -> None:
    out["result"] = encode_result(value)


def _result_quality(value: Any, out: dict[str, Any]) -> None:
    out["result_quality"] = value


def _valid_time(value: Any, out: dict[str, Any]) -> None:
    if value is None:
        out["valid_time_start"] = out["valid_time_end"] = None
    else:
        out["valid_time_start"], out["valid_time_end"] = parse_interval(value, "validTime")


def _parameters(value: Any, out: dict[str, Any]) -> None:
    if value is not None and not isinstance(value, dict):
        raise BadRequest("parameters must be a JSON object")
    out["parameters"] = value


def _feature_id(value: Any, out: dict[str, Any]) -> None:
    if value is None:
        return  # derived from the Thing's Location, as for a single Observation
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"FeatureOfInterest/id must be an integer, got {value!r}")
    out["feature_id"] = value


CONVERTERS: dict[str, Converter] = {
    "phenomenonTime": _phenomenon_time,
    "resultTime": _result_time,
    "result": _result,
    "resultQuality": _result_quality,
    "validTime": _valid_time,
    "parameters": _parameters,
    "FeatureOfInterest/id": _feature_id,
    "FeatureOfInterest/@iot.id": _feature_id,
}
_GROUP_KEYS = {"Datastream", "MultiDatastream", "components", "dataArray", "dataArray@iot.count"}


class _Group:
    __slots__ = ("components", "converters", "index", "kind", "rows", "stream_id")

    def __init__(self, index: int, kind: str, stream_id: int, components: list[str],
                 rows: list[list[Any]]) -> None:
        self.index = index
        self.kind = kind
        self.stream_id = stream_id
        self.components = components
        self.converters = [CONVERTERS[c] for c in components]
        self.rows = rows


def parse_request(data: Any) -> list[_Group]:
    """Check the structure of a CreateObservations body; values are checked per row later."""
    if not isinstance(data, list):
        raise BadRequest("the CreateObservations body must be a JSON array of objects with "
                         "Datastream (or MultiDatastream), components and dataArray")
    groups = []
    for index, item in enumerate(data):
        where = f"CreateObservations item {index}"
        if not isinstance(item, dict):
            raise BadRequest(f"{where} must be a JSON object")
        unknown = set(item) - _GROUP_KEYS
        if unknown:
            raise BadRequest(f"{where}: unknown member(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(_GROUP_KEYS))}")
        kinds = [k for k in ("Datastream", "MultiDatastream") if k in item]
        if len(kinds) != 1:
            raise BadRequest(f"{where} needs exactly one of Datastream and MultiDatastream, "
                             "e.g. \"Datastream\": {\"@iot.id\": 1}")
        kind = kinds[0]
        link = item[kind]
        ident = link.get("@iot.id", link.get("id")) if isinstance(link, dict) else None
        if isinstance(ident, bool) or not isinstance(ident, int):
            raise BadRequest(f"{where}: {kind} must be a link {{\"@iot.id\": n}}")
        components = item.get("components")
        if (not isinstance(components, list) or not components
                or not all(isinstance(c, str) for c in components)):
            raise BadRequest(f"{where}: components must be a non-empty array of property names")
        for name in components:
            if name not in CONVERTERS:
                raise BadRequest(f"{where}: unknown component {name!r}; known: "
                                 + ", ".join(CONVERTERS))
        if len(set(components)) != len(components):
            raise BadRequest(f"{where}: a component is listed twice")
        if "result" not in components:
            raise BadRequest(f"{where}: components must include result")
        rows = item.get("dataArray")
        if not isinstance(rows, list):
            raise BadRequest(f"{where}: dataArray must be an array of rows")
        width = len(components)
        for number, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != width:
                got = f"{len(row)} values" if isinstance(row, list) else "not an array"
                raise BadRequest(f"{where}: dataArray row {number} has {got}, but components "
                                 f"names {width} ({', '.join(components)})")
        groups.append(_Group(index, kind, ident, components, rows))
    return groups


_fromisoformat = datetime.fromisoformat


def _time(value: Any, name: str) -> datetime:
    """ISO 8601 -> aware UTC datetime; the common UTC case without a conversion."""
    if type(value) is str:
        try:
            parsed = _fromisoformat(value)
        except ValueError:
            return parse_time(value, name)  # its error message
        tz = parsed.tzinfo
        if tz is UTC:
            return parsed
        return parsed.replace(tzinfo=UTC) if tz is None else parsed.astimezone(UTC)
    return parse_time(value, name)


def _fast_records(group: _Group, now: datetime, on_error) -> list[NewObservation | None]:
    """The usual rows (phenomenonTime, result, resultTime, FeatureOfInterest/id): one tight
    loop per group instead of a converter call per value; None for a rejected row."""
    index = {name: i for i, name in enumerate(group.components)}
    i_time, i_result = index.get("phenomenonTime"), index["result"]
    i_result_time = index.get("resultTime")
    i_feature = index.get("FeatureOfInterest/id", index.get("FeatureOfInterest/@iot.id"))
    multi = group.kind == "MultiDatastream"
    ds_id = None if multi else group.stream_id
    md_id = group.stream_id if multi else None
    out: list[NewObservation | None] = []
    append = out.append
    for number, row in enumerate(group.rows):
        try:
            if i_time is None:
                start, end = now, None
            else:
                value = row[i_time]
                if type(value) is str and "/" in value:
                    start, end = parse_time_or_interval(value, "phenomenonTime")
                else:
                    start, end = _time(value, "phenomenonTime"), None
            result_time = None
            if i_result_time is not None and row[i_result_time] is not None:
                result_time = _time(row[i_result_time], "resultTime")
            feature = None
            if i_feature is not None:
                feature = row[i_feature]
                if feature is not None and (type(feature) is not int):
                    raise BadRequest(f"FeatureOfInterest/id must be an integer, got {feature!r}")
            append(NewObservation(
                datastream_id=ds_id, multi_datastream_id=md_id, phenomenon_time_start=start,
                phenomenon_time_end=end, result=encode_result(row[i_result]),
                result_time=result_time, feature_id=feature))
        except StaError as exc:
            append(None)
            on_error(f"item {group.index} row {number}: {exc.message}")
    return out


_FAST_COMPONENTS = frozenset({"phenomenonTime", "result", "resultTime", "FeatureOfInterest/id",
                              "FeatureOfInterest/@iot.id"})


def group_records(group: _Group, now: datetime, on_error) -> list[NewObservation | None]:
    """The records of one group, None where a row was rejected (reported to `on_error`)."""
    if _FAST_COMPONENTS.issuperset(group.components):
        return _fast_records(group, now, on_error)
    out: list[NewObservation | None] = []
    for number, row in enumerate(group.rows):
        try:
            out.append(row_record(group, row, now))
        except StaError as exc:
            out.append(None)
            on_error(f"item {group.index} row {number}: {exc.message}")
    return out


def row_record(group: _Group, row: list[Any], now: datetime) -> NewObservation:
    """One dataArray row -> a record for the writer (raises StaError for a bad value)."""
    out: dict[str, Any] = {}
    for convert, value in zip(group.converters, row, strict=True):
        convert(value, out)
    start = out.get("phenomenon_time_start")
    return NewObservation(
        datastream_id=group.stream_id if group.kind == "Datastream" else None,
        multi_datastream_id=group.stream_id if group.kind == "MultiDatastream" else None,
        phenomenon_time_start=start if start is not None else now,
        phenomenon_time_end=out.get("phenomenon_time_end"),
        result=out["result"],
        result_time=out.get("result_time"),
        result_quality=out.get("result_quality"),
        valid_time_start=out.get("valid_time_start"),
        valid_time_end=out.get("valid_time_end"),
        parameters=out.get("parameters"),
        feature_id=out.get("feature_id"),
    )


async def check_streams(db, groups: list[_Group], tenant_id: int | None = None) -> None:
    """Every named (Multi)Datastream exists (and belongs to `tenant_id`, the sender's tenant),
    or the whole request is refused."""
    for kind in ("Datastream", "MultiDatastream"):
        wanted = {g.stream_id for g in groups if g.kind == kind}
        if not wanted:
            continue
        table = entity_tables[kind]
        async with db.read(primary=True) as conn:
            owners = dict((await conn.execute(select(table.c.id, table.c.tenant_id).where(
                table.c.id.in_(sorted(wanted))))).all())
        missing = sorted(wanted - set(owners))
        if missing:
            group = next(g for g in groups if g.kind == kind and g.stream_id == missing[0])
            raise BadRequest(f"CreateObservations item {group.index}: no {kind} with id "
                             f"{missing[0]}; nothing was stored")
        foreign = sorted(i for i, owner in owners.items()
                         if tenant_id is not None and owner != tenant_id)
        if foreign:
            group = next(g for g in groups if g.kind == kind and g.stream_id == foreign[0])
            raise Forbidden(f"CreateObservations item {group.index}: {kind} {foreign[0]} "
                            "belongs to another municipality; nothing was stored")


async def create_observations(request: Request) -> Response:
    """POST /v1.1/CreateObservations."""
    from ortspuls.sta.http import json_response, read_json, require, service_root

    try:
        if request.method != "POST":
            raise MethodNotAllowed("CreateObservations takes POST with a JSON array body")
        principal = await require(request, "ingest")
        groups = parse_request(await read_json(request))
        state = request.app.state
        await check_streams(state.db, groups, principal.tenant_id)
        now = datetime.now(UTC)
        problems: list[str] = []
        rows: list[NewObservation | None] = []
        for group in groups:
            rows.extend(group_records(group, now, problems.append))
        records = [r for r in rows if r is not None]
        for record in records:
            # Features linked by id must be the sender's too (the writer checks).
            record.tenant_id = principal.tenant_id
        results = await state.writer.submit_many(records) if records else []
    except StaError as exc:
        return exc.response()
    prefix = service_root(request) + "/Observations("
    answer: list[str] = []
    stored = iter(results)
    for row in rows:
        result = None if row is None else next(stored)
        if result is None or isinstance(result, StaError):
            if isinstance(result, StaError):
                problems.append(result.message)
            answer.append(ERROR)
        else:
            answer.append(f"{prefix}{result['id']})")
    if problems:
        log.info("CreateObservations: %d of %d rows rejected, e.g. %s", len(problems),
                 len(answer), problems[0])
    return json_response(answer, 201)
