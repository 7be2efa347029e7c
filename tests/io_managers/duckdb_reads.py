"""Another engine reads what we write: DuckDB's `iceberg_scan` against pyiceberg's scan.

DuckDB's iceberg and avro extensions come from PyPI (`duckdb-extension-iceberg`,
`duckdb-extension-avro`, pinned to the DuckDB version in pyproject's dev extra) and are loaded from
their files, so nothing is fetched from DuckDB's extension site (CI reaches only package registries).
"""

from pathlib import Path

import duckdb
import duckdb_extension_avro
import duckdb_extension_iceberg
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table


def extension_file(package) -> Path:
    """The extension binary a `duckdb-extension-*` package ships for the installed DuckDB."""
    folder = Path(package.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    files = sorted(folder.glob("*.duckdb_extension"))
    assert files, f"{package.__name__} ships no extension for DuckDB {duckdb.__version__} in {folder}"
    return files[0]


def connect() -> duckdb.DuckDBPyConnection:
    # no autoload or autoinstall: a missing extension fails here instead of reaching for the network
    connection = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    for package in (duckdb_extension_avro, duckdb_extension_iceberg):
        connection.load_extension(str(extension_file(package)))
    return connection


def _sorted(data: pa.Table) -> pa.Table:
    if not data.num_rows:
        return data
    return data.sort_by([(name, "ascending") for name in data.column_names])


def duckdb_read(connection: duckdb.DuckDBPyConnection, table: Table) -> pa.Table:
    relation = connection.execute("SELECT * FROM iceberg_scan(?)", [table.metadata_location])
    return relation.fetch_arrow_table()


def assert_duckdb_reads_what_pyiceberg_reads(catalog: Catalog) -> list[str]:
    """Every table of the catalog: same columns, same rows, whichever engine wrote its files."""
    connection = connect()
    identifiers = sorted(
        ".".join(identifier)
        for namespace in catalog.list_namespaces()
        for identifier in catalog.list_tables(namespace)
    )
    for identifier in identifiers:
        table = catalog.load_table(identifier)
        schema = table.schema().as_arrow()
        expected = table.scan().to_arrow()
        actual = duckdb_read(connection, table)
        assert actual.column_names == expected.column_names, identifier
        # string/large_string and timestamp zones differ by reader; the values must not
        expected, actual = _sorted(expected.cast(schema)), _sorted(actual.cast(schema))
        assert actual.num_rows == expected.num_rows, identifier
        assert actual.equals(expected), f"{identifier}: DuckDB and pyiceberg read different rows"
    return identifiers
