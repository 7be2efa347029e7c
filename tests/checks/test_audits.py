"""The count audits' verdicts on counts alone: rows kept from earlier deliveries are explained like
removed ones; rows really lost still fail the audit, with a description that says what to do."""

import dagster as dg

from checks.audits import KEPT_ROWS, removal_reconciliation
from checks.rule_models import Tolerance

STAGING = dg.AssetKey(["staging", "flights"])


def audit(committed: int, kept: int | None, tolerance: Tolerance | None = None) -> dg.AssetCheckResult:
    return removal_reconciliation(
        check_name="raw_rows_reconcile",
        asset_key=STAGING,
        input_name="raw",
        input_rows=961,
        removed={"duplicates": 2},
        committed=committed,
        tolerance=tolerance or Tolerance(),
        slice_label="2013-01-02",
        kept=kept,
    )


def test_rows_kept_from_earlier_deliveries_are_counted_like_removed_duplicates():
    result = audit(committed=962, kept=3)

    assert result.passed and result.description is None
    assert result.metadata[KEPT_ROWS].value == 3
    assert result.metadata["removed_duplicates"].value == 2
    assert result.metadata["expected_rows"].value == 961 - 2 + 3


def test_rows_really_lost_fail_the_audit_and_the_description_says_what_to_do():
    result = audit(committed=961, kept=3)

    assert not result.passed
    assert result.metadata["unaccounted_rows"].value == 1
    assert result.description.startswith("1 rows unaccounted (raw rows minus rows removed by named rules")
    assert "re-materialise the partition" in result.description
    assert "quality.audit_tolerance" in result.description


def test_rows_nobody_explains_fail_the_audit_and_point_to_the_redelivery_option():
    result = audit(committed=962, kept=None)

    assert not result.passed
    assert KEPT_ROWS not in result.metadata
    assert result.metadata["unaccounted_rows"].value == -3
    assert "write_modes.redelivery: replace" in result.description


def test_a_gap_within_the_tolerance_passes_without_advice():
    result = audit(committed=958, kept=0, tolerance=Tolerance(rows=1))

    assert result.passed
    assert result.description == (
        "1 rows unaccounted (raw rows minus rows removed by named rules, plus rows kept from earlier "
        "deliveries differ from the committed rows); tolerance 1"
    )
