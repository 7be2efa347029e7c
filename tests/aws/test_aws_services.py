"""CloudWatch and SES resources against the server: batching, idempotency and failures that stay quiet."""

import datetime as dt
import socket
import time

import pytest

from resources.aws import reset_clients
from resources.metrics import MAX_DATUMS_PER_CALL, CloudWatchMetrics, Metric
from resources.notifications.notifier import SesNotifier
from tests.aws.conftest import (
    LANDING_BUCKET,
    RECIPIENTS,
    REGION,
    SENDER,
    WAREHOUSE_BUCKET,
    aws_client,
    sent_emails,
)

LEDGER = f"s3://{WAREHOUSE_BUCKET}/lakehouse/_notifications"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def buckets(aws_env):
    """The buckets, but the sender not yet verified: SES refuses to send."""
    s3 = aws_client("s3")
    for bucket in (LANDING_BUCKET, WAREHOUSE_BUCKET):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})


def notifier() -> SesNotifier:
    return SesNotifier(environment="dev", sender=SENDER, recipients=list(RECIPIENTS), ledger_uri=LEDGER)


def notify(target: SesNotifier, run_id: str = "run-1") -> bool:
    return target.notify(
        "run_failed",
        f"run-failed/{run_id}",
        job="daily_tables",
        partition="2013-01-02",
        run_id=run_id,
        message="boom",
        steps="raw__flights",
    )


def test_a_refused_email_is_not_recorded_so_a_later_retry_sends_it_exactly_once(buckets, aws_env):
    assert notify(notifier()) is False  # MessageRejected: the sender is not verified; nothing raised
    ledger = aws_client("s3").list_objects_v2(Bucket=WAREHOUSE_BUCKET, Prefix="lakehouse/_notifications/")
    assert ledger["KeyCount"] == 0
    aws_client("ses").verify_email_identity(EmailAddress=SENDER)
    assert notify(notifier()) is True
    assert notify(notifier()) is False
    (sent,) = sent_emails(aws_env)
    assert sent["destinations"] == list(RECIPIENTS)
    assert "Subject: [dev] Run failed: daily_tables 2013-01-02" in sent["raw_data"]
    # the quota counts recipients: one message to two addresses
    assert aws_client("ses").get_send_quota()["SentLast24Hours"] == len(RECIPIENTS)


def test_metrics_are_published_in_batches_within_the_api_limit(buckets):
    count = MAX_DATUMS_PER_CALL * 2 + 200
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    metrics = [Metric("FilesArrived", 1, "Count", {"dataset": "flights", "layer": "landing"}, at)] * count
    assert CloudWatchMetrics(environment="dev").publish(metrics) == count
    response = aws_client("cloudwatch").get_metric_statistics(
        Namespace="MedallionLakehouse",
        MetricName="FilesArrived",
        Dimensions=[
            {"Name": "dataset", "Value": "flights"},
            {"Name": "environment", "Value": "dev"},
            {"Name": "layer", "Value": "landing"},
        ],
        StartTime=at - dt.timedelta(minutes=5),
        EndTime=at + dt.timedelta(minutes=5),
        Period=600,
        Statistics=["Sum", "SampleCount"],
    )
    (point,) = response["Datapoints"]
    assert point["Sum"] == count


def test_an_unreachable_cloudwatch_is_logged_not_raised(buckets, monkeypatch, caplog):
    # the per-service variable wins over AWS_ENDPOINT_URL for CloudWatch only
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", f"http://127.0.0.1:{closed_port()}")
    reset_clients()
    started = time.monotonic()
    published = CloudWatchMetrics(environment="dev", max_attempts=2).publish([Metric("RowsWritten", 3)])
    assert published == 0
    assert time.monotonic() - started < 30
    assert "could not publish 1 metrics to CloudWatch" in caplog.text
    # S3 still reaches the server: only CloudWatch's endpoint moved
    assert aws_client("s3").list_objects_v2(Bucket=LANDING_BUCKET)["KeyCount"] == 0
