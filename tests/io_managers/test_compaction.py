"""Compaction: a crowded partition becomes one file in one commit; rows and other partitions stay."""

import datetime as dt

import pyarrow as pa
import pytest

from io_managers.commit import WriteRequest, commit
from io_managers.compaction import CompactionSettings, compact_table, crowded_partitions
from io_managers.schema import create_table_if_missing
from io_managers.slices import TableSlice


def _day(day: dt.date) -> TableSlice:
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    return TableSlice("reading_date", start, start + dt.timedelta(days=1))


def _rows(day: dt.date, first: int, count: int) -> pa.Table:
    return pa.table(
        {
            "reading_date": pa.array([day] * count, pa.date32()),
            "sensor": pa.array([f"s{index:04d}" for index in range(first, first + count)], pa.string()),
            "value": pa.array(range(first, first + count), pa.int64()),
        }
    )


def _files_per_partition(table) -> dict[str, int]:
    counts: dict[str, int] = {}
    for task in table.scan().plan_files():
        label = task.file.file_path.rsplit("/", 2)[1]
        counts[label] = counts.get(label, 0) + 1
    return counts


def _appended(catalog, days: dict[dt.date, int], rows_per_append: int = 5):
    table = create_table_if_missing(
        catalog, "staging.small", _rows(dt.date(2024, 1, 1), 0, 0).schema, "reading_date"
    )
    for day, appends in days.items():
        for index in range(appends):
            commit(
                table,
                _rows(day, index * rows_per_append, rows_per_append),
                WriteRequest("append", _day(day), f"run-{day}-{index}"),
            )
    return table


def test_crowded_partitions_are_rewritten_as_one_file_each_in_one_commit(catalog):
    table = _appended(catalog, {dt.date(2024, 1, 1): 6, dt.date(2024, 1, 2): 5, dt.date(2024, 1, 3): 2})
    before = table.scan().to_arrow().sort_by([("reading_date", "ascending"), ("sensor", "ascending")])
    snapshots = len(table.metadata.snapshots)

    result = compact_table(table, CompactionSettings(min_files=4))

    assert result.partitions == ("reading_date_day=2024-01-01", "reading_date_day=2024-01-02")
    assert (result.files_removed, result.files_added, result.rows_rewritten) == (11, 2, 55)
    assert _files_per_partition(table) == {
        "reading_date_day=2024-01-01": 1,
        "reading_date_day=2024-01-02": 1,
        "reading_date_day=2024-01-03": 2,  # below min_files: left alone
    }
    assert len(table.metadata.snapshots) == snapshots + 1
    after = table.scan().to_arrow().sort_by([("reading_date", "ascending"), ("sensor", "ascending")])
    assert after.equals(before)
    # a second run finds nothing to do
    assert compact_table(table, CompactionSettings(min_files=4)).partitions == ()


def test_a_retried_append_of_the_same_run_is_still_recognised_after_compaction(catalog):
    day = dt.date(2024, 1, 1)
    table = _appended(catalog, {day: 4})
    compact_table(table, CompactionSettings(min_files=2))
    result = commit(table, _rows(day, 0, 5), WriteRequest("append", _day(day), f"run-{day}-0"))
    assert result.skipped_reason == "this run already appended this slice"
    assert table.scan().count() == 20


def test_large_files_are_not_rewritten(catalog):
    table = _appended(catalog, {dt.date(2024, 1, 1): 5})
    assert crowded_partitions(table, CompactionSettings(min_files=2, small_file_bytes=10)) == []


def test_fewer_than_two_files_is_not_a_compaction():
    with pytest.raises(ValueError, match="changes nothing"):
        CompactionSettings(min_files=1)


def test_a_concurrent_overwrite_of_the_partition_wins_and_compaction_never_resurrects_rows(catalog):
    """The compaction read the old files; an overwrite replaced them before it committed. Its commit
    must be refused (and re-planned), never re-adding the rows the overwrite removed."""
    day = dt.date(2024, 1, 1)
    table = _appended(catalog, {day: 4})
    # a second handle: the compaction's view is stale when the overwrite lands
    other = catalog.load_table("staging.small")
    commit(other, _rows(day, 100, 3), WriteRequest("overwrite", _day(day), "overwriter"))

    result = compact_table(table, CompactionSettings(min_files=2))

    assert (result.partitions, result.attempts) == ((), 2)  # refused, re-planned: one file now
    fresh = catalog.load_table("staging.small")
    assert sorted(fresh.scan().to_arrow().column("sensor").to_pylist()) == ["s0100", "s0101", "s0102"]
