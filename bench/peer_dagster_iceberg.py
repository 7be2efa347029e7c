"""Case 1 peer: dagster-iceberg's pandas IO manager writes the typed frame (runs in its own venv).

dagster-iceberg pins pyiceberg < 0.12, so this script imports nothing from the project. It writes
the warm-up partition first, then times `handle_output` for the measured partition, and prints one
JSON line like the project's children.

    /tmp/venv-dagster-iceberg/bin/python bench/peer_dagster_iceberg.py WORK_DIR
"""

import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster._core.storage.db_io_manager import DbIOManager
from dagster_iceberg.config import IcebergCatalogConfig
from dagster_iceberg.io_manager.pandas import PandasIcebergIOManager
from pyiceberg.catalog import load_catalog

DAY = dt.date(2013, 1, 2)
WARMUP_DAY = dt.date(2013, 1, 1)


def main(work: Path) -> None:
    timings: dict = {}
    original = DbIOManager.handle_output

    def timed(self, context, obj):
        started = time.perf_counter()
        original(self, context, obj)
        timings["write"] = timings.get("write", 0.0) + time.perf_counter() - started

    DbIOManager.handle_output = timed

    @dg.asset(
        key=["raw", "flights"],
        partitions_def=dg.DailyPartitionsDefinition(start_date=str(WARMUP_DAY)),
        metadata={"partition_expr": "_file_date"},
    )
    def flights(context: dg.AssetExecutionContext) -> pd.DataFrame:
        day = context.partition_time_window.start.date()
        frame = pd.read_parquet(
            work / ("typed.parquet" if day == DAY else "warmup.parquet"), dtype_backend="pyarrow"
        )
        timings.clear()
        return frame

    catalog_dir = Path(tempfile.mkdtemp(dir=work, prefix="peer-"))
    properties = {
        "type": "sql",
        "uri": f"sqlite:///{catalog_dir / 'catalog.db'}",
        "warehouse": catalog_dir.as_uri(),
    }
    # dagster-iceberg expects the namespace to exist
    load_catalog("bench", **properties).create_namespace_if_not_exists("raw")
    io_manager = PandasIcebergIOManager(
        name="bench",
        config=IcebergCatalogConfig(properties=properties),
        namespace="raw",
    )
    outcome = {}
    for day in (WARMUP_DAY, DAY):
        started = time.perf_counter()
        dg.materialize(
            [flights], resources={"io_manager": io_manager}, partition_key=str(day), raise_on_error=True
        )
        outcome = dict(timings) | {"materialize": time.perf_counter() - started}
    outcome["seconds"] = outcome["write"]
    outcome["rows_in_table"] = (
        load_catalog("bench", **properties).load_table("raw.flights").scan().to_arrow().num_rows
    )
    sys.stdout.write(json.dumps(outcome) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
