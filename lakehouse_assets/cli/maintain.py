"""`lakehouse maintain`: the maintenance job's pass over the tables, now, from a shell.

The same per-table pass as the `table_maintenance` job (automation/maintenance.py): compaction of
crowded partitions, snapshot expiry, orphan removal, with the job's defaults and its safety floor
for the orphans' age. It talks to the catalog directly, so it needs no Dagster instance.
"""

import sys

from lakehouse_assets.cli.lake import UsageError, chosen_tables, lake_catalog


def run_maintain(
    tables: list[str] | None,
    compact: bool,
    min_files: int,
    snapshot_max_age_hours: float | None,
    orphan_min_age_hours: float,
    out=None,
    err=None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    from pyiceberg.exceptions import NoSuchTableError

    from lakehouse_assets.automation.maintenance import MaintenanceConfig, check_config, maintain_table
    from lakehouse_assets.cli.lake import NAMESPACES
    from lakehouse_assets.cli.progress import progress

    config = MaintenanceConfig(
        snapshot_max_age_hours=snapshot_max_age_hours,
        orphan_min_age_hours=orphan_min_age_hours,
        compact=compact,
        compaction_min_files=min_files,
        namespaces=list(NAMESPACES),
    )
    try:
        check_config(config)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    catalog = lake_catalog()
    names = chosen_tables(catalog, tables)
    failed = 0
    for name in progress(names, "maintaining"):
        try:
            report = maintain_table(catalog.load_table(name), config)
        except NoSuchTableError:
            continue  # dropped since the listing
        except Exception as exc:  # one table's failure must not stop the others' maintenance
            failed += 1
            err.write(f"{name}: maintenance failed: {type(exc).__name__}: {exc}\n")
            continue
        out.write(f"{name}: {_described(report)}\n")
    if failed:
        err.write(f"{failed} table(s) failed; the others were maintained. Fix the cause and run again\n")
        return 1
    return 0


def _described(report: dict) -> str:
    compaction = (
        f"{report['partitions_compacted']} partitions compacted ({report['files_removed']} files into "
        f"{report['files_added']})"
        if report["partitions_compacted"]
        else "nothing to compact"
    )
    if report["compaction_skipped"]:
        compaction = f"compaction skipped: {report['compaction_skipped']}"
    return (
        f"{compaction}, {report['snapshots_expired']} snapshots expired, "
        f"{report['orphan_files_removed']} orphan files removed"
    )
