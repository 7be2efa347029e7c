"""Where the product keeps its state, chosen by environment variables only.

`LAKEHOUSE_ENV=local` (the default) keeps everything under `LAKEHOUSE_HOME`: the SQLite Iceberg
catalog, the warehouse, the landing zone, the metrics and the outbox. `LAKEHOUSE_ENV=aws` reads
the `LAKEHOUSE_*` variables of `AwsSettings`; the region, the credentials and the endpoints
(`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, ...) come from the AWS default chain, never from files.
Spark, in every environment: `LAKEHOUSE_SPARK_THRESHOLD_BYTES` (partitions at least this large
run on Spark; 0 sends all), `LAKEHOUSE_SPARK_MASTER`, `LAKEHOUSE_SPARK_REMOTE` (Spark Connect) and
`LAKEHOUSE_SPARK_CONF` (JSON).
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from resources.spark.compute import DEFAULT_SPARK_THRESHOLD_BYTES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUPPORTED_ENVIRONMENTS = ("local", "aws")
# LAKEHOUSE_FILE_IO: a short name or the dotted path of any pyiceberg FileIO
FILE_IO = {"pyarrow": "pyiceberg.io.pyarrow.PyArrowFileIO", "fsspec": "pyiceberg.io.fsspec.FsspecFileIO"}


@dataclass(frozen=True)
class AwsSettings:
    """Where the product lives on AWS. Nothing secret: credentials come from the default chain."""

    landing_uri: str
    warehouse_uri: str
    glue_database_prefix: str
    notify_from: str
    notify_to: tuple[str, ...]
    metrics_namespace: str = "MedallionLakehouse"
    # one marker object per e-mail sent, so a retried event is not e-mailed twice
    notify_ledger_uri: str = ""
    # pyarrow's S3 filesystem is pyiceberg's default; fsspec (s3fs) is the alternative
    file_io: str = "pyiceberg.io.pyarrow.PyArrowFileIO"


@dataclass(frozen=True)
class Settings:
    env: str
    home: Path
    # the value of the `environment` metric dimension and the e-mail subject tag (dev, prod, ...)
    deployment: str = "local"
    aws: AwsSettings | None = None
    notify_from: str = "lakehouse@localhost"
    notify_to: tuple[str, ...] = ("data-team@localhost",)
    spark_threshold_bytes: int = DEFAULT_SPARK_THRESHOLD_BYTES
    spark_master: str = "local[*]"
    spark_remote: str | None = None
    spark_conf: dict = field(default_factory=dict)

    @property
    def catalog_uri(self) -> str:
        return f"sqlite:///{self.home / 'catalog.db'}"

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def metrics_dir(self) -> Path:
        return self.home / "metrics"


def load_settings() -> Settings:
    env = os.environ.get("LAKEHOUSE_ENV", "local")
    if env not in SUPPORTED_ENVIRONMENTS:
        raise ValueError(f"LAKEHOUSE_ENV={env!r} is not one of {', '.join(SUPPORTED_ENVIRONMENTS)}")
    home = Path(os.environ.get("LAKEHOUSE_HOME", PROJECT_ROOT / ".lakehouse")).resolve()
    spark = _spark_settings()
    if env == "local":
        return Settings(
            env=env, home=home, deployment=os.environ.get("LAKEHOUSE_DEPLOYMENT", "local"), **spark
        )
    aws = _aws_settings()
    deployment = os.environ.get("LAKEHOUSE_DEPLOYMENT") or aws.glue_database_prefix.strip("_") or "aws"
    return Settings(
        env=env,
        home=home,
        deployment=deployment,
        aws=aws,
        notify_from=aws.notify_from,
        notify_to=aws.notify_to,
        **spark,
    )


def _spark_settings() -> dict:
    threshold = os.environ.get("LAKEHOUSE_SPARK_THRESHOLD_BYTES")
    try:
        spark_conf = json.loads(os.environ.get("LAKEHOUSE_SPARK_CONF", "{}"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"LAKEHOUSE_SPARK_CONF is not a JSON object of Spark settings: {exc}") from None
    return {
        "spark_threshold_bytes": int(threshold) if threshold else DEFAULT_SPARK_THRESHOLD_BYTES,
        "spark_master": os.environ.get("LAKEHOUSE_SPARK_MASTER", "local[*]"),
        "spark_remote": os.environ.get("LAKEHOUSE_SPARK_REMOTE") or None,
        "spark_conf": {str(key): str(value) for key, value in spark_conf.items()},
    }


def _required(name: str, example: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ValueError(f"LAKEHOUSE_ENV=aws needs {name} (for example {example})")
    return value


def _s3_uri(name: str, example: str) -> str:
    value = _required(name, example).rstrip("/")
    if not value.startswith("s3://") or len(value) <= len("s3://"):
        raise ValueError(f"{name}={value!r} is not an s3://bucket/prefix URI (for example {example})")
    return value


def _aws_settings() -> AwsSettings:
    example = "data-team@example.com,oncall@example.com"
    recipients = tuple(
        address.strip() for address in os.environ.get("LAKEHOUSE_NOTIFY_TO", "").split(",") if address.strip()
    )
    if not recipients:
        raise ValueError(f"LAKEHOUSE_ENV=aws needs LAKEHOUSE_NOTIFY_TO (for example {example})")
    warehouse_uri = _s3_uri("LAKEHOUSE_WAREHOUSE_URI", "s3://acme-warehouse/lakehouse")
    return AwsSettings(
        landing_uri=_s3_uri("LAKEHOUSE_LANDING_URI", "s3://acme-landing/lakehouse"),
        warehouse_uri=warehouse_uri,
        # may be empty (one account per environment), so not required
        glue_database_prefix=os.environ.get("LAKEHOUSE_GLUE_DATABASE_PREFIX", ""),
        notify_from=_required("LAKEHOUSE_NOTIFY_FROM", "lakehouse@example.com"),
        notify_to=recipients,
        metrics_namespace=os.environ.get("LAKEHOUSE_METRICS_NAMESPACE", "MedallionLakehouse"),
        notify_ledger_uri=os.environ.get("LAKEHOUSE_NOTIFY_LEDGER_URI") or f"{warehouse_uri}/_notifications",
        file_io=FILE_IO.get(
            os.environ.get("LAKEHOUSE_FILE_IO", "pyarrow"), os.environ.get("LAKEHOUSE_FILE_IO", "")
        ),
    )
