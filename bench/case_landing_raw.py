"""Case 1: landing -> raw for one flights partition scaled to about 1M rows.

Variants, each in a fresh process that first writes a small warm-up partition (2013-01-01) so
one-off costs (lazy imports, table creation) stay out of the figure for the measured one
(2013-01-02):

- `ours`: the file's bytes -> `read_landed_file` -> `type_landing_rows` -> our IcebergIOManager
  (`handle_output` for the typed table and the rejects: commit + its metadata), inside a Dagster
  multi-asset run; the figure is the sum of the three phases (Dagster's own run overhead excluded).
- `floor`: pyarrow reads the same CSV as strings, casts to the contract's types, writes one
  Parquet file (zstd, like pyiceberg); no catalog.
- `ours write` / `dagster-iceberg write`: the two IO managers' `handle_output` for the same typed
  frame (pandas, Arrow-backed, read from one Parquet file), in their own virtualenvs.
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from harness import alternate, child_env, fmt_list, fmt_s, log, peer_python, peer_versions, run_child

HERE = Path(__file__).resolve()
DAY = dt.date(2013, 1, 2)
WARMUP_DAY = dt.date(2013, 1, 1)
WARMUP_ROWS = 2000


def csv_name(day: dt.date) -> str:
    return f"flights/flights_{day}.csv"


def prepare(work: Path, target_rows: int) -> dict:
    """The scaled CSV, a small warm-up CSV, and the typed frames as Parquet for the write-only variants."""
    import pyarrow.parquet as pq
    from engines import write_scaled_day

    from lakehouse_assets.components.defs_folder import contracts_in
    from lakehouse_assets.layers.landing import read_landed_file
    from lakehouse_assets.layers.raw import type_landing_rows
    from resources.landing.local import LandedFile

    landing = work / "landing"
    write_scaled_day(landing, 1)
    rows_per_copy = len((landing / csv_name(DAY)).read_text().splitlines()) - 1
    scale = max(1, round(target_rows / rows_per_copy))
    write_scaled_day(landing, scale)
    big = landing / csv_name(DAY)
    header, *lines = big.read_text().splitlines()[: WARMUP_ROWS + 1]
    (landing / csv_name(WARMUP_DAY)).write_text("\n".join([header, *lines]) + "\n")

    contract = next(c for c in contracts_in() if c.name == "flights")
    loaded_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    info = {"scale": scale}
    for day, name in ((DAY, "typed.parquet"), (WARMUP_DAY, "warmup.parquet")):
        path = landing / csv_name(day)
        data = path.read_bytes()
        file = LandedFile(
            key=csv_name(day), size=len(data), checksum=hashlib.md5(data, usedforsecurity=False).hexdigest()
        )
        typed = type_landing_rows(read_landed_file(data, file, contract, loaded_at), contract).typed
        pq.write_table(typed, work / name)
        if day == DAY:
            info |= {"rows": typed.num_rows, "csv_mib": len(data) / 2**20, "columns": typed.num_columns}
    return info


# ---------------------------------------------------------------------------------------------
# children


def _time_handle_output(io_manager_class, timings: dict) -> None:
    original = io_manager_class.handle_output

    def timed(self, context, obj):
        started, cpu_started = time.perf_counter(), time.process_time()
        original(self, context, obj)
        timings["write"] = timings.get("write", 0.0) + time.perf_counter() - started
        timings["write_cpu"] = timings.get("write_cpu", 0.0) + time.process_time() - cpu_started

    io_manager_class.handle_output = timed


def child_ours(work: Path, source: str) -> dict:
    """source `csv`: read + type + write; `frame`: write the typed frame from Parquet only."""
    import dagster as dg
    import pandas as pd

    from io_managers.iceberg_io_manager import IcebergIOManager
    from lakehouse_assets.assets.factory import _table_metadata, _table_spec
    from lakehouse_assets.components.defs_folder import contracts_in
    from lakehouse_assets.layers.landing import FILE_DATE, read_landed_file
    from lakehouse_assets.layers.raw import type_landing_rows
    from resources.catalog.resource import IcebergCatalogResource
    from resources.landing.local import LandedFile
    from resources.spark.compute import ComputeResource
    from resources.spark.session import SparkResource

    contract = next(c for c in contracts_in() if c.name == "flights")
    timings: dict = {}
    _time_handle_output(IcebergIOManager, timings)
    metadata = _table_metadata(
        _table_spec(contract, "raw", partition_column=FILE_DATE, write_mode="overwrite"), columns=[]
    )
    partitions = dg.DailyPartitionsDefinition(start_date=str(WARMUP_DAY))
    checksums = {}

    @dg.multi_asset(
        outs={
            "typed": dg.AssetOut(key=["raw", "flights"], metadata=metadata),
            "rejects": dg.AssetOut(key=["raw", "flights_rejects"], metadata=metadata, is_required=False),
        },
        partitions_def=partitions,
        can_subset=True,
    )
    def raw_flights(context: dg.AssetExecutionContext):
        day = context.partition_time_window.start.date()
        if source == "frame":
            frame = pd.read_parquet(
                work / ("typed.parquet" if day == DAY else "warmup.parquet"), dtype_backend="pyarrow"
            )
            timings.clear()
            yield dg.Output(frame, output_name="typed")
            return
        timings.clear()
        started, cpu_started = time.perf_counter(), time.process_time()
        path = work / "landing" / csv_name(day)
        data = path.read_bytes()
        # the landing asset computes the checksum when it lists files; it is not part of this path
        checksum = checksums.get(day) or hashlib.md5(data, usedforsecurity=False).hexdigest()
        file = LandedFile(key=csv_name(day), size=len(data), checksum=checksum)
        landing = read_landed_file(data, file, contract, dt.datetime.now(dt.UTC))
        timings["read"] = time.perf_counter() - started
        timings["read_cpu"] = time.process_time() - cpu_started
        started, cpu_started = time.perf_counter(), time.process_time()
        result = type_landing_rows(landing, contract)
        timings["type"] = time.perf_counter() - started
        timings["type_cpu"] = time.process_time() - cpu_started
        yield dg.Output(result.typed, output_name="typed")
        yield dg.Output(result.rejects, output_name="rejects")

    catalog = IcebergCatalogResource.sql(f"sqlite:///{work / 'ours.db'}", (work / "ours-warehouse").as_uri())
    compute = ComputeResource(spark=SparkResource())
    resources = {"io_manager": IcebergIOManager(catalog=catalog, compute=compute)}
    for day in (WARMUP_DAY, DAY):
        path = work / "landing" / csv_name(day)
        checksums[day] = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    outcome = {}
    for day in (WARMUP_DAY, DAY):
        started = time.perf_counter()
        dg.materialize([raw_flights], resources=resources, partition_key=str(day), raise_on_error=True)
        outcome = dict(timings) | {"materialize": time.perf_counter() - started}
    table = catalog.load().load_table("raw.flights")
    outcome["rows_in_table"] = table.scan().count()
    outcome["seconds"] = sum(outcome.get(name, 0.0) for name in ("read", "type", "write"))
    outcome["cpu_seconds"] = sum(outcome.get(f"{name}_cpu", 0.0) for name in ("read", "type", "write"))
    return outcome


def child_floor(work: Path, pool: str = "default") -> dict:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if pool == "jemalloc":
        # the pool ours switches to (io_managers/arrow_memory.py): the floor with the same allocator
        pa.set_memory_pool(pa.jemalloc_memory_pool())

    from lakehouse_assets.components.defs_folder import contracts_in
    from lakehouse_assets.layers.raw import arrow_type

    contract = next(c for c in contracts_in() if c.name == "flights")
    columns = [(c.name, arrow_type(c.type), c.type) for c in contract.columns]
    null_values = list(contract.source.csv.null_values)
    outcome = {}
    for day in (WARMUP_DAY, DAY):
        cpu = {}
        started, cpu["read"] = time.perf_counter(), time.process_time()
        table = pacsv.read_csv(
            work / "landing" / csv_name(day),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name, _, _ in columns},
                null_values=null_values,
                strings_can_be_null=True,
            ),
        )
        read = time.perf_counter() - started
        cpu["read"] = time.process_time() - cpu["read"]
        started, cpu["type"] = time.perf_counter(), time.process_time()
        typed = {}
        for name, target, _ in columns:
            # ISO 8601 with an offset ("2013-01-03T04:00:00Z") casts straight to a zoned timestamp
            typed[name] = pc.cast(table.column(name), target)
        typed["_file_date"] = pa.repeat(pa.scalar(day), table.num_rows)
        typed = pa.table(typed)
        cast = time.perf_counter() - started
        cpu["type"] = time.process_time() - cpu["type"]
        started, cpu["write"] = time.perf_counter(), time.process_time()
        pq.write_table(typed, work / f"floor-{day}.parquet", compression="zstd")
        write = time.perf_counter() - started
        cpu["write"] = time.process_time() - cpu["write"]
        outcome = {
            **{f"{name}_cpu": seconds for name, seconds in cpu.items()},
            "cpu_seconds": sum(cpu.values()),
            "read": read,
            "type": cast,
            "write": write,
            "seconds": read + cast + write,
            "rows": typed.num_rows,
        }
    return outcome


def child_diagnose(work: Path) -> dict:
    """Where `read` and `type` spend their time, part by part, against the plain pyarrow calls."""
    import io
    import re

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from lakehouse_assets.components.defs_folder import contracts_in
    from lakehouse_assets.layers import raw
    from lakehouse_assets.layers.landing import read_landed_file
    from resources.landing.local import LandedFile

    contract = next(c for c in contracts_in() if c.name == "flights")
    data = (work / "landing" / csv_name(DAY)).read_bytes()
    file = LandedFile(key=csv_name(DAY), size=len(data), checksum="0" * 32)
    timings: dict[str, float] = {}

    def timed(name: str, function):
        started = time.perf_counter()
        result = function()
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
        return result

    strings = pacsv.ConvertOptions(column_types={name: pa.string() for name in contract.column_names})
    landing = timed(
        "read_landed_file", lambda: read_landed_file(data, file, contract, dt.datetime.now(dt.UTC))
    )
    timed(
        "pyarrow read_csv, serial",
        lambda: pacsv.read_csv(
            io.BytesIO(data), read_options=pacsv.ReadOptions(use_threads=False), convert_options=strings
        ),
    )
    timed("pyarrow read_csv, threads", lambda: pacsv.read_csv(io.BytesIO(data), convert_options=strings))
    timed("decode to str + blank-line regex", lambda: re.search(r"\n\r?\n", "\n" + data.decode()))
    timed("blank-line search on bytes", lambda: data.find(b"\n\n"))
    null_values = pa.array(contract.source.csv.null_values, pa.string())
    for column in contract.columns:
        original = landing.column(column.name).combine_chunks()
        source = pc.if_else(
            pc.invert(pc.is_in(original, null_values)), original, pa.scalar(None, pa.string())
        )
        timed(
            f"validated parse, {column.type} columns",
            lambda source=source, column=column: raw._parse(source, column),
        )
        timed(
            f"plain pc.cast, {column.type} columns",
            lambda source=source, column=column: pc.cast(source, raw.arrow_type(column.type)),
        )
    timed("type_landing_rows", lambda: raw.type_landing_rows(landing, contract))
    return {"seconds": 0.0, "timings": timings}


# ---------------------------------------------------------------------------------------------
# parent


def run(quick: bool = False, repeats: int | None = None) -> dict:
    target_rows = 50_000 if quick else 1_000_000
    repeats = repeats or (2 if quick else 4)
    python = sys.executable
    peer = peer_python()
    with tempfile.TemporaryDirectory(prefix="bench-case1-") as directory:
        work = Path(directory)
        log(f"case 1: preparing ~{target_rows:,} rows")
        info = prepare(work, target_rows)
        peaks: dict[str, list[float]] = {}

        def variant(name: str, command: list[str]):
            def measure():
                for leftover in work.glob("*.db"):
                    leftover.unlink()
                result = run_child(command, env=child_env(DAGSTER_HOME=str(work / "dagster")), timeout=900)
                if result.timed_out:
                    raise RuntimeError(f"{name} timed out")
                peaks.setdefault(name, []).append(result.peak_rss_mib)
                return result.data["seconds"], result.data

            return measure

        (work / "dagster").mkdir()
        pairs = alternate(
            {
                "ours": variant("ours", [python, str(HERE), "--child", "ours-csv", str(work)]),
                "floor": variant("floor", [python, str(HERE), "--child", "floor", str(work)]),
                "floor, jemalloc": variant(
                    "floor, jemalloc", [python, str(HERE), "--child", "floor-jemalloc", str(work)]
                ),
                "ours write": variant("ours write", [python, str(HERE), "--child", "ours-frame", str(work)]),
                "dagster-iceberg write": variant(
                    "dagster-iceberg write",
                    [str(peer), str(HERE.parent / "peer_dagster_iceberg.py"), str(work)],
                ),
            },
            repeats,
            "case 1",
        )
        log("case 1: diagnostics")
        diagnosis = run_child([python, str(HERE), "--child", "diagnose", str(work)], timeout=600).data[
            "timings"
        ]
    versions = peer_versions(peer)
    vs_floor = pairs.ratio("ours", "floor")
    vs_floor_jemalloc = pairs.ratio("ours", "floor, jemalloc")
    vs_peer = pairs.ratio("ours write", "dagster-iceberg write")

    def phases(name: str, suffix: str = "") -> str:
        import statistics

        extras = pairs.extra[name]
        return " / ".join(
            fmt_s(statistics.median(extra.get(phase + suffix, 0.0) for extra in extras))
            for phase in ("read", "type", "write")
        )

    def cpu(name: str) -> str:
        import statistics

        seconds = [extra["cpu_seconds"] for extra in pairs.extra[name] if "cpu_seconds" in extra]
        return f"{fmt_s(statistics.median(seconds))} ({phases(name, '_cpu')})" if seconds else "-"

    import statistics

    rows = [
        "| variant | median s | read / type / write s | CPU s (read / type / write) | runs s | peak MiB |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for name in pairs.names:
        rows.append(
            f"| {name} | {fmt_s(pairs.median(name))} | {phases(name)} | {cpu(name)} | {fmt_list(pairs.runs[name])} | "
            f"{statistics.median(peaks[name]):,.0f} |"
        )
    markdown = f"""
{info["rows"]:,} rows ({info["csv_mib"]:.0f} MiB of CSV: the 2013-01-02 file repeated {info["scale"]}x with distinct
flight numbers), {info["columns"]} typed columns. {repeats} repetitions, order alternating. Peer:
dagster-iceberg {versions["dagster-iceberg"]} (pyiceberg {versions["pyiceberg"]}, dagster {versions["dagster"]},
pandas {versions["pandas"]}, pyarrow {versions["pyarrow"]}) in `{peer.parent.parent}`.

