"""Contract rules compiled to engine-neutral predicates.

Each rule becomes a Narwhals expression that is true for the rows that pass. The same expression
backs the pandera check of either engine (`checks/pandera_schemas.py`) and finds the failing rows
to count and sample, so a rule means exactly the same thing on pandas and on PySpark.
Nulls pass every rule except `not_null`, so each rule says one thing.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import narwhals as nw
import pyarrow as pa

from checks import custom
from checks.descriptions import describe
from checks.rule_models import (
    AllowedValuesRule,
    CustomRule,
    DateBoundsRule,
    NotNullRule,
    RangeRule,
    ReferencesRule,
    RegexRule,
    RowCountRule,
    Rule,
    StringLengthRule,
    UniqueRule,
)

# (table identifier, its columns) -> those columns of the whole table
ReferenceReader = Callable[[str, list[str]], pa.Table]
_KEY_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready to run: `passes` marks passing rows; `frame_check` judges the frame as a whole."""

    name: str
    severity: str
    description: str
    columns: list[str]
    passes: Callable[[], nw.Expr] | None = None
    frame_check: Callable[[Any], "FrameVerdict"] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        return self.severity == "error"


@dataclass(frozen=True)
class FrameVerdict:
    passed: bool
    failing_groups: dict[str, int]
    message: str


def _either_null(columns: list[str]) -> nw.Expr:
    expression = nw.col(columns[0]).is_null()
    for name in columns[1:]:
        expression = expression | nw.col(name).is_null()
    return expression


def _bounded(expression: nw.Expr, low: Any, high: Any) -> nw.Expr:
    if low is not None and high is not None:
        return (expression >= low) & (expression <= high)
    return expression >= low if low is not None else expression <= high


def _composite_key(columns: list[str]) -> nw.Expr:
    if len(columns) == 1:
        return nw.col(columns[0])
    return nw.concat_str([nw.col(name).cast(nw.String) for name in columns], separator=_KEY_SEPARATOR)


def _reference_keys(table: pa.Table, columns: list[str]) -> list[Any]:
    keys = table.select(columns).group_by(columns).aggregate([])
    if len(columns) == 1:
        return [value for value in keys.column(0).to_pylist() if value is not None]
    rows = zip(*(keys.column(name).to_pylist() for name in columns), strict=True)
    return [_KEY_SEPARATOR.join(str(value) for value in row) for row in rows if None not in row]


def _row_count_check(rule: RowCountRule, partition_column: str | None) -> Callable[[Any], FrameVerdict]:
    def check(native: Any) -> FrameVerdict:
        frame = nw.from_native(native)
        if partition_column is None:
            counts = frame.select(nw.len().alias("rows")).lazy().collect()
            groups = {"whole table": int(counts["rows"][0])}
        else:
            counts = frame.group_by(partition_column).agg(nw.len().alias("rows")).lazy().collect()
            groups = {
                str(key): int(rows)
                for key, rows in zip(
                    counts[partition_column].to_list(), counts["rows"].to_list(), strict=True
                )
            }
        failing = {
            key: rows
            for key, rows in groups.items()
            if (rule.min is not None and rows < rule.min) or (rule.max is not None and rows > rule.max)
        }
        if not groups and rule.min:
            failing = {"(no rows)": 0}
        return FrameVerdict(
            passed=not failing,
            failing_groups=failing,
            message=f"partitions outside the bounds (rows): {failing}" if failing else "",
        )

    return check


def _passing_rows(rule: Rule, reference_keys: list[Any]) -> nw.Expr:
    if isinstance(rule, NotNullRule):
        return ~_either_null(rule.columns)
    if isinstance(rule, UniqueRule):
        return nw.len().over(*rule.columns) == 1
    if isinstance(rule, ReferencesRule):
        return _either_null(rule.columns) | _composite_key(rule.columns).is_in(reference_keys)
    if isinstance(rule, CustomRule):
        return custom.resolve(rule.check)(**rule.options)
    column = nw.col(rule.column)
    if isinstance(rule, RangeRule):
        test = _bounded(column, rule.min, rule.max)
    elif isinstance(rule, DateBoundsRule):
        # as dates, so the bounds hold for date and timestamp columns alike
        test = _bounded(column.cast(nw.Date), rule.min, rule.max)
    elif isinstance(rule, AllowedValuesRule):
        test = column.is_in(rule.values)
    elif isinstance(rule, RegexRule):
        test = column.str.contains(rule.pattern if rule.pattern.startswith("^") else f"^(?:{rule.pattern})")
    elif isinstance(rule, StringLengthRule):
        test = _bounded(column.str.len_chars(), rule.min, rule.max)
    else:  # pragma: no cover - the contract's discriminator admits only the kinds above
        raise TypeError(f"unknown rule {rule!r}")
    return column.is_null() | test


def compile_rule(
    rule: Rule, *, partition_column: str | None = None, read_reference: ReferenceReader | None = None
) -> CompiledRule:
    """The runnable form of one rule; references are read now, once per validation."""
    base = {
        "name": rule.check_name,
        "severity": rule.severity,
        "description": describe(rule),
        "columns": rule.columns_checked,
    }
    if isinstance(rule, RowCountRule):
        return CompiledRule(**base, frame_check=_row_count_check(rule, partition_column))
    details: dict[str, Any] = {}
    keys: list[Any] = []
    if isinstance(rule, ReferencesRule):
        if read_reference is None:
            raise ValueError(f"rule {rule.check_name}: referential checks need a reader for {rule.table}")
        keys = _reference_keys(read_reference(rule.table, rule.target_columns), rule.target_columns)
        details = {"reference_table": rule.table, "reference_keys": len(keys)}
    if isinstance(rule, CustomRule):
        custom.resolve(rule.check)  # imported now, so a broken module fails before the validation
    # Expressions are built per use: a Narwhals expression is cheap and holds no frame.
    passes = functools.partial(_passing_rows, rule, keys)
    return CompiledRule(**base, passes=passes, details=details)
