"""The team deployment (deploy/team/): a real PostgreSQL started the way `make team-dev` starts it,
holding both the Iceberg catalog (`LAKEHOUSE_CATALOG_URI`) and the Dagster instance (the shipped
deploy/team/dagster.yaml); the nycflights13 example end to end on it."""

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import dagster as dg
import pytest
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from deploy.team import local_postgres
from lakehouse_assets.cli.demo import write_demo_landing
from resources.landing.local import LocalLandingStorage
from tests.conftest import materialize_partitions
from tests.test_end_to_end import (  # the same checks, collected again here on PostgreSQL
    END,
    START,
    assets,  # noqa: F401 (a fixture)
    test_every_layer_holds_every_source_row,  # noqa: F401
    test_rematerialising_a_day_leaves_the_same_rows,  # noqa: F401
)


@pytest.fixture
def catalog_db() -> str:
    return "postgresql"


@pytest.fixture
def team_instance(team_dagster_home):
    with dg.DagsterInstance.from_config(str(team_dagster_home)) as instance:
        yield instance


@pytest.fixture
def lakehouse(settings, resources, assets, team_instance):  # noqa: F811 (assets is the fixture)
    """As tests/test_end_to_end.py builds it, with both runs recorded in the team's instance."""
    write_demo_landing(LocalLandingStorage(root=str(settings.landing_dir)), START, END)
    unpartitioned = [key for asset in assets if asset.partitions_def is None for key in asset.keys]
    assert dg.materialize(
        assets, resources=resources, selection=unpartitioned, instance=team_instance
    ).success
    partitioned = dg.AssetSelection.all() - dg.AssetSelection.assets(*unpartitioned)
    assert materialize_partitions(
        assets, resources, str(START), str(END), selection=partitioned, instance=team_instance
    ).success
    return settings


def test_runs_events_and_table_pools_live_in_postgresql(lakehouse, team_instance, catalog):
    assert isinstance(team_instance.run_storage, PostgresRunStorage)
    assert isinstance(team_instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(team_instance.schedule_storage, PostgresScheduleStorage)
    runs = team_instance.get_runs()
    assert len(runs) == 2 and {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
    # the catalog is PostgreSQL too, not a SQLite file under home
    assert catalog.engine.dialect.name == "postgresql"
    assert not (lakehouse.home / "catalog.db").exists()
    materialized = team_instance.fetch_materializations(dg.AssetKey(["common", "flights"]), limit=10)
    assert {record.partition_key for record in materialized.records} == {
        "2013-01-01",
        "2013-01-02",
        "2013-01-03",
    }
    # every table-writing step claimed a slot of its table's pool (default_limit in dagster.yaml)
    pools = team_instance.event_log_storage.get_concurrency_keys()
    assert {
        "iceberg/staging.flights",
        "iceberg/common.flights",
        "iceberg/output.carrier_daily_stats",
    } <= pools
    assert team_instance.event_log_storage.get_concurrency_info("iceberg/common.flights").slot_count == 2


def test_the_server_listens_on_loopback_only_and_not_as_root():
    root = Path(tempfile.mkdtemp(prefix="lakehouse-pg-"))
    try:
        cluster = local_postgres.start(root)
        local_postgres.create_database(cluster, "lakehouse")
        import psycopg

        with psycopg.connect(cluster.url("lakehouse", driver="postgresql")) as connection:
            settings = dict(
                connection.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN "
                    "('listen_addresses', 'unix_socket_directories', 'password_encryption')"
                ).fetchall()
            )
            connection.execute("CREATE TABLE kept (n int)")
        assert settings == {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": "",
            "password_encryption": "scram-sha-256",
        }
        server_pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
        owner = Path(f"/proc/{server_pid}").stat().st_uid
        assert owner != 0
        assert owner == (pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid())
        # a restart keeps port, password and data
        local_postgres.stop(root)
        assert not local_postgres.is_running(root)
        again = local_postgres.start(root)
        assert again == cluster
        with psycopg.connect(again.url("lakehouse", driver="postgresql")) as connection:
            assert connection.execute("SELECT count(*) FROM kept").fetchone() == (0,)
    finally:
        local_postgres.stop(root)
        shutil.rmtree(root, ignore_errors=True)
