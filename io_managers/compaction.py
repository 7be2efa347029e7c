"""Compaction: a partition's many small data files rewritten as one, in a single commit.

Daily appends, late files, upserts and Spark's file-per-task writes leave partitions with many
small files, and every scan pays per file (open, footer, manifest entry). pyiceberg 0.12 has no
rewrite action, so this module reads the small files of each crowded partition, writes their
rows as one file per partition with pyiceberg's own writer, and commits one `overwrite` snapshot
that deletes exactly those files and adds the new ones (no row changes, so readers and the
append-idempotency evidence in earlier snapshots are unaffected).

Concurrent writers never lose or double a row:

- the commit deletes named files, not a filter: a file a writer appended meanwhile stays;
- the commit carries the compacted partitions as its conflict filter, so pyiceberg's validated
  retry refuses it (ValidationException) when a writer added or removed a file of those
  partitions after the compaction read them: an overwrite or upsert that replaced the rows we
  read must not see them come back;
- a refused or lost commit is planned again from the table as it now is (`retry_transient`), and
  after the last attempt the table is left as the writers made it (skipped, never forced).
  The files a failed attempt wrote are removed.
"""

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from pyiceberg.expressions import AlwaysTrue, BooleanExpression, Or
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, HourTransform, MonthTransform
from pyiceberg.typedef import Record

from io_managers.commit import remove_data_files, removed_unless_committed
from io_managers.retries import CommitRetriesExhausted, RetrySettings, retry_transient
from io_managers.slices import TableSlice

COMPACTION_PROPERTY = "lakehouse.compaction"
# Below this many small files a partition is not worth a commit.
DEFAULT_MIN_FILES = 4
# Files at least this large are left alone: rewriting them costs more than it saves.
DEFAULT_SMALL_FILE_BYTES = 32 * 1024 * 1024
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class CompactionSettings:
    min_files: int = DEFAULT_MIN_FILES
    small_file_bytes: int = DEFAULT_SMALL_FILE_BYTES

    def __post_init__(self) -> None:
        if self.min_files < 2:
            raise ValueError(f"min_files={self.min_files}: compacting fewer than 2 files changes nothing")


@dataclass(frozen=True)
class PartitionFiles:
    """The small files of one partition that one commit replaces."""

    spec_id: int
    partition: Record
    label: str
    files: tuple[DataFile, ...]

    @property
    def bytes(self) -> int:
        return sum(file.file_size_in_bytes for file in self.files)

    @property
    def records(self) -> int:
        return sum(file.record_count for file in self.files)


@dataclass(frozen=True)
class CompactionResult:
    table: str
    partitions: tuple[str, ...] = ()
    files_removed: int = 0
    files_added: int = 0
    rows_rewritten: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    snapshot_id: int | None = None
    skipped_reason: str | None = None
    attempts: int = 1

    def as_report(self) -> dict:
        return {
            "partitions_compacted": len(self.partitions),
            "files_removed": self.files_removed,
            "files_added": self.files_added,
            "rows_rewritten": self.rows_rewritten,
            "compaction_skipped": self.skipped_reason or "",
        }


def crowded_partitions(table: Table, settings: CompactionSettings | None = None) -> list[PartitionFiles]:
    """The partitions of the current spec holding at least `min_files` small data files.

    A partition with delete files (which another engine may write) is left alone: rewriting its
    data files would have to apply and drop those deletes too.
    """
    settings = settings or CompactionSettings()
    spec = table.spec()
    schema = table.schema()
    groups: dict[tuple[int, Record], list[DataFile]] = {}
    with_deletes: set[tuple[int, Record]] = set()
    for task in table.scan().plan_files():
        file = task.file
        key = (file.spec_id, file.partition)
        if task.delete_files:
            with_deletes.add(key)
        if file.spec_id == spec.spec_id and file.file_size_in_bytes < settings.small_file_bytes:
            groups.setdefault(key, []).append(file)
    return [
        PartitionFiles(
            spec_id,
            partition,
            spec.partition_to_path(partition, schema) if spec.fields else "whole table",
            tuple(sorted(files, key=lambda file: file.file_path)),
        )
        for (spec_id, partition), files in sorted(groups.items(), key=lambda item: str(item[0][1]))
        if len(files) >= settings.min_files and (spec_id, partition) not in with_deletes
    ]


