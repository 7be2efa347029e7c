"""pyiceberg's Glue catalog with the environment's database prefix applied in one place.

Every part of the product names tables by layer (`raw.flights`): the IO manager, the audits, the
maintenance jobs, the Spark path, a notebook. On AWS several environments can share one Glue
catalog, so the layer `raw` is the database `dev_raw` in dev and `prod_raw` in prod. Mapping the
namespace inside the catalog keeps every caller environment-agnostic: `load_table("raw.flights")`
opens `dev_raw.flights`. Names that already carry the prefix (a loaded table's own identifier, as
pyiceberg passes it back on commit) are left alone.
"""

from pyiceberg.catalog.glue import GlueCatalog
from pyiceberg.typedef import Identifier

from resources.catalog.resource import DATABASE_PREFIX


class PrefixedGlueCatalog(GlueCatalog):
    @property
    def database_prefix(self) -> str:
        return self.properties.get(DATABASE_PREFIX, "")

    def _prefixed(self, database: str) -> str:
        prefix = self.database_prefix
        return database if database.startswith(prefix) else f"{prefix}{database}"

    def identifier_to_database(self, identifier: str | Identifier, err=ValueError) -> str:  # type: ignore[override]
        return self._prefixed(GlueCatalog.identifier_to_database(identifier, err))

    def identifier_to_database_and_table(
        self, identifier: str | Identifier, err=ValueError
    ) -> tuple[str, str]:  # type: ignore[override]
        database, table = GlueCatalog.identifier_to_database_and_table(identifier, err)
        return self._prefixed(database), table
