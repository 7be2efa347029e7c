"""Two tables one step writes together (raw and its rejects): a fixed commit order and a marker.

Iceberg commits one table at a time, so a process killed between the two commits leaves the pair
torn: the first table holds the new slice, the second the old one. What Iceberg does allow is to
make that state visible. Every commit of a pair carries in its snapshot summary the pair id (the
Dagster run that wrote it), its role, the partner table and the slice's bounds; the `first` table
is always committed before the `last`. So, for every stretch of time in a slice, the newest commit
covering it in the first table and the newest in the last must carry the same pair id; where the
first table's is newer, its run stopped between the two commits.

A reader checks this from the snapshot summaries in the tables' metadata, which it has loaded
anyway: no manifest or data file is read.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from pyiceberg.table import Table
from pyiceberg.table.snapshots import ancestors_of

from io_managers.slices import TableSlice

PAIR_ID_PROPERTY = "lakehouse.pair-id"
PAIR_ROLE_PROPERTY = "lakehouse.pair-role"
PAIR_PARTNER_PROPERTY = "lakehouse.pair-partner"
SLICE_START_PROPERTY = "lakehouse.slice-start"
SLICE_END_PROPERTY = "lakehouse.slice-end"
PAIR_ROWS_PROPERTY = "lakehouse.pair-rows"
FIRST, LAST = "first", "last"

_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)
_LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class PairMarker:
    """What one commit of a pair says about itself."""

    pair_id: str
    role: str
    partner: str

    def properties(self, table_slice: TableSlice) -> dict[str, str]:
        properties = {
            PAIR_ID_PROPERTY: self.pair_id,
            PAIR_ROLE_PROPERTY: self.role,
            PAIR_PARTNER_PROPERTY: self.partner,
        }
        if table_slice.is_partitioned:
            properties[SLICE_START_PROPERTY] = table_slice.start.isoformat()
            properties[SLICE_END_PROPERTY] = table_slice.end.isoformat()
        return properties


@dataclass(frozen=True)
class PairCommit:
    """A marked snapshot: which pair wrote which stretch of the table, and when."""

    pair_id: str
    start: dt.datetime
    end: dt.datetime
    sequence_number: int
    timestamp_ms: int
    rows: int | None

    def covers(self, start: dt.datetime, end: dt.datetime) -> bool:
        return self.start <= start and end <= self.end

    @property
    def committed_at(self) -> str:
        moment = dt.datetime.fromtimestamp(self.timestamp_ms / 1000, dt.UTC)
        return moment.isoformat(timespec="seconds")


def pair_commits(table: Table | None) -> list[PairCommit]:
    """The marked snapshots of the table's current history, oldest first."""
    if table is None:
        return []
    commits = []
    for snapshot in ancestors_of(table.current_snapshot(), table.metadata):
        properties = snapshot.summary.additional_properties if snapshot.summary else {}
        pair_id = properties.get(PAIR_ID_PROPERTY)
        if pair_id is None:
            continue
        start, end = properties.get(SLICE_START_PROPERTY), properties.get(SLICE_END_PROPERTY)
        rows = properties.get(PAIR_ROWS_PROPERTY)
        commits.append(
            PairCommit(
                pair_id=pair_id,
                start=dt.datetime.fromisoformat(start) if start else _EARLIEST,
                end=dt.datetime.fromisoformat(end) if end else _LATEST,
                sequence_number=snapshot.sequence_number or 0,
                timestamp_ms=snapshot.timestamp_ms,
                rows=int(rows) if rows is not None else None,
            )
        )
    return commits[::-1]


@dataclass(frozen=True)
class TornStretch:
    """A stretch of a slice where the first table's newest commit is not the last table's."""

    slice: TableSlice
    first: PairCommit
    last: PairCommit | None


def _newest_covering(
    commits: Iterable[PairCommit], start: dt.datetime, end: dt.datetime
) -> PairCommit | None:
    covering = [commit for commit in commits if commit.covers(start, end)]
    return max(covering, key=lambda commit: commit.sequence_number) if covering else None


def torn_stretches(first: Table | None, last: Table | None, table_slice: TableSlice) -> list[TornStretch]:
    """The stretches of `table_slice` whose pair is torn, adjacent ones with the same owners merged.

    Torn: the first table's newest covering commit belongs to a pair whose commit to the last table
    is not the newest there (or missing). A stretch the first table's history no longer covers
    (its snapshots expired) is not torn: the order guarantees the last table's commit came after.
    """
    return torn_between(pair_commits(first), pair_commits(last), table_slice)


def torn_between(
    first_commits: list[PairCommit], last_commits: list[PairCommit], table_slice: TableSlice
) -> list[TornStretch]:
    """`torn_stretches` from the two tables' marked commits."""
    if not first_commits:
        return []
    start = table_slice.start if table_slice.is_partitioned else _EARLIEST
    end = table_slice.end if table_slice.is_partitioned else _LATEST
    bounds = {start, end}
    for commit in first_commits + last_commits:
        bounds.update(moment for moment in (commit.start, commit.end) if start < moment < end)
    points = sorted(bounds)
    torn: list[TornStretch] = []
    for low, high in zip(points, points[1:], strict=False):
        first_owner = _newest_covering(first_commits, low, high)
        last_owner = _newest_covering(last_commits, low, high)
        if first_owner is None or (last_owner is not None and last_owner.pair_id == first_owner.pair_id):
            continue
        owners = (first_owner, last_owner)
        if torn and torn[-1].slice.end == low and (torn[-1].first, torn[-1].last) == owners:
            merged = TableSlice(table_slice.partition_column, torn[-1].slice.start, high)
            torn[-1] = TornStretch(merged, first_owner, last_owner)
            continue
        stretch = TableSlice(table_slice.partition_column, low, high)
        torn.append(TornStretch(stretch if table_slice.is_partitioned else table_slice, *owners))
    return torn


def _rows(commit: PairCommit, column: str | None) -> str:
    """ "1 row for 2024-03-09" (its own slice, which may be wider than the partition read)."""
    rows = "rows" if commit.rows is None else f"{commit.rows} row{'' if commit.rows == 1 else 's'}"
    if commit.start == _EARLIEST:
        return rows
    return f"{rows} for {TableSlice(column, commit.start, commit.end).label}"


def torn_pair_message(reading: str, first_name: str, last_name: str, stretches: list[TornStretch]) -> str:
    """What the reader is told: which table and partition, which run wrote which half, what to do."""
    lines = [f"refusing to read {reading}: its pair {first_name} + {last_name} is torn"]
    for stretch in stretches:
        label, run, column = stretch.slice.label, stretch.first.pair_id, stretch.slice.partition_column
        first, last = stretch.first, stretch.last
        if last is None:
            holds = "no commit of this partition"
        else:
            holds = f"run {last.pair_id}'s commit at {last.committed_at} ({_rows(last, column)})"
        lines.append(
            f"- partition {label}: run {run} committed {first_name} at {first.committed_at} "
            f"({_rows(first, column)}) but never {last_name}, which still holds {holds}. Run {run} was "
            f"killed between its two commits. Re-run {last_name} for partition {label}: its step "
            "writes both tables again, which repairs the pair."
        )
    return "\n".join(lines)
