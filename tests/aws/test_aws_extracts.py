"""On AWS an extract lands in `LAKEHOUSE_EXPORTS_URI` as one object, with its manifest beside it,
read from the Glue catalog's table; its e-mail goes out through SES."""

import email
import hashlib
import json
from pathlib import Path

import dagster as dg
import pytest

from lakehouse_assets.assets.extracts import build_extract_assets
from lakehouse_assets.contracts.contract import contract_from
from lakehouse_assets.definitions import build_resources
from tests.aws.conftest import REGION, aws_client, create_infrastructure, sent_emails
from tests.lakehouse_assets.layers.test_extracts import FEBRUARY, METERS, RECIPIENT, SCHEMA, readings

EXPORTS_BUCKET = "acme-exports"


@pytest.fixture
def settings(aws_env, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_EXPORTS_URI", f"s3://{EXPORTS_BUCKET}/deliveries/")
    settings = create_infrastructure()
    aws_client("s3").create_bucket(
        Bucket=EXPORTS_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return settings


def test_an_extract_is_one_object_under_the_exports_uri_with_its_manifest(settings, aws_env):
    assert settings.aws.exports_uri == f"s3://{EXPORTS_BUCKET}/deliveries"
    resources = build_resources(settings)
    lakehouse = resources["catalog"].load()
    lakehouse.create_namespace_if_not_exists("staging")
    table = lakehouse.create_table("staging.meters", schema=SCHEMA)
    for month in (1, 2):
        table.append(readings(month))
    assets = {a.key.path[-1]: a for a in build_extract_assets([contract_from(METERS, Path("meters.yaml"))])}

    result = dg.materialize([assets["meter_readings_jsonl"]], resources=resources, partition_key=FEBRUARY)

    assert result.success
    s3 = aws_client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=EXPORTS_BUCKET)["Contents"])
    key = "deliveries/meters/2024/02/readings.jsonl"
    assert keys == [key, key + ".manifest.json"]
    body = s3.get_object(Bucket=EXPORTS_BUCKET, Key=key)["Body"].read()
    manifest = json.loads(s3.get_object(Bucket=EXPORTS_BUCKET, Key=key + ".manifest.json")["Body"].read())
    assert manifest["uri"] == f"s3://{EXPORTS_BUCKET}/{key}"
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
    assert manifest["rows"] == len(body.splitlines()) > 0
    assert manifest["snapshot_id"] == table.refresh().current_snapshot().snapshot_id
    # nothing under the warehouse: the exports have their own place
    assert "Contents" not in s3.list_objects_v2(Bucket="acme-warehouse", Prefix="lakehouse/exports")

    messages = [email.message_from_string(m["raw_data"]) for m in sent_emails(aws_env)]
    extract_mails = [m for m in messages if "Output generated" in m["Subject"]]
    assert [m["To"] for m in extract_mails] == [RECIPIENT]
    assert extract_mails[0]["Subject"] == f"[dev] Output generated: meter_readings_jsonl {FEBRUARY}"
