"""The one commit path: every write mode ends in a single pyiceberg transaction.

Whatever engine computed the data, the table changes here, atomically: the slice's old rows go
and the new ones arrive in one commit, together with schema evolution and documentation.
"""

import contextlib
import dataclasses
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.exceptions import CommitStateUnknownException
from pyiceberg.expressions import BooleanExpression
from pyiceberg.table import DataScan, Table, TableProperties, Transaction
from pyiceberg.transforms import DayTransform, HourTransform, MonthTransform
from pyiceberg.types import IcebergType
from pyiceberg.utils.concurrent import ExecutorFactory

from io_managers.pairs import PAIR_ROWS_PROPERTY, PairMarker
from io_managers.schema import evolve_and_document, plan_schema
from io_managers.slices import TableSlice

COMMIT_ID_PROPERTY = "lakehouse.commit-id"
RUN_PROPERTY = "lakehouse.run-id"
SLICE_PROPERTY = "lakehouse.slice"
# An upsert's rows of earlier deliveries that it kept: the staging audit counts them from here.
ROWS_KEPT_PROPERTY = "lakehouse.rows-kept"
TIME_TRANSFORMS = (HourTransform, DayTransform, MonthTransform)


class UpsertKeyError(ValueError):
    """An upsert whose incoming rows repeat a key: which of them should win is undefined."""


@dataclass(frozen=True)
class WriteRequest:
    mode: str
    slice: TableSlice
    run_id: str
    primary_key: tuple[str, ...] = ()
    # upsert: the column naming each row's delivery; see `TableSpec.delivery_column`
    delivery_column: str | None = None
    column_docs: Mapping[str, str] | None = None
    properties: Mapping[str, str] | None = None
    # one of two tables a step commits as a pair: the marker every commit of it carries
    pair: PairMarker | None = None


@dataclass(frozen=True)
class CommitResult:
    mode: str
    rows_written: int
    rows_replaced: int
    snapshot_id: int | None
    skipped_reason: str | None = None
    # upsert: rows of earlier deliveries left as they were, and rows withdrawn because the
    # delivery that brought them came again without them
    rows_kept: int = 0
    rows_withdrawn: int = 0


@dataclass(frozen=True)
class UpsertMerge:
    """What became of the rows the slice held when an upsert merged into it."""

    replaced: int = 0
    withdrawn: int = 0
    kept: int = 0

    @property
    def summary(self) -> dict[str, str]:
        return {ROWS_KEPT_PROPERTY: str(self.kept)}


def _already_appended(table: Table, run_id: str, slice_label: str) -> bool:
    return any(
        snapshot.summary is not None
        and snapshot.summary.additional_properties.get(RUN_PROPERTY) == run_id
        and snapshot.summary.additional_properties.get(SLICE_PROPERTY) == slice_label
        for snapshot in table.metadata.snapshots
    )


def _merge_upsert(
    existing: pa.Table, incoming: pa.Table, keys: tuple[str, ...], delivery_column: str | None = None
) -> tuple[pa.Table, UpsertMerge]:
    """Existing rows whose key is not incoming, plus every incoming row; and what became of the
    existing rows.

    With a delivery column, existing rows of a delivery the incoming rows bring again are withdrawn
    too: the new version of a file replaces its old one, so a row the correction removed goes.
    Columns only one side has are kept (filled with nulls on the other), so an upsert never drops
    a column the table holds.
    """
    key_rows = incoming.select(list(keys))
    if key_rows.group_by(list(keys)).aggregate([]).num_rows != key_rows.num_rows:
        raise UpsertKeyError(f"incoming rows repeat the upsert key {list(keys)}; de-duplicate them first")
    if existing.num_rows == 0:
        return incoming, UpsertMerge()
    key_rows = key_rows.cast(existing.select(list(keys)).schema)
    unmatched = existing.join(key_rows, list(keys), join_type="left anti")
    kept = unmatched
    if delivery_column in existing.column_names and delivery_column in incoming.column_names:
        column = unmatched.column(delivery_column)
        redelivered = pc.unique(incoming.column(delivery_column)).cast(column.type)
        # a row without a delivery belongs to none that came again (as Spark's anti join has it)
        again = pc.fill_null(pc.is_in(column, value_set=redelivered, skip_nulls=True), False)
        kept = unmatched.filter(pc.invert(again))
    merged = pa.concat_tables([kept, incoming], promote_options="permissive")
    return merged, UpsertMerge(
        replaced=existing.num_rows - unmatched.num_rows,
        withdrawn=unmatched.num_rows - kept.num_rows,
        kept=kept.num_rows,
    )


