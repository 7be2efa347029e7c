"""A corrected delivery is a normal event: a day's file delivered again, with one row removed, one
changed and one added, gives the table its write mode promises, and the staging audit reconciles.

- overwrite: the partition is replaced by the new delivery.
- upsert, `redelivery: replace` (the default): the rows the file's earlier version held are
  replaced by its new version (the removed row goes); rows of other files are merged by key.
- upsert, `redelivery: merge`: keys the new delivery lacks are kept, and the audit names and
  counts them (`kept_from_earlier_deliveries`), like the duplicates it removed.

Generated flights-like data (a date split into year/month/day, a composite key, a repeated row
that staging removes), a real SQLite Iceberg catalog, tables read back with plain pyiceberg.
"""

import dagster as dg
import pytest

from io_managers.iceberg_io_manager import IcebergIOManager
from lakehouse_assets.assets.factory import build_assets
from lakehouse_assets.contracts.contract import DatasetContract
from lakehouse_assets.definitions import build_resources
from resources.settings import Settings
from resources.spark.compute import ComputeResource
from resources.spark.session import SparkResource
from tests.conftest import materialize_partitions

DAY = "2024-03-01"
FILE = f"flights/flights_{DAY}.csv"
FLIGHTS = 20
HEADER = "year,month,day,carrier,flight,origin,dep_delay"


def contract(staging: str, redelivery: str | None = None) -> DatasetContract:
    write_modes = {"staging": staging} | ({"redelivery": redelivery} if redelivery else {})
    return DatasetContract.model_validate(
        {
            "name": "flights",
            "description": "Generated departures, one file per day.",
            "source": {
                "glob": "flights/flights_*.csv",
                "file_date_pattern": r"flights_(?P<date>\d{4}-\d{2}-\d{2})\.csv$",
            },
            "columns": [
                {"name": "year", "type": "int", "nullable": False},
                {"name": "month", "type": "int", "nullable": False},
                {"name": "day", "type": "int", "nullable": False},
                {"name": "carrier", "type": "string", "nullable": False},
                {"name": "flight", "type": "int", "nullable": False},
                {"name": "origin", "type": "string", "nullable": False},
                {"name": "dep_delay", "type": "double"},
            ],
            "primary_key": ["flight_date", "carrier", "flight"],
            "partitioning": {"column": "flight_date", "start": "2024-03-01", "end": "2024-04-01"},
            "write_modes": write_modes,
            "staging": [
                {"derive_date": {"column": "flight_date", "year": "year", "month": "month", "day": "day"}},
                {"deduplicate": {"keys": ["flight_date", "carrier", "flight"], "latest_by": "_loaded_at"}},
            ],
        }
    )


def flight_lines() -> list[str]:
    return [f"2024,3,1,{'AA' if n % 2 else 'UA'},{100 + n},JFK,{n}.0" for n in range(FLIGHTS)]


def deliver(settings, lines: list[str]) -> None:
    path = settings.landing_dir / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([HEADER, *lines]) + "\n")


def corrected(lines: list[str]) -> list[str]:
    """Flight 103 removed, flight 105's delay corrected, flight 120 added (and one repeat kept)."""
    lines = [line for line in lines if ",103," not in line]
    lines = [line.replace(",105,JFK,5.0", ",105,JFK,55.0") for line in lines]
    return [*lines, "2024,3,1,UA,120,LGA,7.0", lines[0]]


def staging_audit(result) -> dg.AssetCheckEvaluation:
    (audit,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "raw_rows_reconcile"]
    return audit


def staging_materialization(result) -> dg.AssetMaterialization:
    (event,) = [
        event
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey(["staging", "flights"])
    ]
    return event.materialization


def staged(catalog) -> dict[int, float]:
    rows = catalog.load_table("staging.flights").scan(selected_fields=("flight", "dep_delay")).to_arrow()
    return dict(zip(rows.column("flight").to_pylist(), rows.column("dep_delay").to_pylist(), strict=True))


