"""`lakehouse drop-table LAYER.TABLE`: the catalog entry and every file of one table, after a yes.

A table is only dropped while no run writes it. How the product knows: the Dagster instance (the
one `DAGSTER_HOME` names, which `make dev`, the daemon and `dagster asset materialize` share)
records, for every run it creates, an `ASSET_MATERIALIZATION_PLANNED` event per asset the run
will write, before the run is even queued. A run that is queued, starting, started or cancelling
and planned to materialise the table's asset is writing it (or about to). The IO manager holds no
lock of its own: Iceberg's optimistic commits need none, and a lock would outlive a killed run.
The product's bookkeeping tables (landing.files, audit.check_results) are no asset: runs of other
assets write them, so no run is ever found writing them; drop those while the deployment is quiet.
"""

import sys

from lakehouse_assets.cli.lake import UsageError, split_table_name

IN_PROGRESS = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def runs_writing(instance, layer: str, table: str) -> list:
    """The unfinished runs of the instance that plan to materialise the asset `layer/table`."""
    import dagster as dg
    from dagster._core.events import DagsterEventType

    asset_key = dg.AssetKey([layer, table])
    statuses = [dg.DagsterRunStatus[name] for name in IN_PROGRESS]
    writing = []
    for run in instance.get_runs(dg.RunsFilter(statuses=statuses)):
        if run.asset_selection is not None and asset_key in run.asset_selection:
            writing.append(run)
            continue
        planned = instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        ).records
        if any(record.event_log_entry.dagster_event.asset_key == asset_key for record in planned):
            writing.append(run)
    return writing


def _instance():
    import dagster as dg
    from dagster._core.errors import DagsterHomeNotSetError

    try:
        return dg.DagsterInstance.get()
    except DagsterHomeNotSetError:
        raise UsageError(
            "DAGSTER_HOME is not set, so no run can be checked for writing the table; set it to the "
            "instance the deployment runs on (`make dev` uses $LAKEHOUSE_HOME/dagster)"
        ) from None


def _confirmed(name: str, location: str, stdin, err) -> bool:
    if stdin is None or not stdin.isatty():
        raise UsageError(
            f"dropping {name} needs a confirmation and there is no terminal to ask on; "
            "re-run with --yes to drop it without asking"
        )
    err.write(f"drop {name} and delete every file under {location}? This cannot be undone. [y/N] ")
    err.flush()
    return stdin.readline().strip().lower() in ("y", "yes")


def run_drop_table(name: str, yes: bool, out=None, err=None, stdin=None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    stdin = stdin or sys.stdin
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    from io_managers.maintenance import remove_location
    from lakehouse_assets.cli.lake import lake_catalog

    layer, table_name = split_table_name(name)
    catalog = lake_catalog()
    try:
        table = catalog.load_table(name)
    except (NoSuchTableError, NoSuchNamespaceError):
        err.write(f"{name} does not exist in the catalog; `lakehouse tables` lists the tables\n")
        return 1
    with _instance() as instance:
        writing = runs_writing(instance, layer, table_name)
    if writing:
        runs = ", ".join(f"{run.run_id} ({run.job_name}, {run.status.value})" for run in writing)
        err.write(
            f"refusing to drop {name}: run(s) {runs} write it; wait for them to finish or cancel "
            "them in the UI (Runs), then drop again\n"
        )
        return 1
    location = table.location()
    if not location.rstrip("/").rsplit("/", 1)[-1].startswith(table_name):
        # every file under the location goes: one not named after the table may hold others' data
        err.write(
            f"refusing to drop {name}: its location {location} is not a folder of its own (not named "
            "after the table), so deleting everything under it could delete other data; drop it with "
            "the catalog's own tools and remove its files by hand\n"
        )
        return 1
    if not yes and not _confirmed(name, location, stdin, err):
        err.write("not dropped\n")
        return 1
    catalog.drop_table(name)
    files, size = remove_location(table.io, location)
    out.write(
        f"dropped {name}: catalog entry removed, {files} files ({size} bytes) deleted under {location}\n"
        f"its asset's history stays in Dagster; the next materialisation of {layer}/{table_name} "
        "creates the table again\n"
    )
    return 0
