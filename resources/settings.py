"""Every `LAKEHOUSE_*` variable, read once into one `Settings` object and validated there.

`load_settings()` builds it; the definitions call it once per `defs()` and hand each builder its
section, the CLI calls it once per command. This is the only module of the product that reads the
process environment (tests/resources/test_settings.py keeps it so). No `LAKEHOUSE_*` variable is
read with `dg.EnvVar` instead: a missing or malformed value stops the code location from loading,
with an error that names the variable and shows an example, rather than failing its first run.

The variable names are a public interface (README, docs/deployment.md) and stay flat; the sections
are how the code receives them:

    env, home, deployment, pandas_days_per_run      LAKEHOUSE_ENV, _HOME, _DEPLOYMENT, _PANDAS_DAYS_PER_RUN
    catalog_uri                                     LAKEHOUSE_CATALOG_URI
    spark.threshold_bytes, .master, .remote, .conf  LAKEHOUSE_SPARK_THRESHOLD_BYTES, _MASTER, _REMOTE, _CONF
    spark.submit, .emr_application_id, ...          LAKEHOUSE_SPARK_SUBMIT, _EMR_APPLICATION_ID, ... (staging
                                                    steps on Spark as a job through Dagster Pipes)
    schedule.timezone, .time, .lag_days             LAKEHOUSE_SCHEDULE_TIMEZONE, _TIME, _LAG_DAYS
    maintenance.time                                LAKEHOUSE_MAINTENANCE_TIME
    aws.landing_uri, .warehouse_uri, ...            LAKEHOUSE_LANDING_URI, _WAREHOUSE_URI, ... (AwsSettings)

`LAKEHOUSE_ENV=local` (the default) keeps everything under `LAKEHOUSE_HOME`: the SQLite Iceberg
catalog, the warehouse, the landing zone, the exports, the metrics and the outbox. A team moves the
catalog to PostgreSQL with `LAKEHOUSE_CATALOG_URI` (deploy/team/). `LAKEHOUSE_ENV=aws` also
reads the variables of `AwsSettings`, and only then. The region, the credentials and the endpoints
(`AWS_REGION`, `AWS_ENDPOINT_URL`, ...) are boto3's default chain, which this module never reads.
"""

import datetime as dt
import json
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from resources.spark.compute import DEFAULT_SPARK_THRESHOLD_BYTES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "LAKEHOUSE_"
# LAKEHOUSE_FILE_IO: a short name or the dotted path of any pyiceberg FileIO
FILE_IO = {"pyarrow": "pyiceberg.io.pyarrow.PyArrowFileIO", "fsspec": "pyiceberg.io.fsspec.FsspecFileIO"}
# A run's fixed cost (process start, code location load, Dagster's step events) is paid per run,
# so a month per run makes a year's backfill 12 runs instead of 52 weekly ones.
DEFAULT_PANDAS_DAYS_PER_RUN = 31


def _setting(default: Any = ..., *, means: str, example: object, **constraints: Any) -> Any:
    """A field whose `means` completes "LAKEHOUSE_X=value is not ..." in the error for a bad value."""
    return Field(default, description=means, examples=[example], **constraints)


def _s3_uri(value: object) -> object:
    if not isinstance(value, str):
        return value
    uri = value.strip().rstrip("/")
    if not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise ValueError("not an s3:// URI")
    return uri


S3Uri = Annotated[str, BeforeValidator(_s3_uri)]
# required on AWS: blank is as good as unset
Named = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
# what LAKEHOUSE_SPARK_SUBMIT=emr-serverless needs, by field
EMR_REQUIRED = ("emr_application_id", "emr_execution_role_arn", "emr_code_uri")


