"""The YAML contracts, as pydantic models.

A *dataset* contract describes one source end to end (landing -> raw -> staging). A *model*
contract describes a common or output table built from other tables, either with declarative
steps (lookup, filter, aggregate) or with a Python function. Loading a contract that is wrong
fails with the file, the field and what was expected (see `load_contract`).
"""

import datetime as dt
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from checks.rule_models import FileChecks, Quality

COLUMN_TYPES = ("string", "int", "long", "double", "boolean", "date", "timestamp", "timestamptz")
DECIMAL_TYPE = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
WriteMode = Literal["overwrite", "append", "upsert"]
Redelivery = Literal["replace", "merge"]
EngineChoice = Literal["auto", "pandas", "spark"]
LAYERS = ("landing", "raw", "staging", "common", "output")
Granularity = Literal["hour", "day", "month"]
# How a file name writes a moment of each precision, as errors show it.
NAMED_TIME_FORMATS = {"month": "YYYY-MM", "day": "YYYY-MM-DD", "hour": "YYYY-MM-DDTHH"}
_PRECISION_RANK = {"hour": 0, "day": 1, "month": 2}
_NAMED_TIME = re.compile(
    r"(?P<year>\d{4})-?(?P<month>\d{2})(?:-?(?P<day>\d{2})(?:[T _-]?(?P<hour>\d{2})(?::?00)?)?)?"
)
# Dagster's partition key formats (HourlyPartitionsDefinition, Daily..., Monthly...).
PARTITION_KEY_FORMATS = {"hour": "%Y-%m-%d-%H:%M", "day": "%Y-%m-%d", "month": "%Y-%m-%d"}
TABLE_NAME = r"^[a-z][a-z0-9_]*$"
# libyaml's parser when PyYAML has it (5x faster than the pure-Python one, the same documents):
# every load of the code location parses every contract, and Dagster loads the definitions twice.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ContractError(ValueError):
    """A contract that cannot be used; the message names the file, the field and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_type(value: str) -> str:
    if value in COLUMN_TYPES or DECIMAL_TYPE.match(value):
        return value
    raise ValueError(f"unknown type {value!r}; expected one of {', '.join(COLUMN_TYPES)} or decimal(p,s)")


# The JSON schema says the same for editors and `dg check yaml`, which validate without Python.
ColumnType = Annotated[
    str,
    AfterValidator(_check_type),
    WithJsonSchema(
        {"type": "string", "anyOf": [{"enum": list(COLUMN_TYPES)}, {"pattern": DECIMAL_TYPE.pattern}]}
    ),
]


class Column(_Strict):
    name: str
    type: ColumnType = "string"
    nullable: bool = True
    description: str = ""
    pii: bool = False
    format: str | None = Field(default=None, description="strptime format for date/timestamp parsing")


class CsvOptions(_Strict):
    delimiter: str = ","
    encoding: str = "utf-8"
    header: bool = True
    quote_char: str = '"'
    null_values: list[str] = Field(default_factory=lambda: [""])

    @field_validator("delimiter", "quote_char")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError("must be exactly one character")
        return value


SourceFormat = Literal["csv", "jsonl", "parquet"]
Compression = Literal["infer", "none", "gzip", "bz2", "zstd", "zip"]
# What `compression: infer` reads from the end of a file's (or a zip member's) name.
COMPRESSION_SUFFIXES = {
    ".gz": "gzip",
    ".gzip": "gzip",
    ".bz2": "bz2",
    ".zst": "zstd",
    ".zstd": "zstd",
    ".zip": "zip",
}
_JSON_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")


def inferred_compression(name: str) -> str:
    """What the end of a file's (or zip member's) name says about its compression; `none` when nothing."""
    lowered = name.lower()
    return next((kind for suffix, kind in COMPRESSION_SUFFIXES.items() if lowered.endswith(suffix)), "none")


class ZipOptions(_Strict):
    members: str = Field(
        default="*",
        description="glob (fnmatch) on member paths inside the archive; the others are left alone",
    )


class JsonLinesOptions(_Strict):
    """How a JSON Lines record becomes the contract's columns.

    A column reads the top-level field of its own name unless `paths` names a dotted path into
    nested objects (`payload.reading.kwh`). A value that is an object or a list lands as its JSON
    text; a number keeps the text the file wrote (`1.50` stays `1.50`).
    """

    paths: dict[str, str] = Field(default_factory=dict, description="column -> dotted path into the record")

    @field_validator("paths")
    @classmethod
    def _dotted(cls, value: dict[str, str]) -> dict[str, str]:
        for column, path in value.items():
            if not _JSON_PATH.match(path):
                raise ValueError(f"{column}: {path!r} is not a dotted path such as `payload.reading.kwh`")
        return value


class PartitionFrom(_Strict):
    """Where a file's rows carry their own partition value: one column, or several joined by "-"."""

    column: str | None = None
    columns: list[str] = Field(default_factory=list, description="joined with '-' before parsing")
    format: str = Field(default="%Y-%m-%d", description="strptime format of the (joined) value")

    @model_validator(mode="after")
    def _one_source(self) -> "PartitionFrom":
        if (self.column is None) == (not self.columns):
            raise ValueError("declare exactly one of `column` or `columns`")
        return self

    @property
    def source_columns(self) -> list[str]:
        return [self.column] if self.column is not None else list(self.columns)


