"""Contract rules as Dagster asset checks, and the write-audit-publish flow that runs them.

Every rule is one `AssetCheckSpec` on the table it checks; `error` rules are blocking. The asset
body validates the frame it is about to write (exactly the materialised partition window) and,
with `quality.validate_before_commit` (the default), yields the check results *before* its output:
when an error rule fails the output is never yielded, so the IO manager never commits and readers
keep the last good snapshot, while Dagster fails the step on the failed blocking check and skips
everything downstream. See "Quality" in the README.

The specs are built when the code location loads; the validation runs in a step. So the functions
that validate import the data stack (pandera, Narwhals, pyiceberg) themselves, when they run.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dagster as dg

from checks.descriptions import describe
from checks.rule_models import Quality
from io_managers.table_spec import TableSpec
from resources.spark.compute import is_spark_frame

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

    from checks.pandera_schemas import RuleOutcome
    from checks.rules import ReferenceReader

ENGINE_METADATA = "engine"


def rule_check_specs(quality: Quality, asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    specs = []
    for rule in quality.rules:
        deps = [dg.AssetKey(rule.table.split("."))] if getattr(rule, "table", None) else []
        specs.append(
            dg.AssetCheckSpec(
                rule.check_name,
                asset=asset_key,
                description=f"[{rule.severity}] {describe(rule)}",
                blocking=rule.severity == "error",
                additional_deps=deps,
                metadata={"rule": rule.rule, "severity": rule.severity},
            )
        )
    return specs


def catalog_reader(catalog: "Catalog") -> "ReferenceReader":
    def read(identifier: str, columns: list[str]):
        return catalog.load_table(identifier).scan(selected_fields=tuple(columns)).to_arrow()

    return read


def _compile(quality: Quality, partition_column: str | None, reader: "ReferenceReader | None"):
    from pyiceberg.exceptions import NoSuchTableError

    from checks.pandera_schemas import RuleOutcome
    from checks.rules import CompiledRule, compile_rule

    compiled: list[CompiledRule] = []
    broken: list[RuleOutcome] = []
    for rule in quality.rules:
        try:
            compiled.append(compile_rule(rule, partition_column=partition_column, read_reference=reader))
        except NoSuchTableError:
            # A reference table not loaded yet cannot vouch for any key, but it must not hold up
            # the data either (files arrive in any order): the rule warns until the table exists.
            placeholder = CompiledRule(rule.check_name, "warn", f"{rule.table} does not exist yet", [])
            broken.append(
                RuleOutcome(
                    placeholder, passed=False, rows_checked=0, message=f"table {rule.table} does not exist"
                )
            )
    return compiled, broken


def _engine(native: Any) -> str:
    return "pyspark" if is_spark_frame(native) else "pandas"


def _result(
    outcome: "RuleOutcome", asset_key: dg.AssetKey, slice_label: str, engine: str
) -> dg.AssetCheckResult:
    rule = outcome.rule
    metadata: dict[str, Any] = {
        "rule": rule.description,
        "severity": rule.severity,
        "slice": slice_label,
        ENGINE_METADATA: engine,
        "rows_checked": dg.MetadataValue.int(outcome.rows_checked),
        # the same count where Dagster's UI looks for one
        "dagster/row_count": dg.MetadataValue.int(outcome.rows_checked),
        "failing_rows": dg.MetadataValue.int(outcome.failing_rows),
        **rule.details,
    }
    if not outcome.passed:
        metadata["failure"] = outcome.message
        metadata["failing_sample"] = dg.MetadataValue.json(outcome.sample)
    return dg.AssetCheckResult(
        check_name=rule.name,
        asset_key=asset_key,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR if rule.blocking else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=None if outcome.passed else f"{outcome.failing_rows} rows fail: {rule.description}",
    )


def rule_outcomes(
    native: Any,
    quality: Quality,
    *,
    identity: list[str],
    partition_column: str | None = None,
    reader: "ReferenceReader | None" = None,
) -> list["RuleOutcome"]:
    """One lazy pandera validation of the frame; one outcome per rule, in the contract's order."""
    from checks.pandera_schemas import validate_frame

    compiled, broken = _compile(quality, partition_column, reader)
    outcomes = validate_frame(native, compiled, identity=identity, sample_rows=quality.sample_rows) + broken
    order = {rule.check_name: index for index, rule in enumerate(quality.rules)}
    outcomes.sort(key=lambda outcome: order[outcome.rule.name])
    return outcomes


