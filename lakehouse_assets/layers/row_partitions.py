"""Partitions from a file's rows (`source.partition_from`), not from its name.

A monthly export, a weekly dump or a late file with yesterday's rows holds rows of many partitions.
Each row's partition value is read from a column (or several joined by "-") with the contract's
format, as a local time in the partitions' time zone; `_file_date` then holds the row's partition
(its day or month, or its hour in UTC), so the landing table's partitions are the rows' own.
"""

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse_assets.contracts.columns import FILE_DATE
from lakehouse_assets.contracts.contract import DatasetContract
from lakehouse_assets.contracts.partitioning import PARTITION_KEY_FORMATS


@dataclass(frozen=True)
class RowPartitions:
    """A file's rows placed in partitions: the rows kept, every partition the file touches, and
    how many rows carry no partition (no parsable value, or one outside the partitions)."""

    table: pa.Table
    partitions: tuple[str, ...]
    unplaced: int
    unplaced_example: str | None


def _values(table: pa.Table, contract: DatasetContract) -> pa.ChunkedArray:
    columns = contract.source.partition_from.source_columns
    if len(columns) == 1:
        return table.column(columns[0])
    return pc.binary_join_element_wise(*(table.column(name) for name in columns), "-")


def _file_date(contract: DatasetContract, key: str) -> dt.date | dt.datetime:
    """The `_file_date` rows of a partition carry: its first day, or for hours its start in UTC."""
    partitioning = contract.partitioning
    start = dt.datetime.strptime(key, PARTITION_KEY_FORMATS[partitioning.granularity])
    if partitioning.granularity == "hour":
        return partitioning.local(start).astimezone(dt.UTC)
    return start.date()


def partition_of_value(contract: DatasetContract, value: str | None) -> str | None:
    """The partition key of one row's value, or None when it is not a time inside the partitions."""
    partitioning, spec = contract.partitioning, contract.source.partition_from
    if value is None:
        return None
    try:
        moment = partitioning.local(dt.datetime.strptime(value.strip(), spec.format))
    except ValueError:
        return None
    return partitioning.partition_key(moment) if partitioning.contains(moment) else None


def place_rows(table: pa.Table, contract: DatasetContract, keep: set[str] | None = None) -> RowPartitions:
    """The rows of `keep`'s partitions (all placed rows when None), with `_file_date` set per row."""
    values = _values(table, contract)
    distinct = pc.unique(values).to_pylist()
    keys = {value: partition_of_value(contract, value) for value in distinct}
    row_keys = pc.take(
        pa.array([keys[value] for value in distinct], pa.string()), pc.index_in(values, pa.array(distinct))
    )
    partitions = tuple(sorted({key for key in keys.values() if key is not None}))
    unplaced_values = [value for value, key in keys.items() if key is None]
    unplaced = pc.sum(pc.is_null(row_keys)).as_py() or 0
    wanted = partitions if keep is None else tuple(key for key in partitions if key in keep)
    mask = pc.fill_null(pc.is_in(row_keys, pa.array(wanted, pa.string())), False)
    kept, kept_keys = table.filter(mask), row_keys.filter(mask)
    date_type = table.schema.field(FILE_DATE).type
    dates = {key: _file_date(contract, key) for key in wanted}
    file_dates = pa.array([dates[key] for key in kept_keys.to_pylist()], date_type)
    kept = kept.set_column(kept.schema.get_field_index(FILE_DATE), FILE_DATE, file_dates)
    return RowPartitions(kept, partitions, unplaced, repr(unplaced_values[0]) if unplaced_values else None)
