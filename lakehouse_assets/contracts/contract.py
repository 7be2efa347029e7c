"""The YAML contracts, as pydantic models.

A *dataset* contract describes one source end to end (landing -> raw -> staging). A *model*
contract describes a common or output table built from other tables, either with declarative
steps (lookup, filter, aggregate) or with a Python function. Loading a contract that is wrong
fails with the file, the field and what was expected (see `load_contract`).
"""

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from checks.rule_models import Quality
from io_managers.table_spec import EngineChoice, WriteMode
from lakehouse_assets.contracts.base import Column, ContractError, StrictModel
from lakehouse_assets.contracts.columns import lineage_column_types
from lakehouse_assets.contracts.extracts import Extract
from lakehouse_assets.contracts.partitioning import (
    ModelPartitioning,
    Partitioning,
    named_time,
    precise_enough,
)
from lakehouse_assets.contracts.source import Source
from lakehouse_assets.contracts.steps import (
    CastStep,
    DeduplicateStep,
    DeriveDateStep,
    LookupStep,
    MaskStep,
    ModelStep,
    RenameStep,
    StagingStep,
    TrimStep,
)

Redelivery = Literal["replace", "merge"]
LAYERS = ("landing", "raw", "staging", "common", "output")
# How a file name writes a moment of each precision, as errors show it.
# Dagster's partition key formats (HourlyPartitionsDefinition, Daily..., Monthly...).
TABLE_NAME = r"^[a-z][a-z0-9_]*$"
# libyaml's parser when PyYAML has it (5x faster than the pure-Python one, the same documents):
# every load of the code location parses every contract, and Dagster loads the definitions twice.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class WriteModes(StrictModel):
    landing: WriteMode = "overwrite"
    raw: WriteMode = "overwrite"
    staging: WriteMode = "overwrite"
    # What an upserted staging table does with a file delivered again (a corrected file): `replace`
    # the rows its earlier version brought (a row the correction removed goes), or `merge` by key
    # (keys the new version lacks stay, counted by the staging audit). Overwrite always replaces.
    redelivery: Redelivery = "replace"


