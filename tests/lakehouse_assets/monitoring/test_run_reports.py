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
