"""Case 7: scan time of a table of many small files, before and after compaction.

Setup (one child): a day-partitioned table filled the way late files leave it: A rounds of
deliveries, each an append of R rows to every one of D days through the product's commit path
(one commit per round, one small file per day and round). So every day holds A small files; the
table has A manifests and snapshots. (One commit per file would be the daily feed's layout, but
building it costs minutes per hundred commits here: pyiceberg copies the table metadata on every
access, which grows with each snapshot.) Then `compact_table` rewrites every day's files as one
file per day in one commit; its time is reported.

Both states stay readable in the same table (no expiry in between), so each measuring child scans
one of the two snapshots by id, in a fresh process: the whole table (`scan().to_arrow()`) and one
day (`row_filter` on the day). The two variants alternate (before, after, then after, before, ...)
and the speed-up is the median of the per-pair ratios.
"""

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from harness import Pairs, fmt_list, fmt_s, log, run_child

HERE = Path(__file__).resolve()
IDENTIFIER = "staging.small_files"
FIRST_DAY = dt.date(2024, 1, 1)


def catalog_for(work: Path):
    from resources.catalog.resource import IcebergCatalogResource

    return IcebergCatalogResource.sqlite(
        f"sqlite:///{work / 'catalog.db'}", (work / "warehouse").as_uri()
    ).load()


def _rows(day: dt.date, append: int, rows: int):
    import numpy as np
    import pyarrow as pa

    start = append * rows
    return pa.table(
        {
            "reading_date": pa.array([day] * rows, pa.date32()),
            "meter_id": pa.array([f"m{n:07d}" for n in range(start, start + rows)], pa.string()),
            "read_at": pa.array(
                [dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(seconds=n) for n in range(rows)],
                pa.timestamp("us", tz="UTC"),
            ),
            "kwh": pa.array(np.random.default_rng(append).random(rows) * 10, pa.float64()),
            "source": pa.array([f"file_{append:03d}.csv"] * rows, pa.string()),
        }
    )


def setup(work: Path, days: int, appends: int, rows: int) -> dict:
    from io_managers.commit import WriteRequest, commit
    from io_managers.compaction import CompactionSettings, compact_table
    from io_managers.schema import create_table_if_missing
    from io_managers.slices import TableSlice

    catalog = catalog_for(work)
    table = create_table_if_missing(catalog, IDENTIFIER, _rows(FIRST_DAY, 0, 1).schema, "reading_date")
    started = time.perf_counter()
    import pyarrow as pa

    first = dt.datetime.combine(FIRST_DAY, dt.time(), dt.UTC)
    window = TableSlice("reading_date", first, first + dt.timedelta(days=days))
    for append in range(appends):
        delivery = pa.concat_tables(
            _rows(FIRST_DAY + dt.timedelta(days=offset), append, rows) for offset in range(days)
        )
        commit(table, delivery, WriteRequest("append", window, f"delivery-{append}"))
    build_s = time.perf_counter() - started
    before = table.current_snapshot()
    files_before = len(list(table.scan().plan_files()))
    manifests_before = len(before.manifests(table.io))
    started = time.perf_counter()
    result = compact_table(table, CompactionSettings(min_files=2))
    compact_s = time.perf_counter() - started
    after = table.current_snapshot()
    return {
        "days": days,
        "appends": appends,
        "rows_per_append": rows,
        "rows": table.scan().count(),
        "build_s": round(build_s, 1),
        "compact_s": round(compact_s, 2),
        "before_snapshot": before.snapshot_id,
        "after_snapshot": after.snapshot_id,
        "files_before": files_before,
        "files_after": len(list(table.scan().plan_files())),
        "manifests_before": manifests_before,
        "manifests_after": len(after.manifests(table.io)),
        "bytes_before": result.bytes_before,
        "bytes_after": result.bytes_after,
        "partitions_compacted": len(result.partitions),
    }


