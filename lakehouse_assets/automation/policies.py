"""How dated tables run: range backfills, step and run retries, and a concurrency pool per table.

Each run writes its whole partition window in one Iceberg commit, so the backfill policy decides
the blast radius of a bad day as much as the speed: a range in one run is all-or-nothing, separate
runs commit independently and a failed one is re-run on its own.
"""

import dagster as dg

from lakehouse_assets.contracts.contract import Contract, backfill_partitions_per_run
from resources.settings import DEFAULT_PANDAS_DAYS_PER_RUN

SINGLE_RUN_ENGINES = frozenset({"spark"})
_DAYS_PER_MONTH = 30.44


def pandas_partitions_per_run(granularity: str = "day", days: int = DEFAULT_PANDAS_DAYS_PER_RUN) -> int:
    """As many partitions as cover `days` (744 hours, 31 days, 1 month by default), at least one."""
    if granularity == "hour":
        return days * 24
    if granularity == "month":
        return max(1, round(days / _DAYS_PER_MONTH))
    return days


def backfill_policy_for(
    partitioned: bool,
    engine: str = "auto",
    granularity: str = "day",
    pandas_days_per_run: int = DEFAULT_PANDAS_DAYS_PER_RUN,
    partitions_per_run: int | None = None,
) -> dg.BackfillPolicy | None:
    """A contract pinned to Spark takes any range in one run; pandas, and `auto` (which may fall
    back to pandas), take `partitions_per_run` partitions per run when the contract sizes its runs
    (`partitioning.partition_size` or `.backfill_partitions_per_run`), else up to
    `pandas_days_per_run` days' worth (`LAKEHOUSE_PANDAS_DAYS_PER_RUN`). Memory stays bounded
    regardless: a window whose data outgrows the Spark threshold is read on Spark."""
    if not partitioned:
        return None
    if engine in SINGLE_RUN_ENGINES:
        return dg.BackfillPolicy.single_run()
    return dg.BackfillPolicy.multi_run(
        max_partitions_per_run=partitions_per_run
        or pandas_partitions_per_run(granularity, pandas_days_per_run)
    )


def partitions_per_run(
    contract: Contract, pandas_days_per_run: int = DEFAULT_PANDAS_DAYS_PER_RUN
) -> int | None:
    """Partitions one backfill run of a partitioned contract takes (None: any range in one run)."""
    partitioning = contract.partitioning
    policy = backfill_policy_for(
        partitioning is not None,
        contract.engine,
        partitioning.granularity if partitioning else "day",
        pandas_days_per_run,
        backfill_partitions_per_run(contract),
    )
    return policy.max_partitions_per_run if policy else None


def table_pool(layer: str, name: str) -> str:
    """The Dagster concurrency pool of the steps that write one table.

    Commits to one table are safe in parallel (optimistic concurrency plus retries), so no limit is
    needed for correctness; a limit (`concurrency.pools` in dagster.yaml or
    `dagster instance concurrency set iceberg/staging.flights 2`) bounds contention on a busy table.
    """
    return f"iceberg/{layer}.{name}"


# A step whose commit kept failing after the in-process retries (io_managers/retries.py) gets the
# whole step again a little later: by then the competing writers or the throttling have passed.
STEP_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

# Run retries need `run_retries: {enabled: true}` in dagster.yaml; these tags then re-run a failed
# run from its failed steps, so the partitions that succeeded are not written again.
RUN_RETRY_TAGS = {"dagster/max_retries": "2", "dagster/retry_strategy": "FROM_FAILURE"}
