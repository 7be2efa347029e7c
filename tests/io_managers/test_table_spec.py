"""The table spec travels through Dagster metadata and comes back as it was built."""

import dagster as dg
import pytest
from pydantic import ValidationError

from io_managers.table_spec import TABLE_SPEC, QualitySpec, TableSpec
from lakehouse_assets.definitions import defs


def test_a_spec_round_trips_through_an_assets_definition_metadata():
    spec = TableSpec(
        layer="staging",
        table="readings",
        partition_column="reading_date",
        granularity="day",
        write_mode="upsert",
        primary_key=("reading_date", "sensor"),
        engine="spark",
        spark_threshold_bytes=0,
        quality=QualitySpec(validate_before_commit=False, audit="raw_rows_reconcile"),
        table_properties={"comment": "readings"},
    )

    @dg.asset(key=list(spec.key), metadata=spec.to_metadata())
    def readings() -> None: ...

    metadata = readings.metadata_by_key[spec.asset_key]
    assert isinstance(metadata[TABLE_SPEC], dg.JsonMetadataValue)
    assert TableSpec.from_metadata(metadata) == spec
    assert spec.pinned_engine == "spark"


def test_absent_spec_and_the_defaults_of_an_undeclared_table():
    assert TableSpec.from_metadata(None) is None
    assert TableSpec.from_metadata({"dagster/column_schema": dg.TableSchema(columns=[])}) is None
    spec = TableSpec.for_key(dg.AssetKey(["output", "scores"]))
    assert (spec.key, spec.partition_column, spec.write_mode, spec.primary_key) == (
        ("output", "scores"),
        None,
        "overwrite",
        (),
    )
    assert spec.pinned_engine is None


def test_a_spec_is_frozen_and_validated():
    spec = TableSpec(layer="raw", table="t")
    with pytest.raises(ValidationError):
        spec.write_mode = "append"
    with pytest.raises(ValidationError, match="write_mode"):
        TableSpec.from_metadata({TABLE_SPEC: {"layer": "raw", "table": "t", "write_mode": "merge"}})


def test_every_factory_table_carries_its_spec(settings):
    graph = defs().resolve_asset_graph()
    # (the delivery group's extracts are files, not tables: the IO manager never writes them)
    for key in graph.get_all_asset_keys() - set(graph.asset_keys_for_group("delivery")):
        spec = TableSpec.from_metadata(graph.get(key).metadata)
        assert spec is not None and spec.asset_key == key
    staging = TableSpec.from_metadata(graph.get(dg.AssetKey(["staging", "flights"])).metadata)
    assert (staging.partition_column, staging.granularity) == ("flight_date", "day")
    assert staging.quality == QualitySpec(validate_before_commit=True, audit="raw_rows_reconcile")
    rejects = TableSpec.from_metadata(graph.get(dg.AssetKey(["raw", "flights_rejects"])).metadata)
    assert (rejects.partition_column, rejects.write_mode, rejects.quality) == (
        "_file_date",
        "overwrite",
        None,
    )
