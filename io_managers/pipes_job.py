"""The Spark step as a job of its own: the entry script `spark-submit` runs, locally or on EMR
Serverless (which offers no Spark Connect endpoint).

Dagster launches it through a Pipes client and passes everything it needs as Pipes extras (see
`io_managers.spark_pipes.job_extras`): the input Parquet files, the commit's directory, the target
schema, the partition window and the table's Parquet settings. The job reads and transforms the
rows, proves they lie inside the window, writes them with the Spark path's own executor writer and
reports the files (path, rows, partition) back through Pipes. It never touches the catalog: the
Dagster step commits exactly the reported files through the one commit path, so a failed job
commits nothing.
"""

import base64
import datetime as dt
import importlib
from collections.abc import Callable

import pyarrow as pa

FILES_MESSAGE = "lakehouse.files"
PARTITION_TYPES = ("date", "timestamp", "timestamptz")


def encode_schema(schema: pa.Schema) -> str:
    return base64.b64encode(schema.serialize().to_pybytes()).decode()


def decode_schema(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def _slice_and_type(partition: dict | None):
    from pyiceberg.types import DateType, TimestampType, TimestamptzType

    from io_managers.slices import TableSlice

    if not partition:
        return TableSlice(), None
    types = {"date": DateType(), "timestamp": TimestampType(), "timestamptz": TimestamptzType()}
    start, end = (dt.datetime.fromisoformat(partition[bound]) for bound in ("start", "end"))
    window = TableSlice(partition["column"], start, end)
    return window, types[partition["type"]]


def _transform(reference: str | None) -> Callable | None:
    """The step's Spark function, `module:function` taking a DataFrame (and the extras'
    `transform_arguments` as keywords) and returning a DataFrame or (DataFrame, report), shipped
    with the job's code (the product archive on `--py-files`)."""
    if not reference:
        return None
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def _read_inputs(spark, paths: list[str], properties: dict):
    """The input files as one DataFrame, one task a file, read through pyarrow like the Spark path's
    table reads."""
    import pyarrow.parquet as pq
    from pyiceberg.io.pyarrow import PyArrowFileIO

    from io_managers.spark_files import FILE_LIST_SCHEMA, parquet_reader
    from io_managers.spark_frames import _arrow_schema_for, spark_schema_of

    with PyArrowFileIO(properties).new_input(paths[0]).open() as stream:
        schema = spark_schema_of(pq.read_schema(stream))
    files = pa.table({"path": paths}, schema=FILE_LIST_SCHEMA)
    read = parquet_reader(properties, _arrow_schema_for(schema))
    return spark.createDataFrame(files).repartition(len(paths)).mapInArrow(read, schema)


def _inside(frame, window: dict | None):
    """The input's rows of the window only: a partition coarser than the run's slice holds others."""
    if not window:
        return frame
    from io_managers.spark_frames import _window_predicate

    return frame.filter(_window_predicate(*_slice_and_type(window)))


def run_job(spark, extras: dict) -> tuple[list[dict], dict]:
    """The job's work: the written files as (path, rows, partition) and the transform's report,
    nothing committed. A report saying `write: false` (a blocking rule failed) writes no file."""
    from pyiceberg.io.pyarrow import PyArrowFileIO
    from pyspark import StorageLevel

    from io_managers.spark_frames import (
        PARTITION_DIRECTORY_COLUMN,
        _cast_to,
        _count_checking_window,
        partition_value_of,
        spark_schema_of,
        write_frame_files,
    )

    target = decode_schema(extras["target_schema"])
    properties = extras["io_properties"]
    if extras["input_files"]:
        frame = _inside(_read_inputs(spark, extras["input_files"], properties), extras.get("input_window"))
    elif extras.get("input_schema"):
        frame = spark.createDataFrame([], spark_schema_of(decode_schema(extras["input_schema"])))
    else:
        frame = spark.createDataFrame([], spark_schema_of(target))
    transform, report = _transform(extras.get("transform")), {}
    if transform is not None:
        frame = transform(frame, **(extras.get("transform_arguments") or {}))
        if isinstance(frame, tuple):
            frame, report = frame
    if report.get("write") is False:
        return [], report
    table_slice, partition_type = _slice_and_type(extras.get("partition"))
    frame = _cast_to(frame, target).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        _count_checking_window(frame, table_slice, partition_type)
        value = None
        if table_slice.is_partitioned:
            value = partition_value_of(extras["partition"]["transform"], table_slice.partition_column)
        written = write_frame_files(
            frame,
            extras["directory"],
            properties,
            value,
            extras["parquet_options"],
            extras["rows_per_group"],
            PyArrowFileIO(properties),
        )
    finally:
        frame.unpersist()
    marker = f"/{PARTITION_DIRECTORY_COLUMN}="
    files = [
        {
            "path": path,
            "rows": rows,
            "partition": path.split(marker, 1)[1].split("/", 1)[0] if marker in path else None,
        }
        for path, rows in written
    ]
    return files, report


def _context_loader():
    """Where the job finds its Pipes context: a file or the environment (spark-submit here), or an
    S3 object (EMR Serverless, whose parameters are too short for a step's extras)."""
    from dagster_pipes import PipesDefaultContextLoader, PipesEnvVarParamsLoader

    if "bucket" in PipesEnvVarParamsLoader().load_context_params():
        import boto3
        from dagster_pipes import PipesS3ContextLoader

        return PipesS3ContextLoader(client=boto3.client("s3"))
    return PipesDefaultContextLoader()


def main() -> None:
    from dagster_pipes import open_dagster_pipes
    from pyspark.sql import SparkSession

    # Errors inside the block reach Dagster as the Pipes session's closing exception.
    with open_dagster_pipes(context_loader=_context_loader()) as pipes:
        spark = (
            SparkSession.builder.appName(f"lakehouse-{pipes.extras.get('table', 'step')}")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
        try:
            files, report = run_job(spark, pipes.extras)
        finally:
            spark.stop()
        pipes.report_custom_message({"type": FILES_MESSAGE, "files": files, "report": report})
        if report.get("write") is False:
            failed = ", ".join(report.get("failed_error_rules", []))
            pipes.log.warning(f"error rules failed: {failed}; no file written")
            return
        pipes.log.info(f"wrote {len(files)} files, {sum(f['rows'] for f in files)} rows; not committed")


if __name__ == "__main__":
    main()
