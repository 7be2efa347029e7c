"""Audits: row counts that must reconcile between layers, read back from the committed tables.

- raw:     landing = raw + rejects                      (`landing_rows_reconcile`)
- staging: staged = raw - rows removed by named rules   (`raw_rows_reconcile`, e.g. duplicates)
           + rows an upsert kept from earlier deliveries (`kept_from_earlier_deliveries`)
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
# the metadata entry naming the rows an upsert kept from earlier deliveries
KEPT_ROWS = "kept_from_earlier_deliveries"


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


def rows_kept_from_earlier_deliveries(
    catalog: "Catalog", identifier: str, partition_column: str | None, window, write_mode: str, run_id: str
) -> int | None:
    """The slice's rows an upsert of this run kept from earlier deliveries (keys it did not bring),
    as its commit recorded them; None for the other write modes, which keep none."""
    from io_managers.commit import count_rows, rows_kept_by
    from io_managers.slices import TableSlice

    if write_mode != "upsert":
        return None
    table, table_slice = catalog.load_table(identifier), TableSlice.of(partition_column, window)
    kept = rows_kept_by(table, run_id, table_slice.label)
    # No commit of this run (an upsert of no rows): the slice is as earlier deliveries left it.
    return count_rows(table, table_slice) if kept is None else kept


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
    advice: tuple[str, str] = ("", ""),
    rule: str | None = None,
) -> dg.AssetCheckResult:
    """`actual` must equal `expected` within the tolerance; every count goes into the metadata.

    `advice` is what to do when rows are missing, and when there are more than expected: the
    failed check's description says it, so whoever sees the failure knows the next step. `rule`
    states the equation for the quality history (`checks.history`); the check's name otherwise.
    """
    gap = expected - actual
    allowed = tolerance.allowed(expected)
    passed = abs(gap) <= allowed
    description = None
    if gap:
        missing, extra = advice
        description = f"{gap} rows unaccounted ({explanation}); tolerance {allowed}"
        if not passed and (hint := missing if gap > 0 else extra):
            description += f". {hint}"
    return dg.AssetCheckResult(
        check_name=check_name,
        asset_key=asset_key,
        passed=passed,
        metadata={
            "rule": rule or check_name,
            "slice": slice_label,
            # the rows the audit counted, where Dagster's UI shows row counts
            "dagster/row_count": dg.MetadataValue.int(actual),
            **{name: dg.MetadataValue.int(value) for name, value in counts.items()},
            "expected_rows": dg.MetadataValue.int(expected),
            "actual_rows": dg.MetadataValue.int(actual),
            "unaccounted_rows": dg.MetadataValue.int(gap),
            "tolerated_rows": dg.MetadataValue.int(allowed),
        },
        description=description,
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
        rule="landing rows = raw rows + rejected rows",
        advice=(
            "Typing lost rows: re-materialise raw for this partition; if the gap stays, report it "
            "with the partition's landing files (a bug, not a data problem)",
            "raw and its rejects hold rows landing does not: landing was re-materialised after raw, "
            "or another run wrote raw meanwhile; re-materialise raw for this partition",
        ),
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
    kept: int | None = None,
) -> dg.AssetCheckResult:
    """committed = input - rows removed by named, counted rules + rows kept from earlier deliveries.

    `kept` is what an upsert left of the slice's earlier rows (keys the new delivery lacks), None for
    the write modes that keep none; such rows are named and counted like the removed ones.
    """
    counts = {
        f"{input_name}_rows": input_rows,
        **{f"removed_{_metadata_name(rule)}": rows for rule, rows in removed.items()},
        **({} if kept is None else {KEPT_ROWS: kept}),
        "committed_rows": committed,
    }
    explained = "rows removed by named rules" + (
        "" if kept is None else ", plus rows kept from earlier deliveries"
    )
    return reconcile(
        check_name=check_name,
        asset_key=asset_key,
        expected=input_rows - sum(removed.values()) + (kept or 0),
        actual=committed,
        tolerance=tolerance,
        counts=counts,
        slice_label=slice_label,
        explanation=f"{input_name} rows minus {explained} differ from the committed rows",
        rule=f"committed rows = {input_name} rows - {explained}",
        advice=(
            f"Rows of {input_name} were lost between the input and the commit: no named rule removed "
            f"them. Compare {input_name} with the table for this slice (the lineage columns name each "
            "row's file and line), fix the step that drops them, then re-materialise the partition; "
            "if such a loss is expected, allow it with quality.audit_tolerance",
            f"The table holds rows that neither {input_name} nor earlier deliveries explain: another run "
            "wrote this slice meanwhile, or rows of a delivery that is gone stayed behind. "
            "Re-materialise the partition; for a staging upsert, `write_modes.redelivery: replace` "
            "lets a corrected file withdraw the rows it no longer holds",
        ),
    )


def _metadata_name(rule: str) -> str:
    return "_".join(rule.split())
