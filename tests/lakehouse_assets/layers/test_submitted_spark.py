"""A staging step on Spark as a submitted job (`LAKEHOUSE_SPARK_SUBMIT=local`): the real entry script
under the PySpark wheel's spark-submit, launched through Dagster Pipes, committed into a real SQLite
catalog, with a monthly dataset the demo does not have. The outcome must be the pandas path's."""

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyspark
import yaml
from pyiceberg.catalog.sql import SqlCatalog

from lakehouse_assets.assets.factory import build_assets
from lakehouse_assets.contracts.contract import DatasetContract
from lakehouse_assets.definitions import build_resources
from resources.settings import load_settings
from tests.spark_connect.server import java_descendants

TARIFFS = r"""
name: tariff_reads
description: Household meter reads under a tariff, delivered as one file per month.
owners: ["team:test"]
source:
  glob: "tariffs/tariffs_*.csv"
  file_date_pattern: 'tariffs_(?P<date>\d{4}-\d{2})\.csv$'
columns:
  - {name: household, type: string, nullable: false}
  - {name: y, type: int, nullable: false}
  - {name: m, type: int, nullable: false}
  - {name: d, type: int, nullable: false}
  - {name: read_at, type: timestamptz, nullable: false}
  - {name: kwh, type: double}
  - {name: tariff, type: string}
  - {name: email, type: string, pii: true}
primary_key: [household, read_on]
partitioning: {column: read_on, granularity: month, start: 2023-01-01, end: 2024-01-01}
staging:
  - {trim: [household]}
  - {derive_date: {column: read_on, year: y, month: m, day: d}}
  - {deduplicate: {keys: [household, read_on], latest_by: read_at}}
  - {mask: {columns: [email], method: sha256}}
quality:
  rules:
    - {rule: not_null, columns: [household, read_on]}
    - {rule: allowed_values, column: tariff, values: [day, night, flat]}
    - {rule: range, column: kwh, min: 0, severity: warn, description: A negative read is a meter fault}
    - {rule: references, columns: [tariff], table: reference.tariffs, to: [name], severity: warn}
"""
MONTH, BAD_MONTH = "2023-03-01", "2023-04-01"
HEADER = "household,y,m,d,read_at,kwh,tariff,email\n"


def _month_file(month: int, tariffs: tuple[str, ...]) -> str:
    """Ten households a day for a few days, one read repeated later (de-duplicated), a negative read."""
    lines = []
    for day in range(1, 4):
        for number in range(10):
            tariff = tariffs[(day + number) % len(tariffs)]
            email = f"h{number}@example.org" if number % 3 else ""
            at = f"2023-{month:02d}-{day:02d}T0{number % 10}:15:00Z"
            lines.append(
                f" h{number:02d} ,2023,{month},{day},{at},{number * 1.25 - (day == 2) * 20},{tariff},{email}"
            )
    lines.append(f"h01,2023,{month},1,2023-{month:02d}-01T23:00:00Z,99.5,day,late@example.org")
    return HEADER + "\n".join(lines) + "\n"


def _home(tmp_path, name: str, files: dict[str, str]):
    home = tmp_path / name
    for key, text in files.items():
        (home / "landing" / key).parent.mkdir(parents=True, exist_ok=True)
        (home / "landing" / key).write_text(text)
    catalog = _catalog(home)
    catalog.create_namespace_if_not_exists("reference")
    names = pa.table({"name": ["day", "night"]})
    catalog.create_table_if_not_exists("reference.tariffs", names.schema).overwrite(names)
    return home


def _catalog(home) -> SqlCatalog:
    home.mkdir(parents=True, exist_ok=True)
    return SqlCatalog(
        "lakehouse", uri=f"sqlite:///{home / 'catalog.db'}", warehouse=(home / "warehouse").as_uri()
    )


