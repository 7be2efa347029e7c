"""Shared fixtures: every test gets its own LAKEHOUSE_HOME with a real SQLite Iceberg catalog, or,
where a test asks for it (`catalog_db`), a catalog in a real PostgreSQL server of its own."""

import datetime as dt
import os
import re
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import dagster as dg
import pytest
from pyiceberg.catalog import Catalog

from lakehouse_assets.definitions import build_resources
from resources.settings import Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parent.parent

# Whichever test starts the process's Spark session first, its Python workers must run this
# interpreter (with pyarrow and the project), not whatever `python3` is first on PATH.
os.environ["PYSPARK_PYTHON"] = sys.executable
os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable


@pytest.fixture(scope="session")
def postgres_cluster():
    """A throwaway PostgreSQL (Debian's binaries, loopback, a free port), started the way
    `make team-dev` starts one (deploy/team/local_postgres.py), once per test process."""
    from deploy.team import local_postgres

    # not under pytest's tmp_path: its directories are private to us, and under root the server
    # runs as the `postgres` user, which must reach its data directory
    root = Path(tempfile.mkdtemp(prefix="lakehouse-pg-"))
    try:
        yield local_postgres.start(root, local_postgres.free_port())
    finally:
        local_postgres.stop(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_database(request):
    """`new()` creates an empty database in the session's server; all are dropped after the test."""
    from deploy.team import local_postgres

    cluster = request.getfixturevalue("postgres_cluster")
    created = []

    def new(purpose: str) -> str:
        name = f"{purpose}_{uuid.uuid4().hex[:12]}"
        local_postgres.create_database(cluster, name)
        created.append(name)
        return name

    yield new
    for name in created:
        local_postgres.drop_database(cluster, name)


@pytest.fixture
def team_dagster_home(tmp_path, monkeypatch, postgres_cluster, postgres_database) -> Path:
    """A DAGSTER_HOME holding the shipped deploy/team/dagster.yaml, its storage a fresh database of
    the session's PostgreSQL (the DAGSTER_PG_* variables set for this test and its subprocesses)."""
    environment = postgres_cluster.environment(dagster_db=postgres_database("dagster"))
    for name, value in environment.items():
        if name.startswith("DAGSTER_PG_"):
            monkeypatch.setenv(name, value)
    # as `make team-dev` runs it: events written in batches
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "50")
    home = tmp_path / "dagster_team"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "team" / "dagster.yaml", home / "dagster.yaml")
    # Dagster creates its schema on the first open of fresh storage; processes opening it at once
    # race on that (one fails in a data migration). A deployment creates it once before anything
    # starts (`make team-dev` runs `dagster instance migrate`), and so does this fixture.
    with dg.DagsterInstance.from_config(str(home)):
        pass
    return home


@pytest.fixture
def catalog_db(request) -> str:
    """Where the Iceberg catalog lives: "sqlite", unless a test parametrizes this (indirect=True)
    with "postgresql"."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def settings(tmp_path, monkeypatch, request, catalog_db) -> Settings:
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path / "lakehouse"))
    monkeypatch.setenv("LAKEHOUSE_ENV", "local")
    monkeypatch.delenv("LAKEHOUSE_CATALOG_URI", raising=False)
    if catalog_db == "postgresql":
        cluster = request.getfixturevalue("postgres_cluster")
        database = request.getfixturevalue("postgres_database")("catalog")
        monkeypatch.setenv("LAKEHOUSE_CATALOG_URI", cluster.url(database))
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


def materialize_partitions(
    assets, resources, start: str, end: str | None = None, selection=None, instance=None
):
    """Materialise a partition, or a range of partitions in one run (single-run backfill), on an
    ephemeral Dagster instance unless one is given."""
    tags = {}
    partition_key = start
    if end and end != start:
        tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
        partition_key = None
    return dg.materialize(
        assets,
        resources=resources,
        partition_key=partition_key,
        tags=tags,
        selection=selection,
        instance=instance,
    )


@pytest.fixture
def day() -> dt.date:
    return dt.date(2013, 1, 2)


SLOW_MODULES = {
    "test_webserver",
    "test_end_to_end",
    "test_aws_end_to_end",
    "test_dg_cli",
    "test_team_deployment",
}


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
