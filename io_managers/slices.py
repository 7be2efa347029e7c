"""The part of a table one materialisation owns: its partition column and time window."""

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, GreaterThanOrEqual, LessThan
from pyiceberg.types import DateType, IcebergType, TimestampType, TimestamptzType


class PartitionWindowError(ValueError):
    """Rows that fall outside the partition being written: writing them would corrupt other partitions."""


@dataclass(frozen=True)
class TableSlice:
    """A whole table (no partition column) or the rows whose partition column lies in [start, end)."""

    partition_column: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    @classmethod
    def of(cls, partition_column: str | None, window) -> "TableSlice":
        """A partition window of a partitioned table, or the whole table when either is missing."""
        if partition_column is None or window is None:
            return cls()
        return cls(partition_column, window.start, window.end)

    @classmethod
    def for_run(cls, partition_column: str | None, context) -> "TableSlice":
        """The slice a step owns: its run's whole partition window (one partition, or every
        partition of a single-run backfill), from an asset, input or output context."""
        return cls.of(partition_column, partition_window(context))

    @property
    def is_partitioned(self) -> bool:
        return self.partition_column is not None and self.start is not None

    @property
    def label(self) -> str:
        """The window in its own time zone: its days (`2024-03-01`, `2024-03-01..2024-03-31`, also for
        months), or its hours when it does not start and end at midnight (`2024-03-01T05:00`,
        `2024-03-01T05:00..2024-03-01T07:00`)."""
        if not self.is_partitioned:
            return "whole table"
        start, end = self.start, self.end
        if start.time() != dt.time() or end.time() != dt.time():
            last_hour = end - dt.timedelta(hours=1)
            first = f"{start:%Y-%m-%dT%H:%M}"
            return first if last_hour <= start else f"{first}..{last_hour:%Y-%m-%dT%H:%M}"
        last_day = (end - dt.timedelta(days=1)).date()
        if last_day == start.date():
            return str(start.date())
        return f"{start.date()}..{last_day}"

    def bounds_for(self, column_type: IcebergType) -> tuple[object, object]:
        """The window as literals of the partition column's type: dates, naive or UTC timestamps."""
        if isinstance(column_type, DateType):
            return self.start.date(), self.end.date()
        if isinstance(column_type, TimestampType):
            return self.start.replace(tzinfo=None), self.end.replace(tzinfo=None)
        if isinstance(column_type, TimestamptzType):
            return self.start.astimezone(dt.UTC), self.end.astimezone(dt.UTC)
        raise PartitionWindowError(
            f"partition column {self.partition_column!r} has type {column_type}; expected date or timestamp"
        )

    def row_filter(self, column_type: IcebergType | None) -> BooleanExpression:
        if not self.is_partitioned:
            return AlwaysTrue()
        start, end = (value.isoformat() for value in self.bounds_for(column_type))
        return And(GreaterThanOrEqual(self.partition_column, start), LessThan(self.partition_column, end))

    def check_rows(self, data: pa.Table, column_type: IcebergType) -> None:
        """Every row must lie inside the window, so an overwrite of the window replaces exactly them."""
        if not self.is_partitioned or data.num_rows == 0:
            return
        if self.partition_column not in data.column_names:
            raise PartitionWindowError(f"the data has no partition column {self.partition_column!r}")
        column = data.column(self.partition_column)
        start, end = self.bounds_for(column_type)
        nulls = column.null_count
        scalar_type = column.type
        outside = pc.sum(
            pc.or_(
                pc.less(column, pa.scalar(start, scalar_type)),
                pc.greater_equal(column, pa.scalar(end, scalar_type)),
            )
        ).as_py()
        if nulls or outside:
            span = pc.min_max(column).as_py()
            raise PartitionWindowError(
                f"{nulls} rows have no {self.partition_column!r} and {outside or 0} rows lie outside the "
                f"partition {self.label} (values from {span['min']} to {span['max']}); "
                "nothing was written"
            )


def partition_window(context):
    """The run's partition time window, or None for an unpartitioned asset.

    Not `context.partition_key` alone: a single-run backfill owns every partition of its range.
    """
    if hasattr(context, "has_asset_partitions"):  # an IO manager's input or output context
        return context.asset_partitions_time_window if context.has_asset_partitions else None
    partitioned = context.has_partition_key or context.has_partition_key_range
    return context.partition_time_window if partitioned else None
