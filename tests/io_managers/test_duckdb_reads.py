"""Other engines keep reading what we write: every demo table, read with DuckDB's `iceberg_scan`,
holds what pyiceberg reads, after the first load and after a corrected file is upserted.
(The Spark-written files get the same check in tests/lakehouse_assets/layers/test_spark_equivalence.py.)"""

import datetime as dt

import dagster as dg
import pytest

from lakehouse_assets.assets.factory import build_assets
from lakehouse_assets.cli.demo import write_demo_landing
from lakehouse_assets.components.defs_folder import contracts_in
from resources.landing.local import LocalLandingStorage
from tests.conftest import materialize_partitions
from tests.io_managers.duckdb_reads import assert_duckdb_reads_what_pyiceberg_reads, connect, duckdb_read

# two days of the example through every layer, twice: about 10 s of CPU, so with the slow tests
pytestmark = pytest.mark.slow

START, END = dt.date(2013, 1, 1), dt.date(2013, 1, 2)


def test_duckdb_reads_every_demo_table_as_pyiceberg_does_before_and_after_an_upsert(
    settings, resources, catalog
):
    assets = build_assets(contracts_in())
    write_demo_landing(LocalLandingStorage(root=str(settings.landing_dir)), START, END)
    unpartitioned = [key for asset in assets if asset.partitions_def is None for key in asset.keys]
    dated = dg.AssetSelection.all() - dg.AssetSelection.assets(*unpartitioned)
    assert dg.materialize(assets, resources=resources, selection=unpartitioned).success
    assert materialize_partitions(assets, resources, str(START), str(END), selection=dated).success

    tables = assert_duckdb_reads_what_pyiceberg_reads(catalog)
    # the layers' 22 tables, the file ledger and the quality history
    assert len(tables) == 24

    # a corrected file for the second day: staging.flights upserts the changed row over the old one
    path = settings.landing_dir / "flights" / f"flights_{END}.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    fields = lines[1].split(",")
    fields[header.index("arr_delay")] = "999"
    lines[1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    assert materialize_partitions(assets, resources, str(END), selection=dated).success

    assert assert_duckdb_reads_what_pyiceberg_reads(catalog) == tables
    staged = duckdb_read(connect(), catalog.load_table("staging.flights"))
    assert 999 in staged.column("arr_delay").to_pylist()
    assert staged.num_rows == len(catalog.load_table("staging.flights").scan().to_arrow())
