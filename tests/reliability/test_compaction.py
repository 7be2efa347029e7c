"""Compaction beside writer processes: appends into the partitions it rewrites and an overwrite of a
partition it is compacting; every row ends up in the table exactly once, none comes back."""

import datetime as dt
import time
from collections import Counter

from io_managers.commit import WriteRequest, commit
from io_managers.compaction import CompactionSettings, compact_table
from io_managers.schema import create_table_if_missing
from io_managers.slices import TableSlice
from tests.reliability.harness import catalog_properties, collect, spawn
from tests.reliability.workers import ROWS_PER_PARTITION, partition_rows

TABLE = "staging.compacted"
APPEND_DAYS = [str(dt.date(2024, 1, 1) + dt.timedelta(days=n)) for n in range(3)]
OVERWRITTEN_DAY = "2024-01-04"
APPENDERS = 6
SEED_FILES = 4


def _window(day: str) -> TableSlice:
    start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    return TableSlice("reading_date", start, start + dt.timedelta(days=1))


def test_compaction_beside_appends_and_overwrites_loses_and_doubles_nothing(
    settings, catalog, tmp_path, record_property
):
    table = create_table_if_missing(
        catalog, TABLE, partition_rows("2024-01-01", "x", 0).schema, "reading_date"
    )
    # small files to compact from the start, also in the day an overwrite is about to replace
    for day in [*APPEND_DAYS, OVERWRITTEN_DAY]:
        for seed in range(SEED_FILES):
            commit(
                table, partition_rows(day, f"seed{seed}"), WriteRequest("append", _window(day), f"seed{seed}")
            )

    go = tmp_path / "go"
    properties = catalog_properties(settings)
    processes = [
        spawn(
            "commit_many",
            {
                "catalog": properties,
                "table": TABLE,
                "days": APPEND_DAYS,
                "writer": f"a{n}",
                "mode": "append",
                "go": str(go),
            },
        )
        for n in range(APPENDERS)
    ]
    processes.append(
        spawn(
            "commit",
            {
                "catalog": properties,
                "table": TABLE,
                "day": OVERWRITTEN_DAY,
                "writer": "o",
                "mode": "overwrite",
                "repeat": 3,
                "go": str(go),
            },
        )
    )
    go.touch()

    compacted = skipped = passes = replanned = 0
    settings_ = CompactionSettings(min_files=2)
    while any(process.poll() is None for process in processes) or passes == 0:
        result = compact_table(catalog.load_table(TABLE), settings_)
        passes += 1
        compacted += result.files_removed
        skipped += result.skipped_reason is not None
        replanned += result.attempts > 1
        time.sleep(0.05)  # leave the writers the cores
    results = collect(processes)
    assert [code for code, _, _ in results] == [0] * len(processes), [err for _, _, err in results]
    final = compact_table(catalog.load_table(TABLE), settings_)
    compacted += final.files_removed

    table = catalog.load_table(TABLE)
    rows = table.scan().to_arrow().select(["reading_date", "writer", "sensor"]).to_pylist()
    found = Counter((str(row["reading_date"]), row["writer"], row["sensor"]) for row in rows)
    writers = [f"seed{n}" for n in range(SEED_FILES)] + [f"a{n}" for n in range(APPENDERS)]
    expected = Counter(
        (day, writer, f"s{index:03d}")
        for day in APPEND_DAYS
        for writer in writers
        for index in range(ROWS_PER_PARTITION)
    )
    expected.update((OVERWRITTEN_DAY, "o", f"s{index:03d}") for index in range(ROWS_PER_PARTITION))
    lost, extra = sum((expected - found).values()), sum((found - expected).values())
    assert found == expected, f"lost {lost} rows, doubled or resurrected {extra}"
    # one file per partition once the writers are done
    partitions = Counter(task.file.partition for task in table.scan().plan_files())
    assert set(partitions.values()) == {1}
    assert compacted > 0
    record_property(
        "reliability.compaction",
        f"{passes} compaction passes beside {APPENDERS} appenders and 1 overwriter: {compacted} files "
        f"compacted, {replanned} passes re-planned after a conflict, {skipped} skipped, "
        "0 rows lost or doubled",
    )
