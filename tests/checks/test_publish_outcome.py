"""The order a write-audit-publish outcome hands its events to Dagster, and when it blocks."""

import dagster as dg
import pytest

from checks.asset_checks import PublishOutcome

KEY = dg.AssetKey(["staging", "readings"])


def outcome(*, before: bool, error_passes: bool) -> PublishOutcome:
    results = [
        dg.AssetCheckResult(
            check_name="not_null__id",
            asset_key=KEY,
            passed=error_passes,
            severity=dg.AssetCheckSeverity.ERROR,
        ),
        dg.AssetCheckResult(
            check_name="range__v", asset_key=KEY, passed=False, severity=dg.AssetCheckSeverity.WARN
        ),
    ]
    return PublishOutcome(
        output=dg.Output("frame"),
        results=results,
        failed_error_rules=[] if error_passes else ["not_null__id"],
        validated_before_commit=before,
        asset_key=KEY,
        slice_label="2024-03-01",
    )


def kinds(events) -> list[str]:
    return ["output" if isinstance(event, dg.Output) else event.check_name for event in events]


def test_validated_before_the_commit_the_results_come_first_and_warn_rules_do_not_block():
    published = outcome(before=True, error_passes=True)
    assert not published.blocked
    assert kinds(published.events()) == ["not_null__id", "range__v", "output"]


def test_a_failed_error_rule_before_the_commit_ends_without_the_output():
    blocked = outcome(before=True, error_passes=False)
    assert blocked.blocked
    seen = []
    with pytest.raises(
        dg.Failure, match=r"staging/readings not committed \(2024-03-01\); error rules failed: not_null__id"
    ):
        for event in blocked.events():
            seen.append(event)
    assert kinds(seen) == ["not_null__id", "range__v"]


def test_validated_after_the_commit_the_output_comes_first_and_nothing_blocks():
    after = outcome(before=False, error_passes=False)
    assert not after.blocked
    assert kinds(after.events()) == ["output", "not_null__id", "range__v"]
