"""Landing -> raw typing on one flights partition of about 1M rows: `read_landed_file` and
`type_landing_rows`, in one process, median of a few runs each (no catalog, no Dagster).

The file is case 1's: the 2013-01-02 flights file of the demo data repeated (about 1060x for 1M
rows) with distinct flight numbers. It is written under `--work` once and reused by later runs, so
the same file can be timed against other versions of the code:

    PYTHONPATH=. .venv/bin/python bench/typing_profile.py --work /tmp/typing-bench
    # the code of another revision, same script and file:
    mkdir /tmp/typing-main && git archive main lakehouse_assets resources | tar -x -C /tmp/typing-main
    PYTHONPATH=/tmp/typing-main .venv/bin/python bench/typing_profile.py --work /tmp/typing-bench

On a busy machine, alternate the two in separate processes a few times and compare the medians.

`--variant quoted` puts every field in double quotes, `--variant one-bad` makes one value a reject.
`--parts` adds, for the typing, the time of each contract type's parse (`_parse` per column,
summed by type) next to a plain `pc.cast` of the same columns.
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
DAY = dt.date(2013, 1, 2)
DEP_TIME_FIELD = 3


def scaled_file(work: Path, target_rows: int) -> Path:
    """The scaled flights CSV under `work`, written when missing (as case 1 builds it)."""
    from engines import write_scaled_day

    path = work / "landing" / "flights" / f"flights_{DAY}.csv"
    marker = work / "rows"
    if path.exists() and marker.exists() and marker.read_text() == str(target_rows):
        return path
    write_scaled_day(work / "landing", 1)
    rows_per_copy = len(path.read_text().splitlines()) - 1
    write_scaled_day(work / "landing", max(1, round(target_rows / rows_per_copy)))
    marker.write_text(str(target_rows))
    return path


def variant(data: bytes, name: str) -> bytes:
    """The file as exported: `plain`; `quoted`, every field in double quotes (as spreadsheets
    export); `one-bad`, one `dep_time` in the middle that is no int (one reject, that column typed
    by the validator)."""
    lines = data.rstrip(b"\n").split(b"\n")
    if name == "quoted":
        lines = [b'"' + line.replace(b",", b'","') + b'"' for line in lines]
    elif name == "one-bad":
        middle = len(lines) // 2
        fields = lines[middle].split(b",")
        fields[DEP_TIME_FIELD] = b"12x"
        lines[middle] = b",".join(fields)
    return b"\n".join(lines) + b"\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", type=Path, help="where the CSV is (kept); a temporary directory by default")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--parts", action="store_true", help="time each type's parse as well")
    parser.add_argument("--variant", choices=["plain", "quoted", "one-bad"], default="plain")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="typing-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("LAKEHOUSE_HOME", str(work / "home"))

    import pyarrow as pa
    import pyarrow.compute as pc

    from lakehouse_assets.components.defs_folder import DEFS_DIR, contract_in
    from lakehouse_assets.layers import raw
    from lakehouse_assets.layers.landing import read_landed_file
    from resources.landing.local import LandedFile

    path = scaled_file(work, args.rows)
    contract = contract_in(DEFS_DIR / "datasets" / "flights" / "defs.yaml")
    data = path.read_bytes()
    if args.variant != "plain":
        data = variant(data, args.variant)
    file = LandedFile(
        key=f"flights/{path.name}",
        size=len(data),
        checksum=hashlib.md5(data, usedforsecurity=False).hexdigest(),
    )
    loaded_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    runs: dict[str, list[float]] = {}
    load_before = os.getloadavg()

    cpu: dict[str, list[float]] = {}

    def timed(name: str, function):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = function()
        runs.setdefault(name, []).append(time.perf_counter() - started)
        cpu.setdefault(name, []).append(time.process_time() - cpu_started)
        return result

    landing = result = None
    for _ in range(args.repeats):
        landing = timed("read_landed_file", lambda: read_landed_file(data, file, contract, loaded_at))
        result = timed("type_landing_rows", lambda landing=landing: raw.type_landing_rows(landing, contract))
    if args.parts:
        null_values = pa.array(contract.source.csv.null_values, pa.string())
        for _ in range(args.repeats):
            totals: dict[str, float] = {}
            for column in contract.columns:
                original = landing.column(column.name).combine_chunks()
                present = pc.invert(pc.is_in(original, null_values))
                source = pc.if_else(present, original, pa.scalar(None, pa.string()))
                target = raw.arrow_type(column.type)
                for label, function, argument in (
                    (f"_parse, {column.type} columns", raw._parse, column),
                    (f"plain pc.cast, {column.type} columns", pc.cast, target),
                ):
                    started = time.perf_counter()
                    function(source, argument)
                    totals[label] = totals.get(label, 0.0) + time.perf_counter() - started
            for label, seconds in totals.items():
                runs.setdefault(label, []).append(seconds)
    report = {
        "code": str(Path(raw.__file__).parent.parent),
        "variant": args.variant,
        "rows": landing.num_rows,
        "csv_mib": round(len(data) / 2**20, 1),
        "typed": result.typed.num_rows,
        "rejects": result.rejects.num_rows,
        "load_average": {"start": load_before, "end": os.getloadavg()},
        "median_s": {name: round(statistics.median(seconds), 3) for name, seconds in runs.items()},
        "runs_s": {name: [round(s, 3) for s in seconds] for name, seconds in runs.items()},
        # CPU time of the process: less sensitive to other load than wall time
        "median_cpu_s": {name: round(statistics.median(seconds), 3) for name, seconds in cpu.items()},
    }
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    main()
