"""`LAKEHOUSE_SPARK_SUBMIT=emr-serverless` against the moto server: the entry script and the product
archive uploaded once per content, and the job submitted through dagster-aws's
`PipesEMRServerlessClient` with exactly the `start_job_run` parameters the route builds.

moto records EMR Serverless applications and job runs and answers `get_job_run` with SUCCESS at
once, but runs nothing: no Spark, no driver logs in CloudWatch, so no Pipes message comes back.
What the job does is tested under a real spark-submit (tests/lakehouse_assets/layers/
test_submitted_spark.py); here the product must fail the step for want of the job's file list.
"""

import datetime as dt
import re

import dagster as dg
import pyarrow as pa
import pytest
from dagster_pipes import decode_param

from io_managers.commit import WriteRequest
from io_managers.schema import create_table_if_missing
from io_managers.slices import TableSlice
from io_managers.spark_pipes import ReportedFilesError, commit_job_files, job_script
from resources.catalog.resource import IcebergCatalogResource
from resources.environment import spark_job_for
from resources.settings import load_settings
from resources.spark.artifacts import product_archive
from tests.aws.conftest import WAREHOUSE_BUCKET, aws_client

ROLE = "arn:aws:iam::123456789012:role/lakehouse-emr-job"
CODE = f"s3://{WAREHOUSE_BUCKET}/lakehouse/_spark_jobs"


@pytest.fixture
def emr_application(infrastructure, monkeypatch) -> str:
    application = aws_client("emr-serverless").create_application(
        name="lakehouse", releaseLabel="emr-7.5.0", type="SPARK"
    )["applicationId"]
    monkeypatch.setenv("LAKEHOUSE_SPARK_SUBMIT", "emr-serverless")
    monkeypatch.setenv("LAKEHOUSE_SPARK_EMR_APPLICATION_ID", application)
    monkeypatch.setenv("LAKEHOUSE_SPARK_EMR_EXECUTION_ROLE_ARN", ROLE)
    monkeypatch.setenv("LAKEHOUSE_SPARK_EMR_CODE_URI", CODE + "/")
    return application


def _code_objects() -> dict[str, str]:
    listing = aws_client("s3").list_objects_v2(Bucket=WAREHOUSE_BUCKET, Prefix="lakehouse/_spark_jobs/")
    return {item["Key"]: item["LastModified"] for item in listing.get("Contents", [])}


def test_emr_serverless_uploads_the_code_once_and_submits_the_job_through_pipes(emr_application, tmp_path):
    job = spark_job_for(load_settings())
    script_uri, archive_uri = job.upload_code(job_script())
    archive = product_archive()
    assert archive_uri == f"{CODE}/{archive.name}"
    assert re.fullmatch(rf"{CODE}/pipes_job_[0-9a-f]{{20}}\.py", script_uri)
    uploaded = _code_objects()
    assert sorted(uploaded) == sorted(
        uri.removeprefix(f"s3://{WAREHOUSE_BUCKET}/") for uri in (script_uri, archive_uri)
    )
    body = aws_client("s3").get_object(Bucket=WAREHOUSE_BUCKET, Key=f"lakehouse/_spark_jobs/{archive.name}")
    assert body["Body"].read() == archive.read_bytes()

    # a step launching the job through the product's Pipes client, committing what it reports
    settings = load_settings()
    catalog = IcebergCatalogResource.glue(
        settings.aws.warehouse_uri, settings.aws.glue_database_prefix, settings.aws.file_io
    ).load()
    schema = pa.schema([("day", pa.date32()), ("key", pa.string())])
    table = create_table_if_missing(catalog, "dev_staging.values", schema, "day")
    day = TableSlice("day", dt.datetime(2024, 3, 1, tzinfo=dt.UTC), dt.datetime(2024, 3, 2, tzinfo=dt.UTC))
    request = WriteRequest(mode="overwrite", slice=day, run_id="run-1")

    @dg.asset(name="values")
    def values(context: dg.AssetExecutionContext):
        def launch(extras: dict):
            return job.run(context, job_script(), extras, name="lakehouse-staging.values-2024-03-01")

        commit_job_files(table, request, launch, ["s3://acme-warehouse/lakehouse/raw/x.parquet"])

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([values], instance=instance, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error.cause
    assert failure.cls_name == ReportedFilesError.__name__
    assert "the job sent 0 file lists; expected one" in failure.message
    assert table.refresh().current_snapshot() is None
    # the code was not uploaded again: same objects, same times
    assert _code_objects() == uploaded

    emr = aws_client("emr-serverless")
    [summary] = emr.list_job_runs(applicationId=emr_application)["jobRuns"]
    run = emr.get_job_run(applicationId=emr_application, jobRunId=summary["id"])["jobRun"]
    assert run["state"] == "SUCCESS"
    assert run["name"] == "lakehouse-staging.values-2024-03-01"
    assert run["executionRole"] == ROLE
    submit = run["jobDriver"]["sparkSubmit"]
    assert submit["entryPoint"] == script_uri
    parameters = submit["sparkSubmitParameters"]
    ours, _, pipes = parameters.partition(" --conf spark.emr-serverless.driverEnv.DAGSTER_PIPES")
    assert ours == f"--py-files {archive_uri} --conf spark.sql.session.timeZone=UTC"
    # Pipes' bootstrap: the context as an S3 object under the code prefix (removed once the run
    # ended), the messages on the driver's stdout (read back from CloudWatch)
    variables = dict(
        item.split("=", 1)
        for item in ("DAGSTER_PIPES" + pipes).split(" --conf spark.emr-serverless.driverEnv.")
    )
    context = decode_param(variables["DAGSTER_PIPES_CONTEXT"])
    assert context["bucket"] == WAREHOUSE_BUCKET
    assert context["key"].startswith("lakehouse/_spark_jobs/pipes/")
    assert decode_param(variables["DAGSTER_PIPES_MESSAGES"]) == {"stdio": "stdout"}
    assert context["key"] not in _code_objects()
    assert result.run_id in run["tags"].values()