class Source(_Strict):
    glob: str = Field(description="files of this dataset, relative to the landing zone")
    format: SourceFormat = Field(default="csv", description="csv, jsonl (JSON Lines) or parquet")
    compression: Compression = Field(
        default="infer",
        description="infer: from the name's extension (.gz, .bz2, .zst, .zip); none: bytes as they are",
    )
    zip: ZipOptions = Field(default_factory=ZipOptions)
    csv: CsvOptions = Field(default_factory=CsvOptions)
    jsonl: JsonLinesOptions = Field(default_factory=JsonLinesOptions)
    file_date_pattern: str | None = Field(
        default=None,
        description="regex on the file name with a named group `date`: YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH",
    )
    partition_from: PartitionFrom | None = Field(
        default=None,
        description="rows carry their partition value: a file may fill many partitions, whatever its name",
    )
    file_checks: FileChecks = Field(default_factory=FileChecks)

    @field_validator("file_date_pattern")
    @classmethod
    def _has_date_group(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        if "date" not in compiled.groupindex:
            raise ValueError(
                "needs a named group `(?P<date>...)` that captures YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH"
            )
        return value

    def compression_of(self, name: str) -> str:
        """How a file of this name is compressed: none, gzip, bz2, zstd or zip."""
        return inferred_compression(name) if self.compression == "infer" else self.compression

    @property
    def archived(self) -> bool:
        """Whether rows come from members of zip archives (and so carry `_source_member`)."""
        return self.compression == "zip" or (
            self.compression == "infer" and self.glob.lower().endswith(".zip")
        )

    def named_time_text(self, file_name: str) -> str | None:
        """What the pattern's `date` group captures in a file name, or None when the name does not match."""
        if self.file_date_pattern is None:
            return None
        match = re.search(self.file_date_pattern, file_name)
        return None if match is None else match.group("date")


def precise_enough(precision: str, granularity: str) -> bool:
    """Whether a moment named to `precision` lies in one partition of `granularity`."""
    return _PRECISION_RANK[precision] <= _PRECISION_RANK[granularity]


def named_time(text: str) -> tuple[dt.datetime, str] | None:
    """The (naive) moment a file name writes and its precision: month, day or hour; None when not one.

    The forms are ISO 8601's: `2024-03`, `2024-03-05`, `2024-03-05T07` (also `2024-03-05 07`,
    `2024-03-05_07`, `2024-03-05-07`, `...T07:00`) and the same without hyphens.
    """
    match = _NAMED_TIME.fullmatch(text)
    if match is None:
        return None
    day, hour = match.group("day"), match.group("hour")
    try:
        moment = dt.datetime(
            int(match.group("year")), int(match.group("month")), int(day or 1), int(hour or 0)
        )
    except ValueError:
        return None
    return moment, "hour" if hour else "day" if day else "month"


def _check_time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; expected an IANA name such as UTC or America/New_York"
        ) from None
    return value


