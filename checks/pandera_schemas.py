"""Compiled rules -> pandera schemas for pandas and PySpark, validated lazily, failures per rule.

Every rule is a dataframe-level pandera `Check` named after the rule, so one lazy validation
collects all failures, and pandera also reports a column a rule needs but the frame lacks. The
engine follows the frame: pandas goes to `pandera.pandas`, a Spark DataFrame to `pandera.pyspark`.
Failing rows are then counted and sampled with the rule's own predicate, the same way on both.
"""

import datetime as dt
import decimal
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import narwhals as nw
import pandas as pd

from checks.rules import CompiledRule, FrameVerdict
from resources.spark.compute import is_spark_frame

SCHEMA_NAME = "contract"


@dataclass(frozen=True)
class RuleOutcome:
    rule: CompiledRule
    passed: bool
    rows_checked: int
    failing_rows: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""


def _failing(rule: CompiledRule) -> nw.Expr:
    # a predicate that comes out null (a custom check on null inputs) counts as a failure
    return ~rule.passes().fill_null(False)


def _pandas_rows_pass(rule: CompiledRule, frame: pd.DataFrame) -> pd.Series:
    result = nw.from_native(frame, eager_only=True).select(rule.passes().fill_null(False).alias("ok"))["ok"]
    return pd.Series(result.to_numpy().astype(bool), index=frame.index)


class SparkTally:
    """Failing-row counts of every row rule, computed in one Spark job the first time a check asks.

    Asking per rule would scan the frame once per rule; the checks pandera runs all read one
    aggregation of one pass instead (with the row count), which keeps validation a single job.
    """

    def __init__(self, rules: list[CompiledRule]):
        self.rules = [rule for rule in rules if rule.passes]
        self._counts: dict[str, int] | None = None
        self._frame: Any = None
        self._verdicts: dict[tuple[str, int], FrameVerdict] = {}

    def counts(self, frame: Any) -> dict[str, int]:
        if self._counts is None or self._frame is not frame:
            present = set(frame.columns)
            runnable = [rule for rule in self.rules if set(rule.columns) <= present]
            flags = [
                _failing(rule).cast(nw.Int64).alias(f"__rule_{index}") for index, rule in enumerate(runnable)
            ]
            sums = [
                nw.col(f"__rule_{index}").sum().alias(f"__rule_{index}") for index in range(len(runnable))
            ]
            tally = (
                nw.from_native(frame)
                .with_columns(*flags or [nw.lit(0).alias("__rule_none")])
                .select(nw.len().alias("__rows"), *sums)
                .collect()
                .rows(named=True)[0]
            )
            self._counts = {rule.name: int(tally[f"__rule_{i}"] or 0) for i, rule in enumerate(runnable)}
            self._counts["__rows"] = int(tally["__rows"])
            self._frame = frame
        return self._counts

    def passes(self, rule: CompiledRule, frame: Any) -> bool:
        # a rule whose columns are missing is not counted: pandera reports the missing column
        return self.counts(frame).get(rule.name, 1) == 0

    def verdict(self, rule: CompiledRule, frame: Any) -> FrameVerdict:
        """A frame rule's verdict, computed once per frame (pandera asks, then the outcome)."""
        key = (rule.name, id(frame))
        if key not in self._verdicts:
            self._verdicts[key] = rule.frame_check(frame)
        return self._verdicts[key]


PANDERA_FAILURE_CASES = 5


def _check_error(rule: CompiledRule) -> str:
    # Both backends name a failed check by its error text (the `check` of pandas' failure cases and
    # of the PySpark errors), so the text leads with the rule's name to map back to one rule.
    return f"{rule.name}: {rule.description}"


def pandas_schema(rules: list[CompiledRule]):
    import pandera.pandas as pap

    checks = [
        pap.Check(
            (lambda frame, rule=rule: _pandas_rows_pass(rule, frame))
            if rule.passes
            else (lambda frame, rule=rule: rule.frame_check(frame).passed),
            name=rule.name,
            error=_check_error(rule),
            ignore_na=False,
            # counts and samples are taken separately; pandera reshaping every failing row of a
            # warn rule took 8.7 s of 9.6 s on a 94k-row partition
            n_failure_cases=PANDERA_FAILURE_CASES,
        )
        for rule in rules
    ]
    columns = {name: pap.Column(nullable=True, required=True) for rule in rules for name in rule.columns}
    return pap.DataFrameSchema(columns, checks=checks, name=SCHEMA_NAME)


def pyspark_schema(rules: list[CompiledRule], tally: SparkTally | None = None):
    import pandera.pyspark as pas

    tally = tally or SparkTally(rules)
    checks = [
        pas.Check(
            (lambda frame, rule=rule: tally.passes(rule, frame))
            if rule.passes
            else (lambda frame, rule=rule: tally.verdict(rule, frame).passed),
            name=rule.name,
            error=_check_error(rule),
        )
        for rule in rules
    ]
    columns = {name: pas.Column(nullable=True) for rule in rules for name in rule.columns}
    return pas.DataFrameSchema(columns, checks=checks, name=SCHEMA_NAME)


def _pandas_failures(frame: pd.DataFrame, rules: list[CompiledRule]) -> dict[str, str]:
    """Rule name -> pandera's name for the failed check, for each rule that failed."""
    from pandera.errors import SchemaErrors

    try:
        pandas_schema(rules).validate(frame, lazy=True)
    except SchemaErrors as errors:
        return _by_rule(rules, errors.failure_cases["check"].unique())
    return {}


