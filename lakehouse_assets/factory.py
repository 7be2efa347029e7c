"""Contracts in, software-defined assets out: landing, raw (+ rejects), staging, common, output.

Asset keys are `[layer, table]`, one group per layer. Each asset carries in its definition
metadata what the Iceberg IO manager needs (partition column, write mode, primary key, table
properties) and the column schema the UI shows.
"""

import datetime as dt
import functools
import importlib

import dagster as dg
import narwhals as nw
import pyarrow as pa

from checks.audits import landing_reconciliation
from io_managers.iceberg_io_manager import PARTITION_COLUMN, PRIMARY_KEY, TABLE_PROPERTIES, WRITE_MODE
from lakehouse_assets.automation import follow_inputs
from lakehouse_assets.contract_model import Contract, DatasetContract, ModelContract, Partitioning
from lakehouse_assets.landing import (
    FILE_DATE,
    LINEAGE_COLUMNS,
    LINEAGE_DESCRIPTIONS,
    LINEAGE_TYPES,
    empty_landing_table,
    read_landed_file,
)
from lakehouse_assets.raw import REJECT_DESCRIPTIONS, arrow_type, type_landing_rows
from lakehouse_assets.transforms import apply_model_steps, apply_staging_steps
from resources.catalog import IcebergCatalogResource
from resources.landing_storage import LandingStorage

LAYER_ROLES = {
    "landing": "Every row of the arrived files, verbatim as strings, with lineage columns.",
    "raw": "Landing rows typed by the contract; untypeable rows are quarantined in the rejects table.",
    "staging": "Cleaned, de-duplicated and standardised rows.",
    "common": "Conformed entities joined across datasets.",
    "output": "Business aggregates for consumers.",
}


@functools.cache
def daily_partitions(start: dt.date, end: dt.date | None) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=start.isoformat(), end_date=end.isoformat() if end else None
    )


def partitions_for(partitioning: Partitioning | None) -> dg.DailyPartitionsDefinition | None:
    return daily_partitions(partitioning.start, partitioning.end) if partitioning else None


# The IO manager writes a run's whole partition window, so a backfill runs up to a month per run.
BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=31)


def _backfill_policy(partitioning: Partitioning | None) -> dg.BackfillPolicy | None:
    return BACKFILL_POLICY if partitioning else None


def _column_schema(columns: list[tuple[str, str, str]]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name=name, type=type_, description=doc) for name, type_, doc in columns]
    )


def _lineage_columns() -> list[tuple[str, str, str]]:
    return [(name, str(LINEAGE_TYPES[name]), LINEAGE_DESCRIPTIONS[name]) for name in LINEAGE_COLUMNS]


def _table_metadata(
    contract: Contract,
    layer: str,
    *,
    partition_column: str | None,
    write_mode: str,
    columns: list[tuple[str, str, str]],
    primary_key: list[str] | None = None,
) -> dict:
    metadata = {
        PARTITION_COLUMN: partition_column,
        WRITE_MODE: write_mode,
        PRIMARY_KEY: primary_key or [],
        TABLE_PROPERTIES: {
            "comment": contract.description.strip(),
            "lakehouse.layer": layer,
            "lakehouse.contract": contract.name,
            "lakehouse.contract-version": str(contract.version),
            "lakehouse.write-mode": write_mode,
            "lakehouse.primary-key": ",".join(primary_key or []),
        },
        "dagster/column_schema": _column_schema(columns),
    }
    return {key: value for key, value in metadata.items() if value is not None}


def _description(contract: Contract, layer: str) -> str:
    return f"{contract.description.strip()}\n\n{LAYER_ROLES[layer]}"


def _spec_kwargs(contract: Contract, layer: str, engine: str = "pandas") -> dict:
    return {
        "group_name": layer,
        "owners": contract.owners,
        "kinds": {"iceberg", engine},
        # tags make command-line selections simple: `--select 'tag:partitioning=daily'`
        "tags": {"layer": layer, "partitioning": "daily" if contract.partitioning else "none"},
    }


def build_landing_asset(contract: DatasetContract) -> dg.AssetsDefinition:
    columns = [(c.name, "string", c.description) for c in contract.columns] + _lineage_columns()
    metadata = _table_metadata(
        contract,
        "landing",
        partition_column=FILE_DATE if contract.partitioning else None,
        write_mode=contract.write_modes.landing,
        columns=columns,
    )

    @dg.asset(
        key=["landing", contract.name],
        description=_description(contract, "landing"),
        partitions_def=partitions_for(contract.partitioning),
        backfill_policy=_backfill_policy(contract.partitioning),
        metadata=metadata | {"source_glob": contract.source.glob},
        **_spec_kwargs(contract, "landing", "csv"),
    )
    def landing_table(context: dg.AssetExecutionContext, landing_storage: LandingStorage) -> pa.Table:
        files = landing_storage.list_files(contract.source.glob)
        if context.has_partition_key:
            window = context.partition_time_window
            files = [
                file
                for file in files
                if (day := contract.source.file_date(file.name)) is not None
                and window.start.date() <= day < window.end.date()
            ]
        loaded_at = dt.datetime.now(dt.UTC)
        tables = [
            read_landed_file(landing_storage.read_bytes(file.key), file, contract, loaded_at) for file in files
        ]
        context.add_output_metadata(
            {
                "files": dg.MetadataValue.json([file.key for file in files]),
                "bytes_read": dg.MetadataValue.int(sum(file.size for file in files)),
            }
        )
        if not files:
            context.log.warning(f"no files match {contract.source.glob!r} in this partition")
            return empty_landing_table(contract)
        return pa.concat_tables(tables)

    return landing_table


