"""The file ledger: `landing.files`, one row per version of a file the landing steps have seen.

A row is keyed by dataset, key and etag (the storage's version of the object), so a changed file
is a new row and the same file seen again updates its row (`last_seen`, `run_id`, `status`). The
ledger is also the index of which partitions a file's rows touch (`partitions`, partition keys
joined by commas): a dataset whose rows carry their own partition value (`source.partition_from`)
is read once to fill it, and a later run of any partition reads only the files listed for it.

Statuses: `loaded` (its rows are in landing), `duplicate` (the same bytes as a loaded file under
another key; not loaded again), `unassigned` (no partition can own it), `rejected` (landing could
not read it; `reason` says why).

Writes are a read-merge-overwrite of the dataset's rows, retried when another run of the same
dataset committed in between: the table is small (a row per file) and the overwrite keeps every
other dataset's rows untouched.
"""

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace

import pyarrow as pa

IDENTIFIER = "landing.files"
STATUSES = ("loaded", "duplicate", "unassigned", "rejected")
ATTEMPTS = 8

SCHEMA = pa.schema(
    [
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("etag", pa.string(), nullable=False),
        pa.field("checksum", pa.string()),
        pa.field("size", pa.int64()),
        pa.field("rows", pa.int64()),
        pa.field("partitions", pa.string()),
        pa.field("first_seen", pa.timestamp("us", tz="UTC")),
        pa.field("last_seen", pa.timestamp("us", tz="UTC")),
        pa.field("status", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("run_id", pa.string()),
    ]
)


@dataclass(frozen=True)
class Entry:
    """One file version as the ledger records it."""

    dataset: str
    key: str
    etag: str
    status: str
    checksum: str | None = None
    size: int | None = None
    rows: int | None = None
    partitions: tuple[str, ...] = ()
    reason: str | None = None
    run_id: str | None = None
    first_seen: dt.datetime | None = None
    last_seen: dt.datetime | None = None

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.dataset, self.key, self.etag)

    def as_row(self) -> dict:
        row = {name: getattr(self, name) for name in SCHEMA.names}
        row["partitions"] = ",".join(self.partitions)
        return row

    @classmethod
    def from_row(cls, row: dict) -> "Entry":
        partitions = tuple(part for part in (row.get("partitions") or "").split(",") if part)
        return cls(**{**row, "partitions": partitions})


def _table(catalog, create: bool):
    from pyiceberg.exceptions import NoSuchTableError

    try:
        return catalog.load_table(IDENTIFIER)
    except NoSuchTableError:
        if not create:
            return None
    catalog.create_namespace_if_not_exists(IDENTIFIER.split(".")[0])
    return catalog.create_table_if_not_exists(
        IDENTIFIER,
        schema=SCHEMA,
        properties={"comment": "One row per version of a landed file: what landing did with it and why."},
    )


def read_entries(catalog, dataset: str | None = None) -> list[Entry]:
    """The ledger's rows (of one dataset), sorted by key; none before the first file was recorded."""
    from pyiceberg.expressions import AlwaysTrue, EqualTo

    table = _table(catalog, create=False)
    if table is None:
        return []
    rows = table.scan(row_filter=EqualTo("dataset", dataset) if dataset else AlwaysTrue()).to_arrow()
    return sorted((Entry.from_row(row) for row in rows.to_pylist()), key=lambda e: (e.dataset, e.key, e.etag))


def merge(existing: Iterable[Entry], seen: Iterable[Entry], now: dt.datetime) -> list[Entry]:
    """The ledger after `seen`: a known file version keeps its first_seen, every other field is the
    latest run's, except that a run which did not read a file (no partitions, rows or checksum known)
    keeps what earlier runs found."""
    merged = {entry.identity: entry for entry in existing}
    for entry in seen:
        before = merged.get(entry.identity)
        entry = replace(entry, last_seen=now, first_seen=before.first_seen if before else now)
        if before is not None:
            entry = replace(
                entry,
                checksum=entry.checksum or before.checksum,
                rows=entry.rows if entry.rows is not None else before.rows,
                partitions=entry.partitions or before.partitions,
            )
        merged[entry.identity] = entry
    return sorted(merged.values(), key=lambda e: (e.key, e.etag))


def record(catalog, dataset: str, seen: list[Entry], now: dt.datetime | None = None) -> list[Entry]:
    """Upsert these entries (keyed by dataset, key and etag); returns the dataset's ledger after it."""
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.expressions import EqualTo

    from io_managers.retries import is_transient

    now = now or dt.datetime.now(dt.UTC)
    for attempt in range(ATTEMPTS):
        table = _table(catalog, create=True)
        try:
            existing = read_entries(catalog, dataset)
            entries = merge(existing, seen, now)
            rows = pa.Table.from_pylist([entry.as_row() for entry in entries], schema=SCHEMA)
            if existing:
                table.overwrite(rows, overwrite_filter=EqualTo("dataset", dataset))
            else:
                table.append(rows)
            return entries
        except Exception as error:
            # another run of the dataset committed first: merge against its rows and try again
            if attempt == ATTEMPTS - 1 or not (
                isinstance(error, CommitFailedException) or is_transient(error)
            ):
                raise
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")