def rows_kept_by(table: Table, run_id: str, slice_label: str) -> int | None:
    """The rows of earlier deliveries the run's latest upsert of the slice kept; None when the run
    committed none to it."""
    for snapshot in reversed(table.metadata.snapshots):
        properties = snapshot.summary.additional_properties if snapshot.summary else {}
        if properties.get(RUN_PROPERTY) == run_id and properties.get(SLICE_PROPERTY) == slice_label:
            return int(properties.get(ROWS_KEPT_PROPERTY, 0))
    return None


def snapshot_of_commit(table: Table, commit_id: str) -> int | None:
    for snapshot in reversed(table.metadata.snapshots):
        if snapshot.summary and snapshot.summary.additional_properties.get(COMMIT_ID_PROPERTY) == commit_id:
            return snapshot.snapshot_id
    return None


@dataclass(frozen=True)
class CommitPlan:
    """What both engines settle before writing: schema changes, the slice filter, snapshot properties."""

    request: WriteRequest
    target_schema: pa.Schema
    evolutions: list
    partition_type: IcebergType | None
    row_filter: BooleanExpression
    commit_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # what the data change adds to the snapshot summary (an upsert's kept rows)
    summary: Mapping[str, str] = field(default_factory=dict)

    @property
    def snapshot_properties(self) -> dict[str, str]:
        request = self.request
        return {
            COMMIT_ID_PROPERTY: self.commit_id,
            RUN_PROPERTY: request.run_id,
            SLICE_PROPERTY: request.slice.label,
            **(request.pair.properties(request.slice) if request.pair else {}),
            **self.summary,
        }

    def with_merge(self, merge: UpsertMerge) -> "CommitPlan":
        return dataclasses.replace(self, summary={**self.summary, **merge.summary})

    def with_rows(self, rows: int) -> "CommitPlan":
        """A pair's commit says how many rows it brought (the reader's message quotes them)."""
        if self.request.pair is None:
            return self
        return dataclasses.replace(self, summary={**self.summary, PAIR_ROWS_PROPERTY: str(rows)})


def partition_type_of(table: Table, table_slice: TableSlice) -> IcebergType | None:
    if not table_slice.is_partitioned:
        return None
    return table.schema().find_field(table_slice.partition_column).field_type


def slice_scan(table: Table, table_slice: TableSlice) -> DataScan:
    """The scan of exactly the slice's rows (whole files when the slice is a partition window)."""
    return table.scan(row_filter=table_slice.row_filter(partition_type_of(table, table_slice)))


def plan_commit(table: Table, incoming: pa.Table, request: WriteRequest) -> tuple[CommitPlan, pa.Table]:
    """The plan, and `incoming` cast to the table's types.

    `incoming` is the data, or for an engine that holds it elsewhere an empty table of its schema.
    """
    cast, evolutions = plan_schema(table.schema(), incoming)
    partition_type = partition_type_of(table, request.slice)
    plan = CommitPlan(
        request=request,
        target_schema=cast.schema,
        evolutions=evolutions,
        partition_type=partition_type,
        row_filter=request.slice.row_filter(partition_type),
    )
    return plan, cast


