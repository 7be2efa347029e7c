"""The one commit path: every write mode ends in a single pyiceberg transaction.

Whatever engine computed the data, the table changes here, atomically: the slice's old rows go
and the new ones arrive in one commit, together with schema evolution and documentation.
"""

import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.table import Table

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


def commit(table: Table, data: pa.Table, request: WriteRequest) -> CommitResult:
    schema = table.schema()
    partition_type = (
        schema.find_field(request.slice.partition_column).field_type if request.slice.is_partitioned else None
    )
    data, evolutions = plan_schema(schema, data)
    if partition_type is not None:
        request.slice.check_rows(data, partition_type)
    row_filter = request.slice.row_filter(partition_type)
    commit_id = str(uuid.uuid4())
    snapshot_properties = {
        COMMIT_ID_PROPERTY: commit_id,
        RUN_PROPERTY: request.run_id,
        SLICE_PROPERTY: request.slice.label,
    }

    if request.mode == "append" and _already_appended(table, request.run_id, request.slice.label):
        return CommitResult("append", 0, 0, None, skipped_reason="this run already appended this slice")

    to_write, replaced = data, 0
    if request.mode == "upsert":
        existing = table.scan(row_filter=row_filter).to_arrow()
        to_write, replaced = _merge_upsert(existing, data, request.primary_key)

    with warnings.catch_warnings(), table.transaction() as transaction:
        # Overwriting a partition that holds no rows yet is the normal first write, not a problem.
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        evolve_and_document(
            transaction, evolutions, data.schema, request.column_docs or {}, request.properties or {}
        )
        if request.mode == "append":
            transaction.append(to_write, snapshot_properties=snapshot_properties)
        else:
            transaction.overwrite(to_write, overwrite_filter=row_filter, snapshot_properties=snapshot_properties)
    table.refresh()
    return CommitResult(
        mode=request.mode,
        rows_written=data.num_rows,
        rows_replaced=replaced,
        snapshot_id=_snapshot_of(table, commit_id),
    )


def count_rows(table: Table, table_slice: TableSlice) -> int:
    schema = table.schema()
    partition_type = (
        schema.find_field(table_slice.partition_column).field_type if table_slice.is_partitioned else None
    )
    return table.scan(row_filter=table_slice.row_filter(partition_type)).count()
