"""Contracts in, software-defined assets out: landing, raw (+ rejects), staging, common, output.

Asset keys are `[layer, table]`, one group per layer. Each asset carries in its definition
metadata what the Iceberg IO manager needs (partition column, write mode, primary key, table
properties) and the column schema the UI shows.
"""

import datetime as dt
import functools
import importlib
import warnings

import dagster as dg
import narwhals as nw
import pyarrow as pa

from checks.asset_checks import (
    audit_spec,
    partition_window,
    rule_check_specs,
    validated_output,
)
from checks.audits import (
    LANDING_AUDIT,
    MODEL_AUDIT,
    STAGING_AUDIT,
    committed_rows,
    landing_reconciliation,
    removal_reconciliation,
    rows_before_append,
)
from io_managers.iceberg_io_manager import (
    ENGINE,
    PARTITION_COLUMN,
    PRIMARY_KEY,
    SPARK_THRESHOLD,
    TABLE_PROPERTIES,
    WRITE_MODE,
)
from io_managers.slices import TableSlice
from io_managers.spark_tables import to_spark
from lakehouse_assets.automation import follow_inputs
from lakehouse_assets.column_schema import (
    FILE_DATE,
    LINEAGE_COLUMN_TYPES,
    LINEAGE_COLUMNS,
    LINEAGE_DESCRIPTIONS,
    REJECT_DESCRIPTIONS,
    ROW_ERROR,
    ROW_ERROR_DESCRIPTION,
    SOURCE_FILE,
    SOURCE_LINE,
    type_label,
)
from lakehouse_assets.contract_model import (
    AggregateStep,
    Contract,
    DatasetContract,
    ModelContract,
    Partitioning,
)
from lakehouse_assets.file_checks import file_name_problem
from lakehouse_assets.landing import LandingFileError, empty_landing_table, read_landed_file
from lakehouse_assets.policies import backfill_policy_for, table_pool
from lakehouse_assets.raw import type_landing_rows
from lakehouse_assets.spark_layers import landing_on_spark, raw_on_spark
from lakehouse_assets.transforms import apply_model_steps, apply_staging_steps, row_count
from resources.catalog import IcebergCatalogResource
from resources.compute import ComputeResource, is_spark_frame
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


# Dagster marks backfill policies beta; we rely on them knowingly, so loading stays quiet.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)


def _backfill_policy(contract: Contract) -> dg.BackfillPolicy | None:
    return backfill_policy_for(contract.partitioning is not None, contract.engine)


def _column_schema(columns: list[tuple[str, str, str]]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name=name, type=type_, description=doc) for name, type_, doc in columns]
    )


def _lineage_columns() -> list[tuple[str, str, str]]:
    return [
        (name, type_label(LINEAGE_COLUMN_TYPES[name]), LINEAGE_DESCRIPTIONS[name]) for name in LINEAGE_COLUMNS
    ]


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


def _engines(contract: Contract) -> set[str]:
    return {"pandas", "spark"} if contract.engine == "auto" else {contract.engine}


def _input(key: list[str] | dg.AssetKey, contract: Contract) -> dg.AssetIn:
    """An input whose engine follows the contract: pinned, or by size with its threshold."""
    return dg.AssetIn(
        key=key,
        metadata={
            ENGINE: None if contract.engine == "auto" else contract.engine,
            SPARK_THRESHOLD: contract.spark_threshold_bytes,
        },
    )


def _choose_engine(compute: ComputeResource, contract: Contract, estimated_bytes: int) -> str:
    pinned = None if contract.engine == "auto" else contract.engine
    return compute.choose(estimated_bytes, pinned, contract.spark_threshold_bytes)


def _spec_kwargs(contract: Contract, layer: str) -> dict:
    return {
        "group_name": layer,
        "owners": contract.owners,
        "kinds": {"iceberg", *_engines(contract)},
        # tags make command-line selections simple: `--select 'tag:partitioning=daily'`
        "tags": {"layer": layer, "partitioning": "daily" if contract.partitioning else "none"},
    }


