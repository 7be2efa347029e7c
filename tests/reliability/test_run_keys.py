"""The same arrival reported twice makes one run: Dagster's sensor daemon dedups by run key."""

import logging
import time

import dagster as dg
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.sensor import execute_sensor_iteration

from tests.reliability.harness import REPO_ROOT


def _tick(context) -> None:
    time.sleep(1.1)  # the sensor's minimum interval
    list(execute_sensor_iteration(context, logging.getLogger("test.sensor"), None, None))


def test_the_same_arrival_twice_launches_one_run(tmp_path, monkeypatch, record_property):
    arrivals = tmp_path / "arrivals"
    arrivals.mkdir()
    monkeypatch.setenv("ARRIVALS_DIR", str(arrivals))
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    (arrivals / "flights_2013-01-02.csv").write_text("a,b\n1,2\n")
    target = ModuleTarget(
        module_name="tests.reliability.arrivals_location",
        attribute="defs",
        working_directory=str(REPO_ROOT),
        location_name="arrivals",
    )
    launcher = {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"}
    with (
        dg.instance_for_test(temp_dir=str(tmp_path), overrides={"run_launcher": launcher}) as instance,
        create_test_daemon_workspace_context(target, instance) as context,
    ):
        _tick(context)
        _tick(context)
        assert instance.get_runs_count() == 1
        # a new version of the same file is a new arrival
        (arrivals / "flights_2013-01-02.csv").write_text("a,b\n1,3\n")
        _tick(context)
        _tick(context)
        runs = instance.get_runs()
    assert len(runs) == 2
    assert {run.tags["arrival"] for run in runs} == {"flights_2013-01-02.csv"}
    assert len({run.tags["dagster/run_key"] for run in runs}) == 2
    record_property("reliability.run_keys", "4 sensor ticks over 2 file versions -> 2 runs")
