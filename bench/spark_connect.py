"""One day of the example, landing -> staging, on Spark: in process against over Spark Connect.

    PYTHONPATH=. .venv/bin/python bench/spark_connect.py [--repeat 2]

Run 2026-12-05 17:26-18:03 UTC on the shared 2-core machine at load average 35-50 (other sessions'
test suites): Connect server start 85.3 s; one day landing -> staging, first day (session start
included) / second day: in process 559.1 / 153.7 s, over Connect 529.9 / 330.6 s.

Each mode runs in a fresh child process (`--mode inprocess|connect`) over its own lakehouse home:
the reference tables first (pandas), then the dated datasets' landing, raw and staging for
2013-01-02 with every partition on Spark, timed; then 2013-01-03 the same way (a warm session).
The Connect server is the tests' (tests/spark_connect/server.py), started once and timed.
"""

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAYS = ("2013-01-02", "2013-01-03")


def run_mode(mode: str, remote: str | None) -> dict:
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
    timings = {}
    for day in DAYS:
        started = time.perf_counter()
        result = materialize_partitions(assets, resources, day, selection=layers)
        timings[day] = round(time.perf_counter() - started, 1)
        assert result.success
    shutil.rmtree(home, ignore_errors=True)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("inprocess", "connect"))
    parser.add_argument("--remote")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.remote)))
        return

    from tests.spark_connect.server import start_server

    directory = Path(tempfile.mkdtemp(prefix="bench-spark-connect-"))
    server = start_server(directory)
    print(f"Connect server started in {server.startup_s:.1f} s", flush=True)
    try:
        for repetition in range(args.repeat):
            for mode in ("inprocess", "connect") if repetition % 2 == 0 else ("connect", "inprocess"):
                command = [sys.executable, __file__, "--mode", mode]
                if mode == "connect":
                    command += ["--remote", server.url]
                output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                print(mode, output.strip().splitlines()[-1], flush=True)
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
