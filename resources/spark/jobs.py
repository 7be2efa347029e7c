"""Spark steps submitted as jobs through Dagster Pipes (`LAKEHOUSE_SPARK_SUBMIT`), where the Dagster
process must not hold a Spark session: locally under the PySpark wheel's own `spark-submit`, or on
EMR Serverless, which offers no Spark Connect endpoint.

The resource knows where the job runs and how to start it; what the job does (its entry script and
extras) is the caller's (`io_managers.spark_pipes`). For EMR Serverless the entry script and the
product archive (`resources.spark.artifacts`) are uploaded under `emr_code_uri` once per content:
the archive's name is its content hash, and the script is stored under its own hash.
"""

import hashlib
import sys
from pathlib import Path
from typing import Any, Literal

import dagster as dg

Route = Literal["local", "emr-serverless"]
# what the route's settings are called, for errors naming them
ENGINE_NAME = "spark-submit"
SETTING = "LAKEHOUSE_SPARK_SUBMIT"


def spark_submit_command(script: Path, master: str, conf: dict[str, str] | None = None) -> list[str]:
    """The command running `script` under the PySpark wheel's spark-submit, workers on this Python."""
    import pyspark

    spark_submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    settings = {
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.log.level": "WARN",
        **(conf or {}),
    }
    if master.startswith("local"):
        # a local job talks to itself only, over loopback
        settings.setdefault("spark.driver.host", "127.0.0.1")
        settings.setdefault("spark.driver.bindAddress", "127.0.0.1")
        settings.setdefault("spark.ui.enabled", "false")
    command = [str(spark_submit), "--master", master]
    for key, value in settings.items():
        command += ["--conf", f"{key}={value}"]
    return [*command, str(script)]


def emr_serverless_job_run(
    application_id: str,
    execution_role_arn: str,
    entry_point_uri: str,
    archive_uri: str,
    name: str,
    python_environment_uri: str | None = None,
) -> dict:
    """`start_job_run` parameters for `PipesEMRServerlessClient.run`: the uploaded entry script, the
    product archive on the Python path and, when given, a packed Python environment (pyarrow,
    pyiceberg, pandas, narwhals, pandera, dagster-pipes) for driver and executors."""
    parameters = [f"--py-files {archive_uri}", "--conf spark.sql.session.timeZone=UTC"]
    if python_environment_uri:
        parameters += [
            f"--conf spark.archives={python_environment_uri}#environment",
            "--conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python",
            "--conf spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON=./environment/bin/python",
            "--conf spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python",
        ]
    return {
        "applicationId": application_id,
        "executionRoleArn": execution_role_arn,
        "name": name,
        "jobDriver": {
            "sparkSubmit": {"entryPoint": entry_point_uri, "sparkSubmitParameters": " ".join(parameters)}
        },
    }


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key.strip("/")


class SparkJobResource(dg.ConfigurableResource):
    """Where a submitted Spark step runs (`route`), with the settings of that route."""

    route: Route
    # local: spark-submit's master and extra conf (the in-process session's, LAKEHOUSE_SPARK_MASTER/_CONF)
    master: str = "local[*]"
    conf: dict[str, str] = {}
    # emr-serverless
    emr_application_id: str | None = None
    emr_execution_role_arn: str | None = None
    emr_code_uri: str | None = None
    emr_python_environment_uri: str | None = None
    poll_interval_seconds: float = 5.0

    @property
    def engine(self) -> str:
        return ENGINE_NAME

    def run(self, context: dg.AssetExecutionContext, script: Path, extras: dict[str, Any], name: str):
        """Run `script` as a Spark job with `extras`; the completed Pipes invocation."""
        if self.route == "local":
            client = dg.PipesSubprocessClient()
            return client.run(
                context=context, command=spark_submit_command(script, self.master, self.conf), extras=extras
            )
        return self._run_on_emr_serverless(context, script, extras, name)

    def upload_code(self, script: Path, s3=None) -> tuple[str, str]:
        """The S3 URIs of the entry script and the product archive, uploaded when not there yet."""
        from botocore.exceptions import ClientError

        from resources.spark.artifacts import product_archive

        s3 = s3 or _s3_client()
        bucket, prefix = _split_s3(self.emr_code_uri or "")
        archive = product_archive()
        digest = hashlib.sha256(script.read_bytes()).hexdigest()[:20]
        uploads = {f"{script.stem}_{digest}{script.suffix}": script, archive.name: archive}
        uris = []
        for name, path in uploads.items():
            key = f"{prefix}/{name}" if prefix else name
            try:
                s3.head_object(Bucket=bucket, Key=key)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise
                s3.upload_file(str(path), bucket, key)
            uris.append(f"s3://{bucket}/{key}")
        return uris[0], uris[1]

    def start_job_run_params(self, script_uri: str, archive_uri: str, name: str) -> dict:
        return emr_serverless_job_run(
            self.emr_application_id or "",
            self.emr_execution_role_arn or "",
            script_uri,
            archive_uri,
            name,
            python_environment_uri=self.emr_python_environment_uri,
        )

    def _run_on_emr_serverless(
        self, context: dg.AssetExecutionContext, script: Path, extras: dict[str, Any], name: str
    ):
        import boto3
        from dagster_aws.pipes import (
            PipesCloudWatchMessageReader,
            PipesEMRServerlessClient,
            PipesS3ContextInjector,
        )

        s3 = _s3_client()
        script_uri, archive_uri = self.upload_code(script, s3)
        bucket, prefix = _split_s3(self.emr_code_uri or "")
        pipes_prefix = f"{prefix}/pipes/" if prefix else "pipes/"
        client = PipesEMRServerlessClient(
            client=boto3.client("emr-serverless"),
            # the context (extras: file lists, schema, rules) goes through S3: spark-submit
            # parameters, where the default injector puts it, are limited in length
            context_injector=PipesS3ContextInjector(bucket=bucket, client=s3, key_prefix=pipes_prefix),
            # the job's messages come back through its driver's CloudWatch logs
            message_reader=PipesCloudWatchMessageReader(client=boto3.client("logs")),
            poll_interval=self.poll_interval_seconds,
        )
        params = self.start_job_run_params(script_uri, archive_uri, name)
        return client.run(context=context, start_job_run_params=params, extras=extras)


def _s3_client():
    import boto3

    return boto3.client("s3")