class DatasetContract(StrictModel):
    kind: Literal["dataset"] = "dataset"
    name: str = Field(pattern=TABLE_NAME)
    version: int = 1
    description: str
    owners: list[str] = Field(default_factory=list)
    source: Source
    columns: list[Column] = Field(min_length=1)
    primary_key: list[str] = Field(default_factory=list)
    partitioning: Partitioning | None = None
    write_modes: WriteModes = Field(default_factory=WriteModes)
    staging: list[StagingStep] = Field(default_factory=list)
    engine: EngineChoice = Field(default="auto", description="pin an engine, or choose by partition size")
    spark_threshold_bytes: int | None = Field(default=None, ge=0, description="overrides the environment's")
    quality: Quality = Field(default_factory=Quality)
    extracts: list[Extract] = Field(
        default_factory=list, description="files of the staging table for consumers"
    )

    @model_validator(mode="after")
    def _consistent(self) -> "DatasetContract":
        names = [column.name for column in self.columns]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"columns: duplicate names {duplicates}")
        from_rows = self.source.partition_from
        if from_rows is not None and self.source.file_date_pattern is not None:
            raise ValueError(
                "declare one of source.file_date_pattern (a file's partition is in its name) and "
                "source.partition_from (its rows carry their partitions), not both"
            )
        unknown_paths = sorted(set(self.source.jsonl.paths) - set(names))
        if unknown_paths:
            raise ValueError(f"source.jsonl.paths: {unknown_paths} are not columns (have {names})")
        if self.source.jsonl.paths and self.source.format != "jsonl":
            raise ValueError(f"source.jsonl.paths: only for format jsonl (format is {self.source.format})")
        if (self.partitioning is None) != (self.source.file_date_pattern is None and from_rows is None):
            raise ValueError(
                "partitioning and source.file_date_pattern (or source.partition_from) go together: a "
                "partitioned dataset takes each file's partition from its name, or its rows' from a column"
            )
        if from_rows is not None:
            unknown = [name for name in from_rows.source_columns if name not in self.column_names]
            if unknown:
                raise ValueError(f"source.partition_from: {unknown} are not columns of the contract")
        staged = self.staged_columns()
        if self.partitioning and self.partitioning.column not in staged:
            raise ValueError(f"partitioning.column {self.partitioning.column!r} is not a staged column")
        if self.partitioning and self.partitioning.granularity == "hour":
            column_type = self._staged_types().get(self.partitioning.column)
            if column_type not in (None, "timestamp", "timestamptz"):
                raise ValueError(
                    f"partitioning.column {self.partitioning.column!r} is a {column_type} column; hour "
                    "partitions need a timestamp or timestamptz column"
                )
        missing_keys = [key for key in self.primary_key if key not in staged]
        if missing_keys:
            raise ValueError(f"primary_key: {missing_keys} are not staged columns (have {sorted(staged)})")
        for layer in ("landing", "raw", "staging"):
            if getattr(self.write_modes, layer) == "upsert" and not self.primary_key:
                raise ValueError(f"write_modes.{layer}: upsert needs a primary_key")
        if self.write_modes.redelivery == "merge" and self.write_modes.staging != "upsert":
            raise ValueError(
                f"write_modes.redelivery: merge needs staging: upsert (staging is "
                f"{self.write_modes.staging}, which replaces a re-delivered partition whole)"
            )
        # rules check the staged table, so they must name its columns
        unknown_rule_columns = sorted(self.quality.columns() - set(staged))
        if unknown_rule_columns:
            raise ValueError(
                f"quality.rules: {unknown_rule_columns} are not staged columns (have {sorted(staged)})"
            )
        for extract in self.extracts:
            # the staging table also has the lineage columns (`_source_file`, ...)
            lineage = lineage_column_types(self.partitioning, self.source)
            extract.check_columns([*staged, *lineage], "the staging table")
            extract.check_partitions(self.partitioning.granularity if self.partitioning else None)
        return self

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def file_time(self, file_name: str) -> dt.datetime | None:
        """When a file belongs, aware in the partitions' time zone: the moment its name writes, when
        that is as precise as the partitions (a month file cannot fill a day) and lies inside them."""
        partitioning = self.partitioning
        text = self.source.named_time_text(file_name)
        named = named_time(text) if text is not None else None
        if partitioning is None or named is None or not precise_enough(named[1], partitioning.granularity):
            return None
        moment = partitioning.local(named[0])
        return moment if partitioning.contains(moment) else None

    def _staged_types(self) -> dict[str, str]:
        """Each staged column's contract type, where the steps make it known."""
        types = {column.name: column.type for column in self.columns}
        for step in self.staging:
            if isinstance(step, CastStep):
                types.update(step.cast)
            elif isinstance(step, RenameStep):
                types = {step.rename.get(name, name): type_ for name, type_ in types.items()}
            elif isinstance(step, DeriveDateStep):
                types[step.derive_date.column] = "date"
        return types

    def staged_columns(self) -> list[str]:
        """Column names after the staging steps, so keys can be checked when the contract loads."""
        columns = list(self.column_names)
        for step in self.staging:
            referenced: list[str] = []
            if isinstance(step, TrimStep):
                referenced = step.trim
            elif isinstance(step, CastStep):
                referenced = list(step.cast)
            elif isinstance(step, MaskStep):
                referenced = step.mask.columns
            elif isinstance(step, DeduplicateStep):
                referenced = [*step.deduplicate.keys, step.deduplicate.latest_by]
            elif isinstance(step, DeriveDateStep):
                spec = step.derive_date
                referenced = [spec.year, spec.month, spec.day]
            elif isinstance(step, RenameStep):
                referenced = list(step.rename)
            unknown = [name for name in referenced if name not in columns and not name.startswith("_")]
            if unknown:
                raise ValueError(f"staging step {step.model_dump()} names unknown columns {unknown}")
            if isinstance(step, RenameStep):
                columns = [step.rename.get(name, name) for name in columns]
            elif isinstance(step, DeriveDateStep):
                columns.append(step.derive_date.column)
        return columns


class ModelColumn(StrictModel):
    name: str
    description: str = ""
    lineage: list[str] = Field(
        default_factory=list,
        description="the input columns this one is computed from: `alias.column` of an input, or "
        "`column` of the primary input (a Python model's column lineage; overrides the steps')",
    )


