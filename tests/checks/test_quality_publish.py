"""Write-audit-publish end to end: a failing error rule stops the run before the commit, and the
count audits reconcile (or catch) rows between layers. Tables are read back with plain pyiceberg."""

import datetime as dt

import dagster as dg
import pytest

from lakehouse_assets.assets.factory import build_assets
from lakehouse_assets.cli.demo import write_demo_landing
from lakehouse_assets.components.defs_folder import contracts_in
from lakehouse_assets.contracts.contract import DatasetContract
from resources.landing.local import LocalLandingStorage

DAY = dt.date(2013, 1, 2)
FLIGHTS_FILE = f"flights/flights_{DAY}.csv"
STAGING = dg.AssetKey(["staging", "flights"])
COMMON = dg.AssetKey(["common", "flights"])
OUTPUT = dg.AssetKey(["output", "carrier_daily_stats"])
ORIGIN = 12  # field index of `origin` in a flights line


def contracts(validate_before_commit: bool = True):
    loaded = contracts_in()
    if validate_before_commit:
        return loaded
    return [
        contract.model_copy(
            update={"quality": contract.quality.model_copy(update={"validate_before_commit": False})}
        )
        if isinstance(contract, DatasetContract) and contract.name == "flights"
        else contract
        for contract in loaded
    ]


def materialise_day(assets, resources):
    dated = [key for asset in assets if asset.partitions_def is not None for key in asset.keys]
    return dg.materialize(
        assets, resources=resources, partition_key=str(DAY), selection=dated, raise_on_error=False
    )


@pytest.fixture
def published(settings, resources):
    """The reference tables and one good day, all published."""
    write_demo_landing(LocalLandingStorage(root=str(settings.landing_dir)), DAY, DAY)
    assets = build_assets(contracts())
    reference = [key for asset in assets if asset.partitions_def is None for key in asset.keys]
    assert dg.materialize(assets, resources=resources, selection=reference).success
    assert materialise_day(assets, resources).success
    return settings


def edit_landed(settings, edit) -> None:
    path = settings.landing_dir / FLIGHTS_FILE
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


def set_field(lines: list[str], line_number: int, index: int, value: str) -> list[str]:
    fields = lines[line_number - 1].split(",")
    fields[index] = value
    lines[line_number - 1] = ",".join(fields)
    return lines


def snapshot(catalog, identifier: str) -> int:
    return catalog.load_table(identifier).current_snapshot().snapshot_id


def materialised(result) -> set[dg.AssetKey]:
    return {event.asset_key for event in result.get_asset_materialization_events()}


