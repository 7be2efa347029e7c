"""Which failures are retried, and SQLite's lock held by another connection: the commit waits."""

import datetime as dt
import sqlite3
import threading

import pytest
from botocore.exceptions import ClientError
from pyiceberg.exceptions import CommitFailedException, ValidationException
from sqlalchemy.exc import OperationalError

from io_managers.commit import UpsertKeyError, WriteRequest
from io_managers.retries import RetrySettings, commit_with_retries, is_transient
from io_managers.schema import SchemaEvolutionError, create_table_if_missing
from io_managers.slices import PartitionWindowError, TableSlice
from resources.catalog.resource import IcebergCatalogResource
from tests.reliability.harness import catalog_properties
from tests.reliability.workers import ROWS_PER_PARTITION, partition_rows


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


@pytest.mark.parametrize(
    "error",
    [
        CommitFailedException("table has been updated by another process"),
        ValidationException("found conflicting files"),
        OperationalError("UPDATE iceberg_tables", {}, sqlite3.OperationalError("database is locked")),
        _client_error("SlowDown", 503),
        _client_error("ThrottlingException", 400),
        ConnectionResetError("peer went away"),
    ],
)
def test_transient_failures_are_retried(error):
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        PartitionWindowError("rows outside the partition"),
        SchemaEvolutionError("incompatible column types"),
        UpsertKeyError("incoming rows repeat the upsert key"),
        OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: iceberg_tables")),
        _client_error("AccessDenied", 403),
    ],
)
def test_permanent_failures_are_not(error):
    assert not is_transient(error)


def test_retry_settings_come_from_table_properties():
    settings = RetrySettings.from_properties(
        {"lakehouse.commit.retry.attempts": "9", "lakehouse.commit.retry.min-wait-ms": "20"}
    )
    assert (settings.attempts, settings.min_wait_s, settings.max_wait_s) == (9, 0.02, 15.0)
    assert len(list(settings.waits())) == 8
    assert all(0 <= wait <= 15.0 for wait in settings.waits())


def test_a_commit_waits_for_a_sqlite_lock_held_by_another_process(settings, record_property):
    catalog = IcebergCatalogResource(properties=catalog_properties(settings)).load()
    table = create_table_if_missing(
        catalog, "staging.locked", partition_rows("2024-01-01", "x", 0).schema, "reading_date"
    )
    database = str(settings.home / "catalog.db")
    with catalog.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"

    holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as a committing process holds it
    release = threading.Timer(1.5, holder.execute, args=("COMMIT",))
    release.start()
    try:
        start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        request = WriteRequest(
            "overwrite", TableSlice("reading_date", start, start + dt.timedelta(days=1)), "run"
        )
        result = commit_with_retries(table, partition_rows("2024-01-01", "waited"), request)
    finally:
        release.join()
        holder.close()
    assert result.snapshot_id == catalog.load_table("staging.locked").current_snapshot().snapshot_id
    assert catalog.load_table("staging.locked").scan().count() == ROWS_PER_PARTITION
    record_property("reliability.sqlite_lock", "commit queued behind a held write lock, then landed")
