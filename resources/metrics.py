"""Operational metrics: CloudWatch on AWS, JSON lines under `LAKEHOUSE_HOME/metrics` locally.

Publishing is best effort by design: the data is already committed when metrics are published,
and a monitoring outage must never turn a good write into a failed run. Failures are logged.
"""

import datetime as dt
import hashlib
import json
import logging
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from pydantic import Field

from resources.aws import client

logger = logging.getLogger(__name__)
# PutMetricData takes at most 1000 data points and 1 MB per call; 500 short ones stay far below both.
MAX_DATUMS_PER_CALL = 500
UNITS = ("Count", "Bytes", "Seconds", "None")
# CloudWatch's limit on a dimension value
MAX_DIMENSION_CHARS = 1024


def dimension_value(value: str) -> str:
    """A dimension value CloudWatch accepts whatever name it came from: no control characters (they
    become `?`), at most 1024 characters. A value that had to change ends with a hash of the
    original, so two keys that differ only in what was cut or replaced stay two metrics."""
    value = str(value)
    text = "".join("?" if unicodedata.category(c) == "Cc" else c for c in value)
    if text == value and 0 < len(text) <= MAX_DIMENSION_CHARS:
        return text
    digest = hashlib.sha256(value.encode()).hexdigest()[:16]
    return f"{text[: MAX_DIMENSION_CHARS - len(digest) - 1]}~{digest}"


@dataclass(frozen=True)
class Metric:
    name: str
    value: float
    unit: str = "Count"
    # dataset and layer; the publisher adds the environment
    dimensions: dict[str, str] = field(default_factory=dict)
    timestamp: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unit {self.unit!r} is not one of {UNITS}")


def _batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class MetricsPublisher(dg.ConfigurableResource):
    """Publishes metrics with the `environment` dimension added; returns how many were published."""

    environment: str = "local"

    def publish(self, metrics: Sequence[Metric]) -> int:
        raise NotImplementedError

    def _dimensions(self, metric: Metric) -> dict[str, str]:
        dimensions = {**metric.dimensions, "environment": self.environment}
        return {name: dimension_value(value) for name, value in dimensions.items()}


class JsonLinesMetrics(MetricsPublisher):
    """One JSON object per line and metric, one file per UTC day: easy to `tail`, `jq` or load."""

    directory: str = Field(description="folder of the daily *.jsonl files")

    def publish(self, metrics: Sequence[Metric]) -> int:
        if not metrics:
            return 0
        now = dt.datetime.now(dt.UTC)
        lines = [
            json.dumps(
                {
                    "timestamp": (metric.timestamp or now).isoformat(),
                    "name": metric.name,
                    "value": metric.value,
                    "unit": metric.unit,
                    "dimensions": self._dimensions(metric),
                },
                sort_keys=True,
            )
            for metric in metrics
        ]
        try:
            directory = Path(self.directory)
            directory.mkdir(parents=True, exist_ok=True)
            # one write in append mode: concurrent runs interleave whole batches, never half lines
            with (directory / f"{now.date().isoformat()}.jsonl").open("a", encoding="utf-8") as handle:
                handle.write("".join(f"{line}\n" for line in lines))
        except OSError:
            logger.exception("could not write %d metrics to %s", len(metrics), self.directory)
            return 0
        return len(metrics)


class CloudWatchMetrics(MetricsPublisher):
    """PutMetricData in batches within the API's limits; botocore retries throttling with backoff."""

    namespace: str = "MedallionLakehouse"
    max_attempts: int = 5

    def publish(self, metrics: Sequence[Metric]) -> int:
        now = dt.datetime.now(dt.UTC)
        data = [
            {
                "MetricName": metric.name,
                # sorted: the same dimensions always make the same metric, whatever order they came in
                "Dimensions": [
                    {"Name": key, "Value": value} for key, value in sorted(self._dimensions(metric).items())
                ],
                "Timestamp": metric.timestamp or now,
                "Value": float(metric.value),
                "Unit": metric.unit,
            }
            for metric in metrics
        ]
        published = 0
        for batch in _batches(data, MAX_DATUMS_PER_CALL):
            try:
                client("cloudwatch", self.max_attempts).put_metric_data(
                    Namespace=self.namespace, MetricData=list(batch)
                )
            except Exception:  # noqa: BLE001 - any failure, including a bad endpoint, is only logged
                logger.exception(
                    "could not publish %d metrics to CloudWatch namespace %s", len(batch), self.namespace
                )
                continue
            published += len(batch)
        return published