def run_twice(settings, resources, catalog, dataset: DatasetContract):
    assets = build_assets([dataset])
    deliver(settings, flight_lines())
    first = materialize_partitions(assets, resources, DAY)
    assert first.success and staging_audit(first).passed
    deliver(settings, corrected(flight_lines()))
    return dg.materialize(assets, resources=resources, partition_key=DAY, raise_on_error=False)


@pytest.mark.parametrize(
    ("staging", "redelivery"), [("overwrite", None), ("upsert", None), ("upsert", "replace")]
)
def test_a_corrected_file_replaces_the_partition_it_delivered(
    settings, resources, catalog, staging, redelivery
):
    result = run_twice(settings, resources, catalog, contract(staging, redelivery))

    assert result.success
    audit = staging_audit(result)
    assert audit.passed, audit.description
    rows = staged(catalog)
    assert 103 not in rows and rows[105] == 55.0 and rows[120] == 7.0
    assert len(rows) == FLIGHTS
    assert audit.metadata["raw_rows"].value == FLIGHTS + 1
    assert audit.metadata["removed_duplicates"].value == 1
    assert audit.metadata["committed_rows"].value == FLIGHTS
    assert audit.metadata.get("kept_from_earlier_deliveries", dg.MetadataValue.int(0)).value == 0
    if staging == "upsert":
        # the file's earlier version brought flight 103; its new version withdraws it
        assert staging_materialization(result).metadata["rows_withdrawn"].value == 1


def test_a_merged_redelivery_keeps_the_keys_it_lacks_and_the_audit_counts_them(settings, resources, catalog):
    result = run_twice(settings, resources, catalog, contract("upsert", "merge"))

    assert result.success
    audit = staging_audit(result)
    assert audit.passed, audit.description
    rows = staged(catalog)
    assert rows[103] == 3.0 and rows[105] == 55.0 and rows[120] == 7.0
    assert len(rows) == FLIGHTS + 1
    assert audit.metadata["raw_rows"].value == FLIGHTS + 1
    assert audit.metadata["removed_duplicates"].value == 1
    assert audit.metadata["kept_from_earlier_deliveries"].value == 1
    assert audit.metadata["committed_rows"].value == FLIGHTS + 1
    assert audit.metadata["unaccounted_rows"].value == 0


@pytest.mark.parametrize("redelivery", ["replace", "merge"])
def test_a_corrected_file_on_spark_is_replaced_or_merged_as_on_pandas(tmp_path, redelivery):
    home = tmp_path / redelivery
    settings = Settings(env="local", home=home)
    compute = ComputeResource(spark=SparkResource(master="local[2]"), spark_threshold_bytes=0)
    resources = build_resources(settings)
    catalog = resources["catalog"]
    # every partition, however small, on Spark
    resources |= {"compute": compute, "io_manager": IcebergIOManager(catalog=catalog, compute=compute)}

    result = run_twice(settings, resources, catalog.load(), contract("upsert", redelivery))

    assert result.success
    staging = staging_materialization(result)
    assert staging.metadata["engine"].value == "spark"
    audit = staging_audit(result)
    assert audit.passed, audit.description
    rows = staged(catalog.load())
    assert rows[105] == 55.0 and rows[120] == 7.0
    if redelivery == "replace":
        assert 103 not in rows and len(rows) == FLIGHTS
        assert staging.metadata["rows_withdrawn"].value == 1
        assert audit.metadata["kept_from_earlier_deliveries"].value == 0
    else:
        assert rows[103] == 3.0 and len(rows) == FLIGHTS + 1
        assert staging.metadata["rows_withdrawn"].value == 0
        assert audit.metadata["kept_from_earlier_deliveries"].value == 1
    assert staging.metadata["rows_kept"].value == audit.metadata["kept_from_earlier_deliveries"].value
