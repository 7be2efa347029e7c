"""The stated answer of each write mode to a frame with no rows, through the IO manager."""

import dagster as dg
import pytest

from io_managers.empty_input import EMPTY_OVERWRITE_PROPERTY, EmptyInputError
from tests.io_managers.test_io_manager import readings, rows, table_asset

DAY = "2024-03-01"


def _materialise_then_empty(mode: str, resources, catalog, properties: dict | None = None):
    frames = iter([readings(DAY, 1, 2), readings(DAY, 1).iloc[0:0]])
    asset = table_asset(mode, lambda context: next(frames))
    assert dg.materialize([asset], resources=resources, partition_key=DAY).success
    if properties:
        catalog.load_table("staging.readings").transaction().set_properties(properties).commit_transaction()
    snapshots = len(catalog.load_table("staging.readings").metadata.snapshots)
    return asset, snapshots


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_append_and_upsert_of_nothing_commit_nothing(mode, resources, catalog):
    asset, snapshots = _materialise_then_empty(mode, resources, catalog)
    result = dg.materialize([asset], resources=resources, partition_key=DAY)
    assert result.success
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["skipped"].value == f"empty input: nothing to {mode}"
    assert len(catalog.load_table("staging.readings").metadata.snapshots) == snapshots
    assert rows(catalog).value.tolist() == [1, 2]


def test_overwrite_of_nothing_clears_the_window_by_default(resources, catalog):
    asset, snapshots = _materialise_then_empty("overwrite", resources, catalog)
    assert dg.materialize([asset], resources=resources, partition_key=DAY).success
    assert len(catalog.load_table("staging.readings").metadata.snapshots) > snapshots
    assert rows(catalog).empty


def test_overwrite_of_nothing_keeps_the_window_when_the_table_says_keep(resources, catalog):
    asset, snapshots = _materialise_then_empty(
        "overwrite", resources, catalog, {EMPTY_OVERWRITE_PROPERTY: "keep"}
    )
    assert dg.materialize([asset], resources=resources, partition_key=DAY).success
    assert len(catalog.load_table("staging.readings").metadata.snapshots) == snapshots
    assert rows(catalog).value.tolist() == [1, 2]


def test_overwrite_of_nothing_fails_when_the_table_says_fail(resources, catalog):
    asset, snapshots = _materialise_then_empty(
        "overwrite", resources, catalog, {EMPTY_OVERWRITE_PROPERTY: "fail"}
    )
    with pytest.raises(EmptyInputError, match="no rows to overwrite 2024-03-01 with"):
        dg.materialize([asset], resources=resources, partition_key=DAY)
    assert len(catalog.load_table("staging.readings").metadata.snapshots) == snapshots
    assert rows(catalog).value.tolist() == [1, 2]
