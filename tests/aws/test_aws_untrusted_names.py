"""Untrusted object keys against the S3 and CloudWatch server: refused, or kept within the API's limits."""

import datetime as dt
import logging

import pytest

from resources.landing.s3 import S3LandingStorage
from resources.metrics import CloudWatchMetrics, Metric
from tests.aws.conftest import LANDING_BUCKET, REGION, aws_client


@pytest.fixture
def landing_bucket(aws_env):
    aws_client("s3").create_bucket(
        Bucket=LANDING_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )


def test_a_dotdot_key_on_s3_is_refused_reported_and_never_read(landing_bucket, caplog):
    s3 = aws_client("s3")
    s3.put_object(Bucket=LANDING_BUCKET, Key="incoming/orders/orders_2024-05-06.csv", Body=b"a\n1\n")
    dotdot = "incoming/orders/../orders/orders_2024-05-07.csv"
    s3.put_object(Bucket=LANDING_BUCKET, Key=dotdot, Body=b"a\n2\n")
    storage = S3LandingStorage(uri=f"s3://{LANDING_BUCKET}/incoming")
    with caplog.at_level(logging.WARNING):
        files, refused = storage.scan("orders/*")
    assert [file.key for file in files] == ["orders/orders_2024-05-06.csv"]
    assert list(refused) == ["orders/../orders/orders_2024-05-07.csv"]
    assert "'..'" in refused["orders/../orders/orders_2024-05-07.csv"]
    assert "orders/../orders/orders_2024-05-07.csv" in caplog.text
    for key in ("orders/../orders/orders_2024-05-07.csv", "/orders/orders_2024-05-06.csv"):
        with pytest.raises(PermissionError):
            storage.read_bytes(key)
        with pytest.raises(PermissionError):
            storage.reader()(key)
    assert storage.read_bytes("orders/orders_2024-05-06.csv") == b"a\n1\n"


def test_a_5000_character_key_as_a_dimension_is_accepted_by_cloudwatch(aws_env):
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    long_key = "orders/" + "x" * 5000 + "\r\n.csv"
    other = "orders/" + "x" * 5000 + "\r\n.tsv"
    metrics = [Metric("FilesArrived", 1, "Count", {"file": key}, at) for key in (long_key, other)]
    assert CloudWatchMetrics(environment="dev").publish(metrics) == 2
    listed = aws_client("cloudwatch").list_metrics(Namespace="MedallionLakehouse", MetricName="FilesArrived")
    values = {
        dimension["Value"]
        for metric in listed["Metrics"]
        for dimension in metric["Dimensions"]
        if dimension["Name"] == "file"
    }
    # two distinct keys stay two distinct dimension values, each within the limit and printable
    assert len(values) == 2
    assert all(len(value) <= 1024 and value.isprintable() for value in values)
