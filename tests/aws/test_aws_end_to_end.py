"""The whole example on the AWS code path, against moto's server, configured by environment only.

`lakehouse demo-landing` writes to S3, the arrival sensors request the runs, the runs write Iceberg
tables registered in Glue with their data in S3, and the run status sensor publishes the metrics
to CloudWatch and the e-mails through SES. Everything is read back from the server.
"""

import datetime as dt
import email
import email.policy
import hashlib

import dagster as dg
import pytest
from pyiceberg.catalog import load_catalog

from lakehouse_assets.assets.factory import build_assets
from lakehouse_assets.automation.arrival_sensors import sensor_name, target_for
from lakehouse_assets.cli.main import main as lakehouse_cli
from lakehouse_assets.components.defs_folder import contracts_in
from lakehouse_assets.contracts.contract import DatasetContract
from lakehouse_assets.definitions import build_resources, defs
from lakehouse_assets.monitoring.run_sensors import report_successful_runs
from resources.settings import load_settings
from tests.aws.conftest import (
    LANDING_BUCKET,
    RECIPIENTS,
    REGION,
    WAREHOUSE_BUCKET,
    aws_client,
    configure_aws,
    create_infrastructure,
    report_run,
    sent_emails,
    tick,
)
from tests.test_end_to_end import source_flights

DAY = "2013-01-02"
LAYERS = ("landing", "raw", "staging", "common", "output")
# reference data first: staging.flights checks its carriers against staging.airlines
ORDER = ("airlines", "airports", "planes", "flights", "weather")


def _metric_values(name: str, dimensions: dict[str, str]) -> list[float]:
    """Sums over the last hour; an empty list when no data point was published."""
    now = dt.datetime.now(dt.UTC)
    response = aws_client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "MedallionLakehouse",
                        "MetricName": name,
                        "Dimensions": [
                            {"Name": key, "Value": value} for key, value in sorted(dimensions.items())
                        ],
                    },
                    "Period": 3600,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=now - dt.timedelta(hours=1),
        EndTime=now,
    )
    return response["MetricDataResults"][0]["Values"]


