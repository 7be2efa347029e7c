"""A contract's extracts as software-defined assets: `delivery/<name>`, one per extract.

Each extract asset depends on its table (a dataset's staging table, a model's own), has the
table's partitions and follows it like the models do (`follow_inputs`): a changed partition whose
blocking checks passed is delivered again. Its step (`layers/extracts.py`) reads the table itself,
so it knows the snapshot it read, and writes through the `exports` resource, not an IO manager.

Like `factory.py`, this runs when the code location loads: contracts, Dagster and plain names only.
"""

import dagster as dg

from io_managers.table_spec import TableSpec
from lakehouse_assets.assets.factory import TAG_VALUES, partitions_for
from lakehouse_assets.automation.conditions import follow_inputs
from lakehouse_assets.contracts.base import ContractError
from lakehouse_assets.contracts.columns import lineage_column_types
from lakehouse_assets.contracts.contract import Contract, DatasetContract
from lakehouse_assets.contracts.extracts import Extract
from resources.catalog.resource import IcebergCatalogResource
from resources.exports import ExportStorage
from resources.notifications.notifier import Notifier

GROUP = "delivery"
EXTRACT_SPEC = "lakehouse/extract"
_KINDS = {"csv": "csv", "parquet": "parquet", "jsonl": "json"}


def source_table(contract: Contract) -> tuple[TableSpec, list[str]]:
    """The table a contract's extracts read (its partitions and key) and the columns known of it
    when the code location loads (a model's declared columns may be only those it documents)."""
    partitioning = contract.partitioning
    if isinstance(contract, DatasetContract):
        layer = "staging"
        columns = [*contract.staged_columns(), *lineage_column_types(partitioning, contract.source)]
    else:
        layer = contract.layer
        columns = [column.name for column in contract.columns]
    spec = TableSpec(
        layer=layer,
        table=contract.name,
        partition_column=partitioning.column if partitioning else None,
        granularity=partitioning.granularity if partitioning else None,
        primary_key=tuple(contract.primary_key),
    )
    return spec, columns


def column_lineage(extract: Extract, table: dg.AssetKey, columns: list[str]) -> dg.TableColumnLineage:
    """Each file column from the table column it is, renamed or not."""
    return dg.TableColumnLineage(
        deps_by_column={
            file_column: [dg.TableColumnDep(asset_key=table, column_name=column)]
            for file_column, column in extract.column_sources(columns).items()
        }
    )


def _lineage(extract: Extract, source: TableSpec, columns: list[str]) -> dict:
    """Column lineage where the load knows every file column: the extract lists them, or the table's
    columns are all known (a dataset's staged columns); the step records it on every run anyway."""
    if not extract.columns and source.layer != "staging":
        return {}
    return {"dagster/column_lineage": column_lineage(extract, source.asset_key, columns)}


def build_extract_asset(contract: Contract, extract: Extract) -> dg.AssetsDefinition:
    source, columns = source_table(contract)
    try:
        extract.check_partitions(source.granularity)
    except ValueError as error:
        raise ContractError(f"{contract.name}: extracts: {error}") from None
    description = extract.description.strip() or (
        f"{extract.format} file of {'.'.join(source.key)} for consumers: {extract.path}"
    )

    @dg.asset(
        key=[GROUP, extract.name],
        description=description,
        deps=[source.asset_key],
        partitions_def=partitions_for(contract.partitioning),
        automation_condition=follow_inputs(),
        group_name=GROUP,
        owners=contract.owners,
        kinds={_KINDS[extract.format]},
        tags={
            "layer": GROUP,
            "partitioning": TAG_VALUES[source.granularity] if source.granularity else "none",
        },
        metadata={
            EXTRACT_SPEC: dg.MetadataValue.json(extract.model_dump(mode="json")),
            "path": extract.path,
            **_lineage(extract, source, columns),
        },
    )
    def extract_file(
        context: dg.AssetExecutionContext,
        catalog: IcebergCatalogResource,
        exports: ExportStorage,
        notifier: Notifier,
    ) -> dg.MaterializeResult:
        from lakehouse_assets.layers.extracts import materialize_extract

        return materialize_extract(
            context, extract, source, catalog=catalog, exports=exports, notifier=notifier
        )

    return extract_file


def build_extract_assets(contracts: list[Contract]) -> list[dg.AssetsDefinition]:
    return [build_extract_asset(contract, extract) for contract in contracts for extract in contract.extracts]