def skip_repeated_append(table: Table, request: WriteRequest) -> CommitResult | None:
    if request.mode == "append" and _already_appended(table, request.run_id, request.slice.label):
        return CommitResult("append", 0, 0, None, skipped_reason="this run already appended this slice")
    return None


def publish(table: Table, plan: CommitPlan, write: Callable[[Transaction], None]) -> int | None:
    """One transaction: additive schema changes, docs and properties, then the engine's data change."""
    request = plan.request
    with warnings.catch_warnings(), table.transaction() as transaction:
        # Overwriting a partition that holds no rows yet is the normal first write, not a problem.
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        evolve_and_document(
            transaction,
            plan.evolutions,
            plan.target_schema,
            request.column_docs or {},
            request.properties or {},
        )
        write(transaction)
    # The transaction's commit has already given `table` the new metadata: no catalog round trip.
    return snapshot_of_commit(table, plan.commit_id)


def replace_with_files(transaction: Transaction, plan: CommitPlan, paths: list[str]) -> None:
    """Commit Parquet files an engine wrote: the slice's rows go, these files arrive.

    The files carry no Iceberg field ids, so readers find their columns through the name mapping.
    A slice of whole partitions (hours, days, months) owns whole files, so pyiceberg's delete
    drops them from the manifests without reading or rewriting any data.
    """
    metadata = transaction.table_metadata
    mapping = metadata.schema().name_mapping.model_dump_json()
    if metadata.properties.get(TableProperties.DEFAULT_NAME_MAPPING) != mapping:
        transaction.set_properties({TableProperties.DEFAULT_NAME_MAPPING: mapping})
    if plan.request.mode != "append":
        transaction.delete(plan.row_filter, snapshot_properties=plan.snapshot_properties)
    if paths:
        # New names under this commit's id: checking them against every file of the table (the
        # default) would read all its manifests for nothing.
        transaction.add_files(
            paths, snapshot_properties=plan.snapshot_properties, check_duplicate_files=False
        )


def plan_data_files(table: Table, data: pa.Table, plan: CommitPlan) -> list[tuple[str, pa.Table]] | None:
    """Where each partition's rows go: one Parquet file per hour, day or month under the table's data
    location.

    pyiceberg's own writer groups every frame by partition first, which costs more than writing
    a frame the slice check has just proved to be one partition. None when pyiceberg must write
    the files instead: the table has another partition layout than one time transform (the ones
    the product creates), or rows without a partition value.
    """
    if data.num_rows == 0:
        # (nothing to write; also, the transforms cannot type a column of no chunks)
        return []
    fields = table.spec().fields
    if not fields:
        return [(f"{_data_directory(table)}/{plan.commit_id}.parquet", data)]
    if len(fields) > 1 or not isinstance(fields[0].transform, TIME_TRANSFORMS):
        return None
    transform = fields[0].transform
    source = table.schema().find_field(fields[0].source_id)
    values = transform.pyarrow_transform(source.field_type)(data.column(source.name))
    if values.null_count:
        return None
    unique = pc.unique(values)
    return [
        (
            f"{_data_directory(table)}/{fields[0].name}="
            f"{transform.to_human_string(source.field_type, value.as_py())}/{plan.commit_id}.parquet",
            data if len(unique) == 1 else data.filter(pc.equal(values, value)),
        )
        for value in unique
    ]


def _data_directory(table: Table) -> str:
    return f"{table.location().rstrip('/')}/data"


def parquet_options(properties: Mapping[str, str]) -> dict:
    """The table's Parquet settings (zstd unless the table says otherwise), as pyarrow's writer takes
    them; the Spark path's executors write with the same."""
    codec = properties.get(TableProperties.PARQUET_COMPRESSION, TableProperties.PARQUET_COMPRESSION_DEFAULT)
    level = properties.get(TableProperties.PARQUET_COMPRESSION_LEVEL)
    return {
        "compression": "none" if codec == "uncompressed" else codec,
        "compression_level": int(level) if level else None,
    }


