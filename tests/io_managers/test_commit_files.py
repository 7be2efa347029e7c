"""How the Arrow path lays out and commits its files: one file per day, one snapshot per write."""

import dataclasses
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.transforms import IdentityTransform

from io_managers.commit import WriteRequest, commit
from io_managers.schema import create_table_if_missing, iceberg_schema
from io_managers.slices import TableSlice

UTC = dt.UTC
NEW_YORK = ZoneInfo("America/New_York")


def _days(first: dt.date, count: int) -> TableSlice:
    start = dt.datetime.combine(first, dt.time(), UTC)
    return TableSlice("reading_date", start, start + dt.timedelta(days=count))


def _readings(days: list[dt.date], value: int) -> pa.Table:
    return pa.table(
        {
            "reading_date": pa.array(days, pa.date32()),
            "sensor": [f"s{index}" for index in range(len(days))],
            "value": pa.array([value] * len(days), pa.int64()),
        }
    )


def _live_files(table) -> list[str]:
    return sorted(task.file.file_path for task in table.scan().plan_files())


def test_a_range_write_lands_one_file_per_day_and_one_snapshot(catalog):
    days = [dt.date(2024, 3, 1) + dt.timedelta(days=n) for n in range(3) for _ in range(4)]
    data = _readings(days, 1)
    table = create_table_if_missing(catalog, "staging.readings", data.schema, "reading_date")

    commit(table, data, WriteRequest("overwrite", _days(dt.date(2024, 3, 1), 3), "run-1"))

    files = _live_files(table)
    assert [path.rsplit("/", 2)[1] for path in files] == [
        "reading_date_day=2024-03-01",
        "reading_date_day=2024-03-02",
        "reading_date_day=2024-03-03",
    ]
    assert len(table.metadata.snapshots) == 1
    assert table.scan().count() == 12


def test_overwriting_a_day_drops_its_file_without_rewriting_data(catalog):
    first = [dt.date(2024, 3, 1)] * 2 + [dt.date(2024, 3, 2)] * 2
    table = create_table_if_missing(catalog, "staging.readings", _readings(first, 1).schema, "reading_date")
    commit(table, _readings(first, 1), WriteRequest("overwrite", _days(dt.date(2024, 3, 1), 2), "run-1"))
    before = _live_files(table)

    commit(
        table,
        _readings([dt.date(2024, 3, 2)] * 3, 2),
        WriteRequest("overwrite", _days(dt.date(2024, 3, 2), 1), "run-2"),
    )

    after = _live_files(table)
    assert after[0] == before[0]  # 2024-03-01 untouched: same file
    assert after[1] != before[1]
    delete, append = table.metadata.snapshots[-2:]
    assert (delete.summary.operation.value, append.summary.operation.value) == ("delete", "append")
    assert delete.summary["deleted-data-files"] == "1"
    assert "added-data-files" not in delete.summary.additional_properties  # metadata only: no rewrite
    values = table.scan().to_arrow().sort_by("reading_date")
    assert values.column("value").to_pylist() == [1, 1, 2, 2, 2]


def test_rewriting_a_day_again_and_again_keeps_manifests_and_metadata_short(catalog):
    day = [dt.date(2024, 3, 1)] * 2
    table = create_table_if_missing(catalog, "staging.readings", _readings(day, 1).schema, "reading_date")
    for run in range(15):
        commit(table, _readings(day, run), WriteRequest("overwrite", _days(day[0], 1), f"run-{run}"))

    assert len(table.current_snapshot().manifests(table.io)) <= 2
    assert len(table.metadata.metadata_log) == 10
    metadata_files = list(Path(table.location().removeprefix("file://"), "metadata").glob("*.metadata.json"))
    assert len(metadata_files) == 11  # the current one and the ten it logs
    assert table.scan().to_arrow().column("value").to_pylist() == [14, 14]


def test_a_table_partitioned_another_way_is_written_by_pyiceberg(catalog):
    data = _readings([dt.date(2024, 3, 1)] * 3, 5)
    schema = iceberg_schema(data.schema)
    sensor = schema.find_field("sensor")
    catalog.create_namespace_if_not_exists("staging")
    table = catalog.create_table(
        "staging.by_sensor",
        schema=schema,
        partition_spec=PartitionSpec(
            PartitionField(sensor.field_id, 1000, IdentityTransform(), name="sensor")
        ),
    )

    commit(table, data, WriteRequest("overwrite", TableSlice(), "run-1"))
    commit(table, data, WriteRequest("overwrite", TableSlice(), "run-2"))

    assert table.scan().count() == 3
    assert len(_live_files(table)) == 3  # one per sensor, as pyiceberg's writer splits them


