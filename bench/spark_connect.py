"""One day of the example, landing -> staging, on Spark: in process against over Spark Connect,
with the Spark jobs of every step counted from the event log.

    PYTHONPATH=. .venv/bin/python bench/spark_connect.py [--repeat 2]

Each mode runs in a fresh child process (`--mode inprocess|connect`) over its own lakehouse home:
the reference tables first (pandas), then the dated datasets' landing, raw and staging for
2013-01-02 with every partition on Spark, timed; then 2013-01-03 the same way (a warm session).
The Connect server is the tests' (tests/spark_connect/server.py), started once and timed.

Spark writes an event log (`spark.eventLog.enabled`) on the Connect server and in each in-process
session. Every step tags its Spark jobs with its run and step (`lakehouse_assets.layers.spark.
step_tags`), so each job start in the log names its step; the job's SQL execution (its physical
plan) says what it does. The table gives, per step, the jobs by kind and the step's wall time from
Dagster's event log (STEP_START to STEP_SUCCESS). Results: bench/speed/spark-jobs.md (under
load) and bench/speed/spark-connect-quiet-2123.md (quiet machine).
"""

import argparse
import collections
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAYS = ("2013-01-02", "2013-01-03")
KINDS = ("read", "write", "count", "checks", "sample/limit", "collect", "other")


def event_log_conf(directory: Path) -> dict[str, str]:
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": str(directory),
        "spark.eventLog.compress": "false",
    }


def run_mode(mode: str, remote: str | None, events: Path | None) -> dict:
    import dagster as dg

    from lakehouse_assets.assets.factory import build_assets
    from lakehouse_assets.cli.demo import write_demo_landing
    from lakehouse_assets.components.defs_folder import contracts_in
    from lakehouse_assets.definitions import build_resources
    from resources.landing.local import LocalLandingStorage
    from resources.settings import Settings
    from tests.conftest import materialize_partitions

    home = Path(tempfile.mkdtemp(prefix=f"bench-spark-{mode}-"))
    spark = {"threshold_bytes": 0, "master": "local[2]"} | ({"remote": remote} if remote else {})
    if events is not None:
        spark["conf"] = event_log_conf(events)
    settings = Settings(env="local", home=home, spark=spark)
    write_demo_landing(
        LocalLandingStorage(root=str(settings.landing_dir)), dt.date(2013, 1, 2), dt.date(2013, 1, 3)
    )
    resources = build_resources(settings)
    pandas_resources = build_resources(Settings(env="local", home=home))
    assets = build_assets(contracts_in())
    unpartitioned = [key for asset in assets if asset.partitions_def is None for key in asset.keys]
    assert dg.materialize(assets, resources=pandas_resources, selection=unpartitioned).success
    layers = dg.AssetSelection.key_prefixes(["landing"], ["raw"], ["staging"]) - dg.AssetSelection.assets(
        *unpartitioned
    )
    timings, steps, runs = {}, {}, {}
    instance = dg.DagsterInstance.ephemeral()
    for day in DAYS:
        started = time.perf_counter()
        result = materialize_partitions(assets, resources, day, selection=layers, instance=instance)
        timings[day] = round(time.perf_counter() - started, 1)
        assert result.success
        runs[day] = result.run_id
        steps[day] = step_seconds(instance, result.run_id)
    if events is not None and remote is None:
        from pyspark.sql import SparkSession

        # the event log is complete once its application ends
        SparkSession.getActiveSession().stop()
    shutil.rmtree(home, ignore_errors=True)
    return {"days": timings, "steps": steps, "runs": runs}


