"""Contracts in, software-defined assets out: landing, raw (+ rejects), staging, common, output.

Asset keys are `[layer, table]`, one group per layer. Each asset's `TableSpec` (partition column
and granularity, write mode, primary key, engine, quality, table properties) is built here once and
carried in its definition metadata, where the Iceberg IO manager and the asset's step read it back,
beside the column schema the UI shows.

This module runs when the code location loads, so it uses only the contracts, Dagster and plain
names. What an asset does when its step runs is in `layers/steps.py`, which each body imports
then: loading the definitions never imports the data stack (pyarrow, Narwhals, pyiceberg, pandera).
"""

import datetime as dt
import functools
import importlib.util
import warnings
from collections.abc import Mapping

import dagster as dg

from checks.asset_checks import audit_spec, rule_check_specs
from checks.audits import LANDING_AUDIT, MODEL_AUDIT, STAGING_AUDIT
from io_managers.table_spec import PairSpec, QualitySpec, TableSpec
from lakehouse_assets.assets.lineage import lineage_metadata, table_columns
from lakehouse_assets.automation.conditions import follow_inputs
from lakehouse_assets.automation.policies import backfill_policy_for, table_pool
from lakehouse_assets.contracts.columns import (
    FILE_DATE,
    REJECT_DESCRIPTIONS,
    ROW_ERROR,
    ROW_ERROR_DESCRIPTION,
    SOURCE_FILE,
    lineage_column_types,
    lineage_descriptions,
    type_label,
)
from lakehouse_assets.contracts.contract import (
    Contract,
    DatasetContract,
    ModelContract,
    backfill_partitions_per_run,
    resolve_partitions,
)
from lakehouse_assets.contracts.partitioning import Partitioning
from lakehouse_assets.contracts.steps import AggregateStep
from resources.catalog.resource import IcebergCatalogResource
from resources.landing.local import LandingStorage
from resources.notifications.notifier import Notifier
from resources.settings import DEFAULT_PANDAS_DAYS_PER_RUN
from resources.spark.compute import ComputeResource

LAYER_ROLES = {
    "landing": "Every row of the arrived files, verbatim as strings, with lineage columns.",
    "raw": "Landing rows typed by the contract; untypeable rows are quarantined in the rejects table.",
    "staging": "Cleaned, de-duplicated and standardised rows.",
    "common": "Conformed entities joined across datasets.",
    "output": "Business aggregates for consumers.",
}


_PARTITIONS_DEFINITIONS = {
    "hour": dg.HourlyPartitionsDefinition,
    "day": dg.DailyPartitionsDefinition,
    "month": dg.MonthlyPartitionsDefinition,
}
TAG_VALUES = {"hour": "hourly", "day": "daily", "month": "monthly"}


@functools.cache
def time_partitions(
    granularity: str, start: dt.date, end: dt.date | None, timezone: str
) -> dg.TimeWindowPartitionsDefinition:
    """One definition per (granularity, start, end, time zone): tables equal in it share partition keys."""
    midnight = dt.time()
    return _PARTITIONS_DEFINITIONS[granularity](
        start_date=dt.datetime.combine(start, midnight),
        end_date=dt.datetime.combine(end, midnight) if end else None,
        timezone=timezone,
    )


def partitions_for(partitioning: Partitioning | None) -> dg.TimeWindowPartitionsDefinition | None:
    return time_partitions(*partitioning.definition) if partitioning else None


# Dagster marks backfill policies beta; we rely on them knowingly, so loading stays quiet.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)


def _backfill_policy(contract: Contract, pandas_days_per_run: int) -> dg.BackfillPolicy | None:
    partitioning = contract.partitioning
    granularity = partitioning.granularity if partitioning else "day"
    return backfill_policy_for(
        partitioning is not None,
        contract.engine,
        granularity,
        pandas_days_per_run,
        backfill_partitions_per_run(contract),
    )


def _column_schema(columns: list[tuple[str, str, str]]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name=name, type=type_, description=doc) for name, type_, doc in columns]
    )