@pytest.fixture(scope="module")
def aws_env(moto_endpoint, tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        configure_aws(monkeypatch, moto_endpoint, tmp_path_factory.mktemp("aws"))
        yield moto_endpoint


@pytest.fixture(scope="module")
def example(aws_env):
    """demo-landing for one day, one sensor tick per dataset, the requested runs and their reports.

    Module-scoped: the tests below only read what this one pass through the product left behind."""
    create_infrastructure()
    assert lakehouse_cli(["demo-landing", "--start", DAY, "--end", DAY]) == 0
    definitions = defs()
    sensors = {sensor.name: sensor for sensor in definitions.sensors}
    resources = build_resources(load_settings())
    assets = build_assets(contracts_in())
    contracts = {c.name: c for c in contracts_in() if isinstance(c, DatasetContract)}
    requests = {}
    with dg.instance_for_test() as instance:
        # the automation sensor ticks all the time; its first tick is the baseline later ones compare with
        baseline = dg.evaluate_automation_conditions(defs=definitions, instance=instance)
        assert baseline.total_requested == 0
        for name in ORDER:
            sensor = sensors[sensor_name(contracts[name])]
            first = tick(sensor, instance, definitions, resources)
            requests[name] = first.run_requests
            assert tick(sensor, instance, definitions, resources, first.cursor).run_requests == []
            for request in first.run_requests:
                result = dg.materialize(
                    assets,
                    resources=resources,
                    selection=target_for(contracts[name]),
                    partition_key=request.partition_key,
                    tags=request.tags,
                    instance=instance,
                )
                assert result.success
                report_run(report_successful_runs, instance, resources, result)
        # common and output follow by declarative automation, once every input partition exists
        evaluation = dg.evaluate_automation_conditions(
            defs=definitions, instance=instance, cursor=baseline.cursor
        )
        models = [dg.AssetKey(["common", "flights"]), dg.AssetKey(["output", "carrier_daily_stats"])]
        for key in models:
            assert evaluation.get_requested_partitions(key) == {DAY}
        result = dg.materialize(
            assets, resources=resources, selection=models, partition_key=DAY, instance=instance
        )
        assert result.success
        report_run(report_successful_runs, instance, resources, result)
        again = dg.evaluate_automation_conditions(
            defs=definitions, instance=instance, cursor=evaluation.cursor
        )
        assert again.total_requested == 0
    return requests


def test_sensors_request_one_run_per_partition_keyed_by_object_and_etag(example):
    s3 = aws_client("s3")
    for name, key in (("flights", f"flights/flights_{DAY}.csv"), ("airlines", "reference/airlines.csv")):
        etag = s3.head_object(Bucket=LANDING_BUCKET, Key=f"incoming/{key}")["ETag"].strip('"')
        body = s3.get_object(Bucket=LANDING_BUCKET, Key=f"incoming/{key}")["Body"].read()
        assert etag == hashlib.md5(body).hexdigest()
        (request,) = example[name]
        assert request.run_key == f"{key}@{etag}"
        assert request.partition_key == (DAY if name == "flights" else None)


def test_tables_are_registered_in_glue_per_layer_with_their_data_on_s3(example):
    glue = aws_client("glue")
    databases = {database["Name"] for database in glue.get_databases()["DatabaseList"]}
    # and the quality history's
    assert databases == {f"dev_{layer}" for layer in LAYERS} | {"dev_audit"}
    table = glue.get_table(DatabaseName="dev_output", Name="carrier_daily_stats")["Table"]
    parameters = table["Parameters"]
    assert parameters["table_type"] == "ICEBERG"
    assert parameters["metadata_location"].startswith(f"s3://{WAREHOUSE_BUCKET}/lakehouse/dev_output.db/")
    assert parameters["lakehouse.asset"] == "output/carrier_daily_stats"
    assert parameters["lakehouse.contract"] == "carrier_daily_stats"
    assert parameters["lakehouse.contract-version"] == "1"
    assert parameters["lakehouse.primary-key"] == "flight_date,carrier"
    assert table["Description"].startswith("One row per flight date and carrier")
    staging = glue.get_table(DatabaseName="dev_staging", Name="flights")["Table"]
    comments = {column["Name"]: column.get("Comment") for column in staging["StorageDescriptor"]["Columns"]}
    assert comments["dep_delay"] == "Departure delay in minutes; negative is early"
    assert staging["Parameters"]["lakehouse.write-mode"] == "upsert"
    listing = aws_client("s3").list_objects_v2(
        Bucket=WAREHOUSE_BUCKET, Prefix="lakehouse/dev_output.db/carrier_daily_stats/data/"
    )
    assert any(item["Key"].endswith(".parquet") for item in listing.get("Contents", []))


def test_output_read_back_from_glue_and_s3_matches_the_source(example, aws_env):
    # a reader that knows only the catalog type and the environment, not the product
    catalog = load_catalog(
        "reader", type="glue", **{"s3.endpoint": aws_env, "s3.region": REGION, "glue.region": REGION}
    )
    stats = catalog.load_table("dev_output.carrier_daily_stats").scan().to_pandas()
    source = source_flights()
    expected = source[source.flight_date == dt.date.fromisoformat(DAY)].groupby("carrier").size().to_dict()
    assert stats.set_index("carrier").flights.to_dict() == expected
    assert catalog.load_table("dev_raw.flights_rejects").scan().to_arrow().num_rows == 0


def test_every_check_evaluation_is_in_the_quality_history_in_glue(example, aws_env):
    catalog = load_catalog(
        "reader", type="glue", **{"s3.endpoint": aws_env, "s3.region": REGION, "glue.region": REGION}
    )
    table = catalog.load_table("dev_audit.check_results")
    assert table.location().startswith(f"s3://{WAREHOUSE_BUCKET}/lakehouse/dev_audit.db/")
    rows = table.scan().to_arrow().to_pylist()
    checked = {(row["table_name"], row["check_name"]) for row in rows}
    assert ("raw.flights", "landing_rows_reconcile") in checked
    assert ("output.carrier_daily_stats", "unique__flight_date__carrier") in checked
    # the example ran each dataset's partition once and the two models once: one row per check
    assert len(rows) == len(checked)
    flights = [row for row in rows if row["table_name"] == "staging.flights"]
    assert {row["partition"] for row in flights} == {DAY}
    assert all(row["rows_checked"] > 0 for row in flights)


def test_cloudwatch_receives_rows_checks_files_and_gaps_per_dataset_layer_and_environment(example):
    source = source_flights()
    rows = int((source.flight_date == dt.date.fromisoformat(DAY)).sum())
    raw = {"dataset": "flights", "layer": "raw", "environment": "dev"}
    assert _metric_values("RowsWritten", raw) == [rows]
    assert _metric_values("RowsRejected", raw) == [0]
    assert _metric_values("AuditGapRows", raw) == [0]
    assert _metric_values("CheckPassed", {**raw, "check": "landing_rows_reconcile"}) == [1]
    assert _metric_values("CheckFailed", {**raw, "check": "landing_rows_reconcile"}) == [0]
    assert _metric_values("FilesArrived", {**raw, "layer": "landing"}) == [1]
    (staged_bytes,) = _metric_values("BytesWritten", {**raw, "layer": "staging"})
    assert staged_bytes > 1000
    output = {"dataset": "carrier_daily_stats", "layer": "output", "environment": "dev"}
    carriers = source[source.flight_date == dt.date.fromisoformat(DAY)].carrier.nunique()
    assert _metric_values("RowsWritten", output) == [carriers]
    names = {
        metric["MetricName"]
        for page in aws_client("cloudwatch")
        .get_paginator("list_metrics")
        .paginate(Namespace="MedallionLakehouse")
        for metric in page["Metrics"]
    }
    assert {"RowsWritten", "BytesRead", "DurationSeconds", "CheckFailed", "FilesArrived"} <= names


def test_ses_sends_an_email_per_arrival_and_output_with_the_environment_in_the_subject(example, aws_env):
    messages = [
        email.message_from_string(item["raw_data"], policy=email.policy.default)
        for item in sent_emails(aws_env)
    ]
    subjects = sorted(message["Subject"] for message in messages)
    assert subjects.count(f"[dev] Output ready: output/carrier_daily_stats {DAY}") == 1
    assert "[dev] 1 new file(s) for flights" in subjects
    assert "[dev] 1 new file(s) for airlines" in subjects
    assert all(subject.startswith("[dev] ") for subject in subjects)
    assert len(subjects) == len(set(subjects)) == 6  # 5 arrivals + 1 output
    output = next(message for message in messages if message["Subject"].startswith("[dev] Output ready"))
    assert output["To"] == ", ".join(RECIPIENTS)
    assert "rows_written" in output.get_content()
