"""The DataArray extension: compact Observation lists in and out.

- `GET …/Observations?$resultFormat=dataArray` groups a page of Observations by their Datastream
  (or MultiDatastream) and lists each Observation as one array of values in `components` order
  (`data_array_value`, called by `sta/read.py`).
- `POST /v1.1/CreateObservations` takes such groups and stores every row through the observation
  writer's column path (`submit_columns`: large transactions, no per-row statement). Each group
  is converted column by column (`group_columns`): a time column is parsed in one pass, a
  result column is classified in one pass (all numbers, the usual case, needs nothing per
  value), and only a column with a bad or unusual value falls back to row-by-row conversion to
  find which rows fail. The answer is one array with, per row in request order, the new
  Observation's selfLink or the string "error", as OGC 18-088 (14.3.2) prescribes; the reasons
  of rejected rows go to the server log.

A request whose structure is wrong (not an array, unknown components, a row with the wrong number
of values, an unknown Datastream) is refused as a whole with 400 before anything is written.
"""

from __future__ import annotations

import logging
import operator
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
from ortspuls.sta.values import (
    MAX_EXACT_INT,
    RESULT_FLOAT,
    RESULT_INT,
    encode_result,
    parse_interval,
    parse_time,
    parse_time_or_interval,
)
from ortspuls.timeseries.writer import NewObservation, ObservationColumns

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
        # Two C passes for the usual case; the loop only to name the row that is wrong.
        if not (set(map(type, rows)) <= {list} and set(map(len, rows)) <= {width}):
            for number, row in enumerate(rows):
                if not isinstance(row, list) or len(row) != width:
                    got = f"{len(row)} values" if isinstance(row, list) else "not an array"
                    raise BadRequest(f"{where}: dataArray row {number} has {got}, but "
                                     f"components names {width} ({', '.join(components)})")
        groups.append(_Group(index, kind, ident, components, rows))
    return groups


_fromisoformat = datetime.fromisoformat
_tzinfo = operator.attrgetter("tzinfo")


def _time(value: Any, name: str) -> datetime:
    """ISO 8601 -> aware UTC datetime; the common UTC case without a conversion."""
    if type(value) is str:
        try:
            parsed = _fromisoformat(value)
        except ValueError:
            return parse_time(value, name)  # its error message
        return _utc(parsed)
    return parse_time(value, name)


def _utc(parsed: datetime) -> datetime:
    tz = parsed.tzinfo
    if tz is UTC:
        return parsed
    return parsed.replace(tzinfo=UTC) if tz is None else parsed.astimezone(UTC)


class _Rejects:
    """The rows of one group that failed, each with the first reason found."""

    __slots__ = ("group", "reasons")

    def __init__(self, group: _Group) -> None:
        self.group = group
        self.reasons: dict[int, str] = {}

    def add(self, row: int, exc: StaError) -> None:
        self.reasons.setdefault(row, f"item {self.group.index} row {row}: {exc.message}")


def _time_column(values: list[Any], name: str, rejects: _Rejects, now: datetime,
                 *, optional: bool = False, intervals: bool = False
                 ) -> tuple[list[datetime | None], list[datetime | None] | None]:
    """A column of ISO 8601 times (or intervals) -> (starts, ends or None), aware UTC.

    One C pass when every value is a plain time; otherwise row by row, where a bad value
    rejects its row (its start is then a placeholder that is never stored).
    """
    try:
        parsed = list(map(_fromisoformat, values))
    except (TypeError, ValueError):  # None, a number, an interval, a typo: see per row
        pass
    else:
        if set(map(_tzinfo, parsed)) != {UTC}:
            parsed = list(map(_utc, parsed))
        return parsed, None  # type: ignore[return-value]
    starts: list[datetime | None] = []
    ends: list[datetime | None] = []
    for row, value in enumerate(values):
        start = end = None
        try:
            if value is None and optional:
                pass
            elif intervals and type(value) is str and "/" in value:
                start, end = parse_time_or_interval(value, name)
            else:
                start = _time(value, name)
        except StaError as exc:
            rejects.add(row, exc)
            start = now
        starts.append(start)
        ends.append(end)
    return starts, (ends if ends.count(None) != len(ends) else None)