class SparkSettings(BaseModel, frozen=True):
    """Where Spark runs and which partitions go to it."""

    threshold_bytes: int = _setting(
        DEFAULT_SPARK_THRESHOLD_BYTES, means="a whole number of bytes, 0 or more", example=134217728, ge=0
    )
    master: str = _setting("local[*]", means="a Spark master URL", example="spark://host:7077")
    remote: str | None = _setting(None, means="a Spark Connect URL", example="sc://spark-connect:15002")
    # NoDecode: the JSON is parsed below, so that a bad one is reported like any other bad value
    conf: Annotated[dict[str, str], NoDecode] = _setting(
        {}, means="a JSON object of Spark settings", example='{"spark.executor.memory": "8g"}'
    )

    @field_validator("conf", mode="before")
    @classmethod
    def _json_object(cls, value: object) -> object:
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        return {str(key): str(item) for key, item in value.items()}

    # Staging steps chosen for Spark run as a job through Dagster Pipes instead of a session in the
    # Dagster process: under the PySpark wheel's spark-submit, or on EMR Serverless.
    submit: Literal["local", "emr-serverless"] | None = _setting(
        None, means="one of local, emr-serverless", example="emr-serverless"
    )
    emr_application_id: Named | None = _setting(
        None, means="an EMR Serverless application id", example="00fabcdefghijk09"
    )
    emr_execution_role_arn: Named | None = _setting(
        None, means="an IAM role ARN", example="arn:aws:iam::123456789012:role/lakehouse-emr-job"
    )
    # where the job's entry script and the product archive are uploaded (once per content)
    emr_code_uri: S3Uri | None = _setting(
        None, means="an s3://bucket/prefix URI", example="s3://acme-warehouse/lakehouse/_spark_jobs"
    )
    # a packed Python environment (venv-pack) for driver and executors; EMR's own Python otherwise
    emr_python_environment_uri: str | None = _setting(
        None, means="an s3:// URI of a .tar.gz", example="s3://acme-code/lakehouse-env.tar.gz"
    )

    @model_validator(mode="after")
    def _emr_complete(self) -> "SparkSettings":
        if self.submit == "emr-serverless":
            missing = [name for name in EMR_REQUIRED if getattr(self, name) is None]
            if missing:
                named = ", ".join(f"{ENV_PREFIX}SPARK_{name.upper()}" for name in missing)
                raise ValueError(f"{ENV_PREFIX}SPARK_SUBMIT=emr-serverless needs {named}")
        return self