def build_landing_asset(contract: DatasetContract) -> dg.AssetsDefinition:
    columns = [(c.name, "string", c.description) for c in contract.columns] + _lineage_columns()
    if contract.source.file_checks.policy == "quarantine_rows":
        columns.append((ROW_ERROR, "string", ROW_ERROR_DESCRIPTION))
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
        backfill_policy=_backfill_policy(contract),
        pool=table_pool("landing", contract.name),
        metadata=metadata | {"source_glob": contract.source.glob},
        **_spec_kwargs(contract, "landing"),
    )
    def landing_table(
        context: dg.AssetExecutionContext, landing_storage: LandingStorage, compute: ComputeResource
    ):
        files = landing_storage.list_files(contract.source.glob)
        # a file no partition can own is never skipped silently: it fails the run or is reported
        problems = {file.key: file_name_problem(contract, file.name) for file in files}
        misnamed = {key: problem for key, problem in problems.items() if problem}
        if misnamed and contract.source.file_checks.file_names == "reject_file":
            raise LandingFileError(
                f"{len(misnamed)} files in {contract.source.glob!r} cannot be assigned to a partition: "
                + "; ".join(misnamed.values())
            )
        if misnamed:
            context.log.warning(f"skipped files without a valid date in their name: {sorted(misnamed)}")
        if (window := partition_window(context)) is not None:
            files = [
                file
                for file in files
                if (day := contract.source.file_date(file.name)) is not None
                and window.start.date() <= day < window.end.date()
            ]
        loaded_at = dt.datetime.now(dt.UTC)
        size = sum(file.size for file in files)
        metadata = {
            "files": dg.MetadataValue.json([file.key for file in files]),
            "bytes_read": dg.MetadataValue.int(size),
            "estimated_bytes": dg.MetadataValue.int(size),
            "skipped_files": dg.MetadataValue.json(misnamed),
        }
        if not files:
            context.log.warning(f"no files match {contract.source.glob!r} in this partition")
        if _choose_engine(compute, contract, size) == "spark":
            context.add_output_metadata(metadata)
            return landing_on_spark(compute.session(), files, landing_storage.reader(), contract, loaded_at)
        findings: dict[str, list[str]] = {}
        tables = [
            read_landed_file(
                landing_storage.read_bytes(file.key),
                file,
                contract,
                loaded_at,
                findings.setdefault(file.key, []),
            )
            for file in files
        ]
        # what the contract's file checks accepted (a stripped BOM, flagged rows, ...)
        metadata["file_findings"] = dg.MetadataValue.json(
            {key: found for key, found in findings.items() if found}
        )
        context.add_output_metadata(metadata)
        return pa.concat_tables(tables) if tables else empty_landing_table(contract)

    return landing_table


def build_raw_asset(contract: DatasetContract) -> dg.AssetsDefinition:
    raw_key = dg.AssetKey(["raw", contract.name])
    landing_key = dg.AssetKey(["landing", contract.name])
    partition_column = FILE_DATE if contract.partitioning else None
    typed_columns = [(c.name, type_label(c.type), c.description) for c in contract.columns]
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
        ins={"landing": _input(landing_key, contract)},
        partitions_def=partitions_for(contract.partitioning),
        backfill_policy=_backfill_policy(contract),
        pool=table_pool("raw", contract.name),
        check_specs=[
            dg.AssetCheckSpec(
                LANDING_AUDIT,
                asset=raw_key,
                additional_deps=[landing_key],
                description="landing rows = raw rows + rejected rows for the materialised partitions",
            )
        ],
        name=f"raw__{contract.name}",
    )
    def raw_tables(context: dg.AssetExecutionContext, catalog: IcebergCatalogResource, landing):
        if is_spark_frame(landing):
            typed, rejects = raw_on_spark(landing, contract)
        else:
            result = type_landing_rows(pa.Table.from_pandas(landing, preserve_index=False), contract)
            typed, rejects = result.typed, result.rejects
        yield dg.Output(typed, output_name="typed")
        yield dg.Output(rejects, output_name="rejects")
        # The outputs above are committed by now, so the audit reads what readers will see.
        yield landing_reconciliation(
            catalog.load(),
            contract.name,
            partition_column,
            partition_window(context),
            contract.quality.audit_tolerance,
        )

    return raw_tables


def build_staging_asset(contract: DatasetContract) -> dg.AssetsDefinition:
    partitioning = contract.partitioning
    documented = {c.name: c.description for c in contract.columns}
    columns = [(name, "", documented.get(name, "")) for name in contract.staged_columns()]
    staging_key = dg.AssetKey(["staging", contract.name])
    partition_column = partitioning.column if partitioning else None
    raw_key = dg.AssetKey(["raw", contract.name])

    @dg.asset(
        key=staging_key,
        description=_description(contract, "staging"),
        ins={"raw": _input(["raw", contract.name], contract)},
        partitions_def=partitions_for(partitioning),
        backfill_policy=_backfill_policy(contract),
        pool=table_pool("staging", contract.name),
        metadata=_table_metadata(
            contract,
            "staging",
            partition_column=partitioning.column if partitioning else None,
            write_mode=contract.write_modes.staging,
            columns=columns + _lineage_columns(),
            primary_key=contract.primary_key,
        ),
        check_specs=[
            *rule_check_specs(contract.quality, staging_key),
            audit_spec(STAGING_AUDIT, staging_key, "staged = raw - rows removed by named rules", [raw_key]),
        ],
        # not yielded when an error rule fails: nothing is committed (write-audit-publish)
        output_required=False,
        **_spec_kwargs(contract, "staging"),
    )
    def staging_table(context: dg.AssetExecutionContext, catalog: IcebergCatalogResource, raw):
        raw = nw.from_native(raw)
        staged, counts = apply_staging_steps(raw, contract.staging)
        lakehouse = catalog.load()
        identifier, window = f"staging.{contract.name}", partition_window(context)
        before = rows_before_append(
            lakehouse, identifier, partition_column, window, contract.write_modes.staging
        )
        published = yield from validated_output(
            context,
            staged.to_native(),
            contract.quality,
            metadata={f"rows_removed_{rule}": count for rule, count in counts.removed.items()},
            catalog=lakehouse,
            identity=[*contract.primary_key, SOURCE_FILE, SOURCE_LINE],
            partition_column=partition_column,
        )
        if published:
            yield removal_reconciliation(
                check_name=STAGING_AUDIT,
                asset_key=staging_key,
                input_name="raw",
                input_rows=row_count(raw),
                removed=counts.removed,
                committed=committed_rows(lakehouse, identifier, partition_column, window) - before,
                tolerance=contract.quality.audit_tolerance,
                slice_label=TableSlice.of(partition_column, window).label,
            )

    return staging_table


