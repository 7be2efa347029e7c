"""A real AWS API server for the AWS tests: moto in server mode on loopback, reached over HTTP.

The product is pointed at it only through the documented environment variables
(`AWS_ENDPOINT_URL`, dummy credentials, a region and the `LAKEHOUSE_*` variables). One server per
test process (pytest-xdist worker); its state is reset before every test.
"""

import json
import logging
import urllib.request
from pathlib import Path

import boto3
import dagster as dg
import pytest
from moto.server import ThreadedMotoServer

from resources.aws import reset_clients
from resources.settings import Settings, load_settings

REGION = "eu-west-1"
LANDING_BUCKET = "acme-landing"
WAREHOUSE_BUCKET = "acme-warehouse"
SENDER = "lakehouse@example.com"
RECIPIENTS = ("data-team@example.com", "oncall@example.com")


@pytest.fixture(scope="session")
def moto_endpoint():
    # one line per request on stderr would bury the test output
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # port 0: the operating system picks a free port, so parallel workers never collide
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _post(url: str, document: dict | None = None) -> None:
    body = json.dumps(document).encode() if document is not None else None
    urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST")).close()


def configure_aws(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, tmp_path: Path) -> None:
    """The documented variables of a `dev` deployment, with the server as every service's endpoint;
    and a server emptied of what earlier tests left."""
    _post(f"{moto_endpoint}/moto-api/reset")
    # moto's model dump (read by `sent_emails`) fails on the parts of multipart uploads, whose
    # "restore" state it would advance; keeping that state still keeps the dump readable
    _post(
        f"{moto_endpoint}/moto-api/state-manager/set-transition",
        {"model_name": "s3::keyrestore", "transition": {"progression": "manual", "times": 1_000_000}},
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_GLUE"):
        monkeypatch.delenv(name, raising=False)
    variables = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        # no shared config or instance metadata of the machine running the tests
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "LAKEHOUSE_ENV": "aws",
        "LAKEHOUSE_HOME": str(tmp_path / "lakehouse"),
        "LAKEHOUSE_LANDING_URI": f"s3://{LANDING_BUCKET}/incoming",
        "LAKEHOUSE_WAREHOUSE_URI": f"s3://{WAREHOUSE_BUCKET}/lakehouse",
        "LAKEHOUSE_GLUE_DATABASE_PREFIX": "dev_",
        "LAKEHOUSE_NOTIFY_FROM": SENDER,
        "LAKEHOUSE_NOTIFY_TO": ",".join(RECIPIENTS),
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    # clients are built once per process; this test's must find this test's variables
    reset_clients()


@pytest.fixture
def aws_env(moto_endpoint, tmp_path, monkeypatch) -> str:
    configure_aws(monkeypatch, moto_endpoint, tmp_path)
    return moto_endpoint


def aws_client(service: str):
    """A plain boto3 client for the test's own reads; it finds the server the same way the product does."""
    return boto3.client(service)


def create_infrastructure() -> Settings:
    """What the deployment's infrastructure code creates before the product runs: two buckets and a
    verified sender identity (SES refuses unverified senders)."""
    s3 = aws_client("s3")
    for bucket in (LANDING_BUCKET, WAREHOUSE_BUCKET):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    aws_client("ses").verify_email_identity(EmailAddress=SENDER)
    return load_settings()


@pytest.fixture
def infrastructure(aws_env) -> Settings:
    return create_infrastructure()


def report_run(sensor, instance, resources: dict, result, failed: bool = False) -> None:
    """One evaluation of a run status sensor for a finished run, as the daemon would run it."""
    event = result.get_run_failure_event() if failed else result.get_run_success_event()
    with dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources=resources,
    ) as context:
        sensor(context.for_run_failure() if failed else context)


def tick(sensor: dg.SensorDefinition, instance, definitions: dg.Definitions, resources: dict, cursor=None):
    """One evaluation of a sensor, as the daemon would run it: the code location's resources and
    jobs (the run requests are resolved against the partitioned job the sensor targets)."""
    with dg.build_sensor_context(
        instance=instance, definitions=definitions, resources=resources, cursor=cursor
    ) as context:
        return sensor.evaluate_tick(context)


def sent_emails(endpoint: str) -> list[dict]:
    """The raw e-mails the server's SES accepted, from moto's model API."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json") as response:
        data = json.load(response)
    return data.get("ses", {}).get("RawMessage", [])
