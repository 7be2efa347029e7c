"""Column lineage from the contracts: which upstream columns each column of a table comes from.

Derived when the code location loads, from the contract's declarations alone (no data is read):

- raw: each typed column from the landing column of the same name;
- staging: the staging steps in order: a rename carries the sources to the new name, a cast, trim,
  mask or de-duplication keeps them, a derived date comes from its year, month and day columns;
- common and output models with steps: every column of the primary input passes through; a lookup's
  new column comes from the lookup table's column and the keys that matched it; an aggregate keeps
  its `by` columns and computes each metric from its column (a row count from the groups);
- Python models: what their contract's `columns[].lineage` declares (`alias.column` of an input, or a
  column of the primary input), since their code is not imported when the code location loads.

A column declared with `lineage` in any model overrides what the steps say. The result is Dagster's
`dagster/column_lineage` (`dg.TableColumnLineage`), shown in the UI's column lineage graph.
"""

from collections.abc import Iterable, Mapping

import dagster as dg

from lakehouse_assets.contracts.columns import lineage_column_types
from lakehouse_assets.contracts.contract import Contract, DatasetContract, ModelContract
from lakehouse_assets.contracts.steps import AggregateStep, DeriveDateStep, LookupStep, RenameStep

# column -> the (table "layer.name", column) pairs it is computed from
Sources = dict[str, frozenset[tuple[str, str]]]
LINEAGE_KEY = "dagster/column_lineage"


def _lineage_names(contract: Contract) -> list[str]:
    source = contract.source if isinstance(contract, DatasetContract) else None
    return list(lineage_column_types(contract.partitioning, source))


def _same_names(table: str, columns: Iterable[str]) -> Sources:
    return {name: frozenset({(table, name)}) for name in columns}


def raw_sources(contract: DatasetContract) -> Sources:
    return _same_names(f"landing.{contract.name}", [*contract.column_names, *_lineage_names(contract)])


def staging_sources(contract: DatasetContract) -> Sources:
    sources = _same_names(f"raw.{contract.name}", contract.column_names)
    for step in contract.staging:
        if isinstance(step, RenameStep):
            sources = {step.rename.get(name, name): found for name, found in sources.items()}
        elif isinstance(step, DeriveDateStep):
            spec = step.derive_date
            sources[spec.column] = _union(sources, [spec.year, spec.month, spec.day])
    staged = {name: sources.get(name, frozenset()) for name in contract.staged_columns()}
    return staged | _same_names(f"raw.{contract.name}", _lineage_names(contract))


def _union(sources: Mapping[str, frozenset], columns: Iterable[str]) -> frozenset[tuple[str, str]]:
    return frozenset(pair for column in columns for pair in sources.get(column, ()))


def model_sources(contract: ModelContract, table_columns: Mapping[str, list[str]] | None = None) -> Sources:
    """The model's columns and their sources. `table_columns` (table -> columns) tells which columns
    the primary input passes through; without it only the columns the steps name are known."""
    table_columns = table_columns or {}
    primary = contract.inputs[contract.primary_input]
    known = primary in table_columns
    sources: Sources = _same_names(primary, table_columns.get(primary, []))

    def of(columns: Iterable[str]) -> frozenset[tuple[str, str]]:
        # a column the primary input's contract is not at hand for is taken to be its own
        return frozenset(
            pair for column in columns for pair in sources.get(column, () if known else {(primary, column)})
        )

    if contract.function is None:
        for step in contract.steps:
            if isinstance(step, LookupStep):
                spec = step.lookup
                table = contract.inputs[spec.input]
                keys = of(spec.match) | {(table, right) for right in spec.match.values()}
                for source, target in spec.columns.items():
                    sources[target] = keys | {(table, source)}
            elif isinstance(step, AggregateStep):
                spec = step.aggregate
                groups = of(spec.by)
                sources = {name: of([name]) for name in spec.by} | {
                    name: of([metric.column]) if metric.column else groups
                    for name, metric in spec.metrics.items()
                }
    else:
        sources = {}
    for column in contract.columns:
        if column.lineage:
            sources[column.name] = frozenset(_declared(contract, reference) for reference in column.lineage)
    return sources


def _declared(contract: ModelContract, reference: str) -> tuple[str, str]:
    alias, dot, column = reference.partition(".")
    if dot and alias in contract.inputs:
        return contract.inputs[alias], column
    return contract.inputs[contract.primary_input], reference


def table_columns(contracts: Iterable[Contract]) -> dict[str, list[str]]:
    """Every table's columns as far as the contracts say (`layer.name` -> names), models after the
    inputs they read; a Python model's are its declared columns."""
    columns: dict[str, list[str]] = {}
    models: list[ModelContract] = []
    for contract in contracts:
        if isinstance(contract, DatasetContract):
            lineage = _lineage_names(contract)
            columns[f"raw.{contract.name}"] = [*contract.column_names, *lineage]
            columns[f"staging.{contract.name}"] = [*contract.staged_columns(), *lineage]
        else:
            models.append(contract)
    # models may read models: resolve those whose primary input is known first
    while models:
        ready = [m for m in models if m.inputs[m.primary_input] in columns or m.function is not None]
        if not ready:
            ready = models[:1]
        for model in ready:
            models.remove(model)
            columns[f"{model.layer}.{model.name}"] = _model_columns(model, columns)
    return columns


def _model_columns(model: ModelContract, columns: Mapping[str, list[str]]) -> list[str]:
    if model.function is not None:
        return [column.name for column in model.columns]
    return list(model_sources(model, columns))


def column_lineage(sources: Sources) -> dg.TableColumnLineage:
    return dg.TableColumnLineage(
        deps_by_column={
            column: [
                dg.TableColumnDep(asset_key=dg.AssetKey(table.split(".")), column_name=name)
                for table, name in sorted(found)
            ]
            for column, found in sources.items()
            if found
        }
    )


def lineage_metadata(
    contract: Contract, layer: str, table_columns: Mapping[str, list[str]] | None = None
) -> dict:
    """`dagster/column_lineage` for the contract's table in `layer`, or nothing where none is known."""
    if isinstance(contract, DatasetContract):
        sources = raw_sources(contract) if layer == "raw" else staging_sources(contract)
    else:
        sources = model_sources(contract, table_columns)
    lineage = column_lineage(sources)
    return {LINEAGE_KEY: lineage} if lineage.deps_by_column else {}