class ModelContract(StrictModel):
    kind: Literal["model"] = "model"
    layer: Literal["common", "output"]
    name: str = Field(pattern=TABLE_NAME)
    version: int = 1
    description: str
    owners: list[str] = Field(default_factory=list)
    inputs: dict[str, str] = Field(min_length=1, description="alias -> upstream table `layer.name`")
    # resolved to a `Partitioning` from the inputs when the contracts load (`resolve_partitions`)
    partitioning: ModelPartitioning | None = None
    write_mode: WriteMode = "overwrite"
    primary_key: list[str] = Field(default_factory=list)
    steps: list[ModelStep] = Field(default_factory=list)
    function: str | None = Field(default=None, description="`module:function` taking the inputs by alias")
    columns: list[ModelColumn] = Field(default_factory=list)
    engine: EngineChoice = "auto"
    spark_threshold_bytes: int | None = Field(default=None, ge=0)
    quality: Quality = Field(default_factory=Quality)
    extracts: list[Extract] = Field(default_factory=list, description="files of this table for consumers")

    @field_validator("inputs")
    @classmethod
    def _qualified(cls, value: dict[str, str]) -> dict[str, str]:
        for alias, table in value.items():
            layer, _, name = table.partition(".")
            if layer not in LAYERS or not name:
                raise ValueError(f"input {alias!r}: {table!r} is not `layer.table` with a layer of {LAYERS}")
        return value

    @model_validator(mode="after")
    def _steps_or_function(self) -> "ModelContract":
        if bool(self.steps) == bool(self.function):
            raise ValueError("declare exactly one of `steps` or `function`")
        if self.function and ":" not in self.function:
            raise ValueError("function must be `module:function`")
        for step in self.steps:
            if isinstance(step, LookupStep) and step.lookup.input not in self.inputs:
                raise ValueError(
                    f"lookup input {step.lookup.input!r} is not one of inputs {list(self.inputs)}"
                )
        if self.write_mode == "upsert" and not self.primary_key:
            raise ValueError("write_mode upsert needs a primary_key")
        for column in self.columns:
            for reference in column.lineage:
                alias, dot, name = reference.partition(".")
                if dot and (alias not in self.inputs or not name):
                    raise ValueError(
                        f"columns: {column.name!r} lineage {reference!r} is not `alias.column` with an "
                        f"alias of inputs {list(self.inputs)} (or a column of the primary input)"
                    )
        for extract in self.extracts:
            # a model's granularity may come from its inputs: the factory checks the resolved one
            if self.partitioning is None or self.partitioning.granularity is not None:
                extract.check_partitions(self.partitioning and self.partitioning.granularity)
        return self

    @property
    def primary_input(self) -> str:
        """The first input: steps transform it, and its partitions drive this model's partitions."""
        return next(iter(self.inputs))


Contract = DatasetContract | ModelContract


def _format_errors(path: Path, error: ValidationError) -> str:
    lines = [f"{path}: invalid contract"]
    for item in error.errors():
        # a step's tag and its field carry the same name: show it once
        parts = [
            str(part)
            for index, part in enumerate(item["loc"])
            if index == 0 or part != item["loc"][index - 1]
        ]
        location = ".".join(parts) or "(top level)"
        lines.append(f"  - {location}: {item['msg']} (got {item.get('input')!r})")
    return "\n".join(lines)


def contract_from(document: Any, path: Path, model: type[Contract] | None = None) -> Contract:
    """The contract a parsed YAML document holds; `model` defaults to the one its `kind` names."""
    if not isinstance(document, dict):
        raise ContractError(f"{path}: expected a mapping at the top level, got {type(document).__name__}")
    model = model or (ModelContract if document.get("kind") == "model" else DatasetContract)
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise ContractError(_format_errors(path, exc)) from None


def load_contract(path: Path) -> Contract:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: not valid YAML: {exc}") from exc
    return contract_from(document, path)


def refuse_duplicate_tables(contracts: list[Contract]) -> None:
    seen: dict[tuple[str, str], int] = {}
    for contract in contracts:
        layers = ("landing", "raw", "staging") if isinstance(contract, DatasetContract) else (contract.layer,)
        for layer in layers:
            key = (layer, contract.name)
            if key in seen:
                raise ContractError(f"two contracts define the table {layer}.{contract.name}")
            seen[key] = 1
        for extract in contract.extracts:
            if ("delivery", extract.name) in seen:
                raise ContractError(
                    f"two extracts are named {extract.name!r} (asset delivery/{extract.name})"
                )
            seen[("delivery", extract.name)] = 1


def tables_of(contract: Contract) -> list[str]:
    """The tables (`layer.name`) a contract defines."""
    if isinstance(contract, DatasetContract):
        return [
            f"landing.{contract.name}",
            f"raw.{contract.name}",
            f"raw.{contract.name}_rejects",
            f"staging.{contract.name}",
        ]
    return [f"{contract.layer}.{contract.name}"]


