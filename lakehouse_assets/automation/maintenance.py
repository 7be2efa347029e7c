"""The maintenance job: expire old snapshots and remove orphan files in every lakehouse table.

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
    # the layers, and the quality history (`audit.check_results`, a snapshot per checking step)
    namespaces: list[str] = [*LAYERS, "audit"]


# The report is output metadata on a Nothing output: the code location's io_manager is the Iceberg
# one, which stores assets, not an op's return value.
@dg.op(
    description="Expire snapshots and delete orphan files in every table of the lakehouse namespaces.",
    out=dg.Out(dg.Nothing),
)
def maintain_tables(
    context: dg.OpExecutionContext, config: MaintenanceConfig, catalog: IcebergCatalogResource
):
    # the job is defined when the code location loads; pyiceberg is needed only when it runs
    from pyiceberg.exceptions import NoSuchTableError

    from io_managers.maintenance import expire_snapshots, remove_orphan_files

    if config.orphan_min_age_hours < MIN_SAFE_ORPHAN_AGE_HOURS:
        raise dg.Failure(
            f"orphan_min_age_hours={config.orphan_min_age_hours} could delete files a running write has "
            f"not committed yet; use at least {MIN_SAFE_ORPHAN_AGE_HOURS}",
            allow_retries=False,
        )
    iceberg = catalog.load()
    existing = {namespace[0] for namespace in iceberg.list_namespaces()}
    max_age = (
        dt.timedelta(hours=config.snapshot_max_age_hours)
        if config.snapshot_max_age_hours is not None
        else None
    )
    report = {}
    for namespace in config.namespaces:
        if namespace not in existing:
            continue
        for identifier in iceberg.list_tables(namespace):
            name = ".".join(identifier)
            try:
                table = iceberg.load_table(identifier)
            except NoSuchTableError:
                continue  # dropped since the listing
            expired = expire_snapshots(table, max_age=max_age, min_snapshots=config.min_snapshots)
            orphans = remove_orphan_files(table, min_age=dt.timedelta(hours=config.orphan_min_age_hours))
            report[name] = {
                "snapshots_expired": expired,
                "orphan_files_removed": len(orphans),
                "orphan_bytes_removed": sum(orphan.size for orphan in orphans),
            }
            context.log.info(f"{name}: {report[name]}")
    context.add_output_metadata(
        {
            "tables": dg.MetadataValue.int(len(report)),
            "snapshots_expired": dg.MetadataValue.int(sum(r["snapshots_expired"] for r in report.values())),
            "orphan_files_removed": dg.MetadataValue.int(
                sum(r["orphan_files_removed"] for r in report.values())
            ),
            "per_table": dg.MetadataValue.json(report),
        }
    )


@dg.job(
    name="table_maintenance",
    description="Expire old snapshots and remove orphan files older than a safe age, in every table.",
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
