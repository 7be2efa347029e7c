"""The Iceberg catalog: SQLite and a local warehouse by default, PostgreSQL for a team
(`LAKEHOUSE_CATALOG_URI`), any pyiceberg catalog by properties."""

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from resources.aws import endpoint_url, region

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

PY_CATALOG_IMPL = "py-catalog-impl"
GLUE_CATALOG = "resources.catalog.glue.PrefixedGlueCatalog"
# the catalog property `resources.catalog.glue` reads the environment's database prefix from
DATABASE_PREFIX = "lakehouse.database-prefix"


def open_catalog(name: str, properties: dict[str, str]) -> "Catalog":
    """A new catalog object. pyiceberg (and SQLAlchemy or boto3 behind it) is imported here, when a
    step or sensor first needs the catalog, not when the code location loads."""
    from pyiceberg.catalog import load_catalog
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    from resources.catalog.sqlite_tuning import tune_sqlite_catalog

    uri = properties.get("uri", "")
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        catalog = load_catalog(name, **properties)
    except (IntegrityError, ProgrammingError):
        # A new catalog database: pyiceberg checks for its own tables, then creates them. On
        # PostgreSQL the processes that lose that race fail ("duplicate key ... pg_type"), once the
        # winner has committed the tables; they exist now.
        catalog = load_catalog(name, **properties)
    return tune_sqlite_catalog(catalog)


@functools.cache
def _load(name: str, properties_json: str) -> "Catalog":
    # One catalog object per process and configuration: loading it opens the database engine.
    return open_catalog(name, json.loads(properties_json))


class IcebergCatalogResource(dg.ConfigurableResource):
    """pyiceberg catalog properties, e.g. {"type": "sql", "uri": ..., "warehouse": ...}.

    Environments that share one catalog (Glue databases `dev_raw`, `prod_raw`) are told apart inside
    the loaded catalog (`resources.catalog.glue`), so every caller names tables by layer.
    """

    name: str = "lakehouse"
    properties: dict[str, str]

    def load(self) -> "Catalog":
        return _load(self.name, json.dumps(self.properties, sort_keys=True))

    def identifier(self, asset_key: dg.AssetKey) -> str:
        """`[layer, table]` -> "layer.table"."""
        return ".".join(asset_key.path)

    def table_properties(self, asset_key: dg.AssetKey, properties: dict[str, str]) -> dict[str, str]:
        """The managed properties plus lineage: which asset writes the table. Glue shows a table's
        comment only as its `Description` parameter, so there the comment is copied to it."""
        result = {**properties, "lakehouse.asset": asset_key.to_user_string()}
        if self.properties.get(PY_CATALOG_IMPL) == GLUE_CATALOG and "comment" in properties:
            result["Description"] = properties["comment"]
        return result

    @classmethod
    def sql(cls, uri: str, warehouse: str) -> "IcebergCatalogResource":
        """pyiceberg's SQL catalog: a SQLite file for one person, PostgreSQL for a team."""
        return cls(properties={"type": "sql", "uri": uri, "warehouse": warehouse})

    @classmethod
    def glue(cls, warehouse: str, database_prefix: str, file_io: str) -> "IcebergCatalogResource":
        """The Glue Data Catalog, a database per layer named with the environment's prefix, the
        warehouse on S3. Region, credentials and endpoints come from boto3's default chain: Glue is
        a boto3 client; pyarrow's S3 filesystem is handed the S3 endpoint boto3 resolves, and the
        region, which it would otherwise look up on the real S3."""
        properties = {
            PY_CATALOG_IMPL: GLUE_CATALOG,
            DATABASE_PREFIX: database_prefix,
            "warehouse": warehouse,
            "py-io-impl": file_io,
        }
        properties["s3.endpoint"] = endpoint_url("s3")
        if region_name := region():
            properties["s3.region"] = region_name
            properties["glue.region"] = region_name
        return cls(properties=properties)
