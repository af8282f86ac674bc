"""The observation writer's database paths (COPY on PostgreSQL, executemany on SQLite), run
in-process against real databases of both kinds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import shapely
from sqlalchemy import insert, select, text

from ortspuls.db import bulk
from ortspuls.db.engine import Database
from ortspuls.db.migrate import upgrade
from ortspuls.db.schema import entity_tables, link_tables
from ortspuls.sta.values import RESULT_FLOAT, RESULT_JSON, RESULT_STRING
from ortspuls.timeseries import writer as writer_module
from ortspuls.timeseries.events import EventBatch, EventBus
from ortspuls.timeseries.rollups import RollupKeeper, rebuild_rollups
from ortspuls.timeseries.writer import NewObservation, ObservationColumns, ObservationWriter

# Fixtures run on the session loop (pyproject); the tests must share it.
pytestmark = pytest.mark.asyncio(loop_scope="session")

OBS = entity_tables["Observation"]
T0 = datetime(2021, 1, 31, 23, 0, tzinfo=UTC)


@pytest.fixture
async def db(db_url) -> AsyncIterator[Database]:
    database = Database(db_url)
    await upgrade(database)
    try:
        yield database
    finally:
        await database.close()


async def make_datastream(db: Database) -> int:
    t = entity_tables
    async with db.write() as conn:
        async def add(table, **values) -> int:
            return (await conn.execute(insert(table).values(tenant_id=1, **values)
                                       .returning(table.c.id))).scalar_one()

        sensor = await add(t["Sensor"], name="s", description="d", encoding_type="text/plain")
        prop = await add(t["ObservedProperty"], name="p", definition="d", description="d")
        thing = await add(t["Thing"], name="t", description="d")
        point = shapely.Point(9.1, 48.7)
        location = await add(t["Location"], name="l", description="d",
                             encoding_type="application/geo+json",
                             location={"type": "Point", "coordinates": [9.1, 48.7]},
                             location_geom=point)
        await conn.execute(insert(link_tables["thing_locations"]).values(
            thing_id=thing, location_id=location))
        return await add(t["Datastream"], name="ds", description="d",
                         observation_type="OM_Measurement", thing_id=thing, sensor_id=sensor,
                         observed_property_id=prop)


def record(ds: int, i: int) -> NewObservation:
    kinds = [(RESULT_FLOAT, 20.0 + i, None, None), (RESULT_STRING, None, f"wert {i}", None),
             (RESULT_JSON, None, None, {"a": [i, "ü"]})]
    return NewObservation(
        datastream_id=ds, phenomenon_time_start=T0 + timedelta(minutes=i),
        phenomenon_time_end=None, result=kinds[i % 3],
        result_time=T0 + timedelta(minutes=i, seconds=1),
        parameters={"batterie": i} if i % 2 else None)


@pytest.mark.parametrize("size", [300, 20])  # COPY on PostgreSQL, and INSERT … unnest
async def test_bulk_batch_spanning_two_months_is_stored_exactly(db, size):
    ds = await make_datastream(db)
    writer = ObservationWriter(db, EventBus())
    records = [record(ds, i) for i in range(size)]  # from 23:00 Jan 31
    assert (size >= bulk.COPY_MIN_ROWS) == (size == 300)
    out = await writer.submit_many(records)
    ids = [row["id"] for row in out]
    assert len(set(ids)) == size
    async with db.read() as conn:
        rows = {r.id: r for r in await conn.execute(select(OBS).where(OBS.c.id.in_(ids)))}
    assert len(rows) == size
    for i, id_ in enumerate(ids):
        row, rec = rows[id_], records[i]
        assert row.datastream_id == ds
        assert row.phenomenon_time_start == rec.phenomenon_time_start
        assert row.result_time == rec.result_time
        assert (row.result_type, row.result_number, row.result_string, row.result_json) == \
            rec.result
        assert row.parameters == rec.parameters
        assert row.feature_id is not None
    # The Datastream's phenomenonTime covers the batch (updated once per batch).
    async with db.read() as conn:
        d = entity_tables["Datastream"].c
        span = (await conn.execute(select(d.phenomenon_time_start, d.phenomenon_time_end)
                                   .where(d.id == ds))).one()
    assert span == (T0, T0 + timedelta(minutes=size - 1))
    if not db.is_sqlite:
        async with db.read() as conn:
            where = (await conn.execute(text(
                "SELECT tableoid::regclass::text AS p, count(*) FROM observations "
                "GROUP BY 1 ORDER BY 1"))).all()
        assert [tuple(r) for r in where] == [("observations_y2021m01", min(size, 60)),
                                             ("observations_y2021m02", max(size - 60, 0))][
            :1 if size <= 60 else 2]


@pytest.mark.parametrize("size", [40, 10])
async def test_bad_record_in_a_bulk_batch_fails_alone(db, size):
    ds = await make_datastream(db)
    writer = ObservationWriter(db, EventBus())
    records = [record(ds, i) for i in range(size)]
    records[7].datastream_id = 999_999
    out = await writer.submit_many(records)
    assert "999999" in str(out[7])
    stored = [r for i, r in enumerate(out) if i != 7]
    assert all(isinstance(r, dict) for r in stored)
    async with db.read() as conn:
        count = (await conn.execute(select(OBS.c.id).where(
            OBS.c.id.in_([r["id"] for r in stored])))).all()
    assert len(count) == size - 1


async def test_group_commit_of_concurrent_single_observations(db):
    ds = await make_datastream(db)
    writer = ObservationWriter(db, EventBus())
    writer.start()
    try:
        rows = await asyncio.gather(*(writer.submit(record(ds, i)) for i in range(120)))
    finally:
        await writer.stop()
    ids = {row["id"] for row in rows}
    assert len(ids) == 120
    async with db.read() as conn:
        stored = {r.id: r for r in await conn.execute(select(OBS).where(OBS.c.id.in_(ids)))}
    # Each caller got the id of its own observation.
    for i, row in enumerate(rows):
        assert stored[row["id"]].phenomenon_time_start == T0 + timedelta(minutes=i)
        assert stored[row["id"]].result_type == record(ds, i).result[0]


# ---------------------------------------------------------------------------------------------
# The column path (CreateObservations): ObservationColumns -> submit_columns


def numbers(ds: int, starts: list[datetime], values: list[float],
            **columns) -> ObservationColumns:
    return ObservationColumns(ds, None, starts, [RESULT_FLOAT] * len(starts), list(values),
                              **columns)


async def rollup_rows(db: Database) -> dict[str, list[tuple]]:
    async with db.read() as conn:
        return {table: [tuple(r) for r in await conn.execute(text(
            f"SELECT datastream_id, bucket_start, value_count, value_sum, value_min, value_max "
            f"FROM {table} ORDER BY datastream_id, bucket_start"))]
                for table in ("rollups_hourly", "rollups_daily")}


def assert_same_rollups(got: dict[str, list[tuple]], want: dict[str, list[tuple]]) -> None:
    for table in want:
        assert [r[:3] + r[4:] for r in got[table]] == [r[:3] + r[4:] for r in want[table]]
        assert [r[3] for r in got[table]] == pytest.approx([r[3] for r in want[table]],
                                                           rel=1e-12)


async def test_columns_are_stored_exactly_with_errors_per_row(db, monkeypatch):
    ds = await make_datastream(db)
    other = await make_datastream(db)
    bus, published = EventBus(), []
    bus.subscribe(published.append)
    writer = ObservationWriter(db, bus)
    keeper = RollupKeeper("Europe/Berlin")
    keeper.install(writer)
    # Several transactions, and the second batch split across two of them.
    monkeypatch.setattr(writer_module, "BULK_ROWS", 4)
    times = [T0 + timedelta(minutes=17 * i, microseconds=i) for i in range(12)]
    mixed = ObservationColumns(
        ds, None, times[:5],
        result_type=[RESULT_FLOAT, RESULT_STRING, RESULT_JSON, RESULT_FLOAT, RESULT_FLOAT],
        result_number=[1.5, None, None, -2.0, 3.25],
        result_string=[None, "hoch", None, None, None],
        result_json=[None, None, {"a": [1, "ü"]}, None, None],
        phenomenon_time_end=[None, T0 + timedelta(hours=9), None, None, None],
        result_time=[None, T0, None, None, None],
        feature_id=[None, None, 999_999, None, None])
    # Out of time order: the rollups sort, the summary takes minimum and maximum.
    order = [5, 11, 6, 10, 7, 9, 8]
    plain = numbers(other, [times[i] for i in order], [float(i) for i in order])
    out = await writer.submit_columns([mixed, plain])
    assert [type(o).__name__ for o in out[0]] == ["int", "int", "BadRequest", "int", "int"]
    assert "999999" in str(out[0][2])
    assert all(isinstance(o, int) for o in out[1]) and len(set(out[1])) == 7
    async with db.read() as conn:
        rows = {r.id: r for r in await conn.execute(select(OBS))}
    assert len(rows) == 11
    for i, id_ in enumerate(out[0]):
        if i == 2:
            continue
        row = rows[id_]
        assert row.phenomenon_time_start == times[i]  # microseconds kept
        assert (row.result_type, row.result_number, row.result_string, row.result_json) == \
            mixed.result(i)
        assert row.phenomenon_time_end == mixed.phenomenon_time_end[i]
        assert row.result_time == mixed.result_time[i]
        assert row.feature_id is not None and row.parameters is None
    assert [rows[id_].result_number for id_ in out[1]] == [float(i) for i in order]
    # Subscribers got the stored rows, built only when read.
    batches = [events for events in published if isinstance(events, EventBatch)]
    announced = {e.id: e.row for events in batches for e in events}
    assert sorted(announced) == sorted(o for o in out[0] + out[1] if isinstance(o, int))
    first = announced[out[0][1]]
    assert first["result_string"] == "hoch" and first["datastream_id"] == ds
    assert first["phenomenon_time_end"] == T0 + timedelta(hours=9)
    # The Datastream summaries, and rollups equal to aggregates of the raw rows.
    async with db.read() as conn:
        d = entity_tables["Datastream"].c
        spans = dict((r[0], tuple(r[1:])) for r in await conn.execute(
            select(d.id, d.phenomenon_time_start, d.phenomenon_time_end, d.result_time_start)))
    assert spans[ds] == (times[0], T0 + timedelta(hours=9), T0)
    assert spans[other] == (times[5], times[11], None)
    kept = await rollup_rows(db)
    assert kept["rollups_hourly"] and kept["rollups_daily"]
    async with db.write() as conn:
        await rebuild_rollups(conn, "Europe/Berlin")
    assert_same_rollups(kept, await rollup_rows(db))


async def test_columns_into_unknown_or_foreign_streams_are_refused_per_row(db):
    ds = await make_datastream(db)
    writer = ObservationWriter(db, EventBus())
    starts = [T0, T0 + timedelta(seconds=1)]
    unknown = numbers(999_999, starts, [1.0, 2.0])
    foreign = numbers(ds, starts, [1.0, 2.0], sender_tenant_id=999)
    out = await writer.submit_columns([unknown, foreign])
    assert ["999999" in str(e) for e in out[0]] == [True, True]
    assert all(type(e).__name__ == "Forbidden" for e in out[1])
    async with db.read() as conn:
        assert (await conn.execute(select(OBS.c.id))).all() == []


async def test_datastream_bounds_only_widen_when_another_writer_moved_them(db, monkeypatch):
    """Two worker processes on PostgreSQL: one writer's transaction may read a Datastream's
    phenomenonTime before the other writer's commit widens it. Its own update must not narrow
    the stored bounds again. Modelled here by handing the second writer the snapshot read
    before the first one committed."""
    ds = await make_datastream(db)
    first, second = ObservationWriter(db, EventBus()), ObservationWriter(db, EventBus())
    async with db.read() as conn:
        stale = await second._load_streams(conn, {("d", ds)})
    assert stale[("d", ds)].phenomenon == (None, None)

    late = T0 + timedelta(hours=10)
    [stored] = await first.submit_many([NewObservation(
        datastream_id=ds, phenomenon_time_start=late, phenomenon_time_end=None,
        result=(RESULT_FLOAT, 1.0, None, None), result_time=late)])
    assert isinstance(stored, dict)

    async def load_stale(conn, keys):
        return stale

    monkeypatch.setattr(second, "_load_streams", load_stale)
    [stored] = await second.submit_many([NewObservation(
        datastream_id=ds, phenomenon_time_start=T0, phenomenon_time_end=None,
        result=(RESULT_FLOAT, 2.0, None, None), result_time=T0)])
    assert isinstance(stored, dict)

    d = entity_tables["Datastream"].c
    async with db.read() as conn:
        bounds = (await conn.execute(select(
            d.phenomenon_time_start, d.phenomenon_time_end, d.result_time_start,
            d.result_time_end).where(d.id == ds))).one()
    assert tuple(bounds) == (T0, late, T0, late)
