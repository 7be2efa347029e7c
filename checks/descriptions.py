"""Rules in words: what a check says it tests, in the UI and in its results.

Kept apart from `rules.py`, which compiles rules with Narwhals: the asset check specs need the
words when the code location loads, and loading must not import the data stack.
"""

from typing import Any

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


def _bounds(subject: str, low: Any, high: Any) -> str:
    def show(value: Any) -> str:
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)

    if low is not None and high is not None:
        return f"{subject} between {show(low)} and {show(high)}"
    return f"{subject} >= {show(low)}" if low is not None else f"{subject} <= {show(high)}"


def describe(rule: Rule) -> str:
    if rule.description:
        return rule.description
    text = {
        NotNullRule: lambda r: f"{', '.join(r.columns)} must not be null",
        UniqueRule: lambda r: f"one row per ({', '.join(r.columns)})",
        RangeRule: lambda r: _bounds(r.column, r.min, r.max),
        AllowedValuesRule: lambda r: f"{r.column} in {r.values}",
        RegexRule: lambda r: f"{r.column} matches {r.pattern!r}",
        StringLengthRule: lambda r: _bounds(f"length of {r.column}", r.min, r.max),
        DateBoundsRule: lambda r: _bounds(r.column, r.min, r.max),
        RowCountRule: lambda r: _bounds("rows per partition", r.min, r.max),
        ReferencesRule: lambda r: (
            f"({', '.join(r.columns)}) exists in {r.table} ({', '.join(r.target_columns)})"
        ),
        CustomRule: lambda r: f"custom check {r.check}",
    }[type(rule)]
    return text(rule)
