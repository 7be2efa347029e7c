"""The Spark path through the one commit path.

Spark never talks to the catalog: its executors read the Parquet files that pyiceberg's scan
planning selects, and write Parquet files under the table's data location that pyiceberg then
commits (partition delete + add files in one transaction), both through pyarrow's filesystems
(`io_managers.spark_files`). Spark therefore needs no Iceberg runtime jar and no Hadoop S3
connector, and works the same locally, on a cluster or over Spark Connect.
"""

import contextlib

import pyarrow as pa
import pyarrow.fs as pafs
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.table import Table
from pyiceberg.transforms import HourTransform, MonthTransform

from io_managers.commit import (
    CommitPlan,
    CommitResult,
    UpsertKeyError,
    UpsertMerge,
    WriteRequest,
    parquet_options,
    partition_type_of,
    plan_commit,
    publish,
    removed_unless_committed,
    replace_with_files,
    row_group_rows,
    skip_repeated_append,
    slice_scan,
)
from io_managers.empty_input import empty_input_outcome
from io_managers.slices import PartitionWindowError, TableSlice
from io_managers.spark_files import (
    FILE_LIST_SCHEMA,
    WRITTEN_SCHEMA,
    executor_io_properties,
    parquet_reader,
    parquet_writer,
)

PARTITION_DIRECTORY_COLUMN = "__lakehouse_partition"


