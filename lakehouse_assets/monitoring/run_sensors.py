"""Run status sensors: each finished run's metrics to CloudWatch (or JSON lines), and its e-mails.

- every run: rows written, rejected, replaced and removed, bytes, durations, check pass/fail and
  audit gaps, per dataset and layer (`run_reports.read_run`);
- a failed run: one "run failed" e-mail;
- a failed blocking check: one e-mail per check and partition;
- a materialised `output` table: one "output ready" e-mail per table and partition.

Dagster's run status sensors keep their own cursor in the instance (restarts resume after the last
run reported). E-mails carry an event id made of the run id and the subject of the e-mail, so a
sensor tick that is retried after a crash does not send them twice (see `resources.notifications.notifier`).
"""

import json

import dagster as dg

from lakehouse_assets.monitoring.run_reports import RunReport, read_run
from resources.catalog.resource import IcebergCatalogResource
from resources.metrics import Metric, MetricsPublisher
from resources.notifications.notifier import Notifier

MAX_METADATA_LINES = 20


def _metadata_text(metadata: dict[str, object]) -> str:
    lines = []
    for key, value in list(metadata.items())[:MAX_METADATA_LINES]:
        if key in ("preview", "dagster/column_schema"):
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        lines.append(f"  {key}: {text[:200]}")
    return "\n".join(lines)


def _partition(run: dg.DagsterRun, partition: str | None) -> str:
    if partition:
        return partition
    start = run.tags.get("dagster/asset_partition_range_start")
    end = run.tags.get("dagster/asset_partition_range_end")
    return f"{start}..{end}" if start and end else run.tags.get("dagster/partition", "")


def publish_report(
    report: RunReport, run: dg.DagsterRun, metrics: MetricsPublisher, notifier: Notifier
) -> None:
    metrics.publish(report.metrics)
    for check in report.failed_blocking_checks:
        partition = _partition(run, check.partition)
        notifier.notify(
            "check_failed",
            f"check-failed/{run.run_id}/{check.asset_key.to_user_string()}/{check.check_name}/{partition}",
            asset=check.asset_key.to_user_string(),
            check=check.check_name,
            partition=partition,
            run_id=run.run_id,
            description=check.description,
            metadata=_metadata_text(check.metadata),
        )
    for output in report.outputs:
        partition = _partition(run, output.partition)
        notifier.notify(
            "output_generated",
            f"output/{run.run_id}/{output.asset_key.to_user_string()}/{partition}",
            asset=output.asset_key.to_user_string(),
            partition=partition,
            run_id=run.run_id,
            metadata=_metadata_text(output.metadata),
        )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name="report_successful_runs",
    description="Publishes each successful run's metrics; e-mails outputs and failed blocking checks.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def report_successful_runs(
    context: dg.RunStatusSensorContext,
    catalog: IcebergCatalogResource,
    metrics: MetricsPublisher,
    notifier: Notifier,
) -> None:
    run = context.dagster_run
    publish_report(read_run(context.instance, run.run_id, catalog), run, metrics, notifier)


@dg.run_failure_sensor(
    name="report_failed_runs",
    description="E-mails each failed run once and publishes what it did before failing.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def report_failed_runs(
    context: dg.RunFailureSensorContext,
    catalog: IcebergCatalogResource,
    metrics: MetricsPublisher,
    notifier: Notifier,
) -> None:
    run = context.dagster_run
    report = read_run(context.instance, run.run_id, catalog)
    dimensions = {"dataset": run.tags.get("lakehouse/dataset", "all"), "layer": "all"}
    report.metrics.append(Metric("RunsFailed", 1, "Count", dimensions))
    partition = _partition(run, None)
    notifier.notify(
        "run_failed",
        f"run-failed/{run.run_id}",
        job=run.job_name,
        partition=partition,
        run_id=run.run_id,
        message=context.failure_event.message or "",
        steps=", ".join(report.failed_steps) or "(none: the run failed outside a step)",
    )
    publish_report(report, run, metrics, notifier)


RUN_SENSORS = [report_successful_runs, report_failed_runs]