def _lineage_columns(contract: Contract) -> list[tuple[str, str, str]]:
    source = contract.source if isinstance(contract, DatasetContract) else None
    types = lineage_column_types(contract.partitioning, source)
    descriptions = lineage_descriptions(contract.partitioning, source)
    return [(name, type_label(type_name), descriptions[name]) for name, type_name in types.items()]


def _table_spec(
    contract: Contract,
    layer: str,
    *,
    table: str | None = None,
    partition_column: str | None,
    write_mode: str,
    primary_key: list[str] | None = None,
    quality: QualitySpec | None = None,
    delivery_column: str | None = None,
) -> TableSpec:
    partitioning = contract.partitioning
    return TableSpec(
        layer=layer,
        table=table or contract.name,
        partition_column=partition_column,
        granularity=partitioning.granularity if partitioning else None,
        write_mode=write_mode,
        primary_key=tuple(primary_key or ()),
        delivery_column=delivery_column,
        engine=contract.engine,
        spark_threshold_bytes=contract.spark_threshold_bytes,
        quality=quality,
        table_properties={
            "comment": contract.description.strip(),
            "lakehouse.layer": layer,
            "lakehouse.contract": contract.name,
            "lakehouse.contract-version": str(contract.version),
            "lakehouse.write-mode": write_mode,
            "lakehouse.primary-key": ",".join(primary_key or []),
        },
    )


def _table_metadata(spec: TableSpec, columns: list[tuple[str, str, str]]) -> dict:
    return spec.to_metadata() | {"dagster/column_schema": _column_schema(columns)}


def _description(contract: Contract, layer: str) -> str:
    return f"{contract.description.strip()}\n\n{LAYER_ROLES[layer]}"


def _engines(contract: Contract) -> set[str]:
    return {"pandas", "spark"} if contract.engine == "auto" else {contract.engine}


def _input(key: list[str] | dg.AssetKey, reader: TableSpec) -> dg.AssetIn:
    """An input read with the engine of the table it feeds: pinned, or by size with its threshold."""
    return dg.AssetIn(key=key, metadata=reader.to_metadata())


def _spec_kwargs(contract: Contract, layer: str) -> dict:
    return {
        "group_name": layer,
        "owners": contract.owners,
        "kinds": {"iceberg", *_engines(contract)},
        # tags make command-line selections simple: `--select 'tag:partitioning=daily'`
        "tags": {
            "layer": layer,
            "partitioning": TAG_VALUES[contract.partitioning.granularity]
            if contract.partitioning
            else "none",
        },
    }


def build_landing_asset(
    contract: DatasetContract, pandas_days_per_run: int = DEFAULT_PANDAS_DAYS_PER_RUN
) -> dg.AssetsDefinition:
    columns = [(c.name, "string", c.description) for c in contract.columns] + _lineage_columns(contract)
    if contract.source.file_checks.policy == "quarantine_rows":
        columns.append((ROW_ERROR, "string", ROW_ERROR_DESCRIPTION))
    spec = _table_spec(
        contract,
        "landing",
        partition_column=FILE_DATE if contract.partitioning else None,
        write_mode=contract.write_modes.landing,
    )

    @dg.asset(
        key=["landing", contract.name],
        description=_description(contract, "landing"),
        partitions_def=partitions_for(contract.partitioning),
        backfill_policy=_backfill_policy(contract, pandas_days_per_run),
        pool=table_pool("landing", contract.name),
        metadata=_table_metadata(spec, columns) | {"source_glob": contract.source.glob},
        **_spec_kwargs(contract, "landing"),
    )
    def landing_table(
        context: dg.AssetExecutionContext,
        landing_storage: LandingStorage,
        compute: ComputeResource,
        catalog: IcebergCatalogResource,
        notifier: Notifier,
    ):
        from lakehouse_assets.layers.steps import Step, materialize_landing

        yield from materialize_landing(
            Step(context, contract, spec),
            landing_storage=landing_storage,
            compute=compute,
            catalog=catalog,
            notifier=notifier,
        )

    return landing_table


