"""The quality part of a contract: data rules, audit tolerance and the landing file policy.

Kept apart from `contract_model.py` so the rules can grow without touching the contract spine;
`checks/` turns these models into pandera schemas and asset checks.
"""

import datetime as dt
import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from checks.custom import check_reference

Severity = Literal["error", "warn"]
_CHECK_NAME = re.compile(r"[^A-Za-z0-9_]+")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Rule(_Strict):
    name: str | None = Field(default=None, description="asset check name; derived from the rule when absent")
    severity: Severity = "error"
    description: str = ""

    @property
    def columns_checked(self) -> list[str]:
        return []

    @property
    def check_name(self) -> str:
        if self.name:
            return self.name
        return _CHECK_NAME.sub("_", "__".join([self.rule, *self.columns_checked]))


class NotNullRule(_Rule):
    rule: Literal["not_null"]
    columns: list[str] = Field(min_length=1)

    @property
    def columns_checked(self) -> list[str]:
        return self.columns


class UniqueRule(_Rule):
    """One row per value of `columns` (a compound key when there are several)."""

    rule: Literal["unique"]
    columns: list[str] = Field(min_length=1)

    @property
    def columns_checked(self) -> list[str]:
        return self.columns


class _Bounded(_Rule):
    min: Any = None
    max: Any = None

    @model_validator(mode="after")
    def _a_bound(self) -> Any:
        if self.min is None and self.max is None:
            raise ValueError("give `min`, `max` or both")
        low, high = self.min, self.max
        if low is not None and high is not None and low > high:
            raise ValueError(f"min {low} is greater than max {high}")
        return self


class RangeRule(_Bounded):
    """Inclusive numeric bounds; nulls pass (`not_null` is its own rule)."""

    rule: Literal["range"]
    column: str
    min: float | None = None
    max: float | None = None

    @property
    def columns_checked(self) -> list[str]:
        return [self.column]


class AllowedValuesRule(_Rule):
    rule: Literal["allowed_values"]
    column: str
    values: list[Any] = Field(min_length=1)

    @property
    def columns_checked(self) -> list[str]:
        return [self.column]


class RegexRule(_Rule):
    """The value must match the pattern from its first character (anchor the end with `$`)."""

    rule: Literal["regex"]
    column: str
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @property
    def columns_checked(self) -> list[str]:
        return [self.column]


class StringLengthRule(_Bounded):
    rule: Literal["string_length"]
    column: str
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @property
    def columns_checked(self) -> list[str]:
        return [self.column]


class DateBoundsRule(_Bounded):
    """Inclusive date bounds on a date or timestamp column."""

    rule: Literal["date_bounds"]
    column: str
    min: dt.date | None = None
    max: dt.date | None = None

    @property
    def columns_checked(self) -> list[str]:
        return [self.column]


class RowCountRule(_Bounded):
    """Rows per partition of the materialised window (the whole table when unpartitioned)."""

    rule: Literal["row_count"]
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


class ReferencesRule(_Rule):
    """Referential integrity: every non-null key in `columns` exists in `table` (read from Iceberg)."""

    rule: Literal["references"]
    columns: list[str] = Field(min_length=1)
    table: str = Field(pattern=r"^[a-z_]+\.[a-z][a-z0-9_]*$", description="`layer.table`")
    to: list[str] = Field(default_factory=list, description="columns of `table`; the same names when empty")

    @model_validator(mode="after")
    def _same_arity(self) -> "ReferencesRule":
        if self.to and len(self.to) != len(self.columns):
            raise ValueError(f"`to` names {len(self.to)} columns for {len(self.columns)} in `columns`")
        return self

    @property
    def target_columns(self) -> list[str]:
        return self.to or self.columns

    @property
    def columns_checked(self) -> list[str]:
        return self.columns


