"""The Spark path's Parquet files, read and written by the executors through pyarrow.

Spark's own readers and writers go through Hadoop's filesystems, and the PySpark wheel has no S3
one (hadoop-aws cannot be installed here; clusters name S3 `s3://`, `s3a://` or not at all). So the
executors open the warehouse with pyiceberg's pyarrow FileIO instead, inside `mapInArrow`: the same
filesystems (local, S3, GCS, ADLS, HDFS) and settings that pyiceberg uses on the driver. A write
returns each file's path and rows to the driver, which commits exactly those files; a read gets
the files pyiceberg planned. One path for every warehouse, in process, on a cluster or over Spark
Connect.

The executors are handed the FileIO's properties without credentials: each authenticates with its
own default chain (an instance role, the AWS_* variables), as a cluster's workers do.
"""

import uuid
from collections.abc import Callable, Iterator, Mapping

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# one row per file written (path, rows), and one summary row per task (no path): the rows it did not
# write because they lie outside the partition, its number, and the first rows it wrote (Arrow IPC)
WRITTEN_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("rows", pa.int64()),
        ("outside", pa.int64()),
        ("task", pa.int64()),
        ("preview", pa.binary()),
    ]
)
FILE_LIST_SCHEMA = pa.schema([("path", pa.string())])
# properties that may hold a secret never leave the driver
SECRET_MARKERS = ("key", "secret", "token", "password", "sas", "credential")
STORAGE_PREFIXES = ("s3.", "gcs.", "adls.", "hdfs.", "oss.", "client.")
READ_BATCH_ROWS = 64 * 1024


def executor_io_properties(properties: Mapping[str, str]) -> dict[str, str]:
    """The storage settings (endpoint, region, ...) of a FileIO, without its secrets or catalog URI."""
    return {
        name: value
        for name, value in properties.items()
        if name.startswith(STORAGE_PREFIXES) and not any(marker in name for marker in SECRET_MARKERS)
    }


def _file_io(properties: dict[str, str]):
    from pyiceberg.io.pyarrow import PyArrowFileIO

    return PyArrowFileIO(properties)


def _runs(batch: pa.RecordBatch, column: str | None) -> Iterator[tuple[str | None, pa.RecordBatch]]:
    """The batch's consecutive rows of one value of `column` (the batch is sorted by it)."""
    if column is None:
        yield None, batch
        return
    offset = 0
    for count in pc.value_counts(batch.column(column)).field("counts").to_pylist():
        part = batch.slice(offset, count)
        yield part.column(column)[0].as_py(), part.drop_columns([column])
        offset += count


def _task_number() -> int:
    from pyspark import TaskContext

    context = TaskContext.get()
    return context.partitionId() if context is not None else 0


def _ipc_bytes(batches: list[pa.RecordBatch], schema: pa.Schema) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as stream:
        for batch in batches:
            stream.write_batch(batch)
    return sink.getvalue().to_pybytes()


def preview_of(written: pa.Table) -> pa.Table | None:
    """The rows the lowest-numbered task that wrote any kept aside (`parquet_writer`'s preview)."""
    summaries = [
        row for row in written.filter(pc.is_null(written.column("path"))).to_pylist() if row["preview"]
    ]
    if not summaries:
        return None
    first = min(summaries, key=lambda row: row["task"])
    return pa.ipc.open_stream(first["preview"]).read_all()


def parquet_writer(
    directory: str,
    properties: dict[str, str],
    partition_column: str | None,
    options: dict,
    rows_per_group: int,
    outside_column: str | None = None,
    preview_rows: int = 0,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A `mapInArrow` function: its task's rows as Parquet files under `directory`, one file per
    value of `partition_column` (the rows arrive sorted by it, so one file is open at a time), and
    one row per file written (path, rows) for the driver to commit.

    The same pass answers what the driver would otherwise ask in jobs of its own: rows flagged by
    `outside_column` (true: outside the partition being written) are counted and not written, and
    the task's first `preview_rows` written rows come back, in one summary row of no path.
    """

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        io = _file_io(properties)
        task = uuid.uuid4().hex
        written: list[dict] = []
        writer, stream, current = None, None, object()
        outside, preview, previewed, schema = 0, [], 0, None

        def close() -> None:
            if writer is not None:
                writer.close()
                stream.close()

        try:
            for batch in batches:
                if outside_column is not None:
                    flags = pc.fill_null(batch.column(outside_column), True)
                    outside += pc.sum(flags.cast(pa.int64())).as_py() or 0
                    batch = batch.filter(pc.invert(flags)).drop_columns([outside_column])
                for value, rows in _runs(batch, partition_column):
                    if writer is None or value != current:
                        close()
                        folder = directory if value is None else f"{directory}/{partition_column}={value}"
                        path = f"{folder}/{task}-{len(written):05d}.parquet"
                        stream = io.new_output(path).create(overwrite=True)
                        writer = pq.ParquetWriter(stream, rows.schema, **options)
                        written.append({"path": path, "rows": 0})
                        current = value
                    writer.write_batch(rows, row_group_size=rows_per_group)
                    written[-1]["rows"] += rows.num_rows
                    if previewed < preview_rows and rows.num_rows:
                        preview.append(rows.slice(0, preview_rows - previewed))
                        previewed += preview[-1].num_rows
                        schema = rows.schema
        finally:
            close()
        summary = {"path": None, "rows": 0, "outside": outside, "task": _task_number(), "preview": None}
        if preview:
            summary["preview"] = _ipc_bytes(preview, schema)
        yield pa.RecordBatch.from_pylist([*written, summary], schema=WRITTEN_SCHEMA)

    return write


def _conformed(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch in the table's columns and types: columns added after the file was written are nulls."""
    columns = [
        batch.column(field.name).cast(field.type)
        if field.name in batch.schema.names
        else pa.nulls(batch.num_rows, field.type)
        for field in schema
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def parquet_reader(
    properties: dict[str, str], schema: pa.Schema
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A `mapInArrow` function over a list of Parquet files: their rows in `schema`, by column name."""

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        io = _file_io(properties)
        for batch in batches:
            for path in batch.column("path").to_pylist():
                with io.new_input(path).open() as stream:
                    parquet = pq.ParquetFile(stream)
                    present = [name for name in schema.names if name in parquet.schema_arrow.names]
                    for rows in parquet.iter_batches(batch_size=READ_BATCH_ROWS, columns=present):
                        yield _conformed(rows, schema)

    return read