def spark_schema_of(arrow_schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(arrow_schema)


def arrow_schema_of(frame) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = to_arrow_schema(frame.schema, timezone="UTC")
    # Spark's TimestampType is an instant (Iceberg timestamptz); TimestampNTZType is local time.
    return pa.schema(
        [
            pa.field(
                f.name,
                pa.timestamp("us", tz="UTC") if pa.types.is_timestamp(f.type) and f.type.tz else f.type,
            )
            for f in schema
        ]
    )


def _window_predicate(table_slice: TableSlice, partition_type):
    from pyspark.sql import functions as F

    start, end = table_slice.bounds_for(partition_type)
    column = F.col(table_slice.partition_column)
    return (column >= F.lit(start)) & (column < F.lit(end))


def read_slice(spark, table: Table, table_slice: TableSlice):
    """The slice as a Spark DataFrame, from the data files pyiceberg plans for it (one task a file)."""
    tasks = list(slice_scan(table, table_slice).plan_files())
    schema = spark_schema_of(table.schema().as_arrow())
    if any(task.delete_files for task in tasks):
        raise NotImplementedError(
            f"{'.'.join(table.name())} has delete files; the Spark path reads copy-on-write tables"
        )
    if not tasks:
        return spark.createDataFrame([], schema)
    files = pa.table({"path": [task.file.file_path for task in tasks]}, schema=FILE_LIST_SCHEMA)
    # Columns added after a file was written read as nulls, in the table's order and types.
    expected = _arrow_schema_for(schema)
    read = parquet_reader(executor_io_properties(table.io.properties), expected)
    frame = spark.createDataFrame(files).repartition(len(tasks)).mapInArrow(read, schema)
    if table_slice.is_partitioned:
        frame = frame.filter(_window_predicate(table_slice, partition_type_of(table, table_slice)))
    return frame


def _arrow_schema_for(spark_schema) -> pa.Schema:
    """The Arrow batches Spark expects of a `mapInArrow` returning `spark_schema` (UTC session)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(spark_schema, timezone="UTC")


def _cast_to(frame, target: pa.Schema):
    from pyspark.sql import functions as F

    spark_types = {field.name: field.dataType for field in spark_schema_of(target).fields}
    return frame.select(*(F.col(name).cast(spark_types[name]).alias(name) for name in target.names))


def _count_checking_window(frame, table_slice: TableSlice, partition_type) -> int:
    """The frame's rows, counted in the same pass that proves they all lie inside the partition."""
    from pyspark.sql import functions as F

    if partition_type is None:
        return frame.count()
    inside = F.coalesce(_window_predicate(table_slice, partition_type), F.lit(False))
    counts = frame.agg(
        F.count(F.lit(1)).alias("rows"), F.sum((~inside).cast("long")).alias("outside")
    ).first()
    if counts["outside"]:
        raise PartitionWindowError(
            f"{counts['outside']} rows have no {table_slice.partition_column!r} or lie outside the partition "
            f"{table_slice.label}; nothing was written"
        )
    return counts["rows"]


def _merge_upsert(existing, incoming, keys: tuple[str, ...], delivery_column: str | None = None):
    """As `commit._merge_upsert`: the merged frame, and the existing rows not matched by key and
    those of them kept (not of a delivery the incoming rows bring again)."""
    from pyspark.sql import functions as F

    repeated = incoming.groupBy(*keys).count().filter(F.col("count") > 1).limit(1).count()
    if repeated:
        raise UpsertKeyError(f"incoming rows repeat the upsert key {list(keys)}; de-duplicate them first")
    unmatched = existing.join(incoming.select(*keys), on=list(keys), how="left_anti")
    kept = unmatched
    if delivery_column in existing.columns and delivery_column in incoming.columns:
        redelivered = incoming.select(delivery_column).distinct()
        kept = unmatched.join(redelivered, on=delivery_column, how="left_anti")
    return kept.unionByName(incoming, allowMissingColumns=True), unmatched, kept


def commit_directory(table: Table, commit_id: str) -> str:
    return f"{table.location().rstrip('/')}/data/spark-{commit_id}"


def _partition_value(table: Table, column: str):
    """The partition a row lies in, as the table's transform has it (the session's time zone is UTC)."""
    fields = table.spec().fields
    transform = fields[0].transform if len(fields) == 1 else None
    return partition_value_of(transform_name(transform), column)


def transform_name(transform) -> str:
    """The table's time transform by name ("hour", "day", "month"), as a job outside the Dagster
    process is told it."""
    if isinstance(transform, HourTransform):
        return "hour"
    if isinstance(transform, MonthTransform):
        return "month"
    return "day"


def partition_value_of(transform: str, column: str):
    """A row's partition value under the named time transform, as its directory names it."""
    from pyspark.sql import functions as F

    if transform == "hour":
        return F.date_format(F.date_trunc("hour", F.col(column)), "yyyy-MM-dd-HH")
    if transform == "month":
        return F.date_format(F.col(column), "yyyy-MM")
    return F.date_format(F.col(column), "yyyy-MM-dd")


def _write_files(frame, directory: str, table: Table, table_slice: TableSlice) -> list[str]:
    """Parquet files under the table's data location, each holding a single partition value,
    written by the executors; the paths of exactly the files the job's successful tasks wrote."""
    value = _partition_value(table, table_slice.partition_column) if table_slice.is_partitioned else None
    written = write_frame_files(
        frame,
        directory,
        executor_io_properties(table.io.properties),
        value,
        parquet_options(table.properties),
        row_group_rows(table.properties),
        PyArrowFileIO(table.io.properties),
    )
    return [path for path, _ in written]


def write_frame_files(
    frame, directory: str, io_properties: dict, value, options: dict, rows_per_group: int, io
) -> list[tuple[str, int]]:
    """The frame as Parquet files under `directory`, one partition `value` (a column expression, or
    None) per file, written by the executors through `io_properties`; (path, rows) of exactly the
    files the job's successful tasks wrote, anything else under `directory` removed through `io`."""
    partition_column = None
    if value is not None:
        # A copy of the partition value names the directory and sends each partition to one task;
        # the column itself stays in the file, so pyiceberg derives each file's partition value
        # from its statistics.
        partition_column = PARTITION_DIRECTORY_COLUMN
        frame = (
            frame.withColumn(partition_column, value)
            .repartition(partition_column)
            .sortWithinPartitions(partition_column)
        )
    write = parquet_writer(directory, io_properties, partition_column, options, rows_per_group)
    written = frame.mapInArrow(write, spark_schema_of(WRITTEN_SCHEMA)).toArrow()
    files = sorted((path, rows) for path, rows in zip(*written.to_pydict().values(), strict=True) if rows)
    _remove_all_but(directory, [path for path, _ in files], io)
    return files


def _remove_all_but(directory: str, files: list[str], io: PyArrowFileIO) -> None:
    """What failed or duplicate task attempts left beside the files the job returned, and files of
    no rows."""
    scheme, netloc, root = PyArrowFileIO.parse_location(directory)
    filesystem = io.fs_by_scheme(scheme, netloc)
    keep = {PyArrowFileIO.parse_location(file)[2] for file in files}
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(root, recursive=True))
    except FileNotFoundError:
        return
    for info in infos:
        if info.is_file and info.path not in keep:
            with contextlib.suppress(FileNotFoundError):
                filesystem.delete_file(info.path)