def _partition_window(table: Table, partition: Record) -> BooleanExpression | None:
    """The rows of a time partition as a filter on its source column; None for other layouts."""
    fields = table.spec().fields
    if len(fields) != 1:
        return None
    transform = fields[0].transform
    value = partition[0]
    if value is None:
        return None
    if isinstance(transform, DayTransform):
        start = _EPOCH + dt.timedelta(days=value)
        end = start + dt.timedelta(days=1)
    elif isinstance(transform, HourTransform):
        start = _EPOCH + dt.timedelta(hours=value)
        end = start + dt.timedelta(hours=1)
    elif isinstance(transform, MonthTransform):
        start = _EPOCH.replace(year=1970 + value // 12, month=value % 12 + 1)
        end = start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
    else:
        return None
    source = table.schema().find_field(fields[0].source_id)
    return TableSlice(source.name, start, end).row_filter(source.field_type)


def conflict_filter(table: Table, partitions: list[PartitionFiles]) -> BooleanExpression:
    """What a concurrent commit must not have touched: the compacted partitions (whole table when
    one of them is not a time partition)."""
    result: BooleanExpression | None = None
    for partition in partitions:
        window = _partition_window(table, partition.partition)
        if window is None:
            return AlwaysTrue()
        result = window if result is None else Or(result, window)
    return result if result is not None else AlwaysTrue()


def _rewrite(table: Table, partition: PartitionFiles, written: list[str]) -> list[DataFile]:
    """The partition's rows in new files, written but not committed (their paths go to `written`
    at once, so a failure after the first file still removes it).

    pyiceberg's writer (`_dataframe_to_data_files`, the one `Table.append` uses) is the only way it
    offers to write data files without committing them; it writes field ids and per-column stats.
    """
    from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
    from pyiceberg.table import FileScanTask

    rows = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue()).to_table(
        [FileScanTask(file) for file in partition.files]
    )
    if rows.num_rows != partition.records:
        raise RuntimeError(
            f"{partition.label}: read {rows.num_rows} rows from files whose metadata counts "
            f"{partition.records}; not compacting"
        )
    new_files = []
    for file in _dataframe_to_data_files(table.metadata, rows, table.io, write_uuid=uuid.uuid4()):
        written.append(file.file_path)
        new_files.append(file)
    return new_files


def compact_table(
    table: Table,
    settings: CompactionSettings | None = None,
    retry: RetrySettings | None = None,
    on_partition: Callable[[str], None] | None = None,
) -> CompactionResult:
    """Rewrite every crowded partition's small files as one file per partition, in one commit.

    Safe beside writers (see the module's docstring); a table that writers keep changing under
    the compaction is skipped with the reason, never compacted over their commits.
    """
    settings = settings or CompactionSettings()
    retry = retry or RetrySettings.from_properties(table.properties)
    name = ".".join(table.name())
    attempts = [0]

    def attempt(number: int) -> CompactionResult:
        attempts[0] = number
        if number > 1:
            table.refresh()
        partitions = crowded_partitions(table, settings)
        if not partitions:
            return CompactionResult(name, attempts=number)
        written: list[str] = []
        with removed_unless_committed(lambda: remove_data_files(table, written)):
            added: list[DataFile] = []
            for partition in partitions:
                added += _rewrite(table, partition, written)
                if on_partition is not None:
                    on_partition(partition.label)
            properties = {COMPACTION_PROPERTY: str(sum(len(p.files) for p in partitions))}
            with (
                table.transaction() as transaction,
                transaction.update_snapshot(snapshot_properties=properties).overwrite() as overwrite,
            ):
                # the conflict scope: a concurrent commit into these partitions fails this one
                overwrite.delete_by_predicate(conflict_filter(table, partitions))
                for partition in partitions:
                    for file in partition.files:
                        overwrite.delete_data_file(file)
                for file in added:
                    overwrite.append_data_file(file)
                snapshot_id = overwrite.snapshot_id
        return CompactionResult(
            name,
            partitions=tuple(partition.label for partition in partitions),
            files_removed=sum(len(partition.files) for partition in partitions),
            files_added=len(added),
            rows_rewritten=sum(partition.records for partition in partitions),
            bytes_before=sum(partition.bytes for partition in partitions),
            bytes_after=sum(file.file_size_in_bytes for file in added),
            snapshot_id=snapshot_id,
            attempts=number,
        )

    try:
        return retry_transient(attempt, retry, f"{name} compaction")
    except CommitRetriesExhausted as exc:
        return CompactionResult(
            name,
            skipped_reason=f"writers kept committing into its partitions ({exc.__cause__}); "
            "nothing was changed, the next maintenance run tries again",
            attempts=attempts[0],
        )