def build_raw_asset(
    contract: DatasetContract, pandas_days_per_run: int = DEFAULT_PANDAS_DAYS_PER_RUN
) -> dg.AssetsDefinition:
    raw_key = dg.AssetKey(["raw", contract.name])
    landing_key = dg.AssetKey(["landing", contract.name])
    partition_column = FILE_DATE if contract.partitioning else None
    # the rejects are committed first, raw last: a reader of either refuses a slice torn between them
    pair = PairSpec(first=f"raw.{contract.name}_rejects", last=f"raw.{contract.name}")
    spec = _table_spec(
        contract,
        "raw",
        partition_column=partition_column,
        write_mode=contract.write_modes.raw,
        quality=QualitySpec(audit=LANDING_AUDIT),
    ).model_copy(update={"pair": pair})
    rejects_spec = _table_spec(
        contract,
        "raw",
        table=f"{contract.name}_rejects",
        partition_column=partition_column,
        write_mode="overwrite",
    ).model_copy(update={"pair": pair})
    typed_columns = [(c.name, type_label(c.type), c.description) for c in contract.columns]
    string_columns = [(c.name, "string", c.description) for c in contract.columns]
    reject_columns = [(name, "string", doc) for name, doc in REJECT_DESCRIPTIONS.items()]

    @dg.multi_asset(
        outs={
            "typed": dg.AssetOut(
                key=raw_key,
                description=_description(contract, "raw"),
                metadata=_table_metadata(spec, typed_columns + _lineage_columns(contract))
                | lineage_metadata(contract, "raw"),
                **_spec_kwargs(contract, "raw"),
            ),
            "rejects": dg.AssetOut(
                key=rejects_spec.asset_key,
                description=(
                    f"Quarantine of {contract.name}: landing rows that could not be typed, with their "
                    "original values, source file, line, columns and reason."
                ),
                metadata=_table_metadata(
                    rejects_spec, string_columns + _lineage_columns(contract) + reject_columns
                ),
                **_spec_kwargs(contract, "raw"),
            ),
        },
        ins={"landing": _input(landing_key, spec)},
        partitions_def=partitions_for(contract.partitioning),
        backfill_policy=_backfill_policy(contract, pandas_days_per_run),
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
        from lakehouse_assets.layers.steps import Step, materialize_raw

        yield from materialize_raw(Step(context, contract, spec), landing, catalog=catalog)

    return raw_tables


def build_staging_asset(
    contract: DatasetContract, pandas_days_per_run: int = DEFAULT_PANDAS_DAYS_PER_RUN
) -> dg.AssetsDefinition:
    partitioning = contract.partitioning
    documented = {c.name: c.description for c in contract.columns}
    columns = [(name, "", documented.get(name, "")) for name in contract.staged_columns()]
    spec = _table_spec(
        contract,
        "staging",
        partition_column=partitioning.column if partitioning else None,
        write_mode=contract.write_modes.staging,
        primary_key=contract.primary_key,
        delivery_column=SOURCE_FILE
        if contract.write_modes.staging == "upsert" and contract.write_modes.redelivery == "replace"
        else None,
        quality=QualitySpec(
            validate_before_commit=contract.quality.validate_before_commit, audit=STAGING_AUDIT
        ),
    )
    staging_key = spec.asset_key
    raw_key = dg.AssetKey(["raw", contract.name])

    @dg.asset(
        key=staging_key,
        description=_description(contract, "staging"),
        ins={"raw": _input(raw_key, spec)},
        partitions_def=partitions_for(partitioning),
        backfill_policy=_backfill_policy(contract, pandas_days_per_run),
        pool=table_pool("staging", contract.name),
        metadata=_table_metadata(spec, columns + _lineage_columns(contract))
        | lineage_metadata(contract, "staging"),
        check_specs=[
            *rule_check_specs(contract.quality, staging_key),
            audit_spec(STAGING_AUDIT, staging_key, "staged = raw - rows removed by named rules", [raw_key]),
        ],
        # not yielded when an error rule fails: nothing is committed (write-audit-publish)
        output_required=False,
        **_spec_kwargs(contract, "staging"),
    )
    def staging_table(context: dg.AssetExecutionContext, catalog: IcebergCatalogResource, raw):
        from lakehouse_assets.layers.steps import Step, materialize_staging

        yield from materialize_staging(Step(context, contract, spec), raw, catalog=catalog)

    return staging_table


def _check_function_module(reference: str) -> None:
    """A model function's module must exist when the code location loads. It is imported (with the
    data stack it uses) when the model's step runs, and its function looked up then."""
    module_name = reference.partition(":")[0]
    if importlib.util.find_spec(module_name) is None:
        raise ModuleNotFoundError(f"No module named {module_name!r}", name=module_name)


def build_model_asset(
    contract: ModelContract,
    pandas_days_per_run: int = DEFAULT_PANDAS_DAYS_PER_RUN,
    columns_of: Mapping[str, list[str]] | None = None,
) -> dg.AssetsDefinition:
    """`columns_of` (table -> columns) names the columns the model's inputs pass through, for its
    column lineage."""
    partitioning = contract.partitioning
    if contract.function:
        _check_function_module(contract.function)
    primary_input_key = dg.AssetKey(contract.inputs[contract.primary_input].split("."))
    # Row-preserving models (lookups, filters) keep every input row a named rule does not remove;
    # aggregates and Python functions change the grain, so no count reconciles there.
    keeps_rows = contract.function is None and not any(
        isinstance(step, AggregateStep) for step in contract.steps
    )
    spec = _table_spec(
        contract,
        contract.layer,
        partition_column=partitioning.column if partitioning else None,
        write_mode=contract.write_mode,
        primary_key=contract.primary_key,
        quality=QualitySpec(
            validate_before_commit=contract.quality.validate_before_commit,
            audit=MODEL_AUDIT if keeps_rows else None,
        ),
    )
    model_key = spec.asset_key
    ins = {alias: _input(table.split("."), spec) for alias, table in contract.inputs.items()}
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
        backfill_policy=_backfill_policy(contract, pandas_days_per_run),
        pool=table_pool(contract.layer, contract.name),
        metadata=_table_metadata(spec, [(column.name, "", column.description) for column in contract.columns])
        | lineage_metadata(contract, contract.layer, columns_of),
        check_specs=[*rule_check_specs(contract.quality, model_key), *audits],
        output_required=False,
        **_spec_kwargs(contract, contract.layer),
    )
    def model_table(
        context: dg.AssetExecutionContext, compute: ComputeResource, catalog: IcebergCatalogResource, **inputs
    ):
        from lakehouse_assets.layers.steps import Step, materialize_model

        yield from materialize_model(Step(context, contract, spec), inputs, compute=compute, catalog=catalog)

    return model_table


def build_assets(
    contracts: list[Contract],
    pandas_days_per_run: int = DEFAULT_PANDAS_DAYS_PER_RUN,
    columns_of: Mapping[str, list[str]] | None = None,
) -> list[dg.AssetsDefinition]:
    """`columns_of` adds the columns of tables other contracts define (a component builds its
    contract alone), for the models' column lineage."""
    assets = []
    # (models take their partitions from their inputs; contracts from `load_contracts` already do)
    contracts = resolve_partitions(list(contracts))
    columns_of = {**(columns_of or {}), **table_columns(contracts)}
    for contract in contracts:
        if isinstance(contract, DatasetContract):
            assets += [
                build_landing_asset(contract, pandas_days_per_run),
                build_raw_asset(contract, pandas_days_per_run),
                build_staging_asset(contract, pandas_days_per_run),
            ]
        else:
            assets.append(build_model_asset(contract, pandas_days_per_run, columns_of))
    return assets
