"""What a finished run did, read back from the Dagster instance's event log: metrics and notable events.

The run status sensors turn each run into one report. Reading the event log after the run, rather
than publishing from inside the IO manager or the assets, keeps monitoring out of the data path
entirely: a CloudWatch or SES outage cannot fail, slow down or roll back a write, and the assets and
IO manager need not know which monitoring backend exists.
"""

import datetime as dt
import logging
from dataclasses import dataclass, field

import dagster as dg

from resources.catalog.resource import IcebergCatalogResource
from resources.metrics import Metric

logger = logging.getLogger(__name__)
REJECTS_SUFFIX = "_rejects"


@dataclass(frozen=True)
class Materialised:
    asset_key: dg.AssetKey
    partition: str | None
    metadata: dict[str, object]


@dataclass(frozen=True)
class CheckOutcome:
    asset_key: dg.AssetKey
    check_name: str
    partition: str | None
    passed: bool
    blocking: bool
    severity: dg.AssetCheckSeverity
    description: str
    metadata: dict[str, object]


@dataclass
class RunReport:
    run_id: str
    metrics: list[Metric] = field(default_factory=list)
    materialised: list[Materialised] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)

    @property
    def outputs(self) -> list[Materialised]:
        """Output tables materialised and not held back by a failed blocking check (which runs after
        the write, so the table changed but its consumers should not be told it is ready)."""
        blocked = {(check.asset_key, check.partition) for check in self.failed_blocking_checks}
        return [
            item
            for item in self.materialised
            if item.asset_key.path[0] == "output" and (item.asset_key, item.partition) not in blocked
        ]

    @property
    def failed_blocking_checks(self) -> list[CheckOutcome]:
        """Failed checks that held downstream assets back. The spec's `blocking` flag is not
        enough: a blocking check may evaluate as a warning (a reference table that does not exist
        yet), and Dagster then lets the run go on; only an ERROR evaluation of a blocking check
        stops it."""
        return [
            check
            for check in self.checks
            if check.blocking and not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
        ]


def dimensions_of(asset_key: dg.AssetKey) -> dict[str, str]:
    """dataset and layer of an asset; a quarantine table counts towards its dataset."""
    layer, table = asset_key.path[0], asset_key.path[-1]
    return {"dataset": table.removesuffix(REJECTS_SUFFIX), "layer": layer}


def _plain(metadata: dict) -> dict[str, object]:
    return {key: getattr(value, "value", value) for key, value in metadata.items()}


def _number(metadata: dict[str, object], key: str) -> float | None:
    value = metadata.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _bytes_written(catalog: IcebergCatalogResource | None, metadata: dict[str, object]) -> float | None:
    """The data file bytes the commit added, from its Iceberg snapshot summary."""
    table, snapshot_id = metadata.get("table"), metadata.get("snapshot_id")
    if catalog is None or not table or not snapshot_id:
        return None
    try:
        snapshot = catalog.load().load_table(str(table)).snapshot_by_id(int(str(snapshot_id)))
    except Exception:  # noqa: BLE001 - a metric is not worth failing the report for
        logger.warning("could not read snapshot %s of %s", snapshot_id, table, exc_info=True)
        return None
    summary = snapshot.summary if snapshot else None
    size = summary.additional_properties.get("added-files-size") if summary else None
    return float(size) if size is not None else None


def _materialisation_metrics(
    item: Materialised, duration: float | None, catalog: IcebergCatalogResource | None, at: dt.datetime
) -> list[Metric]:
    dimensions = dimensions_of(item.asset_key)
    metadata = item.metadata
    rejects = item.asset_key.path[-1].endswith(REJECTS_SUFFIX)
    metrics = []
    rows = _number(metadata, "rows_written")
    if rows is not None:
        metrics.append(Metric("RowsRejected" if rejects else "RowsWritten", rows, "Count", dimensions, at))
    replaced = _number(metadata, "rows_replaced")
    if replaced is not None:
        metrics.append(Metric("RowsReplaced", replaced, "Count", dimensions, at))
    removed = [value for key, value in metadata.items() if key.startswith("rows_removed_")]
    if removed:
        metrics.append(Metric("RowsRemoved", float(sum(removed)), "Count", dimensions, at))
    read = _number(metadata, "bytes_read")
    if read is not None:
        metrics.append(Metric("BytesRead", read, "Bytes", dimensions, at))
    written = _bytes_written(catalog, metadata)
    if written is not None:
        metrics.append(Metric("BytesWritten", written, "Bytes", dimensions, at))
    if duration is not None:
        metrics.append(Metric("DurationSeconds", duration, "Seconds", dimensions, at))
    if not rejects:
        metrics.append(Metric("Materialisations", 1, "Count", dimensions, at))
    return metrics


def read_run(
    instance: dg.DagsterInstance, run_id: str, catalog: IcebergCatalogResource | None = None
) -> RunReport:
    report = RunReport(run_id=run_id)
    step_started: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        at = dt.datetime.fromtimestamp(entry.timestamp, dt.UTC)
        if event.is_step_start:
            step_started[event.step_key] = entry.timestamp
        elif event.is_step_failure:
            report.failed_steps.append(event.step_key)
        elif event.is_step_materialization:
            materialization = event.step_materialization_data.materialization
            item = Materialised(
                materialization.asset_key, materialization.partition, _plain(materialization.metadata)
            )
            report.materialised.append(item)
            started = step_started.get(event.step_key)
            duration = entry.timestamp - started if started is not None else None
            report.metrics += _materialisation_metrics(item, duration, catalog, at)
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            outcome = CheckOutcome(
                asset_key=evaluation.asset_key,
                check_name=evaluation.check_name,
                partition=event.partition,
                passed=evaluation.passed,
                blocking=bool(evaluation.blocking),
                severity=evaluation.severity,
                description=evaluation.description or "",
                metadata=_plain(evaluation.metadata),
            )
            report.checks.append(outcome)
            dimensions = {**dimensions_of(outcome.asset_key), "check": outcome.check_name}
            report.metrics += [
                Metric("CheckPassed", 1.0 if outcome.passed else 0.0, "Count", dimensions, at),
                Metric("CheckFailed", 0.0 if outcome.passed else 1.0, "Count", dimensions, at),
            ]
            gap = _number(outcome.metadata, "unaccounted_rows")
            if gap is not None:
                report.metrics.append(
                    Metric("AuditGapRows", gap, "Count", dimensions_of(outcome.asset_key), at)
                )
    return report