class ScheduleSettings(BaseModel, frozen=True):
    """When the daily schedule ticks and which local date it runs (automation/schedules.py)."""

    timezone: str = _setting("UTC", means="an IANA time zone", example="America/New_York")
    time: dt.time = _setting(dt.time(2, 0), means="a time of day", example="02:00")
    lag_days: int = _setting(1, means="a whole number of days, 0 or more", example=1, ge=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone") from None
        return value


class MaintenanceSettings(BaseModel, frozen=True):
    """When the table maintenance job ticks, in the schedule's time zone."""

    time: dt.time = _setting(dt.time(4, 0), means="a time of day", example="04:00")


def _notification_ledger(data: dict[str, Any]) -> str:
    return f"{data['warehouse_uri']}/_notifications"


def _exports(data: dict[str, Any]) -> str:
    return f"{data['warehouse_uri']}/exports"


class AwsSettings(BaseSettings):
    """Where the product lives on AWS, read only when `LAKEHOUSE_ENV=aws`. Nothing secret:
    credentials come from the default chain. The variables carry no `AWS_` in their names, so this
    section reads them itself (same prefix) rather than as nested variables of `Settings`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True)

    landing_uri: S3Uri = _setting(means="an s3://bucket/prefix URI", example="s3://acme-landing/lakehouse")
    warehouse_uri: S3Uri = _setting(
        means="an s3://bucket/prefix URI", example="s3://acme-warehouse/lakehouse"
    )
    # may be empty (one account per environment), so not required
    glue_database_prefix: str = _setting("", means="a Glue database name prefix", example="dev_")
    notify_from: Named = _setting(means="an e-mail address", example="lakehouse@example.com")
    notify_to: Annotated[tuple[str, ...], NoDecode] = _setting(
        means="comma-separated e-mail addresses",
        example="data-team@example.com,oncall@example.com",
        min_length=1,
    )
    metrics_namespace: str = _setting(
        "MedallionLakehouse", means="a CloudWatch namespace", example="MedallionLakehouse"
    )
    # one marker object per e-mail sent, so a retried event is not e-mailed twice
    notify_ledger_uri: str = Field(
        default_factory=_notification_ledger,
        description="an s3:// URI",
        examples=["s3://acme-warehouse/lakehouse/_notifications"],
    )
    # where extracts are delivered to consumers (usually a bucket of their own); the warehouse's
    # `exports/` when not set
    exports_uri: S3Uri = Field(
        default_factory=_exports,
        description="an s3://bucket/prefix URI",
        examples=["s3://acme-exports/lakehouse"],
    )
    # pyarrow's S3 filesystem is pyiceberg's default; fsspec (s3fs) is the alternative
    file_io: str = _setting(
        FILE_IO["pyarrow"], means="pyarrow, fsspec or a pyiceberg FileIO class path", example="fsspec"
    )

    @field_validator("notify_to", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(address.strip() for address in value.split(",") if address.strip())
        return value

    @field_validator("file_io")
    @classmethod
    def _file_io_class(cls, value: str) -> str:
        return FILE_IO.get(value, value)


def _aws_when_asked(data: dict[str, Any]) -> AwsSettings | None:
    return AwsSettings() if data.get("env") == "aws" else None


def _sqlite_catalog(data: dict[str, Any]) -> str:
    return f"sqlite:///{data['home'] / 'catalog.db'}"


# a bare `postgresql://` is psycopg2 to SQLAlchemy 2.0 and psycopg (3) to 2.1: always the one the
# product ships, psycopg (3)
POSTGRES_SCHEMES = {"postgresql://": "postgresql+psycopg://", "postgres://": "postgresql+psycopg://"}


def _default_deployment(data: dict[str, Any]) -> str:
    aws = data.get("aws")
    if aws is None:
        return "local"
    return aws.glue_database_prefix.strip("_") or "aws"


class Settings(BaseSettings):
    """The environment, the state directory and the sections each part of the product receives."""

    # `LAKEHOUSE_SPARK_MASTER` is `spark.master`: one `_` after the section's name, the rest of the
    # variable is the field (so `LAKEHOUSE_SPARK_THRESHOLD_BYTES` is `spark.threshold_bytes`).
    # An empty variable counts as unset, as it always has.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        env_ignore_empty=True,
        frozen=True,
    )

    env: Literal["local", "aws"] = _setting("local", means="one of local, aws", example="aws")
    home: Path = _setting(PROJECT_ROOT / ".lakehouse", means="a directory", example="/srv/lakehouse")
    pandas_days_per_run: int = _setting(
        DEFAULT_PANDAS_DAYS_PER_RUN, means="a whole number of days, 1 or more", example=31, ge=1
    )
    # the Iceberg SQL catalog (LAKEHOUSE_ENV=local): SQLite under home unless a team shares one
    catalog_uri: str = Field(
        default_factory=_sqlite_catalog,
        description="a SQLAlchemy database URL",
        examples=["postgresql+psycopg://lakehouse:secret@db:5432/lakehouse"],
    )
    spark: SparkSettings = SparkSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    aws: AwsSettings | None = Field(default_factory=_aws_when_asked)
    # the value of the `environment` metric dimension and the e-mail subject tag (dev, prod, ...)
    deployment: str = Field(
        default_factory=_default_deployment, description="a deployment name", examples=["dev"]
    )

    @field_validator("home")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.resolve()

    @field_validator("catalog_uri")
    @classmethod
    def _database_url(cls, value: str) -> str:
        # checked by shape only: SQLAlchemy is not imported while the code location loads
        value = value.strip()
        if not re.fullmatch(r"[a-z][a-z0-9+]*://\S*", value):
            raise ValueError("not a SQLAlchemy database URL")
        for scheme, explicit in POSTGRES_SCHEMES.items():
            if value.startswith(scheme):
                return explicit + value.removeprefix(scheme)
        return value

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

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"


SECTIONS = ("spark", "schedule", "maintenance")


def _variables() -> dict[str, FieldInfo]:
    """Every variable the product reads, by name, with the field it fills."""
    variables = {}
    for name, field in Settings.model_fields.items():
        if name in SECTIONS:
            for inner, inner_field in field.annotation.model_fields.items():
                variables[f"{ENV_PREFIX}{name}_{inner}".upper()] = inner_field
        elif name != "aws":
            variables[f"{ENV_PREFIX}{name}".upper()] = field
    for name, field in AwsSettings.model_fields.items():
        variables[f"{ENV_PREFIX}{name}".upper()] = field
    return variables


VARIABLES = _variables()
AWS_VARIABLES = frozenset(f"{ENV_PREFIX}{name}".upper() for name in AwsSettings.model_fields)


def _variable(location: tuple[int | str, ...]) -> str:
    depth = 2 if location[0] in SECTIONS else 1
    return ENV_PREFIX + "_".join(str(part) for part in location[:depth]).upper()


def _blank(value: object) -> bool:
    return isinstance(value, str | tuple) and not "".join(value).strip()


def _explain(error: dict[str, Any]) -> str:
    name = _variable(error["loc"])
    field = VARIABLES.get(name)
    if field is None:
        # a check across a section's variables, whose message names them itself
        if error["type"] == "value_error" and len(error["loc"]) == 1:
            return str(error["ctx"]["error"])
        return f"{name}: {error['msg']}"
    example = field.examples[0] if field.examples else None
    # only the AWS section has required variables; there, blank is as good as unset
    if error["type"] == "missing" or (name in AWS_VARIABLES and _blank(error["input"])):
        return f"LAKEHOUSE_ENV=aws needs {name} (for example {example})"
    return f"{name}={error['input']!r} is not {field.description} (for example {example})"


def load_settings() -> Settings:
    """The settings of this process's environment; a ValueError names every variable that is wrong."""
    try:
        return Settings()
    except ValidationError as exc:
        # a section whose default depends on a field that failed is not built; that is no news
        errors = [error for error in exc.errors() if error["type"] != "default_factory_not_called"]
        raise ValueError("\n".join(_explain(error) for error in errors)) from None
