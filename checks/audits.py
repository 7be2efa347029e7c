"""Audits: row counts that must reconcile between layers, read back from the committed tables.

- raw:     landing = raw + rejects                      (`landing_rows_reconcile`)
- staging: staged = raw - rows removed by named rules   (`raw_rows_reconcile`, e.g. duplicates)
- common:  rows = primary input - rows removed by named rules (`input_rows_reconcile`, filters)

Each runs after its table's commit and counts what readers see; a contract's
`quality.audit_tolerance` says how large a gap still reconciles (0 rows by default).

The asset definitions take the audits' names when the code location loads; the counting runs in a
step, so the functions that read tables import pyiceberg and the slices themselves, when they run.
"""

from typing import TYPE_CHECKING

import dagster as dg

from checks.rule_models import Tolerance

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

LANDING_AUDIT = "landing_rows_reconcile"
STAGING_AUDIT = "raw_rows_reconcile"
MODEL_AUDIT = "input_rows_reconcile"


def committed_rows(catalog: "Catalog", identifier: str, partition_column: str | None, window) -> int:
    from io_managers.commit import count_rows
    from io_managers.slices import TableSlice

    return count_rows(catalog.load_table(identifier), TableSlice.of(partition_column, window))


def rows_before_append(
    catalog: "Catalog", identifier: str, partition_column: str | None, window, write_mode: str
) -> int:
    """What an append adds to: the slice's rows before the commit (0 for the other write modes,
    which replace the slice, and for a table not created yet)."""
    from pyiceberg.exceptions import NoSuchTableError

    if write_mode != "append":
        return 0
    try:
        return committed_rows(catalog, identifier, partition_column, window)
    except NoSuchTableError:
        return 0


def reconcile(
    *,
    check_name: str,
    asset_key: dg.AssetKey,
    expected: int,
    actual: int,
    tolerance: Tolerance,
    counts: dict[str, int],
    slice_label: str,
    explanation: str,
) -> dg.AssetCheckResult:
    """`actual` must equal `expected` within the tolerance; every count goes into the metadata."""
    gap = expected - actual
    allowed = tolerance.allowed(expected)
    passed = abs(gap) <= allowed
    return dg.AssetCheckResult(
        check_name=check_name,
        asset_key=asset_key,
        passed=passed,
        metadata={
            "slice": slice_label,
            **{name: dg.MetadataValue.int(value) for name, value in counts.items()},
            "expected_rows": dg.MetadataValue.int(expected),
            "actual_rows": dg.MetadataValue.int(actual),
            "unaccounted_rows": dg.MetadataValue.int(gap),
            "tolerated_rows": dg.MetadataValue.int(allowed),
        },
        description=None if gap == 0 else f"{gap} rows unaccounted ({explanation}); tolerance {allowed}",
    )


def landing_reconciliation(
    catalog: "Catalog",
    dataset: str,
    partition_column: str | None,
    window: dg.TimeWindow | None,
    tolerance: Tolerance | None = None,
) -> dg.AssetCheckResult:
    """landing = raw + rejects for the slice: proof that typing lost no row."""
    from io_managers.slices import TableSlice

    counts = {
        f"{layer}_rows": committed_rows(catalog, identifier, partition_column, window)
        for layer, identifier in (
            ("landing", f"landing.{dataset}"),
            ("raw", f"raw.{dataset}"),
            ("rejected", f"raw.{dataset}_rejects"),
        )
    }
    return reconcile(
        check_name=LANDING_AUDIT,
        asset_key=dg.AssetKey(["raw", dataset]),
        expected=counts["landing_rows"],
        actual=counts["raw_rows"] + counts["rejected_rows"],
        tolerance=tolerance or Tolerance(),
        counts=counts,
        slice_label=TableSlice.of(partition_column, window).label,
        explanation="landing rows neither in raw nor in rejects",
    )


def removal_reconciliation(
    *,
    check_name: str,
    asset_key: dg.AssetKey,
    input_name: str,
    input_rows: int,
    removed: dict[str, int],
    committed: int,
    tolerance: Tolerance,
    slice_label: str,
) -> dg.AssetCheckResult:
    """committed = input - rows removed by named, counted rules."""
    counts = {
        f"{input_name}_rows": input_rows,
        **{f"removed_{_metadata_name(rule)}": rows for rule, rows in removed.items()},
        "committed_rows": committed,
    }
    return reconcile(
        check_name=check_name,
        asset_key=asset_key,
        expected=input_rows - sum(removed.values()),
        actual=committed,
        tolerance=tolerance,
        counts=counts,
        slice_label=slice_label,
        explanation=f"{input_name} rows minus rows removed by named rules differ from the committed rows",
    )


def _metadata_name(rule: str) -> str:
    return "_".join(rule.split())