def _resolve_function(reference: str):
    module_name, _, function_name = reference.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def build_model_asset(contract: ModelContract) -> dg.AssetsDefinition:
    partitioning = contract.partitioning
    ins = {alias: _input(table.split("."), contract) for alias, table in contract.inputs.items()}
    function = _resolve_function(contract.function) if contract.function else None
    model_key = dg.AssetKey([contract.layer, contract.name])
    partition_column = partitioning.column if partitioning else None
    primary_input_key = dg.AssetKey(contract.inputs[contract.primary_input].split("."))
    # Row-preserving models (lookups, filters) keep every input row a named rule does not remove;
    # aggregates and Python functions change the grain, so no count reconciles there.
    keeps_rows = function is None and not any(isinstance(step, AggregateStep) for step in contract.steps)
    audits = (
        [
            audit_spec(
                MODEL_AUDIT, model_key, "rows = input rows - rows removed by named rules", [primary_input_key]
            )
        ]
        if keeps_rows
        else []
    )

    @dg.asset(
        key=model_key,
        description=_description(contract, contract.layer),
        ins=ins,
        automation_condition=follow_inputs(),
        partitions_def=partitions_for(partitioning),
        backfill_policy=_backfill_policy(contract),
        pool=table_pool(contract.layer, contract.name),
        metadata=_table_metadata(
            contract,
            contract.layer,
            partition_column=partitioning.column if partitioning else None,
            write_mode=contract.write_mode,
            columns=[(column.name, "", column.description) for column in contract.columns],
            primary_key=contract.primary_key,
        ),
        check_specs=[*rule_check_specs(contract.quality, model_key), *audits],
        output_required=False,
        **_spec_kwargs(contract, contract.layer),
    )
    def model_table(
        context: dg.AssetExecutionContext, compute: ComputeResource, catalog: IcebergCatalogResource, **inputs
    ):
        frames = {alias: nw.from_native(frame) for alias, frame in align_engines(compute, inputs).items()}
        if function is not None:
            result, removed = function(**frames), {}
        else:
            result, counts = apply_model_steps(frames[contract.primary_input], frames, contract.steps)
            removed = counts.removed
        lakehouse = catalog.load()
        identifier, window = ".".join(model_key.path), partition_window(context)
        before = rows_before_append(lakehouse, identifier, partition_column, window, contract.write_mode)
        published = yield from validated_output(
            context,
            result.to_native(),
            contract.quality,
            metadata={f"rows_removed_{rule}": count for rule, count in removed.items()},
            catalog=lakehouse,
            identity=[*contract.primary_key, SOURCE_FILE, SOURCE_LINE],
            partition_column=partition_column,
        )
        if published and keeps_rows:
            yield removal_reconciliation(
                check_name=MODEL_AUDIT,
                asset_key=model_key,
                input_name=contract.primary_input,
                input_rows=row_count(frames[contract.primary_input]),
                removed=removed,
                committed=committed_rows(lakehouse, identifier, partition_column, window) - before,
                tolerance=contract.quality.audit_tolerance,
                slice_label=TableSlice.of(partition_column, window).label,
            )

    return model_table


def align_engines(compute: ComputeResource, frames: dict) -> dict:
    """One engine per computation: when any input is on Spark, small pandas inputs join it there."""
    if not any(is_spark_frame(frame) for frame in frames.values()):
        return frames
    spark = compute.session()
    return {
        alias: frame
        if is_spark_frame(frame)
        else to_spark(spark, pa.Table.from_pandas(frame, preserve_index=False))
        for alias, frame in frames.items()
    }


def build_assets(contracts: list[Contract]) -> list[dg.AssetsDefinition]:
    assets = []
    for contract in contracts:
        if isinstance(contract, DatasetContract):
            assets += [
                build_landing_asset(contract),
                build_raw_asset(contract),
                build_staging_asset(contract),
            ]
        else:
            assets.append(build_model_asset(contract))
    return assets