{chr(10).join(rows)}

- ours / floor, per pair: {fmt_list(pairs.ratios("ours", "floor"))} -> median **{vs_floor:.2f}x** (target <= 1.5x)
- ours / floor with the jemalloc pool (the allocator ours switches to), per pair:
  {fmt_list(pairs.ratios("ours", "floor, jemalloc"))} -> median **{vs_floor_jemalloc:.2f}x**
- ours write / dagster-iceberg write, per pair: {fmt_list(pairs.ratios("ours write", "dagster-iceberg write"))}
  -> median **{vs_peer:.2f}x** (target < 1)

CPU is the process's CPU time (every thread's: the threaded CSV parse counts once per core it
ran on), less sensitive than wall time to what else the machine runs.

`floor, jemalloc` = the same floor with pyarrow's jemalloc pool as its default, as ours
allocates (`io_managers/arrow_memory.py`); pyarrow's default pool, mimalloc, returns freed pages
to the system after 10 ms and faults them in again on the next allocation.

`ours` = read (`read_landed_file` on the file's bytes) + type (`type_landing_rows`) + write (our IO
manager's `handle_output` for `raw.flights` and the empty `raw.flights_rejects`: schema/doc
evolution, the partition overwrite commit, `slice_row_count` and the preview). `floor` = pyarrow
`read_csv` as strings (multi-threaded) + `cast` + `write_table` (zstd). The write-only pair hands
both IO managers the same Arrow-backed pandas frame for the same daily partition of a table that
already holds the warm-up partition.

