"""The SQL catalog on SQLite (one person) and on PostgreSQL (a team, `LAKEHOUSE_CATALOG_URI`)."""

import threading

import pytest
import sqlalchemy as sa

from resources.catalog.resource import open_catalog
from resources.catalog.sqlite_tuning import _configure_connection

OPENERS = 8


def _properties(settings) -> dict[str, str]:
    return {"type": "sql", "uri": settings.catalog_uri, "warehouse": settings.warehouse_dir.as_uri()}


@pytest.mark.parametrize("catalog_db", ["postgresql"], indirect=True)
def test_processes_opening_a_new_postgresql_catalog_at_once_all_get_it(catalog_db, settings):
    # Every opener finds pyiceberg's own tables missing and creates them; on PostgreSQL all but
    # one of those CREATE TABLEs fail once the first commits (most of 8 did, unhandled).
    barrier = threading.Barrier(OPENERS)
    opened, failed = [], []

    def open_at_once() -> None:
        barrier.wait()
        try:
            opened.append(open_catalog("lakehouse", _properties(settings)))
        except Exception as error:
            failed.append(error)

    threads = [threading.Thread(target=open_at_once) for _ in range(OPENERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failed == []
    opened[0].create_namespace("raw")
    assert all(catalog.list_namespaces() == [("raw",)] for catalog in opened)


@pytest.mark.parametrize("catalog_db", ["sqlite", "postgresql"], indirect=True)
def test_the_sqlite_tuning_applies_to_sqlite_only(catalog_db, settings):
    engine = open_catalog("lakehouse", _properties(settings)).engine
    assert engine.dialect.name == catalog_db
    assert sa.event.contains(engine, "connect", _configure_connection) == (catalog_db == "sqlite")
    with engine.connect() as connection:
        if catalog_db == "sqlite":
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        else:
            assert connection.exec_driver_sql("SHOW transaction_isolation").scalar() == "read committed"
