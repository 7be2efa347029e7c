"""kill -9 between raw's two commits: staging refuses the torn slice, run monitoring fails the dead
run, and re-running raw for the partition repairs the pair.

The run is a real Dagster run in a real subprocess on an instance configured by the shipped
`deploy/dagster.yaml`; the catalog lets every commit through but raw's own, where it stops so the
process can be killed with its rejects committed and raw not.
"""

import logging
import os
import shutil
import signal
import time

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.storage.tags import MAX_RUNTIME_SECONDS_TAG
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.workspace.load_target import EmptyWorkspaceTarget
from dagster._daemon.monitoring.run_monitoring import execute_run_monitoring_iteration

from io_managers.pairs import PAIR_ID_PROPERTY
from lakehouse_assets.assets.factory import build_assets
from resources.settings import load_settings
from tests.lakehouse_assets.layers.test_spark_equivalence import EVENT_FILES, EVENTS, _catalog, _resources
from tests.reliability.faults import HANGING_ON_TABLE
from tests.reliability.harness import REPO_ROOT, catalog_properties, collect, spawn

DAY = "2024-03-09"
LANDED = "events/events_2024-03-09.csv"
RAW_STEP = [
    dg.AssetKey(["landing", "events"]),
    dg.AssetKey(["raw", "events"]),
    dg.AssetKey(["raw", "events_rejects"]),
]
STAGING = [dg.AssetKey(["staging", "events"])]


def _pair_ids(table) -> list[str]:
    return [
        snapshot.summary.additional_properties[PAIR_ID_PROPERTY]
        for snapshot in table.metadata.snapshots
        if PAIR_ID_PROPERTY in snapshot.summary.additional_properties
    ]


def _failure_text(result) -> str:
    texts = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error is not None:
                texts.append(error.message)
                error = error.cause
    return "\n".join(texts)


def test_a_run_killed_between_raw_and_its_rejects_is_refused_downstream_failed_and_repaired(
    tmp_path, monkeypatch, record_property
):
    home = tmp_path / "lakehouse"
    for key, text in EVENT_FILES.items():
        (home / "landing" / key).parent.mkdir(parents=True, exist_ok=True)
        (home / "landing" / key).write_text(text)
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("LAKEHOUSE_HOME", str(home))
    monkeypatch.delenv("LAKEHOUSE_CATALOG_URI", raising=False)
    resources = _resources(home, 1 << 40)
    assets = build_assets([EVENTS])
    catalog = _catalog(home)

    with dg.DagsterInstance.get() as instance:
        assert instance.run_monitoring_enabled
        good = dg.materialize(assets, resources=resources, partition_key=DAY, instance=instance)
        assert good.success

        # A corrected delivery: one row more, which the killed run typed but never committed to raw.
        landed = home / "landing" / LANDED
        landed.write_text(landed.read_text() + "9,3,2024,8,e9,007,2024-03-09T13:00:00Z,,4.00,e@x.org\n")
        ready = tmp_path / "ready"
        process = spawn(
            "raw_pair",
            {
                "home": str(home),
                "partition": DAY,
                "catalog": catalog_properties(
                    load_settings(),
                    **{
                        "py-catalog-impl": HANGING_ON_TABLE,
                        "fault.table": "raw.events",
                        "fault.ready-file": str(ready),
                    },
                ),
                # what an operator would set for a long backfill; short here, so monitoring acts now
                "tags": {MAX_RUNTIME_SECONDS_TAG: "1"},
            },
        )
        deadline = time.monotonic() + 180
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), collect([process])[0][2]
        os.kill(process.pid, signal.SIGKILL)
        ((code, _, _),) = collect([process])
        assert code == -signal.SIGKILL

        # the killed run: its rejects committed, raw not, and Dagster still thinks it is running
        (killed,) = [
            run
            for run in instance.get_runs()
            if run.run_id != good.run_id and run.status == DagsterRunStatus.STARTED
        ]
        assert _pair_ids(catalog.load_table("raw.events_rejects"))[-1] == killed.run_id
        assert _pair_ids(catalog.load_table("raw.events"))[-1] == good.run_id

        refused = dg.materialize(
            assets,
            resources=resources,
            partition_key=DAY,
            selection=STAGING,
            instance=instance,
            raise_on_error=False,
        )
        assert not refused.success
        message = _failure_text(refused)
        assert "refusing to read raw.events: its pair raw.events_rejects + raw.events is torn" in message
        assert f"- partition {DAY}: run {killed.run_id} committed raw.events_rejects at " in message
        assert f"still holds run {good.run_id}'s commit at " in message
        assert (
            f"Run {killed.run_id} was killed between its two commits. Re-run raw.events for partition {DAY}"
            in message
        )

        # run monitoring (one iteration of the daemon's loop, on this instance) fails the dead run
        with create_test_daemon_workspace_context(EmptyWorkspaceTarget(), instance) as workspace:
            list(execute_run_monitoring_iteration(workspace, logging.getLogger("run_monitoring")))
        assert instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.FAILURE

        # the repair: raw re-run for the partition, then staging reads the whole delivery
        assert dg.materialize(
            assets, resources=resources, partition_key=DAY, selection=RAW_STEP, instance=instance
        ).success
        assert dg.materialize(
            assets, resources=resources, partition_key=DAY, selection=STAGING, instance=instance
        ).success
    staged = catalog.load_table("staging.events").scan(row_filter=f"event_date = '{DAY}'").to_arrow()
    assert sorted(staged.column("event_id").to_pylist()) == ["e1", "e2", "e3", "e9"]
    record_property(
        "reliability.torn_pair",
        "kill -9 between rejects and raw: staging refused, run marked FAILURE by run monitoring, "
        "repaired by re-running raw",
    )
