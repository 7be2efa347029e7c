"""Jobs the UI and the command line launch: reference tables whole, dated tables by day."""

import dagster as dg

reference_tables_job = dg.define_asset_job(
    "reference_tables",
    selection=dg.AssetSelection.tag("partitioning", "none"),
    description="Landing, raw and staging of the unpartitioned reference datasets, whole.",
)

daily_tables_job = dg.define_asset_job(
    "daily_tables",
    selection=dg.AssetSelection.tag("partitioning", "daily"),
    description="Every daily-partitioned table, landing to output, for the chosen partitions.",
)

JOBS = [reference_tables_job, daily_tables_job]
