"""Landing and raw on Spark, with the very functions the pandas path uses.

Spark distributes the work; each task runs `read_landed_file` on one file, or `type_landing_rows`
on one Arrow batch, through `mapInArrow`. So lineage, line numbers, error messages and quarantine
are identical on both engines by construction, and no task holds more than one file or batch.
"""

import datetime as dt
import functools
from collections.abc import Callable, Iterator

import dagster as dg
import pyarrow as pa

from lakehouse_assets.contracts.contract import DatasetContract
from lakehouse_assets.layers.landing import empty_landing_table, read_landed_file
from lakehouse_assets.layers.raw import type_landing_rows
from resources.landing.local import LandedFile
from resources.spark.session import spark_job_tags

FILE_LIST_SCHEMA = pa.schema([("key", pa.string()), ("size", pa.int64()), ("checksum", pa.string())])
RUN_TAG = "dagster-run-{run_id}"
STEP_TAG = "dagster-step-{run_id}-{step}-{partition}"


def step_tags(context: dg.AssetExecutionContext) -> tuple[str, ...]:
    """The Spark job tags of a step: its run, and the run's step and partition (or range); none
    for a body invoked directly, outside a run."""
    try:
        run_id, step = context.run_id, context.op.name
        partition = "all"
        if context.has_partition_key_range:
            keys = context.partition_key_range
            partition = keys.start if keys.start == keys.end else f"{keys.start}..{keys.end}"
        elif context.has_partition_key:
            partition = context.partition_key
    except dg.DagsterError:  # a direct invocation has no op, and no run to tag
        return ()
    return RUN_TAG.format(run_id=run_id), STEP_TAG.format(run_id=run_id, step=step, partition=partition)


def tags_spark_jobs(materialize: Callable[..., Iterator]) -> Callable[..., Iterator]:
    """Every Spark job of the step (its own and its IO manager's commits, which run while the step
    waits at a `yield`) carries the step's tags (`step_tags`): `interruptTag` with one of them
    cancels the run's or the step's Spark work, and the server's event log names each job's step."""

    @functools.wraps(materialize)
    def tagged_step(step, *args, **kwargs) -> Iterator:
        with spark_job_tags(*step_tags(step.context)):
            yield from materialize(step, *args, **kwargs)

    return tagged_step


def landing_on_spark(
    spark,
    files: list[LandedFile],
    read_bytes: Callable[[str], bytes],
    contract: DatasetContract,
    loaded_at: dt.datetime,
):
    """One Spark task per file; `read_bytes` must be picklable (it runs on the executors)."""
    from io_managers.spark_frames import spark_schema_of

    schema = empty_landing_table(contract).schema
    listing = pa.table(
        {
            "key": [file.key for file in files],
            "size": [file.size for file in files],
            "checksum": [file.checksum for file in files],
        },
        schema=FILE_LIST_SCHEMA,
    )

    def read_files(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for row in batch.to_pylist():
                file = LandedFile(**row)
                yield from read_landed_file(read_bytes(file.key), file, contract, loaded_at).to_batches()

    file_frame = spark.createDataFrame(listing).repartition(max(1, len(files)))
    return file_frame.mapInArrow(read_files, spark_schema_of(schema))


def _typed_batches(contract: DatasetContract, part: str):
    def convert(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            result = type_landing_rows(pa.Table.from_batches([batch]), contract)
            yield from getattr(result, part).to_batches()

    return convert


def raw_on_spark(landing, contract: DatasetContract):
    """Typed rows and rejects as two Spark frames; each task types one Arrow batch of landing rows."""
    from io_managers.spark_frames import spark_schema_of

    empty = type_landing_rows(empty_landing_table(contract), contract)
    typed = landing.mapInArrow(_typed_batches(contract, "typed"), spark_schema_of(empty.typed.schema))
    rejects = landing.mapInArrow(_typed_batches(contract, "rejects"), spark_schema_of(empty.rejects.schema))
    return typed, rejects
