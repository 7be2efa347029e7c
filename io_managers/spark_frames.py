"""The Spark path through the one commit path.

Spark never talks to the catalog: its executors read the Parquet files that pyiceberg's scan
planning selects, and write Parquet files under the table's data location that pyiceberg then
commits (partition delete + add files in one transaction), both through pyarrow's filesystems
(`io_managers.spark_files`). Spark therefore needs no Iceberg runtime jar and no Hadoop S3
connector, and works the same locally, on a cluster or over Spark Connect.
"""

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

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
    preview_of,
)

PARTITION_DIRECTORY_COLUMN = "__lakehouse_partition"
OUTSIDE_COLUMN = "__lakehouse_outside"
# the rows of a write's preview (the IO manager's `preview` metadata)
PREVIEW_ROWS = 5


@dataclass(frozen=True)
class WrittenFiles:
    """What one writing job returned: (path, rows) of each file, the rows it found outside the
    partition (not written), and the first rows written."""

    files: list[tuple[str, int]]
    outside: int = 0
    preview: pa.Table | None = None

    @property
    def rows(self) -> int:
        return sum(rows for _, rows in self.files)


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
    """As `commit._merge_upsert`: the merged frame, the existing rows not replaced by key (and, when
    the rows name their delivery, not of a delivery the incoming rows bring again) with the incoming
    rows. The incoming keys are known not to repeat (`_upsert_counts`)."""
    kept = existing.join(incoming.select(*keys), on=list(keys), how="left_anti")
    if delivery_column in existing.columns and delivery_column in incoming.columns:
        redelivered = incoming.select(delivery_column).distinct()
        kept = kept.join(redelivered, on=delivery_column, how="left_anti")
    return kept.unionByName(incoming, allowMissingColumns=True)


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


def _outside_flag(table_slice: TableSlice, partition_type):
    """True for a row the slice does not own (no partition value, or one outside the window)."""
    from pyspark.sql import functions as F

    return ~F.coalesce(_window_predicate(table_slice, partition_type), F.lit(False))


def _write_files(
    frame, directory: str, table: Table, table_slice: TableSlice, partition_type
) -> WrittenFiles:
    """Parquet files under the table's data location, each holding a single partition value,
    written by the executors in one job, which also counts the rows outside the slice and keeps
    a preview; exactly the files the job's successful tasks wrote."""
    value = _partition_value(table, table_slice.partition_column) if table_slice.is_partitioned else None
    outside = _outside_flag(table_slice, partition_type) if partition_type is not None else None
    return write_checked_files(
        frame,
        directory,
        executor_io_properties(table.io.properties),
        value,
        parquet_options(table.properties),
        row_group_rows(table.properties),
        PyArrowFileIO(table.io.properties),
        outside=outside,
        preview_rows=PREVIEW_ROWS,
    )


def write_frame_files(
    frame, directory: str, io_properties: dict, value, options: dict, rows_per_group: int, io
) -> list[tuple[str, int]]:
    """The frame as Parquet files under `directory`, one partition `value` (a column expression, or
    None) per file, written by the executors through `io_properties`; (path, rows) of exactly the
    files the job's successful tasks wrote, anything else under `directory` removed through `io`."""
    return write_checked_files(frame, directory, io_properties, value, options, rows_per_group, io).files


def write_checked_files(
    frame,
    directory: str,
    io_properties: dict,
    value,
    options: dict,
    rows_per_group: int,
    io,
    outside=None,
    preview_rows: int = 0,
) -> WrittenFiles:
    """As `write_frame_files`, in the same one job: the rows for which the column expression
    `outside` is true are counted and not written, and the first `preview_rows` rows come back."""
    partition_column = None
    if outside is not None:
        frame = frame.withColumn(OUTSIDE_COLUMN, outside)
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
    write = parquet_writer(
        directory,
        io_properties,
        partition_column,
        options,
        rows_per_group,
        OUTSIDE_COLUMN if outside is not None else None,
        preview_rows,
    )
    written = frame.mapInArrow(write, spark_schema_of(WRITTEN_SCHEMA)).toArrow()
    files = sorted(
        (path, rows)
        for path, rows in zip(
            written.column("path").to_pylist(), written.column("rows").to_pylist(), strict=True
        )
        if path is not None and rows
    )
    _remove_all_but(directory, [path for path, _ in files], io)
    outside_rows = sum(written.column("outside").fill_null(0).to_pylist())
    return WrittenFiles(files, outside_rows, preview_of(written))


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


