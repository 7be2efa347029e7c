"""Run reports on the local twins: metrics as JSON lines, e-mails as .eml files in the outbox."""

import email
import email.policy
import json

import dagster as dg
import pyarrow as pa
import pytest

from lakehouse_assets.monitoring.run_sensors import report_failed_runs, report_successful_runs
from tests.aws.conftest import report_run

SCORES = dg.AssetKey(["output", "scores"])


@dg.asset(
    key=SCORES,
    check_specs=[dg.AssetCheckSpec("no_negative_scores", asset=SCORES, blocking=True)],
)
def scores():
    yield dg.Output(pa.table({"player": ["a", "b"], "score": [3, -1]}))
    yield dg.AssetCheckResult(check_name="no_negative_scores", passed=False, description="1 negative score")


@dg.asset(key=["output", "podium"], deps=[SCORES])
def podium():
    return pa.table({"player": ["a"]})


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def metrics_lines(settings) -> list[dict]:
    return [json.loads(line) for path in sorted(settings.metrics_dir.glob("*.jsonl")) for line in path.open()]


def outbox(settings) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(settings.outbox_dir.glob("*.eml"))
    ]


def subjects(settings) -> list[str]:
    return sorted(message["Subject"] for message in outbox(settings))


def test_a_failed_blocking_check_mails_the_check_and_the_run_once(settings, resources, instance):
    result = dg.materialize([scores, podium], resources=resources, instance=instance, raise_on_error=False)
    assert not result.success
    report_run(report_failed_runs, instance, resources, result, failed=True)
    # a retried tick (the sensor crashed before saving its cursor) sends nothing twice
    report_run(report_failed_runs, instance, resources, result, failed=True)
    assert subjects(settings) == [
        "[local] Blocking check failed: output/scores no_negative_scores",
        "[local] Run failed: __ephemeral_asset_job__",
    ]
    (check_mail,) = [message for message in outbox(settings) if "Blocking check" in message["Subject"]]
    assert "1 negative score" in check_mail.get_content()
    assert (
        check_mail["X-Lakehouse-Event"] == f"check-failed/{result.run_id}/output/scores/no_negative_scores/"
    )


def test_metrics_are_json_lines_with_dataset_layer_and_environment(settings, resources, instance):
    result = dg.materialize([scores, podium], resources=resources, instance=instance, raise_on_error=False)
    report_run(report_failed_runs, instance, resources, result, failed=True)
    lines = metrics_lines(settings)
    by_name = {(line["name"], line["dimensions"].get("check")): line for line in lines}
    written = by_name[("RowsWritten", None)]
    assert written["value"] == 2
    assert written["unit"] == "Count"
    assert written["dimensions"] == {"dataset": "scores", "layer": "output", "environment": "local"}
    assert by_name[("CheckFailed", "no_negative_scores")]["value"] == 1
    assert by_name[("CheckPassed", "no_negative_scores")]["value"] == 0
    assert by_name[("RunsFailed", None)]["value"] == 1
    assert by_name[("BytesWritten", None)]["value"] > 0


def test_a_successful_output_run_mails_output_ready_once(settings, resources, instance):
    result = dg.materialize([podium], resources=resources, instance=instance)
    report_run(report_successful_runs, instance, resources, result)
    report_run(report_successful_runs, instance, resources, result)
    assert subjects(settings) == ["[local] Output ready: output/podium"]
    assert [line["name"] for line in metrics_lines(settings)].count("Materialisations") == 2


RANKED = dg.AssetKey(["output", "ranked"])


@dg.asset(
    key=RANKED,
    check_specs=[dg.AssetCheckSpec("players_known", asset=RANKED, blocking=True)],
)
def ranked():
    # a blocking reference rule whose table does not exist yet evaluates as a warning
    yield dg.Output(pa.table({"player": ["a", "b"]}))
    yield dg.AssetCheckResult(
        check_name="players_known",
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        description="reference.players does not exist yet",
    )


@dg.asset(key=["output", "leaders"], deps=[RANKED])
def leaders():
    return pa.table({"player": ["a"]})


def test_a_blocking_check_evaluated_as_a_warning_is_not_mailed_as_blocking(settings, resources, instance):
    result = dg.materialize([ranked, leaders], resources=resources, instance=instance)
    # Dagster lets the run go on: the downstream asset is materialised
    assert result.success
    assert {event.asset_key for event in result.get_asset_materialization_events()} == {
        RANKED,
        dg.AssetKey(["output", "leaders"]),
    }
    report_run(report_successful_runs, instance, resources, result)
    assert subjects(settings) == [
        "[local] Output ready: output/leaders",
        "[local] Output ready: output/ranked",
    ]
    # the failed warning still counts as a failed check in the metrics
    by_name = {(line["name"], line["dimensions"].get("check")): line for line in metrics_lines(settings)}
    assert by_name[("CheckFailed", "players_known")]["value"] == 1
