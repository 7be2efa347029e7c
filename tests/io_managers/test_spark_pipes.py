"""The Spark step as a Pipes job: the real entry script under the PySpark wheel's spark-submit,
launched by `PipesSubprocessClient` from a Dagster asset, its reported files committed through the
one commit path; a real SQLite catalog and real local Spark."""

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import (
    AssetExecutionContext,
    DagsterInstance,
    MaterializeResult,
    PipesSubprocessClient,
    asset,
    materialize,
)

from io_managers.commit import WriteRequest
from io_managers.pipes_job import FILES_MESSAGE
from io_managers.schema import create_table_if_missing
from io_managers.slices import TableSlice
from io_managers.spark_frames import commit_spark
from io_managers.spark_pipes import (
    ReportedFilesError,
    commit_job_files,
    emr_serverless_job_run,
    local_spark_submit,
    reported_files,
)
from resources.spark.session import SparkResource

DAY = TableSlice("day", dt.datetime(2024, 3, 1, tzinfo=dt.UTC), dt.datetime(2024, 3, 2, tzinfo=dt.UTC))
SCHEMA = pa.schema([("day", pa.date32()), ("key", pa.string()), ("value", pa.int64())])


def request(run_id="run-1"):
    return WriteRequest(mode="overwrite", slice=DAY, run_id=run_id)


def input_files(directory: Path, rows: list[tuple]) -> tuple[list[str], pa.Table]:
    """The rows as two Parquet files, as a landing step leaves them."""
    data = pa.Table.from_pylist([dict(zip(SCHEMA.names, row, strict=True)) for row in rows], SCHEMA)
    directory.mkdir(parents=True)
    half = data.num_rows // 2
    paths = []
    for number, part in enumerate((data.slice(0, half), data.slice(half))):
        path = directory / f"part-{number}.parquet"
        pq.write_table(part, path)
        paths.append(path.as_uri())
    return paths, data


def run_pipes_step(table, files: list[str]):
    """Materialize an asset whose body launches the job through Pipes and commits its files: the
    run, the commit's result (None when the step failed) and every message the run logged."""
    outcome = {}

    @asset(name="values")
    def values(context: AssetExecutionContext) -> MaterializeResult:
        client = PipesSubprocessClient()

        def launch(extras: dict):
            return client.run(context=context, command=local_spark_submit("local[1]"), extras=extras)

        outcome["result"] = commit_job_files(table, request(), launch, files)
        return MaterializeResult(metadata={"rows": outcome["result"].rows_written})

    instance = DagsterInstance.ephemeral()
    run = materialize([values], raise_on_error=False, instance=instance)
    entries = instance.all_logs(run.run_id)
    messages = [entry.user_message for entry in entries] + [
        str(entry.dagster_event.event_specific_data) for entry in entries if entry.dagster_event
    ]
    return run, outcome.get("result"), "\n".join(messages)


def data_files(table) -> list[Path]:
    root = Path(table.location().removeprefix("file://")) / "data"
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_the_job_under_spark_submit_commits_what_the_in_process_path_commits(catalog, tmp_path):
    day = dt.date(2024, 3, 1)
    rows = [(day, f"k{number:03d}", number) for number in range(40)]
    files, data = input_files(tmp_path / "landing", rows)
    job_table = create_table_if_missing(catalog, "staging.values_job", SCHEMA, "day")
    in_process_table = create_table_if_missing(catalog, "staging.values_in_process", SCHEMA, "day")

    run, result, messages = run_pipes_step(job_table, files)
    assert run.success
    assert result.rows_written == 40
    assert job_table.current_snapshot().snapshot_id == result.snapshot_id

    spark = SparkResource(master="local[1]").session()
    commit_spark(in_process_table, spark.createDataFrame(data), request())

    def read(table):
        return sorted(table.refresh().scan().to_arrow().to_pylist(), key=lambda row: row["key"])

    assert read(job_table) == read(in_process_table) == sorted(data.to_pylist(), key=lambda row: row["key"])
    # exactly the reported files are the table's, all under the commit's own directory
    committed = sorted(task.file.file_path for task in job_table.scan().plan_files())
    assert [Path(path.removeprefix("file://")) for path in committed] == data_files(job_table)
    assert all("/data/spark-" in path and "__lakehouse_partition=2024-03-01" in path for path in committed)
    # the job's own Pipes log line
    assert "wrote 1 files, 40 rows; not committed" in messages


def test_a_failing_job_reports_its_error_through_pipes_and_commits_nothing(catalog, tmp_path):
    rows = [(dt.date(2024, 3, 1), "a", 1), (dt.date(2024, 3, 5), "b", 2)]
    files, _ = input_files(tmp_path / "landing", rows)
    table = create_table_if_missing(catalog, "staging.values_job", SCHEMA, "day")

    run, result, messages = run_pipes_step(table, files)
    assert not run.success
    assert result is None
    # the job's exception, as the Pipes session's closing message
    assert "external process pipes closed with exception" in messages
    assert "PartitionWindowError" in messages
    assert "outside the partition 2024-03-01" in messages
    assert table.refresh().current_snapshot() is None
    assert data_files(table) == []


def test_only_one_file_list_under_the_commit_directory_is_accepted():
    directory = "file:///w/staging/values/data/spark-abc"
    files = [{"path": f"{directory}/x.parquet", "rows": 1, "partition": None}]
    good = {"type": FILES_MESSAGE, "files": files}
    assert reported_files([{"other": 1}, good], directory) == good["files"]
    with pytest.raises(ReportedFilesError, match="0 file lists"):
        reported_files([], directory)
    outside = {"type": FILES_MESSAGE, "files": [{"path": "file:///elsewhere/x.parquet", "rows": 1}]}
    with pytest.raises(ReportedFilesError, match="outside"):
        reported_files([outside], directory)


def test_emr_serverless_job_run_ships_the_script_archive_and_environment():
    params = emr_serverless_job_run(
        "00abc",
        "arn:aws:iam::123456789012:role/lakehouse-emr",
        "s3://code/pipes_job.py",
        "s3://code/lakehouse_product_1234.zip",
        "lakehouse-staging.values-2024-03-01",
        python_environment_uri="s3://code/environment.tar.gz",
    )
    submit = params["jobDriver"]["sparkSubmit"]
    assert params["applicationId"] == "00abc" and params["executionRoleArn"].endswith("role/lakehouse-emr")
    assert submit["entryPoint"] == "s3://code/pipes_job.py"
    assert "--py-files s3://code/lakehouse_product_1234.zip" in submit["sparkSubmitParameters"]
    assert "spark.archives=s3://code/environment.tar.gz#environment" in submit["sparkSubmitParameters"]
