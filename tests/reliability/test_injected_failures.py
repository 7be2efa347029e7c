"""Commit failures injected at the catalog, below and above the retry budget, in every write mode."""

import datetime as dt

import dagster as dg
import pandas as pd
import pytest
from pyiceberg.catalog import load_catalog
from pyiceberg.exceptions import CommitStateUnknownException

from io_managers.commit import WriteRequest, commit
from io_managers.iceberg_io_manager import IcebergIOManager
from io_managers.maintenance import find_orphan_files
from io_managers.retries import CommitRetriesExhausted
from io_managers.schema import create_table_if_missing
from io_managers.slices import TableSlice
from resources.catalog.resource import IcebergCatalogResource
from tests.io_managers.test_io_manager import readings, table_asset
from tests.reliability.faults import FLAKY, LOST_RESPONSE
from tests.reliability.harness import catalog_properties

# pyiceberg tries 1 + 2 times per transaction, our loop runs 4 transactions: 12 commit attempts.
RETRY_PROPERTIES = {
    "commit.retry.num-retries": "2",
    "commit.retry.min-wait-ms": "1",
    "commit.retry.max-wait-ms": "5",
    "lakehouse.commit.retry.attempts": "4",
    "lakehouse.commit.retry.min-wait-ms": "1",
    "lakehouse.commit.retry.max-wait-ms": "10",
}
ATTEMPTS = 3 * 4


def _flaky_resources(settings, failures: int) -> tuple[dict, IcebergCatalogResource]:
    catalog = IcebergCatalogResource(
        properties=catalog_properties(
            settings, **{"py-catalog-impl": FLAKY, "fault.commit-failures": str(failures)}
        )
    )
    return {"catalog": catalog, "io_manager": IcebergIOManager(catalog=catalog)}, catalog


def _prepare_table(catalog):
    data = readings("2024-03-01", 1)
    table = create_table_if_missing(catalog, "staging.readings", _arrow(data).schema, "reading_date")
    table.transaction().set_properties(RETRY_PROPERTIES).commit_transaction()
    return table


def _arrow(frame: pd.DataFrame):
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


@pytest.mark.parametrize("mode", ["overwrite", "append", "upsert"])
def test_failures_below_the_retry_budget_are_survived_with_every_row_once(
    mode, settings, catalog, record_property
):
    _prepare_table(catalog)
    failures = ATTEMPTS - 1
    resources, flaky = _flaky_resources(settings, failures)
    asset = table_asset(mode, lambda context: readings(context.partition_key, 1, 2, 3))

    assert dg.materialize([asset], resources=resources, partition_key="2024-03-01").success

    table = catalog.load_table("staging.readings")
    rows = table.scan().to_pandas()
    assert sorted(rows.sensor) == ["s0", "s1", "s2"]
    assert flaky.load().injected == failures
    assert flaky.load().commits == 1
    record_property(
        f"reliability.faults_survived_{mode}", f"{failures} injected commit failures, 0 rows lost"
    )


def test_failures_above_the_retry_budget_fail_clearly_and_change_nothing(settings, catalog, record_property):
    table = _prepare_table(catalog)
    table.append(_arrow(readings("2024-03-01", 7)))
    before = catalog.load_table("staging.readings").current_snapshot().snapshot_id
    resources, flaky = _flaky_resources(settings, ATTEMPTS + 5)
    asset = table_asset("overwrite", lambda context: readings(context.partition_key, 1, 2, 3))

    with pytest.raises(
        CommitRetriesExhausted, match=r"gave up after 4 attempts .* Nothing of this write is visible"
    ):
        dg.materialize([asset], resources=resources, partition_key="2024-03-01")

    table = catalog.load_table("staging.readings")
    assert table.current_snapshot().snapshot_id == before
    assert table.scan().to_pandas().value.tolist() == [7]
    assert flaky.load().injected == ATTEMPTS

    # Each refused attempt removed the data files it wrote: nothing is left for maintenance to find.
    assert find_orphan_files(table, min_age=dt.timedelta(0)) == []
    assert table.scan().to_pandas().value.tolist() == [7]
    record_property(
        "reliability.faults_refused", f"{ATTEMPTS} injected failures -> clear error, table unchanged"
    )


def test_files_of_a_commit_whose_outcome_is_unknown_are_kept(settings, catalog):
    """The catalog applied the commit but its answer was lost: removing the files would break the table."""
    _prepare_table(catalog)
    lost = load_catalog(catalog.name, **catalog_properties(settings, **{"py-catalog-impl": LOST_RESPONSE}))
    table = lost.load_table("staging.readings")
    window = TableSlice(
        "reading_date", dt.datetime(2024, 3, 1, tzinfo=dt.UTC), dt.datetime(2024, 3, 2, tzinfo=dt.UTC)
    )

    with pytest.raises(CommitStateUnknownException):
        commit(table, _arrow(readings("2024-03-01", 4, 5)), WriteRequest("overwrite", window, "run-1"))

    committed = catalog.load_table("staging.readings")
    assert sorted(committed.scan().to_pandas().value) == [4, 5]  # every file it references is there
