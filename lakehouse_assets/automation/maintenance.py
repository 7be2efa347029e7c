"""The maintenance job: expire old snapshots, remove orphan files and compact crowded partitions in
every lakehouse table (`lakehouse maintain` runs the same per-table pass, `maintain_table`).

It runs on its own schedule (daily at `LAKEHOUSE_MAINTENANCE_TIME`, default 04:00, in
`LAKEHOUSE_SCHEDULE_TIMEZONE`) and is safe beside writers; see io_managers/maintenance.py for why.
"""

import datetime as dt

import dagster as dg

from resources.catalog.resource import IcebergCatalogResource
from resources.settings import MaintenanceSettings

LAYERS = ("landing", "raw", "staging", "common", "output")
# Below this an orphan may be a file a running writer has not committed yet.
MIN_SAFE_ORPHAN_AGE_HOURS = 1.0


class MaintenanceConfig(dg.Config):
    snapshot_max_age_hours: float | None = (
        None  # None: the table's history.expire.max-snapshot-age-ms, or 5 days
    )
    min_snapshots: int | None = None  # None: the table's history.expire.min-snapshots-to-keep, or 1
    orphan_min_age_hours: float = 72.0
    # audit: the quality history, appended at every check evaluation
    namespaces: list[str] = [*LAYERS, "audit"]
    # only these tables ("staging.flights"); None: every table of the namespaces
    tables: list[str] | None = None
    compact: bool = True
    # a partition is compacted when it holds at least this many files smaller than the size below
    compaction_min_files: int = 4
    compaction_small_file_bytes: int = 32 * 1024 * 1024


def check_config(config: MaintenanceConfig) -> None:
    if config.orphan_min_age_hours < MIN_SAFE_ORPHAN_AGE_HOURS:
        raise ValueError(
            f"orphan_min_age_hours={config.orphan_min_age_hours} could delete files a running write has "
            f"not committed yet; use at least {MIN_SAFE_ORPHAN_AGE_HOURS}"
        )
    if config.compaction_min_files < 2:
        raise ValueError(f"compaction_min_files={config.compaction_min_files}: use at least 2")


def tables_to_maintain(iceberg, config: MaintenanceConfig) -> list[str]:
    """`layer.table` names: the configured tables, or every table of the configured namespaces."""
    if config.tables is not None:
        return list(config.tables)
    from resources.catalog.resource import DATABASE_PREFIX

    # Glue lists its databases with the environment's prefix (`dev_raw`), other environments' too
    prefix = iceberg.properties.get(DATABASE_PREFIX, "")
    existing = {".".join(namespace) for namespace in iceberg.list_namespaces()}
    return [
        f"{namespace}.{identifier[-1]}"
        for namespace in config.namespaces
        if f"{prefix}{namespace}" in existing
        for identifier in iceberg.list_tables(namespace)
    ]


def maintain_table(table, config: MaintenanceConfig) -> dict:
    """One table's pass: compaction first (its replaced files become history), then expiry (which
    may release them), then orphans."""
    from io_managers.compaction import CompactionResult, CompactionSettings, compact_table
    from io_managers.maintenance import expire_snapshots, remove_orphan_files

    max_age = (
        dt.timedelta(hours=config.snapshot_max_age_hours)
        if config.snapshot_max_age_hours is not None
        else None
    )
    compaction = CompactionResult(".".join(table.name()), skipped_reason="switched off")
    if config.compact:
        compaction = compact_table(
            table,
            CompactionSettings(config.compaction_min_files, config.compaction_small_file_bytes),
        )
    expired = expire_snapshots(table, max_age=max_age, min_snapshots=config.min_snapshots)
    orphans = remove_orphan_files(table, min_age=dt.timedelta(hours=config.orphan_min_age_hours))
    return {
        "snapshots_expired": expired,
        "orphan_files_removed": len(orphans),
        "orphan_bytes_removed": sum(orphan.size for orphan in orphans),
        **compaction.as_report(),
    }


# The report is output metadata on a Nothing output: the code location's io_manager is the Iceberg
# one, which stores assets, not an op's return value.
@dg.op(
    description="Compact crowded partitions, expire snapshots and delete orphan files in every table "
    "of the lakehouse namespaces.",
    out=dg.Out(dg.Nothing),
)
def maintain_tables(
    context: dg.OpExecutionContext, config: MaintenanceConfig, catalog: IcebergCatalogResource
):
    # the job is defined when the code location loads; pyiceberg is needed only when it runs
    from pyiceberg.exceptions import NoSuchTableError

    try:
        check_config(config)
    except ValueError as exc:
        raise dg.Failure(str(exc), allow_retries=False) from None
    iceberg = catalog.load()
    report = {}
    for name in tables_to_maintain(iceberg, config):
        try:
            table = iceberg.load_table(name)
        except NoSuchTableError:
            continue  # dropped since the listing
        report[name] = maintain_table(table, config)
        context.log.info(f"{name}: {report[name]}")
    context.add_output_metadata(
        {
            "tables": dg.MetadataValue.int(len(report)),
            "snapshots_expired": dg.MetadataValue.int(sum(r["snapshots_expired"] for r in report.values())),
            "orphan_files_removed": dg.MetadataValue.int(
                sum(r["orphan_files_removed"] for r in report.values())
            ),
            "files_compacted": dg.MetadataValue.int(sum(r["files_removed"] for r in report.values())),
            "per_table": dg.MetadataValue.json(report),
        }
    )


@dg.job(
    name="table_maintenance",
    description="Compact partitions of many small files, expire old snapshots and remove orphan files "
    "older than a safe age, in every table.",
)
def table_maintenance_job():
    maintain_tables()


def build_maintenance_schedule(maintenance: MaintenanceSettings, timezone: str) -> dg.ScheduleDefinition:
    at = maintenance.time
    return dg.ScheduleDefinition(
        name="table_maintenance_daily",
        job=table_maintenance_job,
        cron_schedule=f"{at.minute} {at.hour} * * *",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
