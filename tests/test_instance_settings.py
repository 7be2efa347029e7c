"""The shipped instance settings (`deploy/dagster.yaml`): valid for Dagster, run monitoring and run
retries on, and installed by `make dev` only where DAGSTER_HOME has no settings of its own."""

import filecmp
import shutil
import subprocess

import dagster as dg
from dagster._core.instance.config import dagster_instance_config

from tests.reliability.harness import REPO_ROOT

SHIPPED = REPO_ROOT / "deploy" / "dagster.yaml"


def test_the_shipped_dagster_yaml_is_a_valid_instance_that_monitors_and_retries_runs(tmp_path, monkeypatch):
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(SHIPPED, home / "dagster.yaml")
    # Dagster's own schema check of the file (an unknown key or a wrong type raises)
    config, _ = dagster_instance_config(str(home))
    assert config["run_monitoring"]["enabled"] is True
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 180
        assert instance.run_monitoring_cancel_timeout_seconds == 180
        assert instance.run_monitoring_max_runtime_seconds == 6 * 3600
        # the local run launcher cannot resume a run; anything above 0 would refuse to load
        assert instance.run_monitoring_max_resume_run_attempts == 0
        assert instance.run_retries_enabled
        assert instance.run_retries_max_retries == 2


def test_make_installs_the_settings_into_an_empty_dagster_home_and_keeps_an_operators_own(tmp_path):
    home = tmp_path / "dagster"

    def make() -> None:
        subprocess.run(
            ["make", "-s", "dagster-home", f"DAGSTER_HOME={home}"], cwd=REPO_ROOT, check=True, timeout=60
        )

    make()
    assert filecmp.cmp(home / "dagster.yaml", SHIPPED, shallow=False)
    own = "run_monitoring:\n  enabled: false\n"
    (home / "dagster.yaml").write_text(own)
    make()
    assert (home / "dagster.yaml").read_text() == own