TimeZone = Annotated[str, AfterValidator(_check_time_zone)]


def check_range(granularity: str, start: dt.date | None, end: dt.date | None) -> None:
    if start is not None and end is not None and end <= start:
        raise ValueError(f"end {end} must come after start {start} (end is exclusive)")
    if granularity == "month":
        for name, value in (("start", start), ("end", end)):
            if value is not None and value.day != 1:
                raise ValueError(
                    f"{name} {value}: month partitions start and end on the first day of a month"
                )


class ModelPartitioning(_Strict):
    """A model's partitions: its column, and the time partitions of its partitioned inputs.

    The range, granularity and time zone come from the inputs (a model partition reads the same
    window of each input); declared here, they must equal the inputs'. A model without partitioned
    inputs declares them itself.
    """

    column: str
    granularity: Granularity | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    timezone: TimeZone | None = None

    @model_validator(mode="after")
    def _consistent_range(self) -> "ModelPartitioning":
        check_range(self.granularity or "day", self.start, self.end)
        return self


class Partitioning(ModelPartitioning):
    """A table's time partitions: Dagster's partitions definition and Iceberg's transform both follow it.

    `start` and `end` (exclusive) are local dates in `timezone`; partitions are that zone's hours,
    days or months.
    """

    column: str
    granularity: Granularity = "day"
    start: dt.date
    end: dt.date | None = Field(default=None, description="exclusive; open-ended when absent")
    timezone: TimeZone = Field(default="UTC", description="IANA time zone the partitions' times are in")

    @property
    def definition(self) -> tuple[str, dt.date, dt.date | None, str]:
        """What Dagster's partitions definition is made of: tables equal in it share partition keys."""
        return (self.granularity, self.start, self.end, self.timezone)

    def describe(self) -> str:
        end = self.end or "open-ended"
        zone = "" if self.timezone == "UTC" else f" {self.timezone}"
        return f"{self.granularity} partitions [{self.start}, {end}){zone}"

    def local(self, moment: dt.datetime) -> dt.datetime:
        """A naive moment in the partitions' time zone, made aware."""
        return moment.replace(tzinfo=zoneinfo.ZoneInfo(self.timezone))

    def contains(self, moment: dt.datetime) -> bool:
        """Whether an aware moment lies in [start, end) of the partitions' local dates."""
        start = self.local(dt.datetime.combine(self.start, dt.time()))
        end = self.local(dt.datetime.combine(self.end, dt.time())) if self.end else None
        return start <= moment and (end is None or moment < end)

    def partition_key(self, moment: dt.datetime) -> str:
        """The key of the partition an aware moment lies in, as Dagster writes it."""
        local = moment.astimezone(zoneinfo.ZoneInfo(self.timezone))
        if self.granularity == "hour":
            local = local.replace(minute=0, second=0, microsecond=0)
        elif self.granularity == "month":
            local = local.replace(day=1)
        return local.strftime(PARTITION_KEY_FORMATS[self.granularity])


class TrimStep(_Strict):
    trim: list[str]


class RenameStep(_Strict):
    rename: dict[str, str]


class CastStep(_Strict):
    cast: dict[str, ColumnType]


class DeriveDate(_Strict):
    column: str
    year: str
    month: str
    day: str


class DeriveDateStep(_Strict):
    derive_date: DeriveDate


class Deduplicate(_Strict):
    keys: list[str] = Field(min_length=1)
    latest_by: str


class DeduplicateStep(_Strict):
    deduplicate: Deduplicate


class Mask(_Strict):
    columns: list[str] = Field(min_length=1)
    method: Literal["sha256", "redact"] = "sha256"


class MaskStep(_Strict):
    mask: Mask


