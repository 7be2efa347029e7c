"""Staging steps and model steps, written once with Narwhals.

Every function takes and returns a Narwhals frame: an eager pandas frame for small partitions, a
lazy PySpark frame for large ones. Only masking needs a native function per engine.
"""

import hashlib
from dataclasses import dataclass, field
from typing import Any

import narwhals as nw

from lakehouse_assets.contracts.steps import (
    AggregateStep,
    CastStep,
    DeduplicateStep,
    DeriveDateStep,
    Filter,
    FilterStep,
    LookupStep,
    MaskStep,
    ModelStep,
    RenameStep,
    StagingStep,
    TrimStep,
)

NARWHALS_TYPES = {
    "string": nw.String(),
    "int": nw.Int32(),
    "long": nw.Int64(),
    "double": nw.Float64(),
    "boolean": nw.Boolean(),
    "date": nw.Date(),
    "timestamp": nw.Datetime("us"),
    "timestamptz": nw.Datetime("us", "UTC"),
}


Frame = nw.DataFrame | nw.LazyFrame
LINEAGE_TIE_BREAKERS = ("_source_file", "_source_line")


def row_count(frame: Frame) -> int:
    if isinstance(frame, nw.DataFrame):
        return len(frame)
    return frame.select(nw.len()).collect().item()


@dataclass
class StepCounts:
    """Rows removed by named rules, so the audits can reconcile layer counts; and the input's
    rows when a step counted them (on Spark every count is a job, so the audit reuses it)."""

    removed: dict[str, int] = field(default_factory=dict)
    input_rows: int | None = None

    def add(self, rule: str, rows: int) -> None:
        self.removed[rule] = self.removed.get(rule, 0) + rows


class _Rows:
    """The current frame's rows while the steps run, counted at most once between two steps that
    remove rows: the others (trim, rename, cast, derive, mask, lookup) keep every row."""

    def __init__(self, counts: StepCounts):
        self.counts, self.known, self.changed = counts, None, False

    def before(self, frame: Frame) -> int:
        if self.known is None:
            self.known = row_count(frame)
            if not self.changed:
                self.counts.input_rows = self.known
        return self.known

    def after(self, frame: Frame) -> int:
        self.changed, self.known = True, row_count(frame)
        return self.known

    def unknown(self) -> None:
        self.changed, self.known = True, None


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def apply_staging_steps(frame: Frame, steps: list[StagingStep]) -> tuple[Frame, StepCounts]:
    counts = StepCounts()
    rows = _Rows(counts)
    for step in steps:
        if isinstance(step, TrimStep):
            frame = frame.with_columns(nw.col(name).str.strip_chars() for name in step.trim)
        elif isinstance(step, RenameStep):
            frame = frame.rename(step.rename)
        elif isinstance(step, CastStep):
            frame = frame.with_columns(
                nw.col(name).cast(NARWHALS_TYPES[type_]) for name, type_ in step.cast.items()
            )
        elif isinstance(step, DeriveDateStep):
            spec = step.derive_date
            # yyyymmdd as one integer parses the same way on every backend, padding included
            yyyymmdd = nw.col(spec.year).cast(nw.Int64) * 10000 + nw.col(spec.month) * 100 + nw.col(spec.day)
            frame = frame.with_columns(yyyymmdd.cast(nw.String).str.to_date("%Y%m%d").alias(spec.column))
        elif isinstance(step, DeduplicateStep):
            before = rows.before(frame)
            frame = deduplicate_latest(frame, step.deduplicate.keys, step.deduplicate.latest_by)
            counts.add("duplicates", before - rows.after(frame))
        elif isinstance(step, MaskStep):
            frame = mask_columns(frame, step.mask.columns, step.mask.method)
    return frame, counts


def deduplicate_latest(frame: Frame, keys: list[str], latest_by: str) -> Frame:
    """One row per key: the greatest `latest_by`; ties go to the last file and line, on every engine."""
    order = [latest_by, *(name for name in LINEAGE_TIE_BREAKERS if name in frame.columns)]
    if isinstance(frame, nw.DataFrame):
        # Eager frames: one sort beats grouped window maxima (pandas' Arrow-backed groupby
        # transforms took 8 s for 94k rows; the sort takes well under one).
        return frame.sort(order, descending=True, nulls_last=True).unique(
            subset=keys, keep="first", maintain_order=True
        )
    for column in order:
        greatest = nw.col(column).max().over(*keys)
        # a key whose values are all null keeps its rows for the next tie-breaker, as the sort does
        frame = frame.filter((nw.col(column) == greatest) | greatest.is_null())
    return frame.unique(subset=keys, keep="any")