def step_seconds(instance, run_id: str) -> dict[str, float]:
    started, seconds = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or entry.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[entry.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            seconds[entry.step_key] = round(entry.timestamp - started[entry.step_key], 2)
    return seconds


def kind_of(plan: str) -> str:
    """What a SQL execution does, from its physical plan: the tree's node names (its first block)
    and the closures and aggregates in the nodes' details."""
    tree = plan.split("\n\n", 1)[0]
    nodes = re.findall(r"([A-Z]\w+) \(\d+\)", tree)
    top = [node for node in nodes[:4] if node not in ("AdaptiveSparkPlan", "Project")]
    if "Arguments: write(" in plan:
        return "write"
    if "__rule_" in plan:
        return "checks"
    if "__sample_rule" in plan or (
        top and top[0] in ("CollectLimit", "TakeOrderedAndProject", "GlobalLimit")
    ):
        return "sample/limit"
    if top and top[0] in ("HashAggregate", "SortAggregate", "ObjectHashAggregate"):
        return "count" if re.search(r"Functions \[\d+\]: \[[^\n]*count\(", plan) else "other"
    if "Arguments: read(" in plan or "Arguments: read_files(" in plan:
        return "read"
    return "collect" if nodes and "LocalTableScan" in nodes else "other"


def _event_files(directory: Path) -> list[Path]:
    # Spark 4 logs each application under eventlog_v2_<app>/events_<n>_<app> (rolling files)
    return sorted(path for path in directory.rglob("events_*") if path.is_file()) or sorted(
        path for path in directory.iterdir() if path.is_file()
    )


def read_event_logs(directory: Path) -> list[dict]:
    """Every job of every application logged under `directory`: its step tag, kind and seconds."""
    jobs = []
    for path in _event_files(directory):
        plans, starts = {}, {}
        for line in path.read_text().splitlines():
            event = json.loads(line)
            name = event["Event"]
            if name.endswith("SparkListenerSQLExecutionStart"):
                plans[event["executionId"]] = event.get("physicalPlanDescription", "")
            elif name == "SparkListenerJobStart":
                starts[event["Job ID"]] = (event["Submission Time"], event.get("Properties", {}))
            elif name == "SparkListenerJobEnd" and event["Job ID"] in starts:
                submitted, properties = starts.pop(event["Job ID"])
                tags = properties.get("spark.job.tags", "")
                step = re.search(r"dagster-step-([0-9a-f-]{36})-(.+?)-(\d{4}-\d\d-\d\d|all)", tags)
                execution = properties.get("spark.sql.execution.id")
                plan = plans.get(int(execution), "") if execution is not None else ""
                jobs.append(
                    {
                        "run": step.group(1) if step else None,
                        "step": step.group(2) if step else "(no step tag)",
                        "kind": kind_of(plan) if plan else "other",
                        "execution": execution,
                        "seconds": (event["Completion Time"] - submitted) / 1000,
                    }
                )
    return jobs


def job_table(jobs: list[dict], result: dict, label: str) -> str:
    """Per day and step: the Spark jobs by kind (SQL executions in brackets) and the step's seconds."""
    lines = [
        f"### {label}",
        "",
        "| day | step | jobs | " + " | ".join(KINDS) + " | step s |",
        "|---|---|---:|" + "---:|" * len(KINDS) + "---:|",
    ]
    for day, run_id in result["runs"].items():
        mine = [job for job in jobs if job["run"] == run_id]
        steps = result["steps"][day]
        total_jobs = 0
        for step in sorted(steps, key=lambda s: (s.split("__")[0] != "landing", s.split("__")[0], s)):
            ours = [job for job in mine if job["step"] == step]
            kinds = collections.Counter(job["kind"] for job in ours)
            actions = {kind: len({job["execution"] for job in ours if job["kind"] == kind}) for kind in kinds}
            cells = [f"{kinds[kind]} ({actions[kind]})" if kinds[kind] else "" for kind in KINDS]
            lines.append(f"| {day} | {step} | {len(ours)} | " + " | ".join(cells) + f" | {steps[step]} |")
            total_jobs += len(ours)
        lines.append(
            f"| {day} | **all steps** | **{total_jobs}** | "
            + " | ".join("" for _ in KINDS)
            + f" | **{result['days'][day]}** (run) |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("inprocess", "connect"))
    parser.add_argument("--remote")
    parser.add_argument("--events", type=Path)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep-events", type=Path, help="copy the event logs here")
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.remote, args.events)))
        return

    from tests.spark_connect.server import start_server

    directory = Path(tempfile.mkdtemp(prefix="bench-spark-connect-"))
    connect_events = directory / "events-connect"
    connect_events.mkdir()
    server = start_server(directory, conf=event_log_conf(connect_events))
    print(f"Connect server started in {server.startup_s:.1f} s", flush=True)
    results = []
    try:
        for repetition in range(args.repeat):
            for mode in ("inprocess", "connect") if repetition % 2 == 0 else ("connect", "inprocess"):
                events = connect_events
                command = [sys.executable, __file__, "--mode", mode]
                if mode == "connect":
                    command += ["--remote", server.url]
                else:
                    events = directory / f"events-inprocess-{repetition}"
                    events.mkdir()
                    command += ["--events", str(events)]
                output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                result = json.loads(output.strip().splitlines()[-1])
                print(mode, json.dumps(result["days"]), flush=True)
                results.append((mode, events, result))
    finally:
        server.stop()
    for mode, events, result in results:
        print(job_table(read_event_logs(events), result, mode), flush=True)
    print(f"load average at the end: {' / '.join(f'{value:.2f}' for value in os.getloadavg())}")
    if args.keep_events:
        shutil.copytree(
            directory, args.keep_events, dirs_exist_ok=True, ignore=shutil.ignore_patterns("worker-venv")
        )
    shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
