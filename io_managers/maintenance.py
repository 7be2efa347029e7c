"""Table maintenance: expire old snapshots, then delete files no snapshot or metadata refers to.

pyiceberg 0.12 can expire snapshots (`table.maintenance.expire_snapshots()`), which only removes
them from the metadata; it has no orphan-file removal. Files become orphans when a writer dies
after writing data but before its commit, when a commit attempt loses a race, or when the last
snapshot that referenced them expires. Orphan removal here compares the files under the table's
location with everything reachable from the current metadata (every snapshot's manifest list,
manifests and data files, the metadata log, statistics files) and deletes only files older than a
safe age, so a writer still preparing its commit never loses a file.

Both steps are safe beside writers: expiring commits through the catalog's compare-and-swap and
changes nothing but the snapshot list (properties and schema stay as they are), and the file
listing is taken *before* the metadata is read, so a commit that lands in between only adds
references.
"""

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlparse

import pyarrow.fs as pafs
from pyiceberg.table import Table, TableProperties

from io_managers.retries import RetrySettings, retry_transient

# Iceberg's defaults: keep five days of history (time travel, and the run-id evidence that stops a
# retried append from landing twice) and at least the current snapshot.
DEFAULT_SNAPSHOT_MAX_AGE = dt.timedelta(days=5)
DEFAULT_MIN_SNAPSHOTS = 1
# Longer than any write can take between writing its first file and committing.
DEFAULT_ORPHAN_MIN_AGE = dt.timedelta(days=3)


@dataclass(frozen=True)
class OrphanFile:
    path: str
    size: int
    modified: dt.datetime


def _path_of(location: str) -> str:
    """A location as the file system sees it: a local path, or `bucket/key` on object stores."""
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return parsed.path
    return f"{parsed.netloc}{parsed.path}"


def _ancestors(table: Table) -> list[int]:
    ids, snapshot = [], table.current_snapshot()
    while snapshot is not None:
        ids.append(snapshot.snapshot_id)
        parent = snapshot.parent_snapshot_id
        snapshot = table.metadata.snapshot_by_id(parent) if parent is not None else None
    return ids


def snapshots_to_expire(
    table: Table, now: dt.datetime, max_age: dt.timedelta, min_snapshots: int
) -> list[int]:
    """Snapshots older than max_age, except the newest `min_snapshots` of the current history."""
    kept = set(_ancestors(table)[: max(1, min_snapshots)])
    kept |= {ref.snapshot_id for ref in table.metadata.refs.values()}
    cutoff_ms = int((now - max_age).timestamp() * 1000)
    return [
        snapshot.snapshot_id
        for snapshot in table.metadata.snapshots
        if snapshot.timestamp_ms < cutoff_ms and snapshot.snapshot_id not in kept
    ]


def expire_snapshots(
    table: Table,
    *,
    now: dt.datetime | None = None,
    max_age: dt.timedelta | None = None,
    min_snapshots: int | None = None,
    settings: RetrySettings | None = None,
) -> int:
    """Expire old snapshots, honouring the table's `history.expire.*` properties; how many went."""
    now = now or dt.datetime.now(dt.UTC)
    properties = table.properties
    if max_age is None:
        max_age_ms = properties.get(TableProperties.MAX_SNAPSHOT_AGE_MS)
        max_age = dt.timedelta(milliseconds=int(max_age_ms)) if max_age_ms else DEFAULT_SNAPSHOT_MAX_AGE
    if min_snapshots is None:
        min_snapshots = int(properties.get(TableProperties.MIN_SNAPSHOTS_TO_KEEP, DEFAULT_MIN_SNAPSHOTS))

    def attempt(number: int) -> int:
        if number > 1:
            table.refresh()
        expired = snapshots_to_expire(table, now, max_age, min_snapshots)
        if expired:
            table.maintenance.expire_snapshots().by_ids(expired).commit()
        return len(expired)

    return retry_transient(attempt, settings or RetrySettings(), f"{'.'.join(table.name())} expire snapshots")


def referenced_files(table: Table) -> set[str]:
    """Every file the table's current metadata can reach, as file-system paths."""
    metadata = table.metadata
    locations = {table.metadata_location, *(entry.metadata_file for entry in metadata.metadata_log)}
    locations |= {statistics.statistics_path for statistics in metadata.statistics}
    locations |= {statistics.statistics_path for statistics in metadata.partition_statistics}
    seen_manifests: set[str] = set()
    for snapshot in metadata.snapshots:
        locations.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            if manifest.manifest_path in seen_manifests:
                continue
            seen_manifests.add(manifest.manifest_path)
            # deleted entries too: an older, still-live snapshot may read the file they name
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                locations.add(entry.data_file.file_path)
    locations |= seen_manifests
    return {_path_of(location) for location in locations}


def _files_under(location: str) -> tuple[pafs.FileSystem, list[pafs.FileInfo]]:
    filesystem, root = pafs.FileSystem.from_uri(location)
    selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
    return filesystem, [
        info for info in filesystem.get_file_info(selector) if info.type == pafs.FileType.File
    ]


def find_orphan_files(
    table: Table, *, min_age: dt.timedelta, now: dt.datetime | None = None
) -> list[OrphanFile]:
    now = now or dt.datetime.now(dt.UTC)
    # List first, read metadata second: a commit landing in between can only add references.
    _, files = _files_under(table.location())
    table.refresh()
    referenced = referenced_files(table)
    cutoff = now - min_age
    return [
        OrphanFile(info.path, info.size or 0, info.mtime)
        for info in files
        if info.path not in referenced and info.mtime is not None and info.mtime.astimezone(dt.UTC) < cutoff
    ]


def remove_orphan_files(
    table: Table, *, min_age: dt.timedelta = DEFAULT_ORPHAN_MIN_AGE, now: dt.datetime | None = None
) -> list[OrphanFile]:
    """Delete files under the table's location that nothing references and that are older than min_age."""
    orphans = find_orphan_files(table, min_age=min_age, now=now)
    filesystem, _ = pafs.FileSystem.from_uri(table.location())
    for orphan in orphans:
        filesystem.delete_file(orphan.path)
    return orphans


def _filesystem_at(io, location: str) -> tuple[pafs.FileSystem, str]:
    """The file system and path of a location, through the table's FileIO where it can say (its S3
    endpoint and region), else as pyarrow resolves the URI."""
    parsed = urlparse(location)
    if hasattr(io, "fs_by_scheme"):
        return io.fs_by_scheme(parsed.scheme or "file", parsed.netloc), _path_of(location)
    return pafs.FileSystem.from_uri(location)


def remove_location(io, location: str) -> tuple[int, int]:
    """Delete every file under a dropped table's location; how many files and bytes went.

    Every file, not only those the last metadata references: orphans and the history of expired
    snapshots belong to the table too.
    """
    filesystem, root = _filesystem_at(io, location)
    selector = pafs.FileSelector(root.rstrip("/"), recursive=True, allow_not_found=True)
    files = [info for info in filesystem.get_file_info(selector) if info.type == pafs.FileType.File]
    for info in files:
        filesystem.delete_file(info.path)
    if filesystem.get_file_info(root.rstrip("/")).type == pafs.FileType.Directory:
        # empty partition folders, or on S3 the folder marker objects pyarrow writes
        filesystem.delete_dir(root.rstrip("/"))
    return len(files), sum(info.size or 0 for info in files)