def _resources(monkeypatch, home, *, threshold: int, submit: str | None) -> dict:
    monkeypatch.setenv("LAKEHOUSE_HOME", str(home))
    monkeypatch.setenv("LAKEHOUSE_ENV", "local")
    monkeypatch.delenv("LAKEHOUSE_CATALOG_URI", raising=False)
    monkeypatch.setenv("LAKEHOUSE_SPARK_THRESHOLD_BYTES", str(threshold))
    monkeypatch.setenv("LAKEHOUSE_SPARK_MASTER", "local[2]")
    if submit:
        monkeypatch.setenv("LAKEHOUSE_SPARK_SUBMIT", submit)
    else:
        monkeypatch.delenv("LAKEHOUSE_SPARK_SUBMIT", raising=False)
    return build_resources(load_settings())


def _contract(**changes) -> DatasetContract:
    return DatasetContract.model_validate(yaml.safe_load(TARIFFS) | changes)


def _run(assets, resources, month: str, selection=None):
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        assets,
        resources=resources,
        partition_key=month,
        selection=selection,
        instance=instance,
        raise_on_error=False,
    )
    entries = instance.all_logs(result.run_id)
    log = "\n".join(
        [entry.user_message for entry in entries]
        + [str(entry.dagster_event.event_specific_data) for entry in entries if entry.dagster_event]
    )
    return result, log


def _upstream_then_staging(assets, monkeypatch, home, month: str, *, submit: str | None = "local"):
    """Landing and raw on pandas, then staging with every partition on Spark: no step of this process
    starts a classic Spark session (one left running would keep a later Spark Connect test of the
    same worker from starting its remote session)."""
    upstream = [key for asset in assets for key in asset.keys if key.path[0] in ("landing", "raw")]
    pandas = _resources(monkeypatch, home, threshold=1 << 40, submit=None)
    landed, _ = _run(assets, pandas, month, selection=dg.AssetSelection.assets(*upstream))
    assert landed.success
    staging = dg.AssetSelection.assets(dg.AssetKey(["staging", "tariff_reads"]))
    return _run(assets, _resources(monkeypatch, home, threshold=0, submit=submit), month, selection=staging)


def _staging(result) -> dict:
    [event] = [
        event.materialization
        for event in result.get_asset_materialization_events()
        if event.materialization.asset_key == dg.AssetKey(["staging", "tariff_reads"])
    ]
    return event.metadata


def _checks(result) -> list[tuple]:
    # which five failing rows make the sample is each engine's row order
    volatile = {"engine", "failing_sample"}
    return sorted(
        (
            evaluation.check_name,
            evaluation.passed,
            str(evaluation.severity),
            {key: value.value for key, value in evaluation.metadata.items() if key not in volatile},
        )
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.asset_key == dg.AssetKey(["staging", "tariff_reads"])
    )


def _rows(home) -> pa.Table:
    table = _catalog(home).load_table("staging.tariff_reads")
    data = table.scan().to_arrow().cast(table.schema().as_arrow()).drop_columns(["_loaded_at"])
    return data.sort_by([(name, "ascending") for name in data.column_names])


def test_a_submitted_staging_step_writes_what_the_pandas_path_writes(tmp_path, monkeypatch):
    files = {"tariffs/tariffs_2023-03.csv": _month_file(3, ("day", "night", "flat"))}
    pandas_home, job_home = _home(tmp_path, "pandas", files), _home(tmp_path, "job", files)
    assets = build_assets([_contract()])

    on_pandas, _ = _run(assets, _resources(monkeypatch, pandas_home, threshold=1 << 40, submit=None), MONTH)
    on_job, log = _upstream_then_staging(assets, monkeypatch, job_home, MONTH)
    assert on_pandas.success and on_job.success

    pandas_table = _catalog(pandas_home).load_table("staging.tariff_reads")
    job_table = _catalog(job_home).load_table("staging.tariff_reads")
    assert job_table.schema().as_struct() == pandas_table.schema().as_struct()
    assert job_table.spec().fields == pandas_table.spec().fields
    assert _rows(job_home).equals(_rows(pandas_home))
    assert _rows(job_home).num_rows == 30
    # the job wrote the files the catalog holds, under a commit directory of its own
    assert all("/data/spark-" in task.file.file_path for task in job_table.scan().plan_files())

    # same check results (the warn rules fail alike: a negative read, a tariff no reference names)
    assert _checks(on_job) == _checks(on_pandas)
    failed = {name for name, passed, _, _ in _checks(on_job) if not passed}
    assert failed == {"range__kwh", "references__tariff"}
    samples = {
        evaluation.check_name: evaluation.metadata["failing_sample"].value
        for evaluation in on_job.get_asset_check_evaluations()
        if not evaluation.passed
    }
    assert len(samples["range__kwh"]) == 5 and all(row["kwh"] < 0 for row in samples["range__kwh"])
    assert all(row["tariff"] == "flat" for row in samples["references__tariff"])
    # the same metadata, the engine that wrote named
    on_pandas_metadata, on_job_metadata = _staging(on_pandas), _staging(on_job)
    assert set(on_job_metadata) == set(on_pandas_metadata)
    assert on_job_metadata["engine"].value == "spark-submit"
    assert on_pandas_metadata["engine"].value == "pandas"
    for key in ("rows_written", "rows_removed_duplicates", "slice_row_count", "dagster/row_count"):
        assert on_job_metadata[key] == on_pandas_metadata[key], key
    assert on_job_metadata["rows_removed_duplicates"].value == 1
    # the job's own Pipes log lines reach the run's log
    assert "wrote 1 files, 30 rows; not committed" in log