Where `read` and `type` go (one diagnostic process on the same file, seconds):

| part | s |
|---|---:|
{chr(10).join(f"| {name} | {seconds:.3f} |" for name, seconds in diagnosis.items())}
"""
    return {
        "markdown": markdown,
        "headlines": [
            {
                "case": "1 landing->raw vs floor",
                "measured": f"{vs_floor:.2f}x",
                "target": "<= 1.5x",
                "ok": vs_floor <= 1.5,
            },
            {
                "case": "1 landing->raw vs floor on jemalloc",
                "measured": f"{vs_floor_jemalloc:.2f}x",
                "target": "<= 1.5x",
                "ok": vs_floor_jemalloc <= 1.5,
            },
            {
                "case": "1 write vs dagster-iceberg",
                "measured": f"{vs_peer:.2f}x",
                "target": "< 1x (faster)",
                "ok": vs_peer < 1,
            },
        ],
        "raw": {
            "info": info,
            "diagnosis": diagnosis,
            "runs": pairs.runs,
            "extra": pairs.extra,
            "peaks": peaks,
            "peer": versions,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--child", choices=["ours-csv", "ours-frame", "floor", "floor-jemalloc", "diagnose"], required=True
    )
    parser.add_argument("work", type=Path)
    args = parser.parse_args()
    if args.child.startswith("floor"):
        outcome = child_floor(args.work, "jemalloc" if args.child == "floor-jemalloc" else "default")
    elif args.child == "diagnose":
        outcome = child_diagnose(args.work)
    else:
        outcome = child_ours(args.work, "csv" if args.child == "ours-csv" else "frame")
    sys.stdout.write(json.dumps(outcome) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    os.environ.setdefault("DAGSTER_HOME", tempfile.mkdtemp())
    main()
