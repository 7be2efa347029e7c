"""The one commit path: every write mode ends in a single pyiceberg transaction.

Whatever engine computed the data, the table changes here, atomically: the slice's old rows go
and the new ones arrive in one commit, together with schema evolution and documentation.
"""

import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa
from pyiceberg.expressions import BooleanExpression
from pyiceberg.table import DataScan, Table, Transaction
from pyiceberg.types import IcebergType

from io_managers.slices import TableSlice
from io_managers.tables import evolve_and_document, plan_schema

COMMIT_ID_PROPERTY = "lakehouse.commit-id"
RUN_PROPERTY = "lakehouse.run-id"
SLICE_PROPERTY = "lakehouse.slice"


class UpsertKeyError(ValueError):
    """An upsert whose incoming rows repeat a key: which of them should win is undefined."""


@dataclass(frozen=True)
class WriteRequest:
    mode: str
    slice: TableSlice
    run_id: str
    primary_key: tuple[str, ...] = ()
    column_docs: Mapping[str, str] | None = None
    properties: Mapping[str, str] | None = None


@dataclass(frozen=True)
class CommitResult:
    mode: str
    rows_written: int
    rows_replaced: int
    snapshot_id: int | None
    skipped_reason: str | None = None


def _already_appended(table: Table, run_id: str, slice_label: str) -> bool:
    return any(
        snapshot.summary is not None
        and snapshot.summary.additional_properties.get(RUN_PROPERTY) == run_id
        and snapshot.summary.additional_properties.get(SLICE_PROPERTY) == slice_label
        for snapshot in table.metadata.snapshots
    )


def _merge_upsert(existing: pa.Table, incoming: pa.Table, keys: tuple[str, ...]) -> tuple[pa.Table, int]:
    """Existing rows whose key is not incoming, plus every incoming row; and how many were replaced.

    Columns only one side has are kept (filled with nulls on the other), so an upsert never drops
    a column the table holds.
    """
    key_rows = incoming.select(list(keys))
    if key_rows.group_by(list(keys)).aggregate([]).num_rows != key_rows.num_rows:
        raise UpsertKeyError(f"incoming rows repeat the upsert key {list(keys)}; de-duplicate them first")
    if existing.num_rows == 0:
        return incoming, 0
    key_rows = key_rows.cast(existing.select(list(keys)).schema)
    kept = existing.join(key_rows, list(keys), join_type="left anti")
    merged = pa.concat_tables([kept, incoming], promote_options="permissive")
    return merged, existing.num_rows - kept.num_rows


def _snapshot_of(table: Table, commit_id: str) -> int | None:
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

    @property
    def snapshot_properties(self) -> dict[str, str]:
        return {
            COMMIT_ID_PROPERTY: self.commit_id,
            RUN_PROPERTY: self.request.run_id,
            SLICE_PROPERTY: self.request.slice.label,
        }


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
    table.refresh()
    return _snapshot_of(table, plan.commit_id)


def commit(table: Table, data: pa.Table, request: WriteRequest) -> CommitResult:
    """The Arrow (pandas) path: pyiceberg writes the Parquet files itself."""
    skipped = skip_repeated_append(table, request)
    if skipped:
        return skipped
    plan, data = plan_commit(table, data, request)
    if plan.partition_type is not None:
        request.slice.check_rows(data, plan.partition_type)

    to_write, replaced = data, 0
    if request.mode == "upsert":
        existing = table.scan(row_filter=plan.row_filter).to_arrow()
        to_write, replaced = _merge_upsert(existing, data, request.primary_key)

    def write(transaction: Transaction) -> None:
        if request.mode == "append":
            transaction.append(to_write, snapshot_properties=plan.snapshot_properties)
        else:
            transaction.overwrite(
                to_write, overwrite_filter=plan.row_filter, snapshot_properties=plan.snapshot_properties
            )

    snapshot_id = publish(table, plan, write)
    return CommitResult(
        request.mode, rows_written=data.num_rows, rows_replaced=replaced, snapshot_id=snapshot_id
    )


def count_rows(table: Table, table_slice: TableSlice) -> int:
    return slice_scan(table, table_slice).count()


def estimate_slice_bytes(table: Table, table_slice: TableSlice) -> tuple[int, int]:
    """Bytes and records of the slice's data files, from Iceberg metadata alone."""
    size = records = 0
    for task in slice_scan(table, table_slice).plan_files():
        size += task.file.file_size_in_bytes
        records += task.file.record_count
    return size, records