def test_a_failing_error_rule_blocks_the_submitted_commit_without_a_session_here(tmp_path, monkeypatch):
    files = {
        "tariffs/tariffs_2023-03.csv": _month_file(3, ("day", "night")),
        # a tariff the contract does not allow: the error rule blocks the month
        "tariffs/tariffs_2023-04.csv": _month_file(4, ("day", "weekend")),
    }
    home = _home(tmp_path, "job", files)
    assets = build_assets([_contract()])
    upstream = [key for asset in assets for key in asset.keys if key.path[0] in ("landing", "raw")]
    staging = dg.AssetSelection.assets(dg.AssetKey(["staging", "tariff_reads"]))
    # landing and raw on pandas, so that no step of this process has had a reason to start Spark
    pandas_resources = _resources(monkeypatch, home, threshold=1 << 40, submit=None)
    for month in (MONTH, BAD_MONTH):
        landed, _ = _run(assets, pandas_resources, month, selection=dg.AssetSelection.assets(*upstream))
        assert landed.success
    resources = _resources(monkeypatch, home, threshold=0, submit="local")
    had_context = pyspark.SparkContext._active_spark_context is not None
    before = java_descendants()

    good, _ = _run(assets, resources, MONTH, selection=staging)
    assert good.success
    table = _catalog(home).load_table("staging.tariff_reads")
    committed = table.current_snapshot().snapshot_id

    bad, log = _run(assets, resources, BAD_MONTH, selection=staging)
    assert not bad.success
    assert "staging/tariff_reads not committed" in log
    assert "error rules failed: allowed_values__tariff" in log
    # the job said so through Pipes, and wrote nothing
    assert "error rules failed: allowed_values__tariff; no file written" in log
    assert table.refresh().current_snapshot().snapshot_id == committed
    assert {str(row["read_on"])[:7] for row in table.scan().to_arrow().to_pylist()} == {"2023-03"}
    data = Path(table.location().removeprefix("file://")) / "data"
    assert not any("2023-04" in str(path) for path in data.rglob("*.parquet"))
    results = {e.check_name: e.passed for e in bad.get_asset_check_evaluations()}
    assert results["allowed_values__tariff"] is False and results["not_null__household__read_on"] is True

    # neither step started Spark in this process: spark-submit's JVM was the job's, and it ended
    assert java_descendants() <= before
    if not had_context:
        assert pyspark.SparkContext._active_spark_context is None


def test_an_upsert_staging_step_is_refused_on_the_submitted_route(tmp_path, monkeypatch):
    files = {"tariffs/tariffs_2023-03.csv": _month_file(3, ("day",))}
    home = _home(tmp_path, "job", files)
    assets = build_assets([_contract(write_modes={"staging": "upsert"})])
    result, log = _upstream_then_staging(assets, monkeypatch, home, MONTH)
    assert not result.success
    assert "staging.tariff_reads is written in upsert mode" in log
    assert "LAKEHOUSE_SPARK_SUBMIT=local" in log
    assert not _catalog(home).table_exists("staging.tariff_reads")