def _pyspark_failures(frame: Any, rules: list[CompiledRule], tally: SparkTally) -> dict[str, str]:
    from pandera.config import ValidationDepth, config_context

    # pandera's PySpark backend checks only the schema unless told to look at the data
    with config_context(validation_depth=ValidationDepth.SCHEMA_AND_DATA):
        validated = pyspark_schema(rules, tally).validate(frame, lazy=True)
    # it keeps no failure cases: its errors, by category and reason, name each failed check
    reported = [
        error.get("check")
        for category in validated.pandera.errors.values()
        for errors in category.values()
        for error in errors
    ]
    return _by_rule(rules, reported)


def _by_rule(rules: list[CompiledRule], reported: Iterable[Any]) -> dict[str, str]:
    """Rule name -> the failed check as pandera reports it. Schema-level failures (a missing column,
    pandera's `column_in_dataframe`) are no rule's: they surface through the checks of the rules
    that read the column."""
    by_check = {_check_error(rule): rule.name for rule in rules}
    return {by_check[check]: check for check in reported if check in by_check}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime | dt.time | decimal.Decimal):
        return str(value)
    if isinstance(value, float) and value != value:
        return None
    return value


def _failing_sample(native: Any, rule: CompiledRule, show: list[str], limit: int) -> list[dict]:
    if not limit:
        return []
    head = nw.from_native(native).filter(_failing(rule)).select(show).head(limit)
    head = head.collect() if isinstance(head, nw.LazyFrame) else head
    return [{key: _jsonable(value) for key, value in row.items()} for row in head.rows(named=True)]


def _spark_failing_samples(
    native: Any, wanted: list[tuple[CompiledRule, list[str]]], limit: int
) -> dict[str, list[dict]]:
    """The first `limit` failing rows of each rule in `wanted` (with the columns it shows), in one
    Spark job for all of them: each failing row is repeated once per rule it fails, and numbered
    within its rule in the order of the columns shown."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not limit or not wanted:
        return {}
    columns = list(dict.fromkeys(name for _, show in wanted for name in show))
    flags = [f"__sample_rule_{index}" for index in range(len(wanted))]
    flagged = (
        nw.from_native(native)
        .select(
            *(nw.col(name) for name in columns),
            *(_failing(rule).alias(flag) for (rule, _), flag in zip(wanted, flags, strict=True)),
        )
        .to_native()
    )
    failed = F.array_compact(
        F.array(*(F.when(F.col(flag), F.lit(index)) for index, flag in enumerate(flags)))
    )
    ranked = (
        flagged.select(F.explode(failed).alias("__sample_rule"), *columns)
        .withColumn(
            "__sample_rank",
            F.row_number().over(Window.partitionBy("__sample_rule").orderBy(*(F.col(n) for n in columns))),
        )
        .filter(F.col("__sample_rank") <= limit)
        .orderBy("__sample_rule", "__sample_rank")
    )
    samples: dict[str, list[dict]] = {rule.name: [] for rule, _ in wanted}
    for row in ranked.toArrow().to_pylist():
        rule, show = wanted[row["__sample_rule"]]
        samples[rule.name].append({key: _jsonable(row[key]) for key in show})
    return samples


def _pandas_failure_counts(native: pd.DataFrame, rules: list[CompiledRule]) -> dict[str, int]:
    frame = nw.from_native(native, eager_only=True)
    present = set(native.columns)
    return {
        rule.name: int(frame.select(_failing(rule).cast(nw.Int64).sum()).item())
        for rule in rules
        if rule.passes and set(rule.columns) <= present
    }


def _shown(rule: CompiledRule, identity: list[str], present: set[str]) -> list[str]:
    """What a failing row's sample shows: its identity, then the values the rule read."""
    return list(dict.fromkeys(name for name in [*identity, *rule.columns] if name in present))


def validate_frame(
    native: Any, rules: list[CompiledRule], *, identity: list[str], sample_rows: int = 5
) -> list[RuleOutcome]:
    """Validate a pandas or Spark frame against every rule at once; one outcome per rule."""
    if not rules:
        return []
    if is_spark_frame(native):
        tally = SparkTally(rules)
        failures = _pyspark_failures(native, rules, tally)
        counts = tally.counts(native)
        rows = counts["__rows"]
    else:
        failures = _pandas_failures(native, rules)
        counts = _pandas_failure_counts(native, [rule for rule in rules if rule.name in failures])
        rows = len(native)
    present = set(native.columns)
    spark_samples = None
    if is_spark_frame(native):
        spark_samples = _spark_failing_samples(
            native,
            [
                (rule, _shown(rule, identity, present))
                for rule in rules
                if rule.name in failures and rule.passes and set(rule.columns) <= present
            ],
            sample_rows,
        )
    outcomes = []
    for rule in rules:
        missing = [name for name in rule.columns if name not in present]
        if rule.name not in failures and not missing:
            outcomes.append(RuleOutcome(rule, passed=True, rows_checked=rows))
            continue
        if missing:
            outcomes.append(
                RuleOutcome(rule, False, rows, rows, message=f"columns {missing} are missing from the table")
            )
        elif rule.frame_check is not None:
            verdict = tally.verdict(rule, native) if spark_samples is not None else rule.frame_check(native)
            failing = sum(verdict.failing_groups.values())
            sample = [{"partition": key, "rows": count} for key, count in verdict.failing_groups.items()]
            outcomes.append(
                RuleOutcome(rule, False, rows, failing, sample[:sample_rows], message=verdict.message)
            )
        else:
            if spark_samples is not None:
                sample = spark_samples.get(rule.name, [])
            else:
                sample = _failing_sample(native, rule, _shown(rule, identity, present), sample_rows)
            outcomes.append(
                RuleOutcome(rule, False, rows, counts[rule.name], sample, message=failures[rule.name])
            )
    return outcomes
