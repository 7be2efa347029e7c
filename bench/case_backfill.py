"""Case 4: backfill of the 2013 example, all layers, against a plain pandas script.

`ours` runs what a Dagster backfill of the example launches: one run for the reference tables,
then one run per chunk of days for every daily table (`lakehouse_assets.automation.policies`: up to
LAKEHOUSE_PANDAS_DAYS_PER_RUN partitions per run), each run in a process of its own (as the run launcher
does) against a persistent Dagster instance and a fresh catalog. Its time is the sum of the runs' process wall times.
`plain pandas` is bench/plain_pandas.py over the same landing files, one process.

The landing files are written once (not timed). Each repetition starts from an empty catalog.
"""

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from harness import alternate, child_env, fmt_list, fmt_s, run_child

HERE = Path(__file__).resolve()
YEAR = (dt.date(2013, 1, 1), dt.date(2013, 12, 31))


def chunks(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """The runs a Dagster backfill launches under the product's policy: consecutive days, N per run."""
    from resources.settings import load_settings

    days_per_run = load_settings().pandas_days_per_run
    ranges, first = [], start
    while first <= end:
        last = min(end, first + dt.timedelta(days=days_per_run - 1))
        ranges.append((first, last))
        first = last + dt.timedelta(days=1)
    return ranges


def child_run(selection: str, start: str | None, end: str | None) -> dict:
    """One backfill run, in its own process: the code location loads, then the run executes."""
    started = time.perf_counter()
    import dagster as dg
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    from lakehouse_assets.definitions import defs

    # How much of a run is the local instance writing its event log (SQLite, one commit per event).
    event_log = {"seconds": 0.0, "events": 0}
    store_event = SqliteEventLogStorage.store_event

    def timed_store_event(self, event):
        begun = time.perf_counter()
        store_event(self, event)
        event_log["seconds"] += time.perf_counter() - begun
        event_log["events"] += 1

    SqliteEventLogStorage.store_event = timed_store_event

    definitions = defs()
    loaded = time.perf_counter()
    tags = {}
    partition_key = None
    if start and end and start != end:
        tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    elif start:
        partition_key = start
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(
            list(definitions.assets),
            resources=definitions.resources,
            selection=dg.AssetSelection.tag("partitioning", selection),
            partition_key=partition_key,
            tags=tags,
            instance=instance,
        )
    checks = [event.passed for event in result.get_asset_check_evaluations()]
    return {
        "seconds": time.perf_counter() - loaded,
        "load_s": loaded - started,
        "success": result.success,
        "checks_passed": sum(checks),
        "checks": len(checks),
        "event_log_s": event_log["seconds"],
        "events": event_log["events"],
    }


def run(quick: bool = False, repeats: int | None = None) -> dict:
    import os

    end = (
        dt.date.fromisoformat(os.environ["LAKEHOUSE_BENCH_BACKFILL_END"])
        if os.environ.get("LAKEHOUSE_BENCH_BACKFILL_END")
        else (dt.date(2013, 1, 10) if quick else YEAR[1])
    )
    start = YEAR[0]
    repeats = repeats or int(os.environ.get("LAKEHOUSE_BENCH_BACKFILL_REPEATS") or 1)
    runs = chunks(start, end)
    with tempfile.TemporaryDirectory(prefix="bench-case4-") as directory:
        work = Path(directory)
        home = work / "lakehouse"
        from lakehouse_assets.cli.demo import write_demo_landing
        from resources.landing.local import LocalLandingStorage

        write_demo_landing(LocalLandingStorage(root=str(home / "landing")), start, end)
        env = child_env(
            LAKEHOUSE_HOME=str(home),
            DAGSTER_HOME=str(work / "dagster"),
            LAKEHOUSE_SPARK_THRESHOLD_BYTES=str(1 << 50),
        )
        (work / "dagster").mkdir()
        (work / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        details: dict[str, list] = {}

        def ours():
            for state in (home / "catalog.db", home / "warehouse"):
                if state.is_dir():
                    shutil.rmtree(state)
                elif state.exists():
                    state.unlink()
            total, inner, events, event_s, per_run, run_events = 0.0, 0.0, 0, 0.0, [], []
            plan = [("none", None, None)] + [("daily", str(first), str(last)) for first, last in runs]
            for selection, first, last in plan:
                command = [sys.executable, str(HERE), "--run", selection]
                if first:
                    command += ["--start", first, "--end", last]
                result = run_child(command, env=env, timeout=1200)
                if result.timed_out or not result.data.get("success"):
                    raise RuntimeError(f"backfill run {selection} {first}..{last} failed: {result.data}")
                total += result.wall_s
                inner += result.data["seconds"]
                events += result.data["events"]
                event_s += result.data["event_log_s"]
                per_run.append(round(result.wall_s, 1))
                run_events.append(f"{result.data['events']} ({result.data['event_log_s']:.1f} s)")
            details.setdefault("ours", []).append({"runs": per_run, "inside_runs_s": inner})
            return total, {
                "inside_runs_s": inner,
                "runs_s": per_run,
                "run_events": run_events,
                "events": events,
                "event_log_s": event_s,
            }

        def plain():
            out = work / "plain"
            shutil.rmtree(out, ignore_errors=True)
            result = run_child(
                [
                    sys.executable,
                    str(HERE.parent / "plain_pandas.py"),
                    str(home / "landing"),
                    str(out),
                    "--start",
                    str(start),
                    "--end",
                    str(end),
                ],
                env=env,
                timeout=1200,
            )
            details.setdefault("plain", []).append(result.data)
            return result.wall_s, result.data

        pairs = alternate({"ours": ours, "plain pandas": plain}, repeats, "case 4")
    ratio = pairs.ratio("ours", "plain pandas")
    import statistics

    inner = statistics.median(item["inside_runs_s"] for item in pairs.extra["ours"])
    event_s = statistics.median(item["event_log_s"] for item in pairs.extra["ours"])
    events = pairs.extra["ours"][-1]["events"]
    plain_inner = statistics.median(item["seconds"] for item in pairs.extra["plain pandas"])
    rows = pairs.extra["plain pandas"][-1].get("rows", {})
    days = (end - start).days + 1
    markdown = f"""
{start}..{end} ({days} days, {rows.get("flights", {}).get("landing", 0):,} flights, {rows.get("weather", {}).get("landing", 0):,}
weather rows) plus the three reference tables, landing to output. Ours: {len(runs) + 1} runs (reference tables,
then one per chunk of {runs[0][1].toordinal() - runs[0][0].toordinal() + 1 if runs else 0} days: LAKEHOUSE_PANDAS_DAYS_PER_RUN), each a process. {repeats} repetitions, alternating.

| variant | median wall s | inside the runs s (no process start-up, no imports) | of which Dagster event log s (events) | runs s |
|---|---:|---:|---:|---|
| ours | {fmt_s(pairs.median("ours"))} | {fmt_s(inner)} | {fmt_s(event_s)} ({events:,}) | {fmt_list(pairs.runs["ours"], 1)} |
| plain pandas | {fmt_s(pairs.median("plain pandas"))} | {fmt_s(plain_inner)} | - | {fmt_list(pairs.runs["plain pandas"], 1)} |

- ours / plain pandas, per pair: {fmt_list(pairs.ratios("ours", "plain pandas"))} -> median **{ratio:.2f}x** (target <= 3x)
- wall time of each of our runs (last repetition; reference run first): {", ".join(map(str, pairs.extra["ours"][-1]["runs_s"]))}
- Dagster events of each run (seconds writing them to the event log): {", ".join(pairs.extra["ours"][-1]["run_events"])}
"""
    return {
        "markdown": markdown,
        "headlines": [
            {
                "case": f"4 backfill {days} days vs plain pandas",
                "measured": f"{ratio:.2f}x",
                "target": "<= 3x",
                "ok": ratio <= 3,
            }
        ],
        "raw": {"runs": pairs.runs, "extra": pairs.extra, "details": details},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", choices=["none", "daily"], required=True)
    parser.add_argument("--start")
    parser.add_argument("--end")
    args = parser.parse_args()
    sys.stdout.write(json.dumps(child_run(args.run, args.start, args.end)) + "\n")


if __name__ == "__main__":
    main()
