"""The quality history: `audit.check_results` gets one row per check evaluation, one commit per
step, also for a step a failed error rule ends; a history that cannot be written never fails the
data write. And the materialisations and check results carry Dagster's standard metadata."""

import logging

import dagster as dg
import pyarrow.compute as pc
import pytest

from checks.history import IDENTIFIER, read_evaluations
from lakehouse_assets.assets.factory import build_assets
from lakehouse_assets.cli.demo import write_demo_landing
from lakehouse_assets.components.defs_folder import contracts_in
from resources.landing.local import LocalLandingStorage
from tests.checks.test_quality_publish import DAY, ORIGIN, edit_landed, materialise_day, set_field

COLUMNS = [
    "evaluated_at",
    "run_id",
    "layer",
    "table_name",
    "partition",
    "check_name",
    "rule",
    "severity",
    "passed",
    "rows_checked",
    "rows_failing",
    "description",
]


def reference_keys(assets) -> list[dg.AssetKey]:
    return [key for asset in assets if asset.partitions_def is None for key in asset.keys]


@pytest.fixture
def landed(settings):
    write_demo_landing(LocalLandingStorage(root=str(settings.landing_dir)), DAY, DAY)
    return settings


def evaluations_of(result) -> list[tuple[str, str, bool]]:
    return sorted(
        (".".join(e.asset_key.path), e.check_name, e.passed) for e in result.get_asset_check_evaluations()
    )


def history_of(catalog, run_id: str) -> list[dict]:
    rows = read_evaluations(catalog).to_pylist()
    return [row for row in rows if row["run_id"] == run_id]


def test_each_check_evaluation_is_one_row_and_each_step_one_commit(landed, resources, catalog):
    assets = build_assets(contracts_in())
    reference = dg.materialize(assets, resources=resources, selection=reference_keys(assets))
    day = materialise_day(assets, resources)
    assert reference.success and day.success

    history = catalog.load_table(IDENTIFIER)
    assert [field.name for field in history.schema().fields] == COLUMNS
    assert [(field.name, str(field.transform)) for field in history.spec().fields] == [
        ("evaluated_at_month", "month")
    ]
    rows = read_evaluations(catalog)
    evaluated = len(reference.get_asset_check_evaluations()) + len(day.get_asset_check_evaluations())
    assert rows.num_rows == evaluated
    for result in (reference, day):
        recorded = history_of(catalog, result.run_id)
        assert sorted((r["table_name"], r["check_name"], r["passed"]) for r in recorded) == evaluations_of(
            result
        )
    # one append per step that checks (raw and staging of each dataset, the two models)
    steps = {(row["run_id"], row["table_name"]) for row in rows.to_pylist()}
    assert len(history.metadata.snapshots) == len(steps) == 12

    (dest,) = [
        row
        for row in history_of(catalog, day.run_id)
        if (row["table_name"], row["check_name"]) == ("staging.flights", "references__dest")
    ]
    assert dest["layer"] == "staging" and dest["partition"] == str(DAY)
    assert (dest["severity"], dest["passed"], dest["rows_failing"]) == ("WARN", False, 26)
    assert dest["rows_checked"] == catalog.load_table("staging.flights").scan().to_arrow().num_rows
    assert dest["rule"].startswith("Destinations missing from the airport list")
    assert dest["description"].startswith("26 rows fail")
    assert dest["evaluated_at"].tzinfo is not None
    (audit,) = [
        row
        for row in history_of(catalog, day.run_id)
        if (row["table_name"], row["check_name"]) == ("raw.flights", "landing_rows_reconcile")
    ]
    assert (audit["severity"], audit["passed"], audit["rows_failing"]) == ("ERROR", True, 0)
    assert audit["rule"] == "landing rows = raw rows + rejected rows"
    assert all(row["partition"] is None for row in history_of(catalog, reference.run_id))

    # the same partition again: exactly one more row per evaluation, nothing rewritten
    again = materialise_day(assets, resources)
    assert again.success
    assert read_evaluations(catalog).num_rows == evaluated + len(again.get_asset_check_evaluations())
    assert len(history_of(catalog, again.run_id)) == len(day.get_asset_check_evaluations())


