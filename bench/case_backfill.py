"""Case 4: backfill of the 2013 example, all layers, against a plain pandas script.

`ours` runs what a Dagster backfill of the example launches: one run for the reference tables,
then one run per chunk of days for every daily table (`lakehouse_assets.automation.policies`: up to
LAKEHOUSE_PANDAS_DAYS_PER_RUN partitions per run), each run in a process of its own (as the run launcher
does) against a persistent Dagster instance and a fresh catalog. Its time is the sum of the runs' process wall times.
`plain pandas` is bench/plain_pandas.py over the same landing files, one process.

Storages (`LAKEHOUSE_BENCH_BACKFILL_STORAGES`, comma-separated, default `sqlite`): `sqlite` is the
embedded default (SQLite instance and catalog); `postgresql` is the team deployment: a throwaway
PostgreSQL cluster (deploy/team/local_postgres.py), the instance from deploy/team/dagster.yaml
(schema created once before the runs, as `make team-dev` does), the Iceberg catalog in a database
of the same server and `DAGSTER_EVENT_BATCH_SIZE=50`. Both run in the same harness run, alternating.

Run size (`LAKEHOUSE_BENCH_BACKFILL_SIZING`): `setting` (default) runs LAKEHOUSE_PANDAS_DAYS_PER_RUN
days; `contract` gives the daily datasets a `partitioning.partition_size` hint (their landed bytes
per day, measured on the files written) in a copy of the defs folder, and runs what the
product's backfill policy then makes of it.

The landing files are written once (not timed). Each repetition starts from an empty catalog.
"""

import argparse
import contextlib
import datetime as dt
import functools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import alternate, child_env, fmt_list, fmt_s, run_child

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
YEAR = (dt.date(2013, 1, 1), dt.date(2013, 12, 31))


def chunks(start: dt.date, end: dt.date, days_per_run: int) -> list[tuple[dt.date, dt.date]]:
    """The runs a Dagster backfill launches under a multi-run policy: consecutive days, N per run."""
    ranges, first = [], start
    while first <= end:
        last = min(end, first + dt.timedelta(days=days_per_run - 1))
        ranges.append((first, last))
        first = last + dt.timedelta(days=1)
    return ranges


def sized_defs(landing: Path, project: Path) -> str:
    """A copy of the defs folder whose daily datasets declare their landed bytes per day (measured on
    `landing`) as `partitioning.partition_size`; returns the copy's module name."""
    import yaml

    from lakehouse_assets.components.defs_folder import DEFS_DIR

    package = project / "sized_defs_bench"
    defs_dir = Path(shutil.copytree(DEFS_DIR, package / "defs", ignore=shutil.ignore_patterns("__pycache__")))
    (package / "__init__.py").write_text("")
    for path in sorted(defs_dir.glob("datasets/*/defs.yaml")):
        document = yaml.safe_load(path.read_text())
        attributes = document["attributes"]
        if "partitioning" not in attributes or attributes.get("partitioning", {}).get("granularity") != "day":
            continue
        files = list(landing.glob(attributes["source"]["glob"]))
        if not files:
            continue
        per_day = sum(file.stat().st_size for file in files) / len({file.name for file in files})
        attributes["partitioning"]["partition_size"] = f"{per_day / 1000:.0f} KB"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
    return "sized_defs_bench.defs"


def days_per_run(defs_module: str | None) -> int:
    """How many days the product's backfill policy puts in one run of the daily tables (all of them
    share one policy, or a backfill would split them into more runs than the plan below)."""
    from lakehouse_assets.automation.policies import partitions_per_run
    from lakehouse_assets.components.defs_folder import load_folder
    from resources.settings import load_settings

    settings = load_settings()
    folder = load_folder(defs_module=defs_module, pandas_days_per_run=settings.pandas_days_per_run)
    sizes = {
        partitions_per_run(contract, settings.pandas_days_per_run)
        for contract in folder.contracts
        if contract.partitioning is not None
        and contract.partitioning.definition[:2] == ("day", dt.date(2013, 1, 1))
    }
    if len(sizes) != 1:
        raise RuntimeError(f"the daily tables have different run sizes {sizes}: not one plan")
    return sizes.pop()


