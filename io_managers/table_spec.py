"""What the asset factory tells the IO manager and the asset's step about each table: one `TableSpec`.

The factory builds the spec once per asset from its contract and puts it in the asset's definition
metadata under `TABLE_SPEC`, as JSON the UI shows. The IO manager reads it back with
`TableSpec.from_metadata`, on outputs from the asset's own metadata and on inputs from the
`AssetIn` metadata, where the consuming asset puts its own spec so that its engine choice applies.
"""

from collections.abc import Mapping
from typing import Any, Literal

import dagster as dg
from pydantic import BaseModel, ConfigDict, Field

TABLE_SPEC = "lakehouse/table_spec"

# The vocabularies a contract speaks too (lakehouse_assets.contracts imports them from here).
WriteMode = Literal["overwrite", "append", "upsert"]
EngineChoice = Literal["auto", "pandas", "spark"]
Granularity = Literal["hour", "day", "month"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QualitySpec(_Frozen):
    """When the table's rules run, and which audit reconciles its commit."""

    # Check the frame before the commit and commit only when no error rule fails (write-audit-publish).
    validate_before_commit: bool = True
    # The count reconciliation checked after the commit; none where the grain changes.
    audit: str | None = None


class PairSpec(_Frozen):
    """Two tables one step writes, `first` always committed before `last` (raw's rejects, then raw).

    Each commit carries a marker naming the pair (`io_managers.pairs`), and a read of either table
    refuses a slice whose two commits are not of the same run.
    """

    first: str
    last: str

    def partner_of(self, identifier: str) -> str:
        return self.last if identifier == self.first else self.first

    def role_of(self, identifier: str) -> str:
        return "first" if identifier == self.first else "last"


class TableSpec(_Frozen):
    """One asset's table: where it lives, which rows a run owns, how it is written and computed."""

    layer: str
    table: str
    partition_column: str | None = None
    granularity: Granularity | None = None
    write_mode: WriteMode = "overwrite"
    primary_key: tuple[str, ...] = ()
    # Upsert only: the column naming each row's delivery (its file). An upsert then first withdraws
    # the rows of every delivery its incoming rows bring again, so a corrected file replaces its
    # earlier version; None merges by key alone (keys the incoming rows lack are kept).
    delivery_column: str | None = None
    engine: EngineChoice = "auto"
    # None: the environment's threshold (ComputeResource)
    spark_threshold_bytes: int | None = Field(default=None, ge=0)
    quality: QualitySpec | None = None
    table_properties: dict[str, str] = Field(default_factory=dict)
    # the table is one of two a step commits as a pair
    pair: PairSpec | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.layer, self.table)

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(list(self.key))

    @property
    def pinned_engine(self) -> str | None:
        return None if self.engine == "auto" else self.engine

    def to_metadata(self) -> dict[str, dg.JsonMetadataValue]:
        return {TABLE_SPEC: dg.MetadataValue.json(self.model_dump(mode="json"))}

    @classmethod
    def for_key(cls, asset_key: dg.AssetKey) -> "TableSpec":
        """The defaults for a table declared without a spec: an unpartitioned overwrite."""
        *namespace, table = asset_key.path
        return cls(layer=".".join(namespace), table=table)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None) -> "TableSpec | None":
        """The spec in definition or input metadata; None where the factory declared none."""
        value = (metadata or {}).get(TABLE_SPEC)
        if value is None:
            return None
        if isinstance(value, dg.JsonMetadataValue):
            value = value.value
        return cls.model_validate(value)
