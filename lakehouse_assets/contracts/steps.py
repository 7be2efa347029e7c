"""The declarative steps of a contract: staging steps of a dataset, lookup/filter/aggregate of a model."""

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Discriminator, Field, Tag, model_validator

from lakehouse_assets.contracts.base import ColumnType, StrictModel


class TrimStep(StrictModel):
    trim: list[str]


class RenameStep(StrictModel):
    rename: dict[str, str]


class CastStep(StrictModel):
    cast: dict[str, ColumnType]


class DeriveDate(StrictModel):
    column: str
    year: str
    month: str
    day: str


class DeriveDateStep(StrictModel):
    derive_date: DeriveDate


class Deduplicate(StrictModel):
    keys: list[str] = Field(min_length=1)
    latest_by: str


class DeduplicateStep(StrictModel):
    deduplicate: Deduplicate


class Mask(StrictModel):
    columns: list[str] = Field(min_length=1)
    method: Literal["sha256", "redact"] = "sha256"


class MaskStep(StrictModel):
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


class Lookup(StrictModel):
    input: str
    match: dict[str, str] = Field(min_length=1, description="column -> lookup column")
    columns: dict[str, str] = Field(min_length=1, description="lookup column -> new column name")


class LookupStep(StrictModel):
    lookup: Lookup


class Filter(StrictModel):
    column: str
    op: Literal["eq", "ne", "gt", "ge", "lt", "le", "in", "is_null", "not_null"]
    value: Any = None


class FilterStep(StrictModel):
    filter: Filter


class Metric(StrictModel):
    fn: Literal["count", "count_null", "count_not_null", "sum", "mean", "min", "max"]
    column: str | None = None

    @model_validator(mode="after")
    def _column_needed(self) -> "Metric":
        if self.fn != "count" and self.column is None:
            raise ValueError(f"metric {self.fn!r} needs a column")
        return self


class Aggregate(StrictModel):
    by: list[str] = Field(min_length=1)
    metrics: dict[str, Metric] = Field(min_length=1)


class AggregateStep(StrictModel):
    aggregate: Aggregate


ModelStep = _steps(LookupStep, FilterStep, AggregateStep)
