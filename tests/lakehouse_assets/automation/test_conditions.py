"""Automation follows an input only when the input's blocking checks passed (issue 13, item 8)."""

import dagster as dg
import pytest

from lakehouse_assets.automation.conditions import follow_inputs

DAY = "2024-01-01"
DAILY = dg.DailyPartitionsDefinition(start_date=DAY)
STAGING = dg.AssetKey(["staging", "flights"])
COMMON = dg.AssetKey(["common", "flights"])
OUTPUT = dg.AssetKey(["output", "carrier_daily_stats"])


def staging_with_check(passed: bool) -> dg.AssetsDefinition:
    # the table is committed before its audit runs, as the product's staging step does
    @dg.asset(
        key=STAGING,
        partitions_def=DAILY,
        check_specs=[dg.AssetCheckSpec("raw_rows_reconcile", asset=STAGING, blocking=True)],
    )
    def staging():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(
            check_name="raw_rows_reconcile", passed=passed, severity=dg.AssetCheckSeverity.ERROR
        )

    return staging


def common_with_check(passed: bool) -> dg.AssetsDefinition:
    @dg.asset(
        key=COMMON,
        deps=[STAGING],
        partitions_def=DAILY,
        automation_condition=follow_inputs(),
        check_specs=[dg.AssetCheckSpec("input_rows_reconcile", asset=COMMON, blocking=True)],
    )
    def common():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(check_name="input_rows_reconcile", passed=passed)

    return common


common = common_with_check(True)


@dg.asset(key=OUTPUT, deps=[COMMON], partitions_def=DAILY, automation_condition=follow_inputs())
def output():
    return dg.MaterializeResult()


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


def staging_run(instance: dg.DagsterInstance, passed: bool) -> None:
    result = dg.materialize(
        [staging_with_check(passed)], partition_key=DAY, instance=instance, raise_on_error=False
    )
    assert result.get_asset_materialization_events()  # committed either way


def evaluate(instance, cursor=None):
    definitions = dg.Definitions(assets=[staging_with_check(True), common, output])
    return dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=cursor)


def test_a_failed_blocking_check_holds_the_models_back_until_a_rerun_passes(instance):
    baseline = evaluate(instance)
    staging_run(instance, passed=False)
    held = evaluate(instance, baseline.cursor)
    assert held.get_requested_partitions(COMMON) == set()
    assert held.total_requested == 0
    # repeating the staging run, its check now passing, releases common and, on the same tick,
    # output (whose input is requested with it: a failed check of common would stop that run)
    staging_run(instance, passed=True)
    released = evaluate(instance, held.cursor)
    assert released.get_requested_partitions(COMMON) == {DAY}
    assert released.get_requested_partitions(OUTPUT) == {DAY}


def test_a_passing_blocking_check_lets_the_models_follow(instance):
    baseline = evaluate(instance)
    staging_run(instance, passed=True)
    evaluation = evaluate(instance, baseline.cursor)
    assert evaluation.get_requested_partitions(COMMON) == {DAY}
    assert evaluation.get_requested_partitions(OUTPUT) == {DAY}


def test_every_model_layer_waits_for_its_inputs_checks(settings):
    from lakehouse_assets.definitions import defs

    graph = defs().resolve_asset_graph()
    models = [key for key in graph.get_all_asset_keys() if key.path[0] in ("common", "output")]
    assert models
    for key in models:
        condition = graph.get(key).automation_condition
        assert "all_deps_blocking_checks_passed" in str(condition), key


def test_a_blocking_check_evaluated_as_a_warning_also_holds_the_models_back(instance):
    # a reference rule whose table does not exist yet: the run succeeds, the slice is unchecked
    @dg.asset(
        key=STAGING,
        partitions_def=DAILY,
        check_specs=[dg.AssetCheckSpec("carriers_known", asset=STAGING, blocking=True)],
    )
    def unchecked():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(
            check_name="carriers_known", passed=False, severity=dg.AssetCheckSeverity.WARN
        )

    definitions = dg.Definitions(assets=[unchecked, common, output])
    baseline = dg.evaluate_automation_conditions(defs=definitions, instance=instance)
    assert dg.materialize([unchecked], partition_key=DAY, instance=instance).success
    held = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=baseline.cursor)
    assert held.total_requested == 0


def test_a_failed_check_on_a_common_table_holds_the_output_back(instance):
    bad_common = common_with_check(False)
    definitions = dg.Definitions(assets=[staging_with_check(True), bad_common, output])
    baseline = dg.evaluate_automation_conditions(defs=definitions, instance=instance)
    staging_run(instance, passed=True)
    dg.materialize([bad_common], partition_key=DAY, instance=instance, raise_on_error=False)
    held = dg.evaluate_automation_conditions(defs=definitions, instance=instance, cursor=baseline.cursor)
    assert held.get_requested_partitions(OUTPUT) == set()