def timed_event_log(storage_class: type) -> dict:
    """Counts the events a run stores and the seconds storing them takes, on any event log storage:
    one `store_event` per event (SQLite always; PostgreSQL for unbatched events) or one
    `store_event_batch` per batch (PostgreSQL with DAGSTER_EVENT_BATCH_SIZE)."""
    totals = {"seconds": 0.0, "events": 0, "batches": 0}
    store_event, store_event_batch = storage_class.store_event, storage_class.store_event_batch

    def timed_store_event(self, event):
        begun = time.perf_counter()
        try:
            store_event(self, event)
        finally:
            totals["seconds"] += time.perf_counter() - begun
            totals["events"] += 1

    def timed_store_event_batch(self, events):
        begun = time.perf_counter()
        # the base class stores a batch event by event, through the timed store_event above
        inner = totals["seconds"], totals["events"]
        try:
            store_event_batch(self, events)
        finally:
            if (totals["seconds"], totals["events"]) == inner:
                totals["seconds"] += time.perf_counter() - begun
                totals["events"] += len(events)
            totals["batches"] += 1

    storage_class.store_event = timed_store_event
    storage_class.store_event_batch = timed_store_event_batch
    return totals


def child_run(selection: str, start: str | None, end: str | None, defs_module: str | None = None) -> dict:
    """One backfill run, in its own process: the code location loads, then the run executes."""
    started = time.perf_counter()
    import dagster as dg

    from lakehouse_assets.components import defs_folder
    from lakehouse_assets.definitions import defs

    if defs_module:
        defs_folder.DEFS_MODULE = defs_module
    definitions = defs()
    loaded = time.perf_counter()
    tags = {}
    partition_key = None
    if start and end and start != end:
        tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    elif start:
        partition_key = start
    with dg.DagsterInstance.get() as instance:
        event_log = timed_event_log(type(instance.event_log_storage))
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
        "batches": event_log["batches"],
        "storage": type(instance.event_log_storage).__name__,
        # the run process's own CPU (imports included; not the database server's): on a shared
        # machine the wall time waits for the CPU and the disk, this does not
        "cpu_s": time.process_time(),
    }


def postgres_storage(work: Path, cluster, env: dict) -> dict:
    """The team deployment's environment: instance and catalog in databases of `cluster`."""
    from deploy.team import local_postgres

    local_postgres.create_database(cluster, "bench_dagster")
    home = work / "dagster-team"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "team" / "dagster.yaml", home)
    variables = cluster.environment(dagster_db="bench_dagster")
    env = dict(env, DAGSTER_HOME=str(home), DAGSTER_EVENT_BATCH_SIZE="50")
    env |= {name: value for name, value in variables.items() if name.startswith("DAGSTER_PG_")}
    # Dagster's schema is created once before any run opens the instance (as `make team-dev` does)
    subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "instance", "migrate"],
        env=env,
        check=True,
        capture_output=True,
    )
    return env


