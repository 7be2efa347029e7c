"""Jobs the UI and the command line launch: reference tables whole, dated tables by partition.

A job's assets must share one partitions definition, so dated tables get one job per definition
(granularity, start, end, time zone): a dataset with its own range or granularity gets its own job
and never breaks another's. Per granularity, the definition most tables share keeps the plain name
(`daily_tables`, `hourly_tables`, `monthly_tables`); the others are named by their range, e.g.
`daily_tables_from_2012_01_01_to_2016_01_01` (and time zone, when not UTC).
"""

import functools
import re

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from lakehouse_assets.automation.policies import RUN_RETRY_TAGS, STEP_RETRY_POLICY
from lakehouse_assets.contracts.contract import Contract, resolve_partitions, tables_of
from lakehouse_assets.contracts.partitioning import Partitioning

ADJECTIVES = {"hour": "hourly", "day": "daily", "month": "monthly"}

reference_tables_job = dg.define_asset_job(
    "reference_tables",
    selection=dg.AssetSelection.tag("partitioning", "none"),
    description="Landing, raw and staging of the unpartitioned reference datasets, whole.",
    op_retry_policy=STEP_RETRY_POLICY,
    tags=RUN_RETRY_TAGS,
)

# (definition, the partitions, the tables with it, sorted)
_Group = tuple[tuple, Partitioning, tuple[str, ...]]


def _groups(contracts: list[Contract]) -> tuple[_Group, ...]:
    tables: dict[tuple, list[str]] = {}
    partitions: dict[tuple, Partitioning] = {}
    for contract in resolve_partitions(list(contracts)):
        if contract.partitioning is not None:
            definition = contract.partitioning.definition
            partitions.setdefault(definition, contract.partitioning)
            tables.setdefault(definition, []).extend(tables_of(contract))
    return tuple(
        (definition, partitions[definition], tuple(sorted(tables[definition])))
        for definition in sorted(tables, key=_order)
    )


def _order(definition: tuple) -> tuple:
    granularity, start, end, timezone = definition
    return (granularity, start, end is None, end or start, timezone)


def job_name(partitioning: Partitioning, plain: bool) -> str:
    name = f"{ADJECTIVES[partitioning.granularity]}_tables"
    if plain:
        return name
    name += f"_from_{partitioning.start:%Y_%m_%d}"
    if partitioning.end:
        name += f"_to_{partitioning.end:%Y_%m_%d}"
    if partitioning.timezone != "UTC":
        name += "_" + re.sub(r"[^a-z0-9]+", "_", partitioning.timezone.lower()).strip("_")
    return name


@functools.cache
def _jobs(groups: tuple[_Group, ...]) -> tuple[tuple[UnresolvedAssetJobDefinition, Partitioning], ...]:
    # Cached so that the schedules target the very job objects the definitions hold (Dagster refuses
    # two job objects of one name).
    plain = {}
    for definition, _, tables in groups:
        granularity = definition[0]
        # most tables first; ties: the earlier range (groups are sorted by it)
        if granularity not in plain or len(tables) > plain[granularity][1]:
            plain[granularity] = (definition, len(tables))
    jobs = []
    for definition, partitioning, tables in groups:
        name = job_name(partitioning, plain[definition[0]][0] == definition)
        datasets = sorted({table.split(".", 1)[1] for table in tables if not table.endswith("_rejects")})
        jobs.append(
            (
                dg.define_asset_job(
                    name,
                    selection=dg.AssetSelection.assets(*(dg.AssetKey(table.split(".")) for table in tables)),
                    description=(
                        f"Every table with {partitioning.describe()} ({', '.join(datasets)}), landing to "
                        "output, for the chosen partitions."
                    ),
                    op_retry_policy=STEP_RETRY_POLICY,
                    tags=RUN_RETRY_TAGS,
                ),
                partitioning,
            )
        )
    return tuple(jobs)


def partitioned_jobs(contracts: list[Contract]) -> list[tuple[UnresolvedAssetJobDefinition, Partitioning]]:
    """One job per partitions definition, with the partitions it runs."""
    return list(_jobs(_groups(contracts)))


def build_jobs(contracts: list[Contract]) -> list[UnresolvedAssetJobDefinition]:
    return [reference_tables_job, *(job for job, _ in partitioned_jobs(contracts))]
