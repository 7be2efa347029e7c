"""SQLite as a catalog shared by several processes: wait for locks instead of failing at once.

pyiceberg's SqlCatalog commits with an optimistic `UPDATE ... WHERE metadata_location = <old>`,
which is exactly right for concurrent writers, but SQLite's default is to fail any statement that
meets a lock after Python's 5 s `timeout`, and in rollback-journal mode every reader blocks the
writer. WAL lets readers and the one writer proceed side by side, and a longer busy timeout turns
"database is locked" into a short wait while another process commits.
"""

import sqlalchemy as sa
from pyiceberg.catalog import Catalog

# Long enough to outlast a queue of commits from a dozen processes; a real deadlock still surfaces.
BUSY_TIMEOUT_MS = 30_000


def _configure_connection(dbapi_connection, _connection_record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # WAL is durable across application crashes with NORMAL; FULL only adds power-loss safety.
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def tune_sqlite_catalog(catalog: Catalog) -> Catalog:
    """Apply busy timeout and WAL to every connection of a SQL catalog on SQLite; others pass through."""
    engine = getattr(catalog, "engine", None)
    if not isinstance(engine, sa.engine.Engine) or engine.dialect.name != "sqlite":
        return catalog
    if not sa.event.contains(engine, "connect", _configure_connection):
        sa.event.listen(engine, "connect", _configure_connection)
        # The catalog opened a connection while creating its tables; drop it so all are tuned.
        engine.dispose()
    return catalog