def run(quick: bool = False, repeats: int | None = None) -> dict:
    import os

    end = (
        dt.date.fromisoformat(os.environ["LAKEHOUSE_BENCH_BACKFILL_END"])
        if os.environ.get("LAKEHOUSE_BENCH_BACKFILL_END")
        else (dt.date(2013, 1, 10) if quick else YEAR[1])
    )
    start = YEAR[0]
    repeats = repeats or int(os.environ.get("LAKEHOUSE_BENCH_BACKFILL_REPEATS") or 1)
    storages = [
        name.strip() for name in os.environ.get("LAKEHOUSE_BENCH_BACKFILL_STORAGES", "sqlite").split(",")
    ]
    sizing = os.environ.get("LAKEHOUSE_BENCH_BACKFILL_SIZING", "setting")
    unknown = set(storages) - {"sqlite", "postgresql"}
    if unknown or sizing not in ("setting", "contract"):
        raise ValueError(f"unknown storages {unknown} or sizing {sizing!r}")
    with tempfile.TemporaryDirectory(prefix="bench-case4-") as directory, contextlib.ExitStack() as stack:
        work = Path(directory)
        home = work / "lakehouse"
        from lakehouse_assets.cli.demo import write_demo_landing
        from resources.landing.local import LocalLandingStorage

        write_demo_landing(LocalLandingStorage(root=str(home / "landing")), start, end)
        defs_module = sized_defs(home / "landing", work / "project") if sizing == "contract" else None
        sys.path.insert(0, str(work / "project"))
        per_run = days_per_run(defs_module)
        runs = chunks(start, end, per_run)
        env = child_env(
            LAKEHOUSE_HOME=str(home),
            DAGSTER_HOME=str(work / "dagster"),
            LAKEHOUSE_SPARK_THRESHOLD_BYTES=str(1 << 50),
            PYTHONPATH=os.pathsep.join([str(REPO), str(work / "project")]),
        )
        env.pop("LAKEHOUSE_CATALOG_URI", None)
        (work / "dagster").mkdir()
        (work / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        environments = {"sqlite": env}
        cluster = None
        if "postgresql" in storages:
            from deploy.team import local_postgres

            root = Path(tempfile.mkdtemp(prefix="bench-case4-pg-"))
            stack.callback(shutil.rmtree, root, ignore_errors=True)
            cluster = local_postgres.start(root, local_postgres.free_port())
            stack.callback(local_postgres.stop, root)
            environments["postgresql"] = postgres_storage(work, cluster, env)
        details: dict[str, list] = {}
        repetition = {"n": 0}

        def ours(storage: str):
            run_env = dict(environments[storage])
            for state in (home / "catalog.db", home / "warehouse"):
                if state.is_dir():
                    shutil.rmtree(state)
                elif state.exists():
                    state.unlink()
            if storage == "postgresql":
                # every repetition starts from an empty catalog
                repetition["n"] += 1
                database = f"bench_catalog_{repetition['n']}"
                local_postgres.create_database(cluster, database)
                run_env["LAKEHOUSE_CATALOG_URI"] = cluster.url(database)
            total, inner, events, event_s, walls, run_events, cpu = 0.0, 0.0, 0, 0.0, [], [], 0.0
            plan = [("none", None, None)] + [("daily", str(first), str(last)) for first, last in runs]
            for selection, first, last in plan:
                command = [sys.executable, str(HERE), "--run", selection]
                if first:
                    command += ["--start", first, "--end", last]
                if defs_module:
                    command += ["--defs-module", defs_module]
                result = run_child(command, env=run_env, timeout=1800)
                if result.timed_out or not result.data.get("success"):
                    raise RuntimeError(f"backfill run {selection} {first}..{last} failed: {result.data}")
                total += result.wall_s
                inner += result.data["seconds"]
                events += result.data["events"]
                event_s += result.data["event_log_s"]
                cpu += result.data.get("cpu_s", 0.0)
                walls.append(round(result.wall_s, 1))
                batches = f", {result.data['batches']} batches" if result.data["batches"] else ""
                run_events.append(f"{result.data['events']} ({result.data['event_log_s']:.1f} s{batches})")
            details.setdefault(storage, []).append({"runs": walls, "inside_runs_s": inner})
            return total, {
                "inside_runs_s": inner,
                "runs_s": walls,
                "run_events": run_events,
                "events": events,
                "event_log_s": event_s,
                "cpu_s": cpu,
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

        variants = {f"ours ({storage})": functools.partial(ours, storage) for storage in storages}
        pairs = alternate({**variants, "plain pandas": plain}, repeats, "case 4")
    import statistics

    plain_inner = statistics.median(item["seconds"] for item in pairs.extra["plain pandas"])
    rows = pairs.extra["plain pandas"][-1].get("rows", {})
    days = (end - start).days + 1
    targets = {"sqlite": 12, "postgresql": 3}
    table, notes, headlines = [], [], []
    for name in variants:
        storage = name[len("ours (") : -1]
        inner = statistics.median(item["inside_runs_s"] for item in pairs.extra[name])
        event_s = statistics.median(item["event_log_s"] for item in pairs.extra[name])
        events = pairs.extra[name][-1]["events"]
        ratio = pairs.ratio(name, "plain pandas")
        table.append(
            f"| {name} | {fmt_s(pairs.median(name))} | {fmt_s(inner)} | {fmt_s(event_s)} ({events:,}) | "
            f"{fmt_s(inner - event_s)} | {fmt_list(pairs.runs[name], 1)} |"
        )
        cpu = statistics.median(item.get("cpu_s", 0.0) for item in pairs.extra[name])
        notes += [
            f"- {name}: CPU seconds of the run processes (imports included, database server not): {cpu:.1f}",
            f"- {name} / plain pandas, per pair: {fmt_list(pairs.ratios(name, 'plain pandas'))} -> median "
            f"**{ratio:.2f}x** (target <= {targets[storage]}x)",
            f"- {name}, wall time of each run (last repetition; reference run first): "
            + ", ".join(map(str, pairs.extra[name][-1]["runs_s"])),
            f"- {name}, Dagster events of each run (seconds storing them): "
            + ", ".join(pairs.extra[name][-1]["run_events"]),
        ]
        headlines.append(
            {
                "case": f"4 backfill {days} days vs plain pandas, {storage}",
                "measured": f"{ratio:.2f}x",
                "target": f"<= {targets[storage]}x",
                "ok": ratio <= targets[storage],
            }
        )
    sized = (
        "`partitioning.partition_size` hints on the daily datasets (bench copy of the defs folder)"
        if defs_module
        else "LAKEHOUSE_PANDAS_DAYS_PER_RUN"
    )
    markdown = f"""
{start}..{end} ({days} days, {rows.get("flights", {}).get("landing", 0):,} flights, {rows.get("weather", {}).get("landing", 0):,}
weather rows) plus the three reference tables, landing to output. Ours: {len(runs) + 1} runs (reference tables,
then one per chunk of {per_run} days: {sized}), each a process. {repeats} repetitions, alternating.
Storages: `sqlite` the embedded default; `postgresql` the team deployment (deploy/team/dagster.yaml on a
throwaway cluster, catalog in PostgreSQL, DAGSTER_EVENT_BATCH_SIZE=50).

| variant | median wall s | inside the runs s (no process start-up, no imports) | of which Dagster event log s (events) | inside the runs minus event log s | runs s |
|---|---:|---:|---:|---:|---|
{chr(10).join(table)}
| plain pandas | {fmt_s(pairs.median("plain pandas"))} | {fmt_s(plain_inner)} | - | - | {fmt_list(pairs.runs["plain pandas"], 1)} |

{chr(10).join(notes)}
- plain pandas: CPU seconds of its process (imports included): {statistics.median(item.get("cpu_s", 0.0) for item in pairs.extra["plain pandas"]):.1f}
"""
    return {
        "markdown": markdown,
        "headlines": headlines,
        "raw": {"runs": pairs.runs, "extra": pairs.extra, "details": details},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", choices=["none", "daily"], required=True)
    parser.add_argument("--start")
    parser.add_argument("--end")
    parser.add_argument("--defs-module")
    args = parser.parse_args()
    sys.stdout.write(json.dumps(child_run(args.run, args.start, args.end, args.defs_module)) + "\n")


if __name__ == "__main__":
    main()