def test_a_window_that_is_not_a_utc_day_keeps_the_rows_outside_it(catalog):
    """A New York day cuts through two UTC-day files: only the window's rows are replaced."""
    hours = [dt.datetime(2024, 3, 2, hour, tzinfo=UTC) for hour in range(0, 24, 2)]
    data = pa.table(
        {
            "reading_at": pa.array(hours, pa.timestamp("us", tz="UTC")),
            "value": pa.array([1] * len(hours), pa.int64()),
        }
    )
    table = create_table_if_missing(catalog, "staging.hourly", data.schema, "reading_at")
    utc_day = TableSlice("reading_at", hours[0], hours[0] + dt.timedelta(days=1))
    commit(table, data, WriteRequest("overwrite", utc_day, "run-1"))

    new_york_start = dt.datetime(2024, 3, 2, tzinfo=NEW_YORK)  # 05:00 UTC
    new_york_day = TableSlice("reading_at", new_york_start, dt.datetime(2024, 3, 3, tzinfo=NEW_YORK))
    replacement = pa.table(
        {
            "reading_at": pa.array([dt.datetime(2024, 3, 2, 12, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
            "value": pa.array([9], pa.int64()),
        }
    )
    commit(table, replacement, WriteRequest("overwrite", new_york_day, "run-2"))

    kept = table.scan().to_arrow().sort_by("reading_at")
    assert [
        (value.hour, number)
        for value, number in zip(
            kept.column("reading_at").to_pylist(), kept.column("value").to_pylist(), strict=True
        )
    ] == [(0, 1), (2, 1), (4, 1), (12, 9)]


def test_hour_and_month_tables_land_one_file_per_hour_and_per_month(catalog):
    hours = [dt.datetime(2024, 3, 2, hour, minute, tzinfo=UTC) for hour in (5, 6) for minute in (0, 30)]
    by_hour = pa.table(
        {
            "reading_at": pa.array(hours, pa.timestamp("us", tz="UTC")),
            "value": pa.array([1, 2, 3, 4], pa.int64()),
        }
    )
    hourly = create_table_if_missing(catalog, "staging.by_hour", by_hour.schema, "reading_at", "hour")
    two_hours = TableSlice("reading_at", hours[0], hours[0] + dt.timedelta(hours=2))
    assert two_hours.label == "2024-03-02T05:00..2024-03-02T06:00"
    commit(hourly, by_hour, WriteRequest("overwrite", two_hours, "run-1"))
    assert [path.rsplit("/", 2)[1] for path in _live_files(hourly)] == [
        "reading_at_hour=2024-03-02-05",
        "reading_at_hour=2024-03-02-06",
    ]

    days = [dt.date(2024, 3, 1), dt.date(2024, 3, 31), dt.date(2024, 4, 1)]
    monthly = create_table_if_missing(
        catalog, "staging.by_month", _readings(days, 1).schema, "reading_date", "month"
    )
    commit(monthly, _readings(days, 1), WriteRequest("overwrite", _days(dt.date(2024, 3, 1), 61), "run-1"))
    assert [path.rsplit("/", 2)[1] for path in _live_files(monthly)] == [
        "reading_date_month=2024-03",
        "reading_date_month=2024-04",
    ]
    # March again, with one row: April's file stays as it is
    april = [path for path in _live_files(monthly) if "2024-04" in path]
    commit(
        monthly,
        _readings([dt.date(2024, 3, 9)], 2),
        WriteRequest("overwrite", _days(dt.date(2024, 3, 1), 31), "run-2"),
    )
    assert monthly.scan().count() == 2
    assert [path for path in _live_files(monthly) if "2024-04" in path] == april


def test_a_frame_without_rows_or_chunks_empties_its_partition(catalog):
    """What raw hands over when every row of a partition failed typing: filtered to no chunks at all."""
    day = [dt.date(2024, 3, 1)] * 2
    table = create_table_if_missing(catalog, "staging.readings", _readings(day, 1).schema, "reading_date")
    commit(table, _readings(day, 1), WriteRequest("overwrite", _days(dt.date(2024, 3, 1), 1), "run-1"))
    nothing = _readings(day, 1).filter(pa.array([False, False]))
    assert nothing.column("reading_date").num_chunks == 0

    result = commit(table, nothing, WriteRequest("overwrite", _days(dt.date(2024, 3, 1), 1), "run-2"))

    assert result.rows_written == 0 and table.scan().count() == 0


def test_an_upsert_with_a_delivery_column_withdraws_the_rows_a_redelivered_file_no_longer_holds(catalog):
    day = dt.date(2024, 3, 1)
    table_slice = _days(day, 1)

    def rows(keys: list[str], files: list[str | None], value: int) -> pa.Table:
        return pa.table(
            {
                "key": keys,
                "file": pa.array(files, pa.string()),
                "reading_date": [day] * len(keys),
                "value": [value] * len(keys),
            }
        )

    first = rows(["a", "b", "c", "d", "e"], ["f1", "f1", "f1", "f2", None], 1)
    table = create_table_if_missing(catalog, "staging.deliveries", first.schema, "reading_date")
    request = WriteRequest("upsert", table_slice, "run-1", primary_key=("key",), delivery_column="file")
    commit(table, first, request)

    # f1 again without b and c; f2 (d) and the row of no file (e) are earlier deliveries, kept
    result = commit(table, rows(["a"], ["f1"], 2), dataclasses.replace(request, run_id="run-2"))

    assert (result.rows_replaced, result.rows_withdrawn, result.rows_kept) == (1, 2, 2)
    committed = table.scan().to_arrow().sort_by("key")
    assert committed.column("key").to_pylist() == ["a", "d", "e"]
    assert committed.column("value").to_pylist() == [2, 1, 1]
    assert table.current_snapshot().summary.additional_properties["lakehouse.rows-kept"] == "2"
