"""`lakehouse copy`: tables of this deployment into another one, with row counts checked per partition.

The stage migration of the old frameworks: dev's tables to a test catalog, a prefix's tables to
another prefix. Each table is copied partition by partition (read through pyiceberg, written by
pyiceberg's writer into the target's warehouse) and committed in one snapshot that replaces
whatever the target table held, so a re-run converges. Then the target's rows are counted per
partition, from its own metadata, and compared with the rows read from the source.
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path

from lakehouse_assets.cli.lake import UsageError, chosen_tables, lake_catalog

COPIED_FROM_PROPERTY = "lakehouse.copied-from"


@dataclass
class CopyOutcome:
    name: str
    rows: int = 0
    partitions: int = 0
    mismatches: list[str] = field(default_factory=list)


def target_catalog(to_catalog: str | None, to_prefix: str | None, to_warehouse: str | None, settings):
    """The target deployment's catalog: a SQL catalog by URI, or this AWS account's Glue catalog
    under another database prefix."""
    from resources.catalog.resource import IcebergCatalogResource

    if (to_catalog is None) == (to_prefix is None):
        raise UsageError("give one target: --to-catalog URI (a SQL catalog) or --to-prefix PREFIX (Glue)")
    if to_catalog is not None:
        if not to_catalog.startswith(("sqlite:", "postgresql", "mysql")):
            raise UsageError(
                f"--to-catalog {to_catalog!r}: expected a SQL catalog URI like sqlite:////srv/stage/catalog.db"
            )
        if to_warehouse is None:
            if not to_catalog.startswith("sqlite:///"):
                raise UsageError("--to-warehouse is needed with a catalog that is not a SQLite file")
            to_warehouse = (
                (Path(to_catalog.removeprefix("sqlite:///")).parent / "warehouse").resolve().as_uri()
            )
        elif "://" not in to_warehouse:
            to_warehouse = Path(to_warehouse).resolve().as_uri()
        if to_catalog == settings.catalog_uri and settings.aws is None:
            raise UsageError("--to-catalog names this deployment's own catalog; copy to another one")
        return IcebergCatalogResource.sql(to_catalog, to_warehouse).load(), to_warehouse
    if settings.aws is None:
        raise UsageError("--to-prefix copies between Glue prefixes; it needs LAKEHOUSE_ENV=aws")
    if to_prefix == settings.aws.glue_database_prefix:
        raise UsageError(f"--to-prefix {to_prefix!r} is this deployment's own prefix; copy to another one")
    warehouse = to_warehouse or settings.aws.warehouse_uri
    resource = IcebergCatalogResource.glue(warehouse, to_prefix, settings.aws.file_io)
    return resource.load(), warehouse


def _partition_label(table, partition) -> str:
    spec = table.spec()
    return spec.partition_to_path(partition, table.schema()) if spec.fields else "whole table"


def _target_table(source, target_catalog, name: str):
    from pyiceberg.exceptions import NoSuchTableError

    namespace = name.split(".")[0]
    target_catalog.create_namespace_if_not_exists(namespace)
    try:
        target = target_catalog.load_table(name)
    except NoSuchTableError:
        return target_catalog.create_table(
            name,
            schema=source.schema(),
            partition_spec=source.spec(),
            sort_order=source.sort_order(),
            properties=dict(source.properties),
        )
    with target.update_schema() as update:
        # a column the source gained since the last copy
        update.union_by_name(source.schema())
    return target


def copy_table(source_catalog, target_catalog, name: str, on_partition=None) -> CopyOutcome:
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files

    source = source_catalog.load_table(name)
    target = _target_table(source, target_catalog, name)
    outcome = CopyOutcome(name)
    tasks_by_partition: dict = {}
    for task in source.scan().plan_files():
        tasks_by_partition.setdefault(_partition_label(source, task.file.partition), []).append(task)
    expected: dict[str, int] = {}
    added = []
    snapshot = source.current_snapshot()
    for label, tasks in sorted(tasks_by_partition.items()):
        rows = ArrowScan(source.metadata, source.io, source.schema(), AlwaysTrue()).to_table(tasks)
        expected[label] = rows.num_rows
        if rows.num_rows:
            added += list(_dataframe_to_data_files(target.metadata, rows, target.io))
        if on_partition is not None:
            on_partition(label)
    existing = [task.file for task in target.scan().plan_files()]
    if added or existing:
        origin = f"{name}@{snapshot.snapshot_id if snapshot else 'empty'}"
        with (
            target.transaction() as transaction,
            transaction.update_snapshot(
                snapshot_properties={COPIED_FROM_PROPERTY: origin}
            ).overwrite() as overwrite,
        ):
            for file in existing:
                overwrite.delete_data_file(file)
            for file in added:
                overwrite.append_data_file(file)
    outcome.rows = sum(expected.values())
    outcome.partitions = len(expected)
    outcome.mismatches = verify_counts(target_catalog.load_table(name), expected)
    return outcome


def partition_counts(table) -> dict[str, int]:
    """Rows per partition from the table's own manifests (record counts of its live data files)."""
    counts: dict[str, int] = {}
    for task in table.scan().plan_files():
        label = _partition_label(table, task.file.partition)
        deleted = sum(delete.record_count for delete in task.delete_files)
        counts[label] = counts.get(label, 0) + task.file.record_count - deleted
    return counts


def verify_counts(target, expected: dict[str, int]) -> list[str]:
    found = partition_counts(target)
    return [
        f"{label}: {expected.get(label, 0)} rows in the source, {found.get(label, 0)} in the target"
        for label in sorted(set(expected) | set(found))
        if expected.get(label, 0) != found.get(label, 0)
    ]


def run_copy(
    to_catalog: str | None,
    to_prefix: str | None,
    to_warehouse: str | None,
    tables: list[str] | None,
    out=None,
    err=None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    from lakehouse_assets.cli.progress import progress
    from resources.settings import load_settings

    settings = load_settings()
    target, warehouse = target_catalog(to_catalog, to_prefix, to_warehouse, settings)
    source = lake_catalog(settings)
    names = chosen_tables(source, tables)
    failed = 0
    for name in progress(names, "copying"):
        outcome = copy_table(source, target, name)
        if outcome.mismatches:
            failed += 1
            err.write(
                f"{name}: row counts differ after the copy:\n  " + "\n  ".join(outcome.mismatches) + "\n"
            )
        else:
            out.write(
                f"{name}: {outcome.rows} rows in {outcome.partitions} partitions copied, counts match\n"
            )
    if failed:
        err.write(
            f"{failed} of {len(names)} tables do not match in {warehouse}; a writer may have "
            "committed to the source during the copy: re-run the copy of those tables\n"
        )
        return 1
    out.write(f"{len(names)} tables copied to {warehouse}\n")
    return 0