def _filesystem(directory: str, table: Table):
    io = PyArrowFileIO(table.io.properties)
    scheme, netloc, path = PyArrowFileIO.parse_location(directory)
    return io.fs_by_scheme(scheme, netloc), path


def remove_directory(directory: str, table: Table) -> None:
    """Everything a failed write or commit left under its own directory (tasks may have written parts)."""
    filesystem, root = _filesystem(directory, table)
    with contextlib.suppress(FileNotFoundError):
        filesystem.delete_dir(root)


def commit_spark(table: Table, frame, request: WriteRequest) -> CommitResult:
    """The Spark path: the same plan and publish steps as Arrow, with files Spark wrote."""
    skipped = skip_repeated_append(table, request)
    if skipped:
        return skipped
    from pyspark import StorageLevel

    incoming_schema = arrow_schema_of(frame)
    plan, _ = plan_commit(table, incoming_schema.empty_table(), request)
    # Checked, counted and written: computed once (spilling to disk when large), not three times.
    frame = _cast_to(frame, plan.target_schema).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        return _commit_persisted(table, frame, request, plan)
    finally:
        frame.unpersist()


def _commit_persisted(table: Table, frame, request: WriteRequest, plan: CommitPlan) -> CommitResult:
    rows = _count_checking_window(frame, request.slice, plan.partition_type)
    # no rows: the same stated outcome per write mode as on the Arrow path (no commit for an upsert)
    if rows == 0 and (skipped := empty_input_outcome(request, pa.table({}), table.properties)):
        return skipped
    plan = plan.with_rows(rows)
    to_write, merge = frame, UpsertMerge()
    if request.mode == "upsert":
        existing = read_slice(frame.sparkSession, table, request.slice)
        to_write, unmatched, kept = _merge_upsert(
            existing, frame, request.primary_key, request.delivery_column
        )
        unmatched_rows = unmatched.count()
        kept_rows = kept.count() if request.delivery_column else unmatched_rows
        merge = UpsertMerge(
            replaced=existing.count() - unmatched_rows,
            withdrawn=unmatched_rows - kept_rows,
            kept=kept_rows,
        )
        plan = plan.with_merge(merge)

    directory = commit_directory(table, plan.commit_id)

    # Parts a failed Spark job wrote, or files of a failed commit, must not linger as orphans.
    with removed_unless_committed(lambda: remove_directory(directory, table)):
        files = _write_files(to_write, directory, table, request.slice)
        snapshot_id = publish(table, plan, lambda transaction: replace_with_files(transaction, plan, files))
    return CommitResult(
        request.mode,
        rows_written=rows,
        rows_replaced=merge.replaced,
        snapshot_id=snapshot_id,
        rows_kept=merge.kept,
        rows_withdrawn=merge.withdrawn,
    )


def to_spark(spark, data: pa.Table):
    """A small Arrow table (e.g. a reference lookup) joined into a Spark computation."""
    if data.num_rows == 0:
        return spark.createDataFrame([], spark_schema_of(data.schema))
    return spark.createDataFrame(data)
