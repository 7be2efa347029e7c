"""Two tables the load test writes through Dagster: one by partition overwrite, one by append."""

import os

import dagster as dg

from io_managers.table_spec import TableSpec
from tests.reliability.workers import partition_rows

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-03-01")


def _load_asset(mode: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=["staging", f"load_{mode}"],
        partitions_def=DAYS,
        metadata=TableSpec(
            layer="staging",
            table=f"load_{mode}",
            partition_column="reading_date",
            granularity="day",
            write_mode=mode,
            primary_key=("reading_date", "sensor"),
        ).to_metadata(),
    )
    def load_table(context: dg.AssetExecutionContext):
        return partition_rows(context.partition_key, f"pid-{os.getpid()}")

    return load_table


LOAD_ASSETS = [_load_asset("overwrite"), _load_asset("append")]