def row_group_rows(properties: Mapping[str, str]) -> int:
    return int(properties.get(TableProperties.PARQUET_ROW_GROUP_LIMIT, 1 << 20))


def write_data_files(table: Table, files: list[tuple[str, pa.Table]]) -> None:
    """The files, written with the table's Parquet settings."""
    options = parquet_options(table.properties)
    rows_per_group = row_group_rows(table.properties)

    def write(file: tuple[str, pa.Table]) -> None:
        path, rows = file
        with table.io.new_output(path).create() as stream:
            pq.write_table(rows, stream, row_group_size=rows_per_group, **options)

    list(ExecutorFactory.get_or_create().map(write, files))


@contextlib.contextmanager
def removed_unless_committed(remove: Callable[[], None]) -> Iterator[None]:
    """Remove a write's files when its commit failed, so no orphans linger.

    Not when the catalog could not say whether the commit landed: then the files may be the
    table's, and the maintenance job's orphan removal decides once they are old enough.
    """
    try:
        yield
    except CommitStateUnknownException:
        raise
    except BaseException:
        remove()
        raise


def remove_data_files(table: Table, paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError, OSError):
            table.io.delete(path)


def commit(table: Table, data: pa.Table, request: WriteRequest) -> CommitResult:
    """The Arrow (pandas) path: pyarrow writes a Parquet file per day, pyiceberg commits them."""
    skipped = skip_repeated_append(table, request)
    if skipped:
        return skipped
    plan, data = plan_commit(table, data, request)
    if plan.partition_type is not None:
        request.slice.check_rows(data, plan.partition_type)

    plan = plan.with_rows(data.num_rows)
    to_write, merge = data, UpsertMerge()
    if request.mode == "upsert":
        existing = table.scan(row_filter=plan.row_filter).to_arrow()
        to_write, merge = _merge_upsert(existing, data, request.primary_key, request.delivery_column)
        plan = plan.with_merge(merge)

    files = plan_data_files(table, to_write, plan)
    paths = [path for path, _ in files or []]

    def write(transaction: Transaction) -> None:
        if files is not None:
            replace_with_files(transaction, plan, paths)
        elif request.mode == "append":
            transaction.append(to_write, snapshot_properties=plan.snapshot_properties)
        else:
            transaction.overwrite(
                to_write, overwrite_filter=plan.row_filter, snapshot_properties=plan.snapshot_properties
            )

    with removed_unless_committed(lambda: remove_data_files(table, paths)):
        write_data_files(table, files or [])
        snapshot_id = publish(table, plan, write)
    return CommitResult(
        request.mode,
        rows_written=data.num_rows,
        rows_replaced=merge.replaced,
        snapshot_id=snapshot_id,
        rows_kept=merge.kept,
        rows_withdrawn=merge.withdrawn,
    )


def mark_pair(table: Table, request: WriteRequest, skipped: CommitResult) -> CommitResult:
    """A snapshot with the pair's marker and no data change, for a pair's write that commits nothing
    (an append already made or with no rows, an upsert of no rows, an empty overwrite kept): without
    it the partner's newer commit would look like a torn pair."""
    plan, _ = plan_commit(table, table.schema().as_arrow().empty_table(), request)
    plan = plan.with_rows(0)
    with table.transaction() as transaction:
        transaction.update_snapshot(snapshot_properties=plan.snapshot_properties).fast_append().commit()
    return dataclasses.replace(skipped, snapshot_id=snapshot_of_commit(table, plan.commit_id))


def count_rows(table: Table, table_slice: TableSlice) -> int:
    return slice_scan(table, table_slice).count()


def estimate_slice_bytes(table: Table, table_slice: TableSlice) -> tuple[int, int]:
    """Bytes and records of the slice's data files, from Iceberg metadata alone."""
    size = records = 0
    for task in slice_scan(table, table_slice).plan_files():
        size += task.file.file_size_in_bytes
        records += task.file.record_count
    return size, records
