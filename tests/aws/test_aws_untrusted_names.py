"""Untrusted object keys against the S3 and CloudWatch server: refused, or kept within the API's limits."""

import logging

import pytest

from resources.landing.s3 import S3LandingStorage
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