def _step_kind(value: Any) -> str | None:
    """A step is a one-key mapping; its key picks the model, so errors name that step only."""
    if isinstance(value, dict):
        return next(iter(value), None) if len(value) == 1 else None
    return next(iter(type(value).model_fields), None)


def _steps(*models: type[BaseModel]) -> Any:
    tagged = tuple(Annotated[model, Tag(next(iter(model.model_fields)))] for model in models)
    return Annotated[Union[tagged], Discriminator(_step_kind)]  # noqa: UP007 - a runtime tuple of types


StagingStep = _steps(TrimStep, RenameStep, CastStep, DeriveDateStep, DeduplicateStep, MaskStep)


class Lookup(_Strict):
    input: str
    match: dict[str, str] = Field(min_length=1, description="column -> lookup column")
    columns: dict[str, str] = Field(min_length=1, description="lookup column -> new column name")


class LookupStep(_Strict):
    lookup: Lookup


class Filter(_Strict):
    column: str
    op: Literal["eq", "ne", "gt", "ge", "lt", "le", "in", "is_null", "not_null"]
    value: Any = None


class FilterStep(_Strict):
    filter: Filter


class Metric(_Strict):
    fn: Literal["count", "count_null", "count_not_null", "sum", "mean", "min", "max"]
    column: str | None = None

    @model_validator(mode="after")
    def _column_needed(self) -> "Metric":
        if self.fn != "count" and self.column is None:
            raise ValueError(f"metric {self.fn!r} needs a column")
        return self


class Aggregate(_Strict):
    by: list[str] = Field(min_length=1)
    metrics: dict[str, Metric] = Field(min_length=1)


class AggregateStep(_Strict):
    aggregate: Aggregate


ModelStep = _steps(LookupStep, FilterStep, AggregateStep)


class WriteModes(_Strict):
    landing: WriteMode = "overwrite"
    raw: WriteMode = "overwrite"
    staging: WriteMode = "overwrite"
    # What an upserted staging table does with a file delivered again (a corrected file): `replace`
    # the rows its earlier version brought (a row the correction removed goes), or `merge` by key
    # (keys the new version lacks stay, counted by the staging audit). Overwrite always replaces.
    redelivery: Redelivery = "replace"


class DatasetContract(_Strict):
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


class ModelColumn(_Strict):
    name: str
    description: str = ""


class ModelContract(_Strict):
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
        partitioned = []
        for alias, table in contract.inputs.items():
            producer = producers.get(table)
            if producer is None:
                if paths is not None:
                    raise fail(contract, f"inputs.{alias}", f"no contract defines the table {table!r}")
                continue
            upstream = partitions_of(producer, (*visiting, id(contract)))
            if upstream is not None:
                partitioned.append((f"{alias} ({table})", upstream))
        resolved[id(contract)] = _model_partitions(contract, partitioned, fail)
        return resolved[id(contract)]

    return [
        contract
        if isinstance(contract, DatasetContract) or contract.partitioning is None
        else contract.model_copy(update={"partitioning": partitions_of(contract)})
        for contract in contracts
    ]


_TIME_FIELDS = ("granularity", "start", "end", "timezone")


def _model_partitions(model: ModelContract, partitioned: list, fail) -> Partitioning | None:
    declared = model.partitioning
    if declared is None:
        return None
    if not partitioned:
        if declared.start is None:
            raise fail(model, "partitioning.start", "required when no input is partitioned")
        return Partitioning(
            column=declared.column,
            granularity=declared.granularity or "day",
            start=declared.start,
            end=declared.end,
            timezone=declared.timezone or "UTC",
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
    return Partitioning(column=declared.column, **{field: getattr(first, field) for field in _TIME_FIELDS})


def load_contracts(*directories: Path) -> list[Contract]:
    paths = [path for directory in directories for path in sorted(directory.glob("*.yaml"))]
    contracts = [load_contract(path) for path in paths]
    refuse_duplicate_tables(contracts)
    return resolve_partitions(contracts, paths)
