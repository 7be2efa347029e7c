"""Separate writer processes for the reliability suite: `python -m tests.reliability.workers CMD JSON`.

Each worker waits for a go-file so that all of them start writing at the same moment, then prints
one JSON line with what it did. Exceptions propagate: a failed worker exits non-zero with its
traceback on stderr.
"""

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import pyarrow as pa

ROWS_PER_PARTITION = 40


def partition_rows(day: str, writer: str, rows: int = ROWS_PER_PARTITION) -> pa.Table:
    return pa.table(
        {
            "reading_date": pa.array([dt.date.fromisoformat(day)] * rows, pa.date32()),
            "sensor": pa.array([f"s{index:03d}" for index in range(rows)], pa.string()),
            "value": pa.array(range(rows), pa.int64()),
            "writer": pa.array([writer] * rows, pa.string()),
        }
    )


def _wait_for(go_file: str | None, limit_s: float = 120) -> None:
    if not go_file:
        return
    deadline = time.monotonic() + limit_s
    while not Path(go_file).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no go signal at {go_file}")
        time.sleep(0.01)


def _catalog(args: dict):
    from pyiceberg.catalog import load_catalog

    from resources.catalog.sqlite_tuning import tune_sqlite_catalog

    return tune_sqlite_catalog(load_catalog("lakehouse", **args["catalog"]))


def materialize(args: dict) -> dict:
    """Materialise partitions through Dagster and the Iceberg IO manager, one run per partition."""
    import dagster as dg

    from lakehouse_assets.definitions import build_resources
    from resources.settings import load_settings
    from tests.reliability.load_assets import LOAD_ASSETS

    os.environ["LAKEHOUSE_HOME"] = args["home"]
    resources = build_resources(load_settings())
    _wait_for(args.get("go"))
    runs = []
    for day in args["partitions"]:
        result = dg.materialize(LOAD_ASSETS, resources=resources, partition_key=day)
        runs.append({"partition": day, "run_id": result.run_id, "success": result.success})
    return {"runs": runs}


def commit(args: dict) -> dict:
    """One write of a partition straight through the retrying commit path."""
    from io_managers.commit import WriteRequest
    from io_managers.retries import commit_with_retries
    from io_managers.slices import TableSlice

    catalog = _catalog(args)
    data = partition_rows(args["day"], args["writer"], args.get("rows", ROWS_PER_PARTITION))
    start = dt.datetime.fromisoformat(args["day"]).replace(tzinfo=dt.UTC)
    request = WriteRequest(
        mode=args.get("mode", "overwrite"),
        slice=TableSlice("reading_date", start, start + dt.timedelta(days=1)),
        run_id=args.get("run_id", args["writer"]),
        primary_key=("reading_date", "sensor"),
    )
    _wait_for(args.get("go"))
    results = []
    for _ in range(args.get("repeat", 1)):
        table = catalog.load_table(args["table"])
        result = commit_with_retries(table, data, request)
        results.append(result.snapshot_id)
    return {"snapshots": results}


def commit_many(args: dict) -> dict:
    """Several partitions one after another, as a busy writer beside maintenance does."""
    snapshots = []
    for day in args["days"]:
        snapshots += commit({**args, "day": day, "go": None if snapshots else args.get("go")})["snapshots"]
    return {"snapshots": snapshots}


def create(args: dict) -> dict:
    """Create the namespace and table if missing, all workers at once."""
    from io_managers.schema import create_table_if_missing

    catalog = _catalog(args)
    schema = partition_rows("2024-01-01", "schema", 0).schema
    _wait_for(args.get("go"))
    table = create_table_if_missing(catalog, args["table"], schema, "reading_date")
    return {"table_uuid": str(table.metadata.table_uuid)}


def raw_pair(args: dict) -> dict:
    """Landing and raw (with its rejects) of the synthetic events dataset for one partition, through
    Dagster on the instance in $DAGSTER_HOME and the catalog in `args` (which may hang on purpose)."""
    import dagster as dg

    from io_managers.iceberg_io_manager import IcebergIOManager
    from lakehouse_assets.assets.factory import build_assets
    from resources.catalog.resource import IcebergCatalogResource
    from tests.lakehouse_assets.layers.test_spark_equivalence import EVENTS, _resources

    resources = _resources(Path(args["home"]), 1 << 40)
    catalog = IcebergCatalogResource(properties=args["catalog"])
    resources |= {
        "catalog": catalog,
        "io_manager": IcebergIOManager(catalog=catalog, compute=resources["compute"]),
    }
    selection = [
        dg.AssetKey(key) for key in (["landing", "events"], ["raw", "events"], ["raw", "events_rejects"])
    ]
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(
            build_assets([EVENTS]),
            resources=resources,
            partition_key=args["partition"],
            selection=selection,
            instance=instance,
            tags=args.get("tags"),
        )
    return {"run_id": result.run_id, "success": result.success}


COMMANDS = {
    "materialize": materialize,
    "raw_pair": raw_pair,
    "commit": commit,
    "commit_many": commit_many,
    "create": create,
}

if __name__ == "__main__":
    command, payload = sys.argv[1], json.loads(sys.argv[2])
    sys.stdout.write(json.dumps(COMMANDS[command](payload)) + "\n")
