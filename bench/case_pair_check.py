"""The torn-pair check on every read of raw: what it costs on the demo.

Writes the demo's January 2013 into a fresh LAKEHOUSE_HOME, materialises landing and raw of
`flights` one day per run (31 runs, so raw and its rejects carry 31 pair commits each, as after a
month of daily arrivals), then times, for one day's slice:

- `check`: what `read_input` adds, `refuse_torn_pair` (load the rejects table's metadata, walk both
  tables' snapshot summaries);
  its two parts apart;
- what `read_input` does anyway: the size estimate from the manifests, and the read it guards, the
  day's slice of raw.flights as Arrow (`slice_scan(...).to_arrow()`).

    .venv/bin/python bench/case_pair_check.py [--days 31] [--repeat 50]
"""

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="pair-check-"))
    os.environ["LAKEHOUSE_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    (home / "dagster").mkdir(parents=True)

    import dagster as dg

    from io_managers.commit import estimate_slice_bytes, slice_scan
    from io_managers.pairs import torn_stretches
    from io_managers.read import refuse_torn_pair
    from io_managers.slices import TableSlice
    from io_managers.table_spec import PairSpec
    from lakehouse_assets.cli.demo import write_demo_landing
    from lakehouse_assets.definitions import defs
    from resources.landing.local import LocalLandingStorage

    start = dt.date(2013, 1, 1)
    end = start + dt.timedelta(days=args.days - 1)
    write_demo_landing(LocalLandingStorage(root=str(home / "landing")), start, end)
    definitions = defs()
    keys = [
        dg.AssetKey(["landing", "flights"]),
        dg.AssetKey(["raw", "flights"]),
        dg.AssetKey(["raw", "flights_rejects"]),
    ]
    job = definitions.resolve_implicit_global_asset_job_def().get_subset(asset_selection=set(keys))
    with dg.DagsterInstance.ephemeral() as instance:
        for offset in range(args.days):
            day = str(start + dt.timedelta(days=offset))
            assert job.execute_in_process(instance=instance, partition_key=day).success, day
    catalog = definitions.resources["catalog"]
    table = catalog.load().load_table("raw.flights")
    pair = PairSpec(first="raw.flights_rejects", last="raw.flights")
    moment = dt.datetime(2013, 1, 15, tzinfo=dt.UTC)
    day_slice = TableSlice("_file_date", moment, moment + dt.timedelta(days=1))

    def timed(action) -> list[float]:
        times = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            action()
            times.append((time.perf_counter() - began) * 1000)
        return times

    check = timed(lambda: refuse_torn_pair(catalog, pair, "raw.flights", table, day_slice))
    rejects = catalog.load().load_table("raw.flights_rejects")
    load = timed(lambda: catalog.load().load_table("raw.flights_rejects"))
    walk = timed(lambda: torn_stretches(rejects, table, day_slice))
    estimate = timed(lambda: estimate_slice_bytes(table, day_slice))
    read = timed(lambda: slice_scan(table, day_slice).to_arrow())
    rows = slice_scan(table, day_slice).to_arrow().num_rows
    print(
        f"raw.flights: {len(table.metadata.snapshots)} snapshots; the day's slice {rows} rows; "
        f"{args.repeat} repeats"
    )
    for name, times in (
        ("check (load + walk)", check),
        ("  load the rejects table's metadata", load),
        ("  walk both tables' snapshot summaries", walk),
        ("read_input's size estimate (manifests)", estimate),
        ("the slice's read (Arrow)", read),
    ):
        print(
            f"{name}: median {statistics.median(times):.2f} ms, p90 {sorted(times)[int(0.9 * len(times))]:.2f} ms"
        )


if __name__ == "__main__":
    main()
