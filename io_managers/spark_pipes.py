"""The Spark step submitted as a job through Dagster Pipes, committed through the one commit path.

For Spark that offers no Connect endpoint (EMR Serverless): the step launches
`io_managers.pipes_job` with a Pipes client (`PipesSubprocessClient` running a local
`spark-submit`, or dagster-aws's `PipesEMRServerlessClient`), which writes Parquet files under this
commit's directory and reports them; this side checks and commits exactly those files, as the
in-process Spark path does with the files its executors return. When the job fails, nothing is
committed and whatever it wrote under the commit's directory is removed.
"""

import sys
from collections.abc import Callable
from pathlib import Path

from pyiceberg.table import Table

from io_managers.commit import (
    CommitResult,
    WriteRequest,
    parquet_options,
    partition_type_of,
    plan_commit,
    publish,
    removed_unless_committed,
    replace_with_files,
    row_group_rows,
    skip_repeated_append,
)
from io_managers.empty_input import empty_input_outcome
from io_managers.pipes_job import FILES_MESSAGE, encode_schema
from io_managers.spark_files import executor_io_properties
from io_managers.spark_frames import commit_directory, remove_directory, transform_name


class ReportedFilesError(RuntimeError):
    """The job reported no file list, or files outside its commit's directory."""


def _partition(table: Table, request: WriteRequest) -> dict | None:
    table_slice = request.slice
    if not table_slice.is_partitioned:
        return None
    column_type = partition_type_of(table, table_slice)
    table_slice.bounds_for(column_type)  # a column of another type fails here, before any job starts
    fields = table.spec().fields
    return {
        "column": table_slice.partition_column,
        "start": table_slice.start.isoformat(),
        "end": table_slice.end.isoformat(),
        "type": str(column_type),
        "transform": transform_name(fields[0].transform if len(fields) == 1 else None),
    }


def job_extras(
    table: Table, request: WriteRequest, directory: str, input_files: list[str], transform: str | None = None
) -> dict:
    """The job's parameters as Pipes extras (JSON): no catalog, no credentials."""
    return {
        "table": ".".join(table.name()),
        "input_files": list(input_files),
        "directory": directory,
        "io_properties": executor_io_properties(table.io.properties),
        "target_schema": encode_schema(table.schema().as_arrow()),
        "partition": _partition(table, request),
        "parquet_options": parquet_options(table.properties),
        "rows_per_group": row_group_rows(table.properties),
        "transform": transform,
    }


def reported_files(custom_messages: list, directory: str) -> list[dict]:
    """The files the job said it wrote; only ones under its commit's directory are ever committed."""
    reports = [m for m in custom_messages if isinstance(m, dict) and m.get("type") == FILES_MESSAGE]
    if len(reports) != 1:
        raise ReportedFilesError(f"the job sent {len(reports)} file lists; expected one")
    files = reports[0]["files"]
    outside = [f["path"] for f in files if not f["path"].startswith(directory.rstrip("/") + "/")]
    if outside:
        raise ReportedFilesError(f"the job reported files outside {directory}: {outside[:3]}")
    return files


def commit_job_files(
    table: Table,
    request: WriteRequest,
    launch: Callable[[dict], object],
    input_files: list[str],
    transform: str | None = None,
) -> CommitResult:
    """Run the job through `launch` (extras -> a completed Pipes invocation) and commit its files.

    Append and overwrite only: an upsert merges with the slice's existing rows, which the job would
    have to read from the catalog.
    """
    if request.mode == "upsert":
        raise NotImplementedError("the Pipes Spark job writes append and overwrite steps, not upserts")
    skipped = skip_repeated_append(table, request)
    if skipped:
        return skipped
    plan, _ = plan_commit(table, table.schema().as_arrow().empty_table(), request)
    directory = commit_directory(table, plan.commit_id)
    with removed_unless_committed(lambda: remove_directory(directory, table)):
        invocation = launch(job_extras(table, request, directory, input_files, transform))
        files = reported_files(invocation.get_custom_messages(), directory)
        rows = sum(f["rows"] for f in files)
        if rows == 0:
            import pyarrow as pa

            if nothing := empty_input_outcome(request, pa.table({}), table.properties):
                remove_directory(directory, table)
                return nothing
        plan = plan.with_rows(rows)
        paths = [f["path"] for f in files]
        snapshot_id = publish(table, plan, lambda transaction: replace_with_files(transaction, plan, paths))
    return CommitResult(request.mode, rows_written=rows, rows_replaced=0, snapshot_id=snapshot_id)


def job_script() -> Path:
    """The entry script spark-submit runs (uploaded next to the product archive for EMR Serverless)."""
    from io_managers import pipes_job

    return Path(pipes_job.__file__)


def local_spark_submit(master: str = "local[2]") -> list[str]:
    """The command running the job under the PySpark wheel's own spark-submit, workers on this Python."""
    import pyspark

    spark_submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    return [
        str(spark_submit),
        "--master",
        master,
        "--conf",
        f"spark.pyspark.python={sys.executable}",
        "--conf",
        f"spark.pyspark.driver.python={sys.executable}",
        "--conf",
        "spark.log.level=WARN",
        str(job_script()),
    ]


def emr_serverless_job_run(
    application_id: str,
    execution_role_arn: str,
    entry_point_uri: str,
    archive_uri: str,
    name: str,
    python_environment_uri: str | None = None,
) -> dict:
    """`start_job_run` parameters for `PipesEMRServerlessClient.run` (designed, not run here): the
    uploaded entry script, the product archive on the Python path and, when given, a packed Python
    environment (pyarrow, pyiceberg, dagster-pipes) for driver and executors."""
    parameters = [f"--py-files {archive_uri}", "--conf spark.sql.session.timeZone=UTC"]
    if python_environment_uri:
        parameters += [
            f"--conf spark.archives={python_environment_uri}#environment",
            "--conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python",
            "--conf spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON=./environment/bin/python",
            "--conf spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python",
        ]
    return {
        "applicationId": application_id,
        "executionRoleArn": execution_role_arn,
        "name": name,
        "jobDriver": {
            "sparkSubmit": {"entryPoint": entry_point_uri, "sparkSubmitParameters": " ".join(parameters)}
        },
    }