def test_a_failed_error_rule_is_recorded_though_it_ends_the_step(landed, resources, catalog):
    assets = build_assets(contracts_in())
    assert dg.materialize(assets, resources=resources, selection=reference_keys(assets)).success
    edit_landed(landed, lambda lines: set_field(lines, 7, ORIGIN, "XYZ"))

    result = materialise_day(assets, resources)

    assert not result.success
    recorded = history_of(catalog, result.run_id)
    assert sorted((r["table_name"], r["check_name"], r["passed"]) for r in recorded) == evaluations_of(result)
    failed = {(r["table_name"], r["check_name"]): r for r in recorded}[
        ("staging.flights", "allowed_values__origin")
    ]
    assert (failed["passed"], failed["severity"], failed["rows_failing"]) == (False, "ERROR", 1)
    assert "1 rows fail" in failed["description"]


def test_a_history_that_cannot_be_written_does_not_fail_the_data_write(landed, resources, catalog):
    # A file where the history's folder would go: the catalog cannot create the table (a real
    # failure of the warehouse, whichever user runs the tests).
    landed.warehouse_dir.mkdir(parents=True, exist_ok=True)
    (landed.warehouse_dir / "audit").write_text("not a folder")
    assets = build_assets(contracts_in())

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            assets, resources=resources, selection=reference_keys(assets), instance=instance
        )
        warnings = [
            entry.user_message
            for entry in instance.all_logs(result.run_id)
            if entry.level == logging.WARNING and "could not record" in entry.user_message
        ]

    assert result.success
    assert catalog.load_table("staging.airlines").scan().to_arrow().num_rows > 0
    # one warning per step that checked: raw and staging of the three reference datasets
    assert len(warnings) == 6
    assert all(IDENTIFIER in message and "the data write is unaffected" in message for message in warnings)
    assert read_evaluations(catalog).num_rows == 0


def test_materialisations_and_check_results_carry_dagsters_standard_metadata(landed, resources, catalog):
    assets = build_assets(contracts_in())
    reference = dg.materialize(assets, resources=resources, selection=reference_keys(assets))
    day = materialise_day(assets, resources)
    assert reference.success and day.success

    materialisations = {
        event.asset_key.to_user_string(): event.materialization.metadata
        for result in (reference, day)
        for event in result.get_asset_materialization_events()
    }
    staged = catalog.load_table("staging.flights")
    flights = materialisations["staging/flights"]
    assert flights["dagster/table_name"].value == "staging.flights"
    assert flights["dagster/uri"].value == staged.location()
    slice_rows = staged.scan(row_filter=f"flight_date = '{DAY}'").to_arrow().num_rows
    assert flights["dagster/partition_row_count"].value == slice_rows
    assert flights["dagster/row_count"].value == staged.scan().to_arrow().num_rows
    assert isinstance(flights["dagster/column_schema"].value, dg.TableSchema)
    airlines = materialisations["staging/airlines"]
    assert airlines["dagster/row_count"].value == len(
        catalog.load_table("staging.airlines").scan().to_arrow()
    )
    assert "dagster/partition_row_count" not in airlines
    for key, metadata in materialisations.items():
        assert {"dagster/row_count", "dagster/table_name", "dagster/uri"} <= set(metadata), key

    for evaluation in day.get_asset_check_evaluations():
        assert "dagster/row_count" in evaluation.metadata, evaluation.check_name
    rows = read_evaluations(catalog)
    checked = rows.filter(pc.equal(rows.column("table_name"), "staging.flights")).column("rows_checked")
    assert set(checked.to_pylist()) == {slice_rows}
