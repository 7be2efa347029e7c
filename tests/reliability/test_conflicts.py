"""Writers that meet on the same partition: a stale overwrite conflicts, re-plans and wins cleanly."""

import datetime as dt
import logging

import pytest
from pyiceberg.exceptions import ValidationException

from io_managers.commit import WriteRequest, commit
from io_managers.retries import commit_with_retries
from io_managers.schema import create_table_if_missing
from io_managers.slices import TableSlice
from tests.reliability.harness import catalog_properties, collect, spawn
from tests.reliability.workers import ROWS_PER_PARTITION, partition_rows

TABLE = "staging.race"


def _request(day: str, run_id: str, mode: str = "overwrite") -> WriteRequest:
    start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    return WriteRequest(
        mode=mode,
        slice=TableSlice("reading_date", start, start + dt.timedelta(days=1)),
        run_id=run_id,
        primary_key=("reading_date", "sensor"),
    )


def _writers_of(table, day: str) -> dict[str, int]:
    rows = table.scan(row_filter=f"reading_date == '{day}'").to_arrow().column("writer").to_pylist()
    return {writer: rows.count(writer) for writer in set(rows)}


@pytest.fixture
def race_table(catalog):
    table = create_table_if_missing(
        catalog, TABLE, partition_rows("2024-01-01", "x", 0).schema, "reading_date"
    )
    for day in ("2024-01-01", "2024-01-02"):
        commit(table, partition_rows(day, "first"), _request(day, "first"))
    return table


@pytest.mark.parametrize("mode", ["overwrite", "upsert"])
def test_a_stale_overwrite_conflicts_then_converges_on_retry(
    mode, catalog, race_table, caplog, record_property
):
    stale_plain = catalog.load_table(TABLE)
    stale_retried = catalog.load_table(TABLE)
    commit(
        catalog.load_table(TABLE), partition_rows("2024-01-01", "second"), _request("2024-01-01", "second")
    )

    # Without the outer loop the conflict is real and refused: pyiceberg sees files added in the window.
    with pytest.raises(ValidationException):
        commit(stale_plain, partition_rows("2024-01-01", "third"), _request("2024-01-01", "third", mode))

    with caplog.at_level(logging.WARNING, logger="io_managers.retries"):
        result = commit_with_retries(
            stale_retried, partition_rows("2024-01-01", "third"), _request("2024-01-01", "third", mode)
        )
    assert any("ValidationException" in record.getMessage() for record in caplog.records)
    table = catalog.load_table(TABLE)
    assert result.snapshot_id == table.current_snapshot().snapshot_id
    assert _writers_of(table, "2024-01-01") == {"third": ROWS_PER_PARTITION}
    assert _writers_of(table, "2024-01-02") == {"first": ROWS_PER_PARTITION}
    record_property(f"reliability.stale_{mode}", "conflict detected, re-planned, converged")


@pytest.mark.parametrize("catalog_db", ["sqlite", "postgresql"], indirect=True)
def test_two_processes_overwriting_one_partition_leave_exactly_one_writers_rows(
    catalog_db, settings, catalog, race_table, tmp_path, record_property
):
    go = tmp_path / "go"
    args = {"catalog": catalog_properties(settings), "table": TABLE, "day": "2024-01-01", "go": str(go)}
    processes = [spawn("commit", args | {"writer": writer, "repeat": 3}) for writer in ("left", "right")]
    go.touch()
    results = collect(processes)

    # Both converge: each retried until its overwrite landed on top of the other's.
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    table = catalog.load_table(TABLE)
    writers = _writers_of(table, "2024-01-01")
    assert len(writers) == 1 and next(iter(writers.values())) == ROWS_PER_PARTITION
    assert _writers_of(table, "2024-01-02") == {"first": ROWS_PER_PARTITION}
    record_property(
        f"reliability.{catalog_db}.same_partition",
        "2 processes x 3 overwrites: one writer's rows, exactly once",
    )