def evaluate_rules(
    native: Any,
    quality: Quality,
    *,
    asset_key: dg.AssetKey,
    identity: list[str],
    partition_column: str | None = None,
    slice_label: str = "whole table",
    catalog: "Catalog | None" = None,
) -> list[dg.AssetCheckResult]:
    """One lazy pandera validation of the frame; one check result per rule."""
    reader = catalog_reader(catalog) if catalog is not None else None
    outcomes = rule_outcomes(
        native, quality, identity=identity, partition_column=partition_column, reader=reader
    )
    engine = _engine(native)
    return [_result(outcome, asset_key, slice_label, engine) for outcome in outcomes]


def outcome_record(outcome: "RuleOutcome") -> dict[str, Any]:
    """A rule's outcome as JSON, as a job outside the Dagster process reports it."""
    rule = outcome.rule
    return {
        "name": rule.name,
        "severity": rule.severity,
        "description": rule.description,
        "details": rule.details,
        "passed": outcome.passed,
        "rows_checked": outcome.rows_checked,
        "failing_rows": outcome.failing_rows,
        "sample": outcome.sample,
        "message": outcome.message,
    }


def reported_results(
    records: list[dict[str, Any]], *, asset_key: dg.AssetKey, slice_label: str, engine: str
) -> list[dg.AssetCheckResult]:
    """The check results of outcomes a job reported (`outcome_record`), as `evaluate_rules` gives them."""
    from checks.pandera_schemas import RuleOutcome
    from checks.rules import CompiledRule

    results = []
    for record in records:
        rule = CompiledRule(
            record["name"], record["severity"], record["description"], [], details=record["details"]
        )
        outcome = RuleOutcome(
            rule,
            passed=record["passed"],
            rows_checked=record["rows_checked"],
            failing_rows=record["failing_rows"],
            sample=record["sample"],
            message=record["message"],
        )
        results.append(_result(outcome, asset_key, slice_label, engine))
    return results


def blocked(results: list[dg.AssetCheckResult]) -> list[str]:
    return [r.check_name for r in results if not r.passed and r.severity == dg.AssetCheckSeverity.ERROR]


def audit_spec(
    name: str, asset_key: dg.AssetKey, description: str, deps: list[dg.AssetKey]
) -> dg.AssetCheckSpec:
    # Audits run after the commit (they count what readers see); blocking keeps downstream
    # assets from building on a table that lost rows.
    return dg.AssetCheckSpec(
        name, asset=asset_key, description=description, blocking=True, additional_deps=deps
    )


@dataclass(frozen=True)
class PublishOutcome:
    """What write-audit-publish decided for one frame: its check results, and whether it is committed."""

    output: dg.Output
    results: list[dg.AssetCheckResult]
    # error rules that failed; before the commit they block it, after it they only fail the step
    failed_error_rules: list[str]
    validated_before_commit: bool
    asset_key: dg.AssetKey
    slice_label: str

    @property
    def blocked(self) -> bool:
        return self.validated_before_commit and bool(self.failed_error_rules)

    def events(self) -> Iterator[dg.AssetCheckResult | dg.Output]:
        """The results and the output in the order the asset body yields them.

        Validated before the commit, the results come first and a blocked frame ends in a
        `dg.Failure` instead of its output: the IO manager is never called, so nothing is committed,
        and the step fails with the rules that blocked it (downstream assets of the run are skipped).
        """
        if not self.validated_before_commit:
            yield self.output
            yield from self.results
            return
        yield from self.results
        if self.blocked:
            raise dg.Failure(
                description=(
                    f"{self.asset_key.to_user_string()} not committed ({self.slice_label}); "
                    f"error rules failed: {', '.join(self.failed_error_rules)}"
                ),
                metadata={"failed_rules": dg.MetadataValue.json(self.failed_error_rules)},
            )
        yield self.output


def write_audit_publish(
    context: dg.AssetExecutionContext,
    native: Any,
    quality: Quality,
    spec: TableSpec,
    *,
    catalog: "Catalog",
    identity: list[str],
    metadata: dict[str, Any] | None = None,
) -> PublishOutcome:
    """Check the frame the asset is about to write against the contract's rules (`quality`), over
    exactly the run's slice of the table `spec` describes, and decide whether it may be committed."""
    from io_managers.slices import TableSlice

    slice_label = TableSlice.for_run(spec.partition_column, context).label
    results = evaluate_rules(
        native,
        quality,
        asset_key=context.asset_key,
        identity=identity,
        partition_column=spec.partition_column,
        slice_label=slice_label,
        catalog=catalog,
    )
    return PublishOutcome(
        output=dg.Output(native, metadata=metadata),
        results=results,
        failed_error_rules=blocked(results),
        validated_before_commit=spec.quality is None or spec.quality.validate_before_commit,
        asset_key=context.asset_key,
        slice_label=slice_label,
    )