def child_scan(work: Path, snapshot_id: int, days: int) -> dict:
    table = catalog_for(work).load_table(IDENTIFIER)
    started = time.perf_counter()
    whole = table.scan(snapshot_id=snapshot_id).to_arrow()
    whole_s = time.perf_counter() - started
    middle = FIRST_DAY + dt.timedelta(days=days // 2)
    started = time.perf_counter()
    one_day = table.scan(
        snapshot_id=snapshot_id, row_filter=f"reading_date == '{middle.isoformat()}'"
    ).to_arrow()
    day_s = time.perf_counter() - started
    return {
        "seconds": whole_s + day_s,
        "whole_s": whole_s,
        "day_s": day_s,
        "rows": whole.num_rows,
        "day_rows": one_day.num_rows,
    }


def run(quick: bool = False, repeats: int | None = None) -> dict:
    days = int(os.environ.get("LAKEHOUSE_BENCH_COMPACTION_DAYS") or (4 if quick else 30))
    appends = int(os.environ.get("LAKEHOUSE_BENCH_COMPACTION_APPENDS") or (6 if quick else 24))
    rows = int(os.environ.get("LAKEHOUSE_BENCH_COMPACTION_ROWS") or (500 if quick else 2_000))
    repeats = repeats or (2 if quick else 7)
    with tempfile.TemporaryDirectory(prefix="bench-case7-") as directory:
        work = Path(directory)
        log(f"case 7: {days} days x {appends} appends x {rows} rows")
        built = run_child(
            [
                sys.executable,
                str(HERE),
                "--setup",
                str(work),
                "--days",
                str(days),
                "--appends",
                str(appends),
                "--rows",
                str(rows),
            ],
            timeout=3600,
        )
        info = built.data
        log(f"case 7: built {info}")
        pairs = Pairs(["before", "after"])
        details: dict[str, list[dict]] = {"before": [], "after": []}
        for repeat in range(repeats):
            order = ["before", "after"] if repeat % 2 == 0 else ["after", "before"]
            for name in order:
                snapshot = info[f"{name}_snapshot"]
                result = run_child(
                    [sys.executable, str(HERE), "--scan", str(work), str(snapshot), "--days", str(days)]
                )
                pairs.add(name, result.data["seconds"], result.data)
                details[name].append(result.data)
                log(f"case 7 #{repeat + 1} {name}: {result.data['seconds']:.3f} s")
    speedup = 1 / pairs.ratio("after", "before")
    import statistics

    def median_of(name: str, key: str) -> float:
        return statistics.median(detail[key] for detail in details[name])

    table_rows = [
        "| state | data files | manifests | whole table s | one day s | total median s | runs s |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name in pairs.names:
        table_rows.append(
            f"| {name} compaction | {info[f'files_{name}']} | {info[f'manifests_{name}']} | "
            f"{fmt_s(median_of(name, 'whole_s'))} | {fmt_s(median_of(name, 'day_s'))} | "
            f"{fmt_s(pairs.median(name))} | {fmt_list(pairs.runs[name])} |"
        )
    markdown = f"""
Table: {info["rows"]:,} rows in {info["days"]} day partitions, each holding {info["appends"]} files of
{info["rows_per_append"]:,} rows from {info["appends"]} rounds of deliveries (one commit per round; built in
{info["build_s"]:.0f} s).
`compact_table` rewrote the {info["partitions_compacted"]} partitions ({info["bytes_before"] / 2**20:.1f} MiB in
{info["files_before"]} files -> {info["bytes_after"] / 2**20:.1f} MiB in {info["files_after"]}) in one commit,
in **{info["compact_s"]:.1f} s**. {repeats} repetitions, alternating; each scan in a fresh process reads one
of the two snapshots by id: the whole table, then one day (`reading_date == middle day`).

{chr(10).join(table_rows)}

- before / after, per pair: {fmt_list([1 / r for r in pairs.ratios("after", "before")])} -> median
  **{speedup:.1f}x faster** after compaction
"""
    return {
        "markdown": markdown,
        "headlines": [
            {
                "case": f"7 scan of {info['days']} days x {info['appends']} small files, after compaction",
                "measured": f"{speedup:.1f}x faster (compaction {info['compact_s']:.1f} s)",
                "target": "faster",
                "ok": speedup > 1,
            }
        ],
        "raw": {"info": info, "runs": pairs.runs, "details": details},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--setup", type=Path)
    parser.add_argument("--scan", nargs=2, metavar=("WORK", "SNAPSHOT"))
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--appends", type=int, default=24)
    parser.add_argument("--rows", type=int, default=2_000)
    args = parser.parse_args()
    if args.setup:
        outcome = setup(args.setup, args.days, args.appends, args.rows)
    else:
        outcome = child_scan(Path(args.scan[0]), int(args.scan[1]), args.days)
    sys.stdout.write(json.dumps(outcome) + "\n")


if __name__ == "__main__":
    main()
