"""A dozen processes (16 on PostgreSQL, the team deployment) materialise different partitions of
the same tables at once: nothing is lost."""

import datetime as dt
import time

import dagster as dg
import pytest

from tests.reliability.harness import collect, spawn
from tests.reliability.workers import ROWS_PER_PARTITION

WRITERS = {"sqlite": 12, "postgresql": 16}
PARTITIONS_PER_WRITER = 2


@pytest.mark.parametrize("catalog_db", ["sqlite", "postgresql"], indirect=True)
def test_parallel_materialisations_of_different_partitions_keep_every_row_once(
    catalog_db, settings, catalog, tmp_path, record_property, request
):
    writers = WRITERS[catalog_db]
    # on PostgreSQL the runs and their events go to the team's Dagster instance too
    dagster_home = request.getfixturevalue("team_dagster_home") if catalog_db == "postgresql" else None
    days = [
        dt.date(2024, 1, 1) + dt.timedelta(days=index) for index in range(writers * PARTITIONS_PER_WRITER)
    ]
    go = tmp_path / "go"
    processes = [
        spawn(
            "materialize",
            {
                "home": str(settings.home),
                "partitions": [str(day) for day in days[index::writers]],
                "go": str(go),
                "dagster_home": str(dagster_home) if dagster_home else None,
            },
        )
        for index in range(writers)
    ]
    go.touch()
    began = time.monotonic()
    results = collect(processes)
    wall_s = time.monotonic() - began

    failures = [err for code, _, err in results if code != 0]
    assert not failures, failures[0]
    runs = [run for _, report, _ in results for run in report["runs"]]
    assert len(runs) == len(days) and all(run["success"] for run in runs)

    expected = {(day, f"s{index:03d}") for day in days for index in range(ROWS_PER_PARTITION)}
    lost = 0
    for mode in ("overwrite", "append"):
        table = catalog.load_table(f"staging.load_{mode}")
        rows = table.scan().to_arrow().select(["reading_date", "sensor"]).to_pylist()
        keys = [(row["reading_date"], row["sensor"]) for row in rows]
        assert len(keys) == len(set(keys)), f"{mode}: {len(keys) - len(set(keys))} rows appear more than once"
        assert set(keys) == expected
        lost += len(expected - set(keys))
        # one snapshot per run and partition: no commit lost, none doubled
        slices = [
            snapshot.summary.additional_properties.get("lakehouse.slice")
            for snapshot in table.metadata.snapshots
            if snapshot.summary.additional_properties.get("lakehouse.run-id")
        ]
        assert sorted(slices) == sorted(str(day) for day in days)

    # pyiceberg and our loop log each lost race; the count shows the load really contended.
    retried = sum(err.count("Commit failed due to a concurrent update") for _, _, err in results)
    if dagster_home:
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            recorded = instance.get_runs()
        assert sorted(run.run_id for run in recorded) == sorted(run["run_id"] for run in runs)
        assert {run.status for run in recorded} == {dg.DagsterRunStatus.SUCCESS}
    record_property(f"reliability.{catalog_db}.commit_races_retried", retried)
    record_property(
        f"reliability.{catalog_db}.load", f"{writers} processes, {len(runs)} runs, {2 * len(runs)} commits"
    )
    record_property(f"reliability.{catalog_db}.rows_written", 2 * len(expected))
    record_property(f"reliability.{catalog_db}.rows_lost", lost)
    record_property(f"reliability.{catalog_db}.wall_s", round(wall_s, 1))