def _result_columns(values: list[Any]) -> tuple[list[int], list | None, list | None,
                                                list | None]:
    """A result column -> (result_type, result_number, result_string, result_json), as
    `encode_result` splits each value; numbers, the usual case, without a call per value."""
    n = len(values)
    kinds = set(map(type, values))
    if kinds == {float}:
        return [RESULT_FLOAT] * n, values, None, None
    if kinds <= {float, int} and min(values) >= -MAX_EXACT_INT and \
            max(values) <= MAX_EXACT_INT:
        if kinds == {int}:
            return [RESULT_INT] * n, list(map(float, values)), None, None
        return ([RESULT_INT if type(v) is int else RESULT_FLOAT for v in values],
                list(map(float, values)), None, None)
    types, numbers, strings, others = (list(c) for c in zip(*map(encode_result, values),
                                                            strict=True))
    return types, _nullable(numbers), _nullable(strings), _nullable(others)


def _nullable(values: list[Any]) -> list[Any] | None:
    return None if values.count(None) == len(values) else values


def _feature_column(values: list[Any], rejects: _Rejects) -> list[int | None] | None:
    if not set(map(type, values)) <= {int, type(None)}:
        for row, value in enumerate(values):
            if value is not None and type(value) is not int:
                rejects.add(row, BadRequest(
                    f"FeatureOfInterest/id must be an integer, got {value!r}"))
    return _nullable(values)


def _fast_columns(group: _Group, now: datetime, rejects: _Rejects) -> ObservationColumns:
    """The usual components (phenomenonTime, result, resultTime, FeatureOfInterest/id),
    converted column by column."""
    n = len(group.rows)
    column = dict(zip(group.components, map(list, zip(*group.rows, strict=True)),
                      strict=True))
    if "phenomenonTime" in column:
        starts, ends = _time_column(column["phenomenonTime"], "phenomenonTime", rejects, now,
                                    intervals=True)
    else:
        starts, ends = [now] * n, None
    result_time = None
    times = column.get("resultTime")
    if times is not None and times.count(None) != n:
        result_time, _ = _time_column(times, "resultTime", rejects, now, optional=True)
    features = column.get("FeatureOfInterest/id", column.get("FeatureOfInterest/@iot.id"))
    kinds, numbers, strings, others = _result_columns(column["result"])
    multi = group.kind == "MultiDatastream"
    return ObservationColumns(
        datastream_id=None if multi else group.stream_id,
        multi_datastream_id=group.stream_id if multi else None,
        phenomenon_time_start=starts,  # type: ignore[arg-type]
        phenomenon_time_end=ends,
        result_type=kinds, result_number=numbers, result_string=strings, result_json=others,
        result_time=result_time,
        feature_id=None if features is None else _feature_column(features, rejects))


_FAST_COMPONENTS = frozenset({"phenomenonTime", "result", "resultTime", "FeatureOfInterest/id",
                              "FeatureOfInterest/@iot.id"})


def group_columns(group: _Group, now: datetime) -> tuple[ObservationColumns | None, dict[int, str]]:
    """The columns of one group's accepted rows (None if there are none), and the rejected
    rows with their reasons."""
    rejects = _Rejects(group)
    if not group.rows:
        return None, {}
    if _FAST_COMPONENTS.issuperset(group.components):
        columns = _fast_columns(group, now, rejects)
        if rejects.reasons:
            keep = [i for i in range(len(group.rows)) if i not in rejects.reasons]
            columns = columns.take(keep) if keep else None
        return columns, rejects.reasons
    records = []
    for number, row in enumerate(group.rows):
        try:
            records.append(row_record(group, row, now))
        except StaError as exc:
            rejects.add(number, exc)
    return (ObservationColumns.from_records(records) if records else None), rejects.reasons


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
        parsed = [group_columns(group, now) for group in groups]
        batches = [columns for columns, _ in parsed if columns is not None]
        for columns in batches:
            # Features linked by id must be the sender's too (the writer checks).
            columns.sender_tenant_id = principal.tenant_id
        results = iter(await state.writer.submit_columns(batches) if batches else [])
    except StaError as exc:
        return exc.response()
    prefix = service_root(request) + "/Observations("
    answer: list[str] = []
    # The reasons of rows refused here first, in row order, then those the writer refused.
    problems = [reasons[row] for _, reasons in parsed for row in sorted(reasons)]
    for columns, rejected in parsed:
        outcome = next(results) if columns is not None else []
        links = [f"{prefix}{o})" if type(o) is int else ERROR for o in outcome]
        if ERROR in links:
            problems.extend(o.message for o in outcome if isinstance(o, StaError))
        if rejected:
            stored = iter(links)
            links = [ERROR if row in rejected else next(stored)
                     for row in range(len(links) + len(rejected))]
        answer.extend(links)
    if problems:
        log.info("CreateObservations: %d of %d rows rejected, e.g. %s", len(problems),
                 len(answer), problems[0])
    return json_response(answer, 201)