def commit_spark(
    table: Table,
    frame,
    request: WriteRequest,
    preview: Callable[[pa.Table], None] | None = None,
) -> CommitResult:
    """The Spark path: the same plan and publish steps as Arrow, with files Spark wrote.

    An overwrite or append is one Spark job: the writing pass itself counts the rows (from the
    files written), finds rows outside the partition (then nothing is committed and the files are
    removed) and keeps the first rows for `preview`. An upsert computes its merge counts first.
    """
    skipped = skip_repeated_append(table, request)
    if skipped:
        return skipped
    incoming_schema = arrow_schema_of(frame)
    plan, _ = plan_commit(table, incoming_schema.empty_table(), request)
    frame = _cast_to(frame, plan.target_schema)
    if request.mode == "upsert":
        return _commit_upsert(table, frame, request, plan, preview)
    directory = commit_directory(table, plan.commit_id)
    with removed_unless_committed(lambda: remove_directory(directory, table)):
        written = _write_files(frame, directory, table, request.slice, plan.partition_type)
        _refuse_outside(written.outside, request.slice)
        rows = written.rows
        # no rows: the same stated outcome per write mode as on the Arrow path
        if rows == 0 and (skipped := empty_input_outcome(request, pa.table({}), table.properties)):
            remove_directory(directory, table)
            return skipped
        plan = plan.with_rows(rows)
        files = [path for path, _ in written.files]
        snapshot_id = publish(table, plan, lambda transaction: replace_with_files(transaction, plan, files))
    if preview is not None and written.preview is not None:
        preview(written.preview)
    return CommitResult(request.mode, rows_written=rows, rows_replaced=0, snapshot_id=snapshot_id)


def _refuse_outside(outside: int, table_slice: TableSlice) -> None:
    if outside:
        raise PartitionWindowError(
            f"{outside} rows have no {table_slice.partition_column!r} or lie outside the partition "
            f"{table_slice.label}; nothing was written"
        )


def _upsert_counts(frame, keys: tuple[str, ...], table_slice: TableSlice, partition_type) -> tuple[int, int]:
    """The incoming rows, in one job that also refuses rows outside the partition and repeated keys."""
    from pyspark.sql import functions as F

    outside = _outside_flag(table_slice, partition_type) if partition_type is not None else F.lit(False)
    per_key = frame.groupBy(*keys).agg(
        F.count(F.lit(1)).alias("rows"), F.sum(outside.cast("long")).alias("outside")
    )
    counts = per_key.agg(
        F.sum("rows").alias("rows"), F.max("rows").alias("most"), F.sum("outside").alias("outside")
    ).first()
    _refuse_outside(counts["outside"] or 0, table_slice)
    if (counts["most"] or 0) > 1:
        raise UpsertKeyError(f"incoming rows repeat the upsert key {list(keys)}; de-duplicate them first")
    return counts["rows"] or 0, counts["most"] or 0


def _merge_counts(existing, incoming, keys: tuple[str, ...], delivery_column: str | None) -> UpsertMerge:
    """The existing rows replaced, withdrawn (of a delivery the incoming rows bring again) and
    kept, counted in one job."""
    from pyspark.sql import functions as F

    matched = incoming.select(*keys).withColumn("__matched", F.lit(True))
    flagged = existing.join(matched, on=list(keys), how="left")
    unmatched = F.col("__matched").isNull()
    kept = unmatched
    if delivery_column in existing.columns and delivery_column in incoming.columns:
        redelivered = incoming.select(delivery_column).distinct().withColumn("__redelivered", F.lit(True))
        flagged = flagged.join(redelivered, on=delivery_column, how="left")
        kept = unmatched & F.col("__redelivered").isNull()
    counts = flagged.agg(
        F.count(F.lit(1)).alias("existing"),
        F.sum(unmatched.cast("long")).alias("unmatched"),
        F.sum(kept.cast("long")).alias("kept"),
    ).first()
    existing_rows, unmatched_rows, kept_rows = (
        counts[name] or 0 for name in ("existing", "unmatched", "kept")
    )
    return UpsertMerge(
        replaced=existing_rows - unmatched_rows, withdrawn=unmatched_rows - kept_rows, kept=kept_rows
    )


def _commit_upsert(
    table: Table, frame, request: WriteRequest, plan: CommitPlan, preview: Callable[[pa.Table], None] | None
) -> CommitResult:
    from pyspark import StorageLevel

    # Counted, merged and written: computed once (spilling to disk when large), not three times.
    frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        rows, _ = _upsert_counts(frame, request.primary_key, request.slice, plan.partition_type)
        # no rows: nothing to insert or replace, no commit (as on the Arrow path)
        if rows == 0 and (skipped := empty_input_outcome(request, pa.table({}), table.properties)):
            return skipped
        plan = plan.with_rows(rows)
        existing = read_slice(frame.sparkSession, table, request.slice)
        to_write = _merge_upsert(existing, frame, request.primary_key, request.delivery_column)
        merge = _merge_counts(existing, frame, request.primary_key, request.delivery_column)
        plan = plan.with_merge(merge)
        directory = commit_directory(table, plan.commit_id)
        # Parts a failed Spark job wrote, or files of a failed commit, must not linger as orphans.
        with removed_unless_committed(lambda: remove_directory(directory, table)):
            written = _write_files(to_write, directory, table, request.slice, None)
            files = [path for path, _ in written.files]
            snapshot_id = publish(
                table, plan, lambda transaction: replace_with_files(transaction, plan, files)
            )
    finally:
        frame.unpersist()
    if preview is not None and written.preview is not None:
        preview(written.preview)
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
