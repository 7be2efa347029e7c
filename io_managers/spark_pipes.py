"""The Spark step submitted as a job through Dagster Pipes, committed through the one commit path.

For Spark that offers no Connect endpoint (EMR Serverless): the step launches
`io_managers.pipes_job` with a Pipes client (`PipesSubprocessClient` running a local
`spark-submit`, or dagster-aws's `PipesEMRServerlessClient`), which writes Parquet files under this
commit's directory and reports them; this side checks and commits exactly those files, as the
in-process Spark path does with the files its executors return. When the job fails, nothing is
committed and whatever it wrote under the commit's directory is removed.
"""

from collections.abc import Callable
from dataclasses import dataclass
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
    snapshot_of_commit,
)
from io_managers.empty_input import empty_input_outcome
from io_managers.pipes_job import FILES_MESSAGE, encode_schema
from io_managers.retries import retry_commit
from io_managers.slices import TableSlice
from io_managers.spark_files import executor_io_properties
from io_managers.spark_frames import commit_directory, remove_directory, transform_name
from resources.spark.jobs import SETTING, SparkJobResource, spark_submit_command
from resources.spark.jobs import emr_serverless_job_run as emr_serverless_job_run


class SubmittedStepError(RuntimeError):
    """A step the submitted Spark route cannot run as the in-process path would."""


class ReportedFilesError(RuntimeError):
    """The job reported no file list, or files outside its commit's directory."""


def _partition(table: Table, request: WriteRequest) -> dict | None:
    return slice_window(table, request.slice)


def slice_window(table: Table, table_slice: TableSlice) -> dict | None:
    """The slice as a job outside the Dagster process is told it (JSON): column, bounds, type."""
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
    table: Table,
    request: WriteRequest,
    directory: str,
    input_files: list[str],
    transform: str | None = None,
    arguments: dict | None = None,
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
        # keyword arguments of the transform (JSON), when it takes any
        "transform_arguments": arguments,
    }


def reported_files(custom_messages: list, directory: str) -> list[dict]:
    """The files the job said it wrote; only ones under its commit's directory are ever committed."""
    return _files_message(custom_messages, directory)["files"]


def _files_message(custom_messages: list, directory: str) -> dict:
    reports = [m for m in custom_messages if isinstance(m, dict) and m.get("type") == FILES_MESSAGE]
    if len(reports) != 1:
        raise ReportedFilesError(f"the job sent {len(reports)} file lists; expected one")
    files = reports[0]["files"]
    outside = [f["path"] for f in files if not f["path"].startswith(directory.rstrip("/") + "/")]
    if outside:
        raise ReportedFilesError(f"the job reported files outside {directory}: {outside[:3]}")
    return reports[0]


def commit_job_files(
    table: Table,
    request: WriteRequest,
    launch: Callable[[dict], object],
    input_files: list[str],
    transform: str | None = None,
    arguments: dict | None = None,
    accept: Callable[[dict], bool] | None = None,
) -> CommitResult | None:
    """Run the job through `launch` (extras -> a completed Pipes invocation) and commit its files.

    `accept` sees what the job's transform reported (its row counts and rule outcomes) before
    anything is committed; when it declines, the job's files are removed and None is returned.
    Append and overwrite only: an upsert merges with the slice's existing rows, which the job would
    have to read from the catalog.
    """
    if request.mode == "upsert":
        raise NotImplementedError("the Pipes Spark job writes append and overwrite steps, not upserts")
    if accept is None and (skipped := skip_repeated_append(table, request)):
        return skipped
    plan, _ = plan_commit(table, table.schema().as_arrow().empty_table(), request)
    directory = commit_directory(table, plan.commit_id)
    with removed_unless_committed(lambda: remove_directory(directory, table)):
        invocation = launch(job_extras(table, request, directory, input_files, transform, arguments))
        message = _files_message(invocation.get_custom_messages(), directory)
        files = message["files"]
        if accept is not None and not accept(message.get("report") or {}):
            remove_directory(directory, table)
            return None
        # (checked after the job when its report decides: a repeated append is still checked)
        if skipped := skip_repeated_append(table, request):
            remove_directory(directory, table)
            return skipped
        rows = sum(f["rows"] for f in files)
        if rows == 0:
            import pyarrow as pa

            if nothing := empty_input_outcome(request, pa.table({}), table.properties):
                remove_directory(directory, table)
                return nothing
        plan = plan.with_rows(rows)
        paths = [f["path"] for f in files]

        def publish_files(fresh: Table) -> CommitResult:
            # A lost race is published again from a fresh read (`retry_commit`); the job is not run
            # again. A commit whose outcome was unknown and that did land is not applied twice.
            landed = snapshot_of_commit(fresh, plan.commit_id)
            if landed is None:
                landed = publish(fresh, plan, lambda change: replace_with_files(change, plan, paths))
            return CommitResult(request.mode, rows_written=rows, rows_replaced=0, snapshot_id=landed)

        return retry_commit(table, request, publish_files)


@dataclass(frozen=True)
class SubmittedInput:
    """A table slice handed to a submitted Spark job instead of a frame: its data files, as
    pyiceberg's scan plans them, and where the job runs. The Dagster process reads no row of it."""

    table: Table
    slice: TableSlice
    files: list[str]
    records: int
    job: SparkJobResource


def submitted_input(table: Table, table_slice: TableSlice, job: SparkJobResource) -> SubmittedInput:
    from io_managers.commit import slice_scan

    tasks = list(slice_scan(table, table_slice).plan_files())
    if any(task.delete_files for task in tasks):
        raise SubmittedStepError(
            f"{'.'.join(table.name())} has delete files; a submitted Spark job reads copy-on-write tables"
        )
    return SubmittedInput(
        table=table,
        slice=table_slice,
        files=[task.file.file_path for task in tasks],
        records=sum(task.file.record_count for task in tasks),
        job=job,
    )


def refuse_upsert(identifier: str, route: str) -> None:
    raise SubmittedStepError(
        f"{identifier} is written in upsert mode, which a submitted Spark job does not do "
        f"({SETTING}={route}): it would merge with the table's rows, which the job cannot read from "
        "the catalog. Pin the contract's engine to pandas, or unset "
        f"{SETTING} to run it on Spark in this process"
    )


def job_script() -> Path:
    """The entry script spark-submit runs (uploaded next to the product archive for EMR Serverless)."""
    from io_managers import pipes_job

    return Path(pipes_job.__file__)


def local_spark_submit(master: str = "local[2]") -> list[str]:
    """The command running the job under the PySpark wheel's own spark-submit, workers on this Python."""
    return spark_submit_command(job_script(), master)
