"""Audits: row counts that must reconcile between layers, read back from the committed tables."""

import dagster as dg
from pyiceberg.catalog import Catalog

from io_managers.commits import count_rows
from io_managers.slices import TableSlice


def landing_reconciliation(
    catalog: Catalog, dataset: str, partition_column: str | None, window: dg.TimeWindow | None
) -> dg.AssetCheckResult:
    """landing = raw + rejects for the slice: proof that typing lost no row."""
    table_slice = (
        TableSlice(partition_column, window.start, window.end) if window and partition_column else TableSlice()
    )
    counts = {
        layer: count_rows(catalog.load_table(identifier), table_slice)
        for layer, identifier in (
            ("landing", f"landing.{dataset}"),
            ("raw", f"raw.{dataset}"),
            ("rejects", f"raw.{dataset}_rejects"),
        )
    }
    gap = counts["landing"] - counts["raw"] - counts["rejects"]
    return dg.AssetCheckResult(
        check_name="landing_rows_reconcile",
        asset_key=dg.AssetKey(["raw", dataset]),
        passed=gap == 0,
        metadata={
            "slice": table_slice.label,
            "landing_rows": counts["landing"],
            "raw_rows": counts["raw"],
            "rejected_rows": counts["rejects"],
            "unaccounted_rows": gap,
        },
        description=None if gap == 0 else f"{gap} landing rows are neither in raw nor in rejects",
    )