def mask_columns(frame: Frame, columns: list[str], method: str) -> Frame:
    """Redact, or replace by the SHA-256 hex digest of the UTF-8 text (the same digest on every engine)."""
    if method == "redact":
        return frame.with_columns(
            nw.when(nw.col(name).is_null()).then(nw.lit(None)).otherwise(nw.lit("***")).alias(name)
            for name in columns
        )
    native = frame.with_columns(nw.col(name).cast(nw.String) for name in columns).to_native()
    # Narwhals has no hash function: each engine's own SHA-256, which agree byte for byte.
    if frame.implementation.is_spark_like():
        from pyspark.sql import functions as F

        for name in columns:
            native = native.withColumn(name, F.sha2(F.col(name), 256))
    else:
        native = native.assign(**{name: native[name].map(_sha256, na_action="ignore") for name in columns})
    return nw.from_native(native)


def lookup(frame: Frame, reference: Frame, match: dict[str, str], columns: dict[str, str]) -> Frame:
    """Left join that never drops or multiplies a row: the reference side is made unique on its keys."""
    join_keys = {right: f"__lookup_key_{index}" for index, right in enumerate(match.values())}
    right = reference.select(
        *(nw.col(right).alias(alias) for right, alias in join_keys.items()),
        *(nw.col(source).alias(target) for source, target in columns.items()),
    ).unique(subset=list(join_keys.values()), keep="any")
    joined = frame.join(right, how="left", left_on=list(match), right_on=list(join_keys.values()))
    return joined.drop(*(alias for alias in join_keys.values() if alias in joined.columns))


_COMPARISONS = {
    "eq": lambda column, value: column == value,
    "ne": lambda column, value: column != value,
    "gt": lambda column, value: column > value,
    "ge": lambda column, value: column >= value,
    "lt": lambda column, value: column < value,
    "le": lambda column, value: column <= value,
    "in": lambda column, value: column.is_in(value),
    "is_null": lambda column, value: column.is_null(),
    "not_null": lambda column, value: ~column.is_null(),
}


def keeps(condition: Filter) -> nw.Expr:
    """The rows a `filter` keeps, as an expression every engine evaluates (model steps, extracts)."""
    return _COMPARISONS[condition.op](nw.col(condition.column), condition.value)


def aggregate(frame: Frame, by: list[str], metrics: dict[str, Any]) -> Frame:
    # Only simple aggregations inside group_by (they map to native ones on every backend); the
    # null count is derived afterwards from the row count and the non-null count.
    simple, derived = [], []
    for name, metric in metrics.items():
        if metric.fn == "count":
            simple.append(nw.len().alias(name))
        elif metric.fn == "count_not_null":
            simple.append(nw.col(metric.column).count().alias(name))
        elif metric.fn == "count_null":
            simple += [nw.len().alias(f"__rows_{name}"), nw.col(metric.column).count().alias(f"__set_{name}")]
            derived.append((nw.col(f"__rows_{name}") - nw.col(f"__set_{name}")).alias(name))
        else:
            simple.append(getattr(nw.col(metric.column), metric.fn)().alias(name))
    # Integer sums widen to 64 bits on every engine (pandas would keep int32 and could overflow).
    schema = frame.collect_schema()
    widened = [
        name for name, metric in metrics.items() if metric.fn == "sum" and schema[metric.column].is_integer()
    ]
    result = frame.group_by(*by).agg(*simple)
    if derived:
        result = result.with_columns(*derived)
    counts = [name for name, metric in metrics.items() if metric.fn.startswith("count")] + widened
    return result.with_columns(nw.col(name).cast(nw.Int64) for name in counts).select(*by, *metrics).sort(*by)


def apply_model_steps(
    frame: Frame, inputs: dict[str, Frame], steps: list[ModelStep]
) -> tuple[Frame, StepCounts]:
    counts = StepCounts()
    rows = _Rows(counts)
    for step in steps:
        if isinstance(step, LookupStep):
            spec = step.lookup
            frame = lookup(frame, inputs[spec.input], spec.match, spec.columns)
        elif isinstance(step, FilterStep):
            spec = step.filter
            before = rows.before(frame)
            frame = frame.filter(keeps(spec))
            counts.add(f"filter {spec.column} {spec.op}", before - rows.after(frame))
        elif isinstance(step, AggregateStep):
            frame = aggregate(frame, step.aggregate.by, step.aggregate.metrics)
            rows.unknown()
    return frame, counts
