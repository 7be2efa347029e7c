"""Maintenance beside live writers: snapshots expire, old orphans go, no live file or row is lost."""

import datetime as dt
import os
import time

from io_managers.commit import WriteRequest, commit
from io_managers.maintenance import find_orphan_files, referenced_files
from io_managers.schema import create_table_if_missing
from io_managers.slices import TableSlice
from lakehouse_assets.automation.maintenance import table_maintenance_job
from lakehouse_assets.definitions import defs
from resources.catalog.resource import IcebergCatalogResource
from tests.reliability.harness import catalog_properties, collect, spawn
from tests.reliability.workers import ROWS_PER_PARTITION, partition_rows

TABLE = "staging.maintained"
WRITERS = 4
DAYS_PER_WRITER = 5


def _window(day: dt.date) -> TableSlice:
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    return TableSlice("reading_date", start, start + dt.timedelta(days=1))


def _age(path: str, days: int) -> None:
    old = time.time() - days * 86400
    os.utime(path, (old, old))


def test_maintenance_beside_writers_loses_nothing(settings, catalog, tmp_path, record_property):
    table = create_table_if_missing(
        catalog, TABLE, partition_rows("2024-01-01", "x", 0).schema, "reading_date"
    )
    table.transaction().set_properties({"owner.team": "energy"}).commit_transaction()
    for _ in range(3):  # history to expire
        commit(
            table,
            partition_rows("2024-02-01", "seed"),
            WriteRequest("overwrite", _window(dt.date(2024, 2, 1)), "s"),
        )
    # an abandoned file from long ago, as a crashed writer leaves
    stale = next(settings.home.joinpath("warehouse").rglob("data")) / "abandoned.parquet"
    stale.write_bytes(b"not referenced by anything")
    _age(str(stale), days=10)

    go = tmp_path / "go"
    processes = []
    for writer in range(WRITERS):
        days = [
            str(dt.date(2024, 1, 1) + dt.timedelta(days=writer * DAYS_PER_WRITER + n))
            for n in range(DAYS_PER_WRITER)
        ]
        args = {
            "catalog": catalog_properties(settings),
            "table": TABLE,
            "days": days,
            "writer": f"w{writer}",
        }
        processes.append(
            spawn("commit_many", args | {"go": str(go), "mode": "append" if writer % 2 else "overwrite"})
        )
    go.touch()

    resource = IcebergCatalogResource(properties=catalog_properties(settings))
    config = {"snapshot_max_age_hours": 0.0, "min_snapshots": 1, "orphan_min_age_hours": 1.0}
    passes, expired, removed = 0, 0, 0
    while any(process.poll() is None for process in processes) or passes == 0:
        result = table_maintenance_job.execute_in_process(
            resources={"catalog": resource}, run_config={"ops": {"maintain_tables": {"config": config}}}
        )
        report = maintenance_report(result)[TABLE]
        passes += 1
        expired += report["snapshots_expired"]
        removed += report["orphan_files_removed"]
    results = collect(processes)
    assert [code for code, _, _ in results] == [0] * WRITERS, [err for _, _, err in results]

    table = catalog.load_table(TABLE)
    rows = table.scan().to_arrow()
    keys = list(zip(rows.column("reading_date").to_pylist(), rows.column("sensor").to_pylist(), strict=True))
    assert len(keys) == len(set(keys))
    assert len(keys) == (WRITERS * DAYS_PER_WRITER + 1) * ROWS_PER_PARTITION
    assert not stale.exists()
    assert expired > 0 and removed >= 1
    # every file the table refers to is still there
    assert all(os.path.exists(path) for path in referenced_files(table))
    assert table.properties["owner.team"] == "energy"
    assert table.properties["commit.retry.num-retries"] == "10"
    assert find_orphan_files(table, min_age=dt.timedelta(hours=1)) == []
    record_property(
        "reliability.maintenance",
        f"{passes} maintenance passes beside {WRITERS} writers: {expired} snapshots expired, "
        f"{removed} old orphans removed, 0 rows lost",
    )


def maintenance_report(result) -> dict:
    (output,) = [event for event in result.all_node_events if event.is_successful_output]
    return output.step_output_data.metadata["per_table"].value


def test_the_code_locations_maintenance_job_runs_with_its_own_resources(settings, catalog, record_property):
    table = create_table_if_missing(
        catalog, TABLE, partition_rows("2024-01-01", "x", 0).schema, "reading_date"
    )
    for writer in ("a", "b", "c"):
        commit(
            table,
            partition_rows("2024-01-01", writer),
            WriteRequest("overwrite", _window(dt.date(2024, 1, 1)), writer),
        )
    job = defs().get_job_def("table_maintenance")
    config = {"ops": {"maintain_tables": {"config": {"snapshot_max_age_hours": 0.0}}}}
    result = job.execute_in_process(run_config=config)
    assert result.success
    assert maintenance_report(result)[TABLE]["snapshots_expired"] >= 2
    assert len(catalog.load_table(TABLE).metadata.snapshots) <= 2  # the current overwrite: delete + append
    assert set(catalog.load_table(TABLE).scan().to_arrow().column("writer").to_pylist()) == {"c"}


def test_the_maintenance_job_refuses_an_unsafe_orphan_age(settings, catalog):
    resource = IcebergCatalogResource(properties=catalog_properties(settings))
    result = table_maintenance_job.execute_in_process(
        resources={"catalog": resource},
        run_config={"ops": {"maintain_tables": {"config": {"orphan_min_age_hours": 0.1}}}},
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("maintain_tables")
    assert "could delete files a running write has not committed yet" in failure.error.message