def checks(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def test_a_failing_error_rule_blocks_the_commit_and_everything_downstream_unless_validation_is_after_it(
    published, resources, catalog
):
    before = {name: snapshot(catalog, name) for name in ("staging.flights", "common.flights")}
    # the flight on line 7 now departs from an airport outside New York City
    edit_landed(published, lambda lines: set_field(lines, 7, ORIGIN, "XYZ"))

    result = materialise_day(build_assets(contracts()), resources)

    assert not result.success
    assert dg.AssetKey(["raw", "flights"]) in materialised(result)
    assert not materialised(result) & {STAGING, COMMON, OUTPUT}
    evaluations = checks(result)
    failed = evaluations[("staging/flights", "allowed_values__origin")]
    assert not failed.passed and failed.blocking and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["failing_rows"].value == 1
    (sample,) = failed.metadata["failing_sample"].value
    assert (sample["_source_file"], sample["_source_line"], sample["origin"]) == (FLIGHTS_FILE, 7, "XYZ")
    # the step fails naming the rule and saying nothing was committed, not on a missing output
    (failure,) = result.get_step_failure_events()
    assert failure.step_key == "staging__flights"
    message = failure.step_failure_data.error.message
    assert "not committed (2013-01-02)" in message and "allowed_values__origin" in message
    # warnings are still reported; the audit never ran on a table that was not written
    assert not evaluations[("staging/flights", "departed")].passed
    assert ("staging/flights", "raw_rows_reconcile") not in evaluations
    # readers of the blocked table (plain pyiceberg) see the last published snapshot, without XYZ
    assert {name: snapshot(catalog, name) for name in before} == before
    staged = catalog.load_table("staging.flights").scan().to_pandas()
    assert "XYZ" not in set(staged.origin)
    assert len(staged) == len(catalog.load_table("raw.flights").scan().to_pandas())

    # The same run without validate_before_commit: the blocking check still stops downstream
    # assets, but only after the write, so readers now see the bad row. Hence the default.
    result = materialise_day(build_assets(contracts(validate_before_commit=False)), resources)

    assert not result.success
    assert STAGING in materialised(result)
    assert not materialised(result) & {COMMON, OUTPUT}
    assert not checks(result)[("staging/flights", "allowed_values__origin")].passed
    assert "XYZ" in set(catalog.load_table("staging.flights").scan().to_pandas().origin)
    assert snapshot(catalog, "common.flights") == before["common.flights"]


def test_the_staging_audit_counts_removed_duplicates_and_rows_an_upsert_keeps(published, resources, catalog):
    edit_landed(published, lambda lines: [*lines, lines[5], lines[9]])  # two repeated flights

    result = materialise_day(build_assets(contracts()), resources)

    assert result.success
    audit = checks(result)[("staging/flights", "raw_rows_reconcile")]
    raw_rows = audit.metadata["raw_rows"].value
    assert audit.passed
    assert audit.metadata["removed_duplicates"].value == 2
    assert audit.metadata["committed_rows"].value == raw_rows - 2
    assert audit.metadata["unaccounted_rows"].value == 0
    assert len(catalog.load_table("staging.flights").scan().to_pandas()) == raw_rows - 2
    common = checks(result)[("common/flights", "input_rows_reconcile")]
    assert common.passed and common.metadata["committed_rows"].value == raw_rows - 2

    # Then the source corrects the file: it drops the two repeats and three flights. Staging is
    # upserted with `redelivery: replace` (the default), so the file's new version replaces its
    # old one: the three flights go, and the audit has nothing to explain.
    edit_landed(published, lambda lines: lines[:-5])

    result = materialise_day(build_assets(contracts()), resources)

    assert result.success
    audit = checks(result)[("staging/flights", "raw_rows_reconcile")]
    assert audit.passed
    assert audit.metadata["raw_rows"].value == raw_rows - 5
    assert audit.metadata["kept_from_earlier_deliveries"].value == 0
    assert audit.metadata["committed_rows"].value == raw_rows - 5
    assert audit.metadata["unaccounted_rows"].value == 0
    assert len(catalog.load_table("staging.flights").scan().to_pandas()) == raw_rows - 5


def test_a_merging_upsert_keeps_the_keys_a_corrected_file_lacks_and_the_audit_names_them(
    published, resources, catalog
):
    staged = len(catalog.load_table("staging.flights").scan().to_pandas())
    merging = [
        contract.model_copy(
            update={"write_modes": contract.write_modes.model_copy(update={"redelivery": "merge"})}
        )
        if isinstance(contract, DatasetContract) and contract.name == "flights"
        else contract
        for contract in contracts()
    ]
    edit_landed(published, lambda lines: lines[:-3])  # the source drops three flights

    result = materialise_day(build_assets(merging), resources)

    assert result.success
    audit = checks(result)[("staging/flights", "raw_rows_reconcile")]
    assert audit.passed
    assert audit.metadata["raw_rows"].value == staged - 3
    assert audit.metadata["kept_from_earlier_deliveries"].value == 3
    assert audit.metadata["committed_rows"].value == staged
    assert audit.metadata["unaccounted_rows"].value == 0
    assert len(catalog.load_table("staging.flights").scan().to_pandas()) == staged
