"""The Spark path over a real Spark Connect server whose workers do not have the product.

The whole Spark equivalence suite runs again here with `spark_resource` a Connect session
(tests/spark_connect/conftest.py): every layer, write mode, format and partition grain gives the
tables the pandas path gives, and no JVM starts in the test process.
"""

import datetime as dt

import dagster as dg
import pytest
from pyiceberg.catalog import load_catalog

from lakehouse_assets.assets.factory import build_assets
from lakehouse_assets.cli.main import main as lakehouse_cli
from lakehouse_assets.components.defs_folder import contracts_in
from lakehouse_assets.definitions import build_resources
from resources.settings import load_settings
from resources.spark.artifacts import product_archive
from tests.aws.conftest import REGION, WAREHOUSE_BUCKET, configure_aws, create_infrastructure
from tests.conftest import materialize_partitions
from tests.lakehouse_assets.layers.test_spark_equivalence import (
    _engines_used,
    homes,
    test_a_partition_whose_rows_all_fail_typing_goes_whole_to_the_rejects_on_both_engines,
    test_an_unclosed_quote_in_a_middle_field_is_named_on_both_engines,
    test_append_matches_on_both_engines,
    test_deduplication_keeps_the_same_row_on_both_engines_with_nulls_and_ties,
    test_doubles_beyond_range_underflowing_or_not_finite_are_rejects_on_both_engines,
    test_every_layer_and_write_mode_matches_on_synthetic_corners,
    test_hour_and_month_partitions_match_on_both_engines,
    test_old_mac_line_endings_are_read_alike_on_both_engines,
    test_the_example_gives_identical_tables_with_the_threshold_at_zero_and_at_its_default,
    test_zip_json_lines_and_parquet_sources_match_on_both_engines,
)
from tests.test_end_to_end import source_flights

DAY = "2013-01-02"

__all__ = [
    "test_every_layer_and_write_mode_matches_on_synthetic_corners",
    "test_append_matches_on_both_engines",
    "test_the_example_gives_identical_tables_with_the_threshold_at_zero_and_at_its_default",
    "test_deduplication_keeps_the_same_row_on_both_engines_with_nulls_and_ties",
    "test_a_partition_whose_rows_all_fail_typing_goes_whole_to_the_rejects_on_both_engines",
    "test_hour_and_month_partitions_match_on_both_engines",
    "test_zip_json_lines_and_parquet_sources_match_on_both_engines",
    "test_doubles_beyond_range_underflowing_or_not_finite_are_rejects_on_both_engines",
    "test_old_mac_line_endings_are_read_alike_on_both_engines",
    "test_an_unclosed_quote_in_a_middle_field_is_named_on_both_engines",
    "homes",
]


def test_the_product_archive_is_built_once_per_content(tmp_path):
    first = product_archive(tmp_path)
    built = first.stat().st_mtime_ns
    again = product_archive(tmp_path)
    assert again == first and again.stat().st_mtime_ns == built
    assert list(tmp_path.iterdir()) == [first]


@pytest.mark.aws
def test_the_example_on_spark_over_connect_writes_the_s3_warehouse(
    spark_resource, moto_endpoint, tmp_path, monkeypatch
):
    """LAKEHOUSE_ENV=aws with every partition on Spark: the executors read the landing zone and write
    the warehouse on S3 (moto's server) with their own credentials, and a plain pyiceberg reader
    finds every layer's rows there."""
    configure_aws(monkeypatch, moto_endpoint, tmp_path)
    monkeypatch.setenv("LAKEHOUSE_SPARK_REMOTE", spark_resource.remote)
    monkeypatch.setenv("LAKEHOUSE_SPARK_THRESHOLD_BYTES", "0")
    create_infrastructure()
    assert lakehouse_cli(["demo-landing", "--start", DAY, "--end", DAY]) == 0
    resources = build_resources(load_settings())
    assets = build_assets(contracts_in())
    unpartitioned = [key for asset in assets if asset.partitions_def is None for key in asset.keys]
    partitioned = dg.AssetSelection.all() - dg.AssetSelection.assets(*unpartitioned)
    reference = dg.materialize(assets, resources=resources, selection=unpartitioned)
    day = materialize_partitions(assets, resources, DAY, selection=partitioned)
    assert reference.success and day.success
    assert _engines_used(reference) | _engines_used(day) == {"spark"}

    # a reader that knows only the catalog type and the environment, not the product
    catalog = load_catalog(
        "reader", type="glue", **{"s3.endpoint": moto_endpoint, "s3.region": REGION, "glue.region": REGION}
    )
    source = source_flights()
    flights = int((source.flight_date == dt.date.fromisoformat(DAY)).sum())
    for identifier in ("landing.flights", "raw.flights", "staging.flights", "common.flights"):
        table = catalog.load_table(f"dev_{identifier}")
        assert table.location().startswith(f"s3://{WAREHOUSE_BUCKET}/lakehouse/")
        assert table.scan().count() == flights, identifier
        assert all("/data/spark-" in task.file.file_path for task in table.scan().plan_files())
    stats = catalog.load_table("dev_output.carrier_daily_stats").scan().to_pandas()
    expected = source[source.flight_date == dt.date.fromisoformat(DAY)].groupby("carrier").size().to_dict()
    assert stats.set_index("carrier").flights.to_dict() == expected
    assert catalog.load_table("dev_staging.airports").scan().count() == 1458
    assert catalog.load_table("dev_raw.flights_rejects").scan().count() == 0
