"""Range backfills write exactly their window; a failed partition leaves the others and is resumed."""

import dagster as dg
import pandas as pd

from lakehouse_assets.automation.backfills import partitions_to_resume, resume_commands
from lakehouse_assets.automation.policies import backfill_policy_for
from lakehouse_assets.cli.main import main as lakehouse_cli
from tests.conftest import materialize_partitions
from tests.io_managers.test_io_manager import DAYS, readings, rows, table_asset

WEEK = [f"2024-03-0{day}" for day in range(1, 8)]
KEY = dg.AssetKey(["staging", "readings"])


def test_a_single_run_range_writes_exactly_the_requested_partitions(resources, catalog):
    tag = {"value": 1}

    def produce(context):
        return pd.concat([readings(key, tag["value"], tag["value"]) for key in context.partition_keys])

    asset = table_asset("overwrite", produce)
    assert materialize_partitions([asset], resources, WEEK[0], WEEK[-1]).success
    tag["value"] = 2
    assert materialize_partitions([asset], resources, "2024-03-03", "2024-03-05").success

    table = rows(catalog)
    by_day = table.groupby("reading_date").value.agg(lambda values: sorted(set(values))).to_dict()
    assert {str(day): values for day, values in by_day.items()} == {
        key: [2] if "2024-03-03" <= key <= "2024-03-05" else [1] for key in WEEK
    }
    assert len(table) == 2 * len(WEEK)


def test_a_failed_partition_leaves_the_others_and_is_resumed_from_run_history(
    resources, catalog, tmp_path, record_property
):
    broken = {"2024-03-05"}

    def produce(context):
        if context.partition_key in broken:
            raise RuntimeError(f"upstream file for {context.partition_key} is corrupt")
        return readings(context.partition_key, 1, 2)

    asset = table_asset("overwrite", produce)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        # what a multi-run backfill does: one run per chunk, each committing on its own
        outcomes = {
            key: dg.materialize(
                [asset], resources=resources, partition_key=key, instance=instance, raise_on_error=False
            ).success
            for key in WEEK[:6]
        }
        assert outcomes == {key: key not in broken for key in WEEK[:6]}
        assert sorted({str(day) for day in rows(catalog).reading_date}) == sorted(set(WEEK[:6]) - broken)

        found = partitions_to_resume(instance, KEY, DAYS, WEEK[0], WEEK[-1])
        assert found == {"failed": ["2024-03-05"], "missing": ["2024-03-07"], "in_progress": []}
        assert resume_commands(KEY, found["failed"])[0].endswith(
            "--select 'staging/readings' --partition 2024-03-05"
        )

        broken.clear()
        for key in found["failed"] + found["missing"]:
            assert dg.materialize([asset], resources=resources, partition_key=key, instance=instance).success
        assert partitions_to_resume(instance, KEY, DAYS, WEEK[0], WEEK[-1]) == {
            "failed": [],
            "missing": [],
            "in_progress": [],
        }
    table = rows(catalog)
    assert sorted({str(day) for day in table.reading_date}) == WEEK
    assert len(table) == 2 * len(WEEK)
    record_property("reliability.resume", "1 failed + 1 missing partition found from run history and re-run")


def test_backfill_policy_follows_the_engine():
    assert backfill_policy_for(False) is None
    assert backfill_policy_for(True, "spark") == dg.BackfillPolicy.single_run()
    pandas = backfill_policy_for(True, "pandas")
    assert pandas.max_partitions_per_run == 31 and backfill_policy_for(True, "auto") == pandas


def test_the_resume_command_reads_the_instance(settings, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    assert (
        lakehouse_cli(
            ["resume", "--asset", "staging/flights", "--start", "2013-01-01", "--end", "2013-01-02"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "missing: 2013-01-01, 2013-01-02" in out
    assert "--select 'staging/flights' --partition 2013-01-02" in out
