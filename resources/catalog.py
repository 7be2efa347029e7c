"""The Iceberg catalog: SQLite and a local warehouse by default, any pyiceberg catalog by properties."""

import functools
import json
from pathlib import Path

import dagster as dg
from pyiceberg.catalog import Catalog, load_catalog

from resources.sqlite_tuning import tune_sqlite_catalog


@functools.cache
def _load(name: str, properties_json: str) -> Catalog:
    # One catalog object per process and configuration: loading it opens the database engine.
    properties = json.loads(properties_json)
    uri = properties.get("uri", "")
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return tune_sqlite_catalog(load_catalog(name, **properties))


class IcebergCatalogResource(dg.ConfigurableResource):
    """pyiceberg catalog properties, e.g. {"type": "sql", "uri": ..., "warehouse": ...}."""

    name: str = "lakehouse"
    properties: dict[str, str]

    def load(self) -> Catalog:
        return _load(self.name, json.dumps(self.properties, sort_keys=True))

    @classmethod
    def sqlite(cls, uri: str, warehouse: str) -> "IcebergCatalogResource":
        return cls(properties={"type": "sql", "uri": uri, "warehouse": warehouse})
