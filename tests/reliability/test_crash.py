"""kill -9 between writing the files and committing them: the table does not change; orphans go later."""

import datetime as dt
import os
import signal
import time

from io_managers.commit import WriteRequest, commit
from io_managers.maintenance import find_orphan_files, remove_orphan_files
from io_managers.schema import create_table_if_missing
from io_managers.slices import TableSlice
from tests.reliability.faults import HANGING
from tests.reliability.harness import catalog_properties, collect, spawn
from tests.reliability.workers import ROWS_PER_PARTITION, partition_rows

TABLE = "staging.crash"


def test_a_writer_killed_before_its_commit_leaves_the_table_unchanged(
    settings, catalog, tmp_path, record_property
):
    table = create_table_if_missing(
        catalog, TABLE, partition_rows("2024-01-01", "x", 0).schema, "reading_date"
    )
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    window = TableSlice("reading_date", start, start + dt.timedelta(days=1))
    commit(table, partition_rows("2024-01-01", "before"), WriteRequest("overwrite", window, "before"))
    before = catalog.load_table(TABLE)
    snapshot, metadata_location = before.current_snapshot().snapshot_id, before.metadata_location

    ready = tmp_path / "ready"
    properties = catalog_properties(settings, **{"py-catalog-impl": HANGING, "fault.ready-file": str(ready)})
    process = spawn(
        "commit", {"catalog": properties, "table": TABLE, "day": "2024-01-01", "writer": "killed"}
    )
    deadline = time.monotonic() + 120
    while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ready.exists(), collect([process])[0][2]
    os.kill(process.pid, signal.SIGKILL)
    ((code, _, _),) = collect([process])
    assert code == -signal.SIGKILL

    after = catalog.load_table(TABLE)
    assert after.metadata_location == metadata_location
    assert after.current_snapshot().snapshot_id == snapshot
    assert set(after.scan().to_arrow().column("writer").to_pylist()) == {"before"}
    assert after.scan().count() == ROWS_PER_PARTITION

    orphans = find_orphan_files(after, min_age=dt.timedelta(0))
    kinds = {orphan.path.rsplit(".", 1)[-1] for orphan in orphans}
    assert {"parquet", "avro"} <= kinds  # the data file, its manifest and manifest list
    # Fresh orphans are left alone: a live writer's files look exactly like them.
    assert remove_orphan_files(after, min_age=dt.timedelta(hours=1)) == []
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    removed = remove_orphan_files(after, min_age=dt.timedelta(hours=1), now=later)
    assert sorted(orphan.path for orphan in removed) == sorted(orphan.path for orphan in orphans)
    assert find_orphan_files(after, min_age=dt.timedelta(0)) == []
    assert after.scan().count() == ROWS_PER_PARTITION

    commit(after, partition_rows("2024-01-01", "after"), WriteRequest("overwrite", window, "after"))
    assert set(catalog.load_table(TABLE).scan().to_arrow().column("writer").to_pylist()) == {"after"}
    record_property("reliability.kill_9", f"table unchanged, {len(removed)} orphan files removed later")
