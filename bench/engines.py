"""Where the pandas/Spark threshold belongs: landing -> raw -> staging for one flights partition.

A flights day of the example is scaled up (each copy gets its own flight numbers, so keys stay
unique) and the three layers are materialised for that one partition on each engine, each run in
a fresh process. Wall time and the peak resident memory of the whole process tree (Python, Spark's
JVM and its Python workers) are sampled from outside.

    .venv/bin/python bench/engines.py --scales 1 10 100 400 1000 --out bench/ENGINES.md
"""

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

DAY = dt.date(2013, 1, 2)
FLIGHT_FIELD = 10


def write_scaled_day(landing: Path, scale: int) -> int:
    """The day's flights file repeated `scale` times with distinct flight numbers; returns its bytes."""
    from lakehouse_assets.cli.demo import write_demo_landing
    from resources.landing.local import LocalLandingStorage

    write_demo_landing(LocalLandingStorage(root=str(landing)), DAY, DAY)
    path = landing / "flights" / f"flights_{DAY}.csv"
    header, *lines = path.read_text().splitlines()
    scaled = [header]
    for copy in range(scale):
        for line in lines:
            fields = line.split(",")
            fields[FLIGHT_FIELD] = str(int(fields[FLIGHT_FIELD]) + copy * 10_000)
            scaled.append(",".join(fields))
    path.write_text("\n".join(scaled) + "\n")
    return path.stat().st_size


def run_child(home: Path) -> None:
    """In the measured process: materialise landing, raw and staging flights for the day."""
    import dagster as dg

    from lakehouse_assets.definitions import build_resources, defs
    from resources.settings import load_settings

    assets = list(defs().assets)
    # staging.flights checks carriers, airports and planes against the reference tables: load them
    # first, on pandas and outside the measurement
    measured_threshold = os.environ["LAKEHOUSE_SPARK_THRESHOLD_BYTES"]
    os.environ["LAKEHOUSE_SPARK_THRESHOLD_BYTES"] = str(1 << 50)
    reference = dg.AssetSelection.tag("partitioning", "none")
    assert dg.materialize(assets, resources=build_resources(load_settings()), selection=reference).success
    os.environ["LAKEHOUSE_SPARK_THRESHOLD_BYTES"] = measured_threshold
    resources = build_resources(load_settings())
    selection = [
        dg.AssetKey(["landing", "flights"]),
        dg.AssetKey(["raw", "flights"]),
        dg.AssetKey(["raw", "flights_rejects"]),
        dg.AssetKey(["staging", "flights"]),
    ]
    started = time.perf_counter()
    result = dg.materialize(assets, resources=resources, selection=selection, partition_key=str(DAY))
    elapsed = time.perf_counter() - started
    engines = sorted(
        {
            str(event.materialization.metadata["engine"].value)
            for event in result.get_asset_materialization_events()
            if "engine" in event.materialization.metadata
        }
    )
    rows = {
        event.asset_key.to_user_string(): event.materialization.metadata["rows_written"].value
        for event in result.get_asset_materialization_events()
    }
    (home / "result.json").write_text(
        json.dumps({"seconds": elapsed, "engines": engines, "rows": rows, "steps": step_seconds(result)})
    )


def step_seconds(result) -> dict[str, float]:
    """Each step's wall time as Dagster records it (STEP_SUCCESS's duration): where a run's seconds go."""
    return {
        event.step_key: round(event.event_specific_data.duration_ms / 1000, 2)
        for event in result.all_events
        if event.event_type_value == "STEP_SUCCESS"
    }


def peak_tree_rss(process: subprocess.Popen, interval: float = 0.05) -> tuple[int, float]:
    """Sample the RSS of the process and all its descendants until it exits; return peak and wall time."""
    peak, started = 0, time.perf_counter()
    parent = psutil.Process(process.pid)
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            try:
                tree = [parent, *parent.children(recursive=True)]
                total = 0
                for member in tree:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        total += member.memory_info().rss
                peak = max(peak, total)
            except psutil.NoSuchProcess:
                return
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    process.wait()
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    return peak, wall


def measure(scale: int, engine: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-") as directory:
        home = Path(directory)
        size = write_scaled_day(home / "landing", scale)
        env = os.environ | {
            "LAKEHOUSE_HOME": str(home),
            "LAKEHOUSE_SPARK_THRESHOLD_BYTES": "0" if engine == "spark" else str(1 << 50),
            "DAGSTER_HOME": str(home / "dagster"),
        }
        (home / "dagster").mkdir()
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", str(home)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        peak, wall = peak_tree_rss(child)
        if child.returncode != 0:
            raise RuntimeError(f"scale {scale} on {engine} failed: {child.stderr.read().decode()[-2000:]}")
        result = json.loads((home / "result.json").read_text())
    return {
        "scale": scale,
        "engine": engine,
        "csv_bytes": size,
        "rows": result["rows"].get("landing/flights"),
        "engines_seen": result["engines"],
        "materialise_s": round(result["seconds"], 2),
        "process_s": round(wall, 2),
        "peak_rss_mib": round(peak / 2**20),
        "step_s": result.get("steps", {}),
    }


def report(results: list[dict], command: str) -> str:
    lines = [
        "# Engine benchmark: landing -> raw -> staging, one flights partition",
        "",
        f"Command: `{command}`",
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, "
        f"{round(psutil.virtual_memory().total / 2**30)} GiB, Python {platform.python_version()}",
        f"Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; load average at the end "
        f"{' / '.join(f'{value:.1f}' for value in os.getloadavg())} (1/5/15 min)",
        "",
        "`materialise_s`: the three assets inside the process; `process_s`: the whole process "
        "(imports, Spark start-up); `peak_rss_mib`: peak resident memory of the process tree "
        "(Python, JVM, Python workers), sampled every 50 ms.",
        "",
        "| scale | rows | CSV MiB | engine | materialise s | process s | peak RSS MiB |",
        "|---:|---:|---:|---|---:|---:|---:|",
    ]
    for item in results:
        lines.append(
            f"| {item['scale']}x | {item['rows']:,} | {item['csv_bytes'] / 2**20:.1f} | {item['engine']} | "
            f"{item['materialise_s']} | {item['process_s']} | {item['peak_rss_mib']:,} |"
        )
    lines += [
        "",
        "Seconds per step (STEP_START to STEP_SUCCESS; a Spark run's first step includes the session's start):",
        "",
    ]
    lines += [f"- {item['scale']}x {item['engine']}: {item['step_s']}" for item in results]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100, 400])
    parser.add_argument("--engines", nargs="+", default=["pandas", "spark"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        run_child(args.child)
        return
    results = []
    for scale in args.scales:
        for engine in args.engines:
            results.append(measure(scale, engine))
            sys.stderr.write(json.dumps(results[-1]) + "\n")
    text = report(results, "python " + " ".join(sys.argv))
    if args.out:
        args.out.write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