def build_raw_asset(contract: DatasetContract) -> dg.AssetsDefinition:
    raw_key = dg.AssetKey(["raw", contract.name])
    landing_key = dg.AssetKey(["landing", contract.name])
    partition_column = FILE_DATE if contract.partitioning else None
    typed_columns = [(c.name, str(arrow_type(c.type)), c.description) for c in contract.columns]
    string_columns = [(c.name, "string", c.description) for c in contract.columns]
    reject_columns = [(name, "string", doc) for name, doc in REJECT_DESCRIPTIONS.items()]

    @dg.multi_asset(
        outs={
            "typed": dg.AssetOut(
                key=raw_key,
                description=_description(contract, "raw"),
                metadata=_table_metadata(
                    contract,
                    "raw",
                    partition_column=partition_column,
                    write_mode=contract.write_modes.raw,
                    columns=typed_columns + _lineage_columns(),
                ),
                **_spec_kwargs(contract, "raw"),
            ),
            "rejects": dg.AssetOut(
                key=["raw", f"{contract.name}_rejects"],
                description=(
                    f"Quarantine of {contract.name}: landing rows that could not be typed, with their "
                    "original values, source file, line, columns and reason."
                ),
                metadata=_table_metadata(
                    contract,
                    "raw",
                    partition_column=partition_column,
                    write_mode="overwrite",
                    columns=string_columns + _lineage_columns() + reject_columns,
                ),
                **_spec_kwargs(contract, "raw"),
            ),
        },
        ins={"landing": dg.AssetIn(key=landing_key)},
        partitions_def=partitions_for(contract.partitioning),
        backfill_policy=_backfill_policy(contract.partitioning),
        check_specs=[
            dg.AssetCheckSpec(
                "landing_rows_reconcile",
                asset=raw_key,
                additional_deps=[landing_key],
                description="landing rows = raw rows + rejected rows for the materialised partitions",
            )
        ],
        name=f"raw__{contract.name}",
    )
    def raw_tables(context: dg.AssetExecutionContext, catalog: IcebergCatalogResource, landing):
        result = type_landing_rows(pa.Table.from_pandas(landing, preserve_index=False), contract)
        if result.rejects.num_rows:
            context.log.warning(f"{result.rejects.num_rows} rows quarantined in raw.{contract.name}_rejects")
        yield dg.Output(result.typed, output_name="typed")
        yield dg.Output(result.rejects, output_name="rejects")
        # The outputs above are committed by now, so the audit reads what readers will see.
        window = context.partition_time_window if context.has_partition_key else None
        yield landing_reconciliation(catalog.load(), contract.name, partition_column, window)

    return raw_tables


def build_staging_asset(contract: DatasetContract) -> dg.AssetsDefinition:
    partitioning = contract.partitioning
    documented = {c.name: c.description for c in contract.columns}
    columns = [(name, "", documented.get(name, "")) for name in contract.staged_columns()]

    @dg.asset(
        key=["staging", contract.name],
        description=_description(contract, "staging"),
        ins={"raw": dg.AssetIn(key=["raw", contract.name])},
        partitions_def=partitions_for(partitioning),
        backfill_policy=_backfill_policy(partitioning),
        metadata=_table_metadata(
            contract,
            "staging",
            partition_column=partitioning.column if partitioning else None,
            write_mode=contract.write_modes.staging,
            columns=columns + _lineage_columns(),
            primary_key=contract.primary_key,
        ),
        **_spec_kwargs(contract, "staging"),
    )
    def staging_table(context: dg.AssetExecutionContext, raw):
        staged, counts = apply_staging_steps(nw.from_native(raw, eager_only=True), contract.staging)
        context.add_output_metadata({f"rows_removed_{rule}": count for rule, count in counts.removed.items()})
        return staged.to_native()

    return staging_table


def _resolve_function(reference: str):
    module_name, _, function_name = reference.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def build_model_asset(contract: ModelContract) -> dg.AssetsDefinition:
    partitioning = contract.partitioning
    ins = {alias: dg.AssetIn(key=table.split(".")) for alias, table in contract.inputs.items()}
    function = _resolve_function(contract.function) if contract.function else None

    @dg.asset(
        key=[contract.layer, contract.name],
        description=_description(contract, contract.layer),
        ins=ins,
        automation_condition=follow_inputs(),
        partitions_def=partitions_for(partitioning),
        backfill_policy=_backfill_policy(partitioning),
        metadata=_table_metadata(
            contract,
            contract.layer,
            partition_column=partitioning.column if partitioning else None,
            write_mode=contract.write_mode,
            columns=[(column.name, "", column.description) for column in contract.columns],
            primary_key=contract.primary_key,
        ),
        **_spec_kwargs(contract, contract.layer),
    )
    def model_table(context: dg.AssetExecutionContext, **inputs):
        frames = {alias: nw.from_native(frame, eager_only=True) for alias, frame in inputs.items()}
        if function is not None:
            return function(**frames).to_native()
        result, counts = apply_model_steps(frames[contract.primary_input], frames, contract.steps)
        context.add_output_metadata({f"rows_removed_{rule}": count for rule, count in counts.removed.items()})
        return result.to_native()

    return model_table


def build_assets(contracts: list[Contract]) -> list[dg.AssetsDefinition]:
    assets = []
    for contract in contracts:
        if isinstance(contract, DatasetContract):
            assets += [build_landing_asset(contract), build_raw_asset(contract), build_staging_asset(contract)]
        else:
            assets.append(build_model_asset(contract))
    return assets
