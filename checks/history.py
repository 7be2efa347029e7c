"""Quality history: every check evaluation appended to the Iceberg table `audit.check_results`.

Dagster keeps check results in its event log, which is per run and hard to chart over months;
this table keeps one row per evaluation (per check, run and partition) in the lakehouse itself, so
a team can query a rule's failing rows over a year with any Iceberg reader. The schema is a
contract other tools read (`lakehouse tables` shows each table's last outcome from it):

    evaluated_at  timestamptz (UTC), partitioned by its month
    run_id, layer, table_name ("staging.flights"), partition (nullable), check_name, rule,
    severity ("ERROR" / "WARN"), passed, rows_checked, rows_failing, description (nullable)

A step's results are collected while it yields them and appended in one commit when it ends, also
when a failed error rule ends it. The history is a record, not a gate: a write that fails is logged
as a warning and never fails the data write it describes.
"""

import datetime as dt
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog import Catalog

    from resources.catalog.resource import IcebergCatalogResource

IDENTIFIER = "audit.check_results"
PARTITION_COLUMN = "evaluated_at"
# the snapshot property an append is recognised by when its commit's outcome was unknown
BATCH_PROPERTY = "lakehouse.check-history-batch"
ATTEMPTS = 5
# (name, arrow type name, nullable); the order is the table's
COLUMNS = (
    ("evaluated_at", "timestamptz", False),
    ("run_id", "string", False),
    ("layer", "string", False),
    ("table_name", "string", False),
    ("partition", "string", True),
    ("check_name", "string", False),
    ("rule", "string", False),
    ("severity", "string", False),
    ("passed", "boolean", False),
    ("rows_checked", "long", True),
    ("rows_failing", "long", True),
    ("description", "string", True),
)
# the metadata entries a check result carries its counts in (rules, and the count audits)
ROWS_CHECKED = ("rows_checked", "dagster/row_count", "expected_rows")
ROWS_FAILING = ("failing_rows",)
UNACCOUNTED = "unaccounted_rows"


def arrow_schema() -> "pa.Schema":
    import pyarrow as pa

    types = {
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "string": pa.string(),
        "boolean": pa.bool_(),
        "long": pa.int64(),
    }
    return pa.schema([pa.field(name, types[kind], nullable=nullable) for name, kind, nullable in COLUMNS])


@dataclass(frozen=True)
class Evaluation:
    """One row of the history."""

    evaluated_at: dt.datetime
    run_id: str
    layer: str
    table_name: str
    partition: str | None
    check_name: str
    rule: str
    severity: str
    passed: bool
    rows_checked: int | None
    rows_failing: int | None
    description: str | None

    def as_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name, _, _ in COLUMNS}


def _value(metadata: dict, names: Iterable[str]) -> Any:
    for name in names:
        if name in metadata:
            entry = metadata[name]
            return getattr(entry, "value", entry)
    return None


def evaluation_of(
    result: dg.AssetCheckResult,
    *,
    asset_key: dg.AssetKey,
    run_id: str,
    partition: str | None,
    evaluated_at: dt.datetime,
) -> Evaluation:
    """The history's row for a check result, its counts read from the result's metadata."""
    key = result.asset_key or asset_key
    metadata = result.metadata or {}
    failing = _value(metadata, ROWS_FAILING)
    if failing is None and (gap := _value(metadata, (UNACCOUNTED,))) is not None:
        failing = abs(gap)
    checked = _value(metadata, ROWS_CHECKED)
    rule = _value(metadata, ("rule",))
    return Evaluation(
        evaluated_at=evaluated_at.astimezone(dt.UTC),
        run_id=run_id,
        layer=key.path[0],
        table_name=".".join(key.path),
        partition=partition,
        check_name=result.check_name or "",
        rule=str(rule) if rule is not None else (result.check_name or ""),
        severity=result.severity.value,
        passed=bool(result.passed),
        rows_checked=None if checked is None else int(checked),
        rows_failing=None if failing is None else int(failing),
        description=result.description,
    )


def partition_label(context: dg.AssetExecutionContext) -> str | None:
    """The run's partition key, `first..last` for a single run over a range, None unpartitioned."""
    if context.has_partition_key:
        return context.partition_key
    if context.has_partition_key_range:
        keys = context.partition_key_range
        return f"{keys.start}..{keys.end}"
    return None


def history_table(catalog: "Catalog"):
    from io_managers.schema import create_table_if_missing

    return create_table_if_missing(catalog, IDENTIFIER, arrow_schema(), PARTITION_COLUMN, "month")


def append_evaluations(catalog: "Catalog", evaluations: list[Evaluation]) -> None:
    """One commit of these rows. A retry after a commit whose outcome was unknown first looks for
    the batch's snapshot, so a row is never recorded twice."""
    import pyarrow as pa

    from io_managers.retries import is_transient

    if not evaluations:
        return
    rows = pa.Table.from_pylist([evaluation.as_row() for evaluation in evaluations], schema=arrow_schema())
    batch = uuid.uuid4().hex
    for attempt in range(ATTEMPTS):
        table = history_table(catalog)
        if attempt and any(
            snapshot.summary is not None and snapshot.summary.get(BATCH_PROPERTY) == batch
            for snapshot in table.metadata.snapshots
        ):
            return
        try:
            table.append(rows, snapshot_properties={BATCH_PROPERTY: batch})
            return
        except Exception as error:
            if attempt == ATTEMPTS - 1 or not is_transient(error):
                raise
            time.sleep(0.1 * 2**attempt)


def read_evaluations(catalog: "Catalog", row_filter: Any = None) -> "pa.Table":
    """The history (or the rows matching a pyiceberg filter); an empty table before the first check."""
    from pyiceberg.exceptions import NoSuchTableError
    from pyiceberg.expressions import AlwaysTrue

    try:
        table = catalog.load_table(IDENTIFIER)
    except NoSuchTableError:
        return arrow_schema().empty_table()
    return table.scan(row_filter=row_filter if row_filter is not None else AlwaysTrue()).to_arrow()


def recorded(
    events: Iterable,
    *,
    context: dg.AssetExecutionContext,
    catalog: "IcebergCatalogResource",
    asset_key: dg.AssetKey,
) -> Iterator:
    """`events` as they are, and at the end (also on a failure) their check results in the history.

    A failing history write is logged as a warning: the data it describes is committed (or refused)
    already, and the check results themselves are in Dagster's event log either way.
    """
    evaluations: list[Evaluation] = []
    run_id, partition = context.run_id, partition_label(context)
    try:
        for event in events:
            if isinstance(event, dg.AssetCheckResult):
                evaluations.append(
                    evaluation_of(
                        event,
                        asset_key=asset_key,
                        run_id=run_id,
                        partition=partition,
                        evaluated_at=dt.datetime.now(dt.UTC),
                    )
                )
            yield event
    finally:
        if evaluations:
            try:
                append_evaluations(catalog.load(), evaluations)
            except Exception as error:  # noqa: BLE001 - the history never fails the data write
                context.log.warning(
                    f"could not record {len(evaluations)} check results in {IDENTIFIER}: {error!r}; "
                    "the data write is unaffected, the results are in the run's event log"
                )
