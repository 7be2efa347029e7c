"""Shared fixtures: every test gets its own LAKEHOUSE_HOME with a real SQLite Iceberg catalog."""

import datetime as dt
import os
import re
import shutil
import sys
from pathlib import Path

import dagster as dg
import pytest
from pyiceberg.catalog import Catalog

from lakehouse_assets.definitions import build_resources
from resources.settings import Settings, load_settings

# Whichever test starts the process's Spark session first, its Python workers must run this
# interpreter (with pyarrow and the project), not whatever `python3` is first on PATH.
os.environ["PYSPARK_PYTHON"] = sys.executable
os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path / "lakehouse"))
    monkeypatch.setenv("LAKEHOUSE_ENV", "local")
    return load_settings()


@pytest.fixture
def resources(settings) -> dict:
    return build_resources(settings)


@pytest.fixture
def catalog(resources) -> Catalog:
    """The same catalog the product writes to, opened with plain pyiceberg."""
    from pyiceberg.catalog.sql import SqlCatalog

    settings = load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    return SqlCatalog("lakehouse", uri=settings.catalog_uri, warehouse=settings.warehouse_dir.as_uri())


def materialize_partitions(assets, resources, start: str, end: str | None = None, selection=None):
    """Materialise a partition, or a range of partitions in one run (single-run backfill)."""
    tags = {}
    partition_key = start
    if end and end != start:
        tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
        partition_key = None
    return dg.materialize(
        assets, resources=resources, partition_key=partition_key, tags=tags, selection=selection
    )


@pytest.fixture
def day() -> dt.date:
    return dt.date(2013, 1, 2)


SLOW_MODULES = {"test_webserver", "test_end_to_end", "test_aws_end_to_end", "test_dg_cli"}


def pytest_collection_modifyitems(items):
    """Markers by where a test lives and what it starts, so a subset can be chosen with `-m`."""
    for item in items:
        parts = item.path.parts
        if "aws" in parts:
            item.add_marker(pytest.mark.aws)
        if "reliability" in parts:
            item.add_marker(pytest.mark.reliability)
        if item.path.stem in SLOW_MODULES or "reliability" in parts:
            item.add_marker(pytest.mark.slow)
        uses_spark = "spark" in item.path.stem or "spark" in getattr(item, "fixturenames", ())
        if uses_spark or "spark" in item.name:
            item.add_marker(pytest.mark.spark)


def pytest_terminal_summary(terminalreporter):
    """The reliability suite's figures (load held, faults survived, rows lost), from `record_property`."""
    figures = [
        (report.nodeid.split("::")[-1], name.removeprefix("reliability."), value)
        for report in terminalreporter.stats.get("passed", [])
        for name, value in report.user_properties
        if name.startswith("reliability.")
    ]
    if figures:
        terminalreporter.section("reliability figures")
        for test, name, value in figures:
            terminalreporter.write_line(f"{test}: {name} = {value}")


@pytest.fixture
def defs_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the demo's defs folder, importable as a module of its own (`defs_module_of`), for
    tests that change a contract: copies in one process do not share Python modules."""
    from lakehouse_assets.components.defs_folder import DEFS_DIR

    package = "defs_copy_" + re.sub(r"\W", "_", tmp_path.name)
    defs_dir = shutil.copytree(
        DEFS_DIR, tmp_path / "project" / package / "defs", ignore=shutil.ignore_patterns("__pycache__")
    )
    monkeypatch.syspath_prepend(str(tmp_path / "project"))
    return defs_dir


def defs_module_of(defs_dir: Path) -> str:
    return f"{defs_dir.parent.name}.defs"
