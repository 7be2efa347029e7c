"""Jobs the UI and the command line launch: reference tables whole, dated tables by day."""

import dagster as dg

from lakehouse_assets.automation.policies import RUN_RETRY_TAGS, STEP_RETRY_POLICY

reference_tables_job = dg.define_asset_job(
    "reference_tables",
    selection=dg.AssetSelection.tag("partitioning", "none"),
    description="Landing, raw and staging of the unpartitioned reference datasets, whole.",
    op_retry_policy=STEP_RETRY_POLICY,
    tags=RUN_RETRY_TAGS,
)

daily_tables_job = dg.define_asset_job(
    "daily_tables",
    selection=dg.AssetSelection.tag("partitioning", "daily"),
    description="Every daily-partitioned table, landing to output, for the chosen partitions.",
    op_retry_policy=STEP_RETRY_POLICY,
    tags=RUN_RETRY_TAGS,
)

JOBS = [reference_tables_job, daily_tables_job]