class CustomRule(_Rule):
    """A check written in Python, named by `package.module:function` (see `checks/custom.py`)."""

    rule: Literal["custom"]
    # checked when the contract loads, without importing the module
    check: Annotated[str, AfterValidator(check_reference)] = Field(
        description="`package.module:function` returning a Narwhals expression true for passing rows"
    )
    columns: list[str] = Field(default_factory=list, description="columns the check reads (shown in samples)")
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def check_name(self) -> str:
        return self.name or self.check.partition(":")[2]

    @property
    def columns_checked(self) -> list[str]:
        return self.columns


def _rule_kind(value: Any) -> str | None:
    return value.get("rule") if isinstance(value, dict) else getattr(value, "rule", None)


_RULES = (
    NotNullRule,
    UniqueRule,
    RangeRule,
    AllowedValuesRule,
    RegexRule,
    StringLengthRule,
    DateBoundsRule,
    RowCountRule,
    ReferencesRule,
    CustomRule,
)
_TAGGED = tuple(Annotated[model, Tag(model.model_fields["rule"].annotation.__args__[0])] for model in _RULES)
Rule = Annotated[Union[_TAGGED], Discriminator(_rule_kind)]  # noqa: UP007 - a runtime tuple of types


class Tolerance(_Strict):
    """How far two counts may differ and still reconcile: the larger of `rows` and `ratio` x expected."""

    rows: int = Field(default=0, ge=0)
    ratio: float = Field(default=0.0, ge=0.0, le=1.0)

    def allowed(self, expected: int) -> int:
        return max(self.rows, int(self.ratio * expected))


class Quality(_Strict):
    rules: list[Rule] = Field(default_factory=list)
    # Validate in the asset body and commit only when no error rule fails, so readers never see
    # bad data. Off: commit first, then check (blocking still stops downstream assets).
    validate_before_commit: bool = True
    audit_tolerance: Tolerance = Field(default_factory=Tolerance)
    sample_rows: int = Field(default=5, ge=0, le=100, description="failing rows shown per rule")

    @model_validator(mode="after")
    def _unique_names(self) -> "Quality":
        names = [rule.check_name for rule in self.rules]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"rules: check names {repeated} repeat; give the rules distinct `name`s")
        return self

    def columns(self) -> set[str]:
        return {column for rule in self.rules for column in rule.columns_checked}


class FileChecks(_Strict):
    """What landing does with a file that is not exactly what the contract describes.

    `policy: reject_file` fails the landing materialisation naming the file and the problem;
    `quarantine_rows` loads the file and flags rows with the wrong number of fields, which raw
    then moves to its rejects table. Problems no row can carry (encoding, header, unclosed quotes,
    blank lines, empty files) always reject the file. Files of one dataset may drift apart
    (`extra_columns`, `missing_optional`, `column_order`): columns are matched by name, and the
    message names the file and the columns.
    """

    policy: Literal["reject_file", "quarantine_rows"] = "reject_file"
    column_order: Literal["any", "contract"] = Field(
        default="any", description="`contract`: a reordered header rejects the file"
    )
    extra_columns: Literal["reject_file", "ignore"] = Field(
        default="reject_file",
        description="a column (CSV header, Parquet schema, JSON field) the contract does not declare",
    )
    missing_optional: Literal["reject_file", "null"] = Field(
        default="reject_file",
        description="`null`: a file without a nullable column lands it as null (a required one rejects)",
    )
    byte_order_mark: Literal["strip", "reject"] = "strip"
    header_only: Literal["accept", "reject"] = "accept"
    file_names: Literal["skip", "strict", "reject_file"] = Field(
        default="skip",
        description=(
            "a file in the glob no partition can own (no valid date in its name, a date outside the "
            "partitions, no row inside them): `skip` records it `unassigned` in the file ledger, reports "
            "it once and loads the other files; `strict` (or its older name `reject_file`) fails the run"
        ),
    )
    duplicates: Literal["skip", "load"] = Field(
        default="skip",
        description=(
            "a file with the same bytes as a loaded file under another key: `skip` records it "
            "`duplicate` in the file ledger and does not load it again; `load` loads it like any file"
        ),
    )
