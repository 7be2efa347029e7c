"""The team deployment's figures (issue 15): PostgreSQL start-up, and 16 writer processes on the
catalog in SQLite against PostgreSQL. Prints a Markdown table for docs/deployment.md.

    PYTHONPATH=. .venv/bin/python bench/team_postgres.py [--writers 16] [--starts 3]

Writers: what tests/reliability/test_parallel_writers.py does, one variant after another: each
process materialises 2 daily partitions of the two load tables (overwrite and append), one Dagster
run per partition, all released at once. "retries" counts the commits that lost a race and were
re-planned (the retry loop logs each); "lost" compares every table with the rows written.
"""

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from deploy.team import local_postgres
from tests.reliability.harness import collect, spawn
from tests.reliability.workers import ROWS_PER_PARTITION

REPO = Path(__file__).resolve().parent.parent
PARTITIONS_PER_WRITER = 2


def start_up(repeats: int) -> dict[str, float]:
    """Seconds to a login: a new cluster (initdb + start), then restarts of the same cluster."""
    fresh, again = [], []
    for _ in range(repeats):
        root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        try:
            began = time.monotonic()
            local_postgres.start(root)
            fresh.append(time.monotonic() - began)
            local_postgres.stop(root)
            began = time.monotonic()
            local_postgres.start(root)
            again.append(time.monotonic() - began)
        finally:
            local_postgres.stop(root)
            shutil.rmtree(root, ignore_errors=True)
    return {"new cluster": statistics.median(fresh), "existing cluster": statistics.median(again)}


def writers(variant: str, count: int, cluster) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-writers-"))
    environment = dict(os.environ, LAKEHOUSE_HOME=str(work / "lakehouse"), LAKEHOUSE_ENV="local")
    environment.pop("LAKEHOUSE_CATALOG_URI", None)
    dagster_home = None
    stamp = f"{int(time.time())}"
    if variant != "sqlite":
        local_postgres.create_database(cluster, f"bench_catalog_{stamp}")
        environment["LAKEHOUSE_CATALOG_URI"] = cluster.url(f"bench_catalog_{stamp}")
    if variant == "postgresql + instance":
        local_postgres.create_database(cluster, f"bench_dagster_{stamp}")
        environment |= {
            key: value
            for key, value in cluster.environment(dagster_db=f"bench_dagster_{stamp}").items()
            if key.startswith("DAGSTER_PG_")
        }
        environment["DAGSTER_EVENT_BATCH_SIZE"] = "50"
        dagster_home = work / "dagster"
        dagster_home.mkdir()
        shutil.copy(REPO / "deploy" / "team" / "dagster.yaml", dagster_home)
    # the workers read the environment they are spawned with
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environment)
    try:
        from resources.catalog.resource import open_catalog
        from resources.settings import load_settings

        settings = load_settings()
        # the tables' catalog exists before the writers start, as in the test
        open_catalog("lakehouse", {"type": "sql", "uri": settings.catalog_uri, "warehouse": "file:///x"})
        days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(count * PARTITIONS_PER_WRITER)]
        go = work / "go"
        processes = [
            spawn(
                "materialize",
                {
                    "home": str(settings.home),
                    "partitions": [str(day) for day in days[index::count]],
                    "go": str(go),
                    "dagster_home": str(dagster_home) if dagster_home else None,
                },
            )
            for index in range(count)
        ]
        time.sleep(90)  # let every process import Dagster and the product before the start
        go.touch()
        began = time.monotonic()
        results = collect(processes)
        wall = time.monotonic() - began
        failed = [(code, err) for code, _, err in results if code != 0]
        for code, err in failed:
            print(f"{variant}: a writer exited {code}:\n{err[-1500:]}", file=sys.stderr, flush=True)
        runs = [run for _, report, _ in results if report for run in report["runs"]]
        retries = sum(err.count("Commit failed due to a concurrent update") for _, _, err in results)
        catalog = open_catalog(
            "lakehouse",
            {"type": "sql", "uri": settings.catalog_uri, "warehouse": settings.warehouse_dir.as_uri()},
        )
        expected = len(days) * ROWS_PER_PARTITION
        rows = {
            mode: catalog.load_table(f"staging.load_{mode}").scan().to_arrow().num_rows
            for mode in ("overwrite", "append")
        }
        return {
            "variant": variant,
            "writers": count,
            "runs ok": f"{sum(run['success'] for run in runs)}/{len(days)}",
            "commits": 2 * len(runs),
            "retries": retries,
            "lost": sum(expected - n for n in rows.values()),
            "wall s": round(wall, 1),
            "failed processes": len(failed),
        }
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--variants", nargs="*", default=["sqlite", "postgresql", "postgresql + instance"])
    args = parser.parse_args()

    print(json.dumps({"start-up s": start_up(args.starts)}), flush=True)
    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    try:
        cluster = local_postgres.start(root)
        rows = []
        for variant in args.variants:
            rows.append(writers(variant, args.writers, cluster))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        local_postgres.stop(root)
        shutil.rmtree(root, ignore_errors=True)
    if not rows:  # `--variants` with none: the start-up figures only
        return
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(row[key]) for key in header) + " |")


if __name__ == "__main__":
    main()