def resolve_partitions(contracts: list[Contract], paths: list[Path] | None = None) -> list[Contract]:
    """The contracts, each model with the time partitions of its partitioned inputs (`ModelPartitioning`).

    A model whose partitioned inputs have different partitions, which declares other partitions than
    its inputs, or (with `paths`, i.e. the whole set of contracts) names an input no contract defines,
    fails naming its own file and field. Idempotent: resolved contracts resolve to themselves.
    """
    where = {id(contract): str(path) for contract, path in zip(contracts, paths or [], strict=False)}
    producers = {table: contract for contract in contracts for table in tables_of(contract)}
    resolved: dict[int, Partitioning | None] = {}

    def fail(model: ModelContract, field: str, message: str) -> ContractError:
        source = where.get(id(model), f"model {model.layer}.{model.name}")
        return ContractError(f"{source}: invalid contract\n  - {field}: {message}")

    def partitions_of(contract: Contract, visiting: tuple[int, ...] = ()) -> Partitioning | None:
        if isinstance(contract, DatasetContract):
            return contract.partitioning
        if id(contract) in resolved:
            return resolved[id(contract)]
        if id(contract) in visiting:
            raise fail(contract, "inputs", "the models' inputs form a cycle")
        partitioned, run_sizes = [], []
        for alias, table in contract.inputs.items():
            producer = producers.get(table)
            if producer is None:
                if paths is not None:
                    raise fail(contract, f"inputs.{alias}", f"no contract defines the table {table!r}")
                continue
            upstream = partitions_of(producer, (*visiting, id(contract)))
            if upstream is not None:
                partitioned.append((f"{alias} ({table})", upstream))
                run_sizes.append(upstream.partitions_per_run(run_bytes(producer)))
        resolved[id(contract)] = _model_partitions(contract, partitioned, fail, run_sizes)
        return resolved[id(contract)]

    return [
        contract
        if isinstance(contract, DatasetContract) or contract.partitioning is None
        else contract.model_copy(update={"partitioning": partitions_of(contract)})
        for contract in contracts
    ]


_TIME_FIELDS = ("granularity", "start", "end", "timezone")


def run_bytes(contract: Contract) -> int:
    """The bytes a backfill run of a contract with `partitioning.partition_size` is sized to: what
    the pandas engine reads before a window goes to Spark (the contract's `spark_threshold_bytes`,
    else the default 128 MiB), so a sized run stays one pandas read."""
    from resources.spark.compute import DEFAULT_SPARK_THRESHOLD_BYTES

    threshold = contract.spark_threshold_bytes
    return DEFAULT_SPARK_THRESHOLD_BYTES if threshold is None else threshold


def backfill_partitions_per_run(contract: Contract) -> int | None:
    """Partitions per backfill run the contract asks for; None when it leaves it to the environment
    (LAKEHOUSE_PANDAS_DAYS_PER_RUN). Models carry theirs once resolved (`resolve_partitions`)."""
    partitioning = contract.partitioning
    if partitioning is None:
        return None
    if isinstance(partitioning, Partitioning):
        return partitioning.partitions_per_run(run_bytes(contract))
    return partitioning.backfill_partitions_per_run


def _model_partitions(
    model: ModelContract, partitioned: list, fail, run_sizes: list[int | None] = ()
) -> Partitioning | None:
    declared = model.partitioning
    if declared is None:
        return None
    # A model runs in the backfill runs of its inputs: it takes their smallest run size when every
    # partitioned input has one (different policies would split a backfill into more runs).
    run_size = declared.backfill_partitions_per_run
    if run_size is None and run_sizes and None not in run_sizes:
        run_size = min(run_sizes)
    if not partitioned:
        if declared.start is None:
            raise fail(model, "partitioning.start", "required when no input is partitioned")
        return Partitioning(
            column=declared.column,
            granularity=declared.granularity or "day",
            start=declared.start,
            end=declared.end,
            timezone=declared.timezone or "UTC",
            backfill_partitions_per_run=run_size,
        )
    (first_input, first), *others = partitioned
    for name, other in others:
        if other.definition != first.definition:
            raise fail(
                model,
                "inputs",
                f"{name} has {other.describe()} but {first_input} has {first.describe()}; a model's "
                "partitioned inputs must share one partitions definition",
            )
    for field in _TIME_FIELDS:
        value = getattr(declared, field)
        if value is not None and value != getattr(first, field):
            raise fail(
                model,
                f"partitioning.{field}",
                f"{value} differs from {getattr(first, field)} of its input {first_input} "
                f"({first.describe()}); a model takes its partitions from its inputs: leave "
                f"{field} out or make it equal",
            )
    return Partitioning(
        column=declared.column,
        backfill_partitions_per_run=run_size,
        **{field: getattr(first, field) for field in _TIME_FIELDS},
    )


def check_together(contracts: list[Contract], paths: list[Path]) -> list[Contract]:
    """A set of contracts that will be one code location: no table defined twice, and each model
    with the partitions of its inputs (errors name the file of the contract at fault)."""
    refuse_duplicate_tables(contracts)
    return resolve_partitions(contracts, paths)


def load_contracts(*directories: Path) -> list[Contract]:
    paths = [path for directory in directories for path in sorted(directory.glob("*.yaml"))]
    return check_together([load_contract(path) for path in paths], paths)
