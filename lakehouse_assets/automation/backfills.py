"""Resuming a window after a partial failure, from Dagster's own record of every run.

No separate "drive table" is needed: each partition's last materialisation or failure is in the
instance's event log, so the partitions of a window that still need a run are those that failed
or never ran. Re-running them is safe because every write replaces exactly its own window.
"""

import dagster as dg

MODULE = "lakehouse_assets.definitions"


def partitions_to_resume(
    instance: dg.DagsterInstance,
    asset_key: dg.AssetKey,
    partitions_def: dg.PartitionsDefinition,
    start: str,
    end: str,
) -> dict[str, list[str]]:
    """The partitions of [start, end] whose last run failed, and those never materialised."""
    keys = partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))
    statuses = instance.get_status_by_partition(asset_key, keys, partitions_def) or {}
    return {
        "failed": [key for key in keys if statuses.get(key) == dg.AssetPartitionStatus.FAILED],
        "missing": [key for key in keys if statuses.get(key) is None],
        "in_progress": [key for key in keys if statuses.get(key) == dg.AssetPartitionStatus.IN_PROGRESS],
    }


def resume_commands(asset_key: dg.AssetKey, partition_keys: list[str]) -> list[str]:
    """One `dagster asset materialize` per partition: each commits on its own, as the backfill did."""
    selection = asset_key.to_user_string()
    return [
        f"dagster asset materialize -m {MODULE} --select '{selection}' --partition {key}"
        for key in partition_keys
    ]


def replay_commands(dataset: str, partition_keys: list[str]) -> list[str]:
    """One `dagster asset materialize` per partition a file touched, for its dataset's own chain
    (landing, raw with its rejects, staging); one without a partition for an unpartitioned dataset."""
    selection = ",".join(f"{layer}/{dataset}" for layer in ("landing", "raw")) + f",raw/{dataset}_rejects"
    selection += f",staging/{dataset}"
    base = f"dagster asset materialize -m {MODULE} --select '{selection}'"
    return [f"{base} --partition {key}" for key in partition_keys] or [base]
