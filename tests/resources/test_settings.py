"""One settings object: flat variable names in, sections out, and a named error for a wrong value."""

import datetime as dt
import re

import dagster as dg
import pytest

from lakehouse_assets.definitions import defs
from resources.settings import (
    PROJECT_ROOT,
    VARIABLES,
    AwsSettings,
    MaintenanceSettings,
    ScheduleSettings,
    SparkSettings,
    load_settings,
)

# The public interface: README and docs/deployment.md name these; renaming one breaks deployments.
PUBLIC_VARIABLES = {
    "LAKEHOUSE_ENV",
    "LAKEHOUSE_HOME",
    "LAKEHOUSE_DEPLOYMENT",
    "LAKEHOUSE_PANDAS_DAYS_PER_RUN",
    "LAKEHOUSE_CATALOG_URI",
    "LAKEHOUSE_SPARK_THRESHOLD_BYTES",
    "LAKEHOUSE_SPARK_MASTER",
    "LAKEHOUSE_SPARK_REMOTE",
    "LAKEHOUSE_SPARK_CONF",
    "LAKEHOUSE_SCHEDULE_TIMEZONE",
    "LAKEHOUSE_SCHEDULE_TIME",
    "LAKEHOUSE_SCHEDULE_LAG_DAYS",
    "LAKEHOUSE_MAINTENANCE_TIME",
    "LAKEHOUSE_LANDING_URI",
    "LAKEHOUSE_WAREHOUSE_URI",
    "LAKEHOUSE_GLUE_DATABASE_PREFIX",
    "LAKEHOUSE_NOTIFY_FROM",
    "LAKEHOUSE_NOTIFY_TO",
    "LAKEHOUSE_METRICS_NAMESPACE",
    "LAKEHOUSE_FILE_IO",
    "LAKEHOUSE_NOTIFY_LEDGER_URI",
    "LAKEHOUSE_EXPORTS_URI",
    "LAKEHOUSE_SPARK_SUBMIT",
    "LAKEHOUSE_SPARK_EMR_APPLICATION_ID",
    "LAKEHOUSE_SPARK_EMR_EXECUTION_ROLE_ARN",
    "LAKEHOUSE_SPARK_EMR_CODE_URI",
    "LAKEHOUSE_SPARK_EMR_PYTHON_ENVIRONMENT_URI",
}
AWS = {
    "LAKEHOUSE_ENV": "aws",
    "LAKEHOUSE_LANDING_URI": "s3://acme-landing/lakehouse/",
    "LAKEHOUSE_WAREHOUSE_URI": "s3://acme-warehouse/lakehouse",
    "LAKEHOUSE_NOTIFY_FROM": "lakehouse@example.com",
    "LAKEHOUSE_NOTIFY_TO": "data-team@example.com, oncall@example.com",
}
PACKAGES = ("lakehouse_assets", "resources", "io_managers", "checks")
READS_ENVIRONMENT = re.compile(r"\bos\.(environ|getenv)\b|\bfrom os import\b.*\b(environ|getenv)\b")
# pyspark's launcher reads the worker interpreter and the driver address from the environment;
# the session sets them (if unset) before starting Spark, and reads nothing back
WRITES_FOR_PYSPARK = re.compile(r'os\.environ\.setdefault\("(PYSPARK_PYTHON|SPARK_LOCAL_IP)", ')


def set_all(monkeypatch, variables: dict[str, str]) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def test_the_variables_keep_their_names():
    assert set(VARIABLES) == PUBLIC_VARIABLES
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert sorted(name for name in PUBLIC_VARIABLES if f"`{name}`" not in readme) == []


def test_defaults_in_sections(settings):
    assert settings.env == "local" and settings.aws is None and settings.deployment == "local"
    assert settings.spark == SparkSettings(threshold_bytes=128 * 1024 * 1024, master="local[*]")
    assert settings.spark.remote is None and settings.spark.conf == {}
    assert settings.schedule == ScheduleSettings(timezone="UTC", time=dt.time(2, 0), lag_days=1)
    assert settings.maintenance == MaintenanceSettings(time=dt.time(4, 0))
    assert settings.pandas_days_per_run == 31


def test_flat_variables_fill_the_sections(settings, monkeypatch, tmp_path):
    set_all(
        monkeypatch,
        {
            "LAKEHOUSE_HOME": str(tmp_path / "elsewhere" / ".." / "state"),
            "LAKEHOUSE_DEPLOYMENT": "staging",
            "LAKEHOUSE_PANDAS_DAYS_PER_RUN": "7",
            "LAKEHOUSE_SPARK_THRESHOLD_BYTES": "0",
            "LAKEHOUSE_SPARK_MASTER": "yarn",
            "LAKEHOUSE_SPARK_REMOTE": "sc://connect:15002",
            "LAKEHOUSE_SPARK_CONF": '{"spark.executor.memory": "8g", "spark.sql.shuffle.partitions": 64}',
            "LAKEHOUSE_SCHEDULE_TIMEZONE": "America/New_York",
            "LAKEHOUSE_SCHEDULE_TIME": "02:30",
            "LAKEHOUSE_SCHEDULE_LAG_DAYS": "0",
            "LAKEHOUSE_MAINTENANCE_TIME": "05:15",
        },
    )
    settings = load_settings()
    assert settings.home == tmp_path / "state"
    assert settings.deployment == "staging" and settings.pandas_days_per_run == 7
    # Spark settings are strings, whatever JSON type they were written in
    assert settings.spark == SparkSettings(
        threshold_bytes=0,
        master="yarn",
        remote="sc://connect:15002",
        conf={"spark.executor.memory": "8g", "spark.sql.shuffle.partitions": "64"},
    )
    assert settings.schedule == ScheduleSettings(timezone="America/New_York", time=dt.time(2, 30), lag_days=0)
    assert settings.maintenance == MaintenanceSettings(time=dt.time(5, 15))


def test_the_catalog_is_sqlite_under_home_unless_a_database_url_is_given(settings, monkeypatch):
    assert settings.catalog_uri == f"sqlite:///{settings.home / 'catalog.db'}"
    monkeypatch.setenv("LAKEHOUSE_CATALOG_URI", "postgresql+psycopg://team:secret@db:5432/lakehouse")
    assert load_settings().catalog_uri == "postgresql+psycopg://team:secret@db:5432/lakehouse"
    # a bare postgresql:// means the driver the product ships, psycopg (3), whatever SQLAlchemy's default
    monkeypatch.setenv("LAKEHOUSE_CATALOG_URI", " postgresql://team@db/lakehouse ")
    assert load_settings().catalog_uri == "postgresql+psycopg://team@db/lakehouse"


def test_an_empty_variable_counts_as_unset(settings, monkeypatch):
    for name in ("LAKEHOUSE_SPARK_THRESHOLD_BYTES", "LAKEHOUSE_SPARK_REMOTE", "LAKEHOUSE_SCHEDULE_TIME"):
        monkeypatch.setenv(name, "")
    assert load_settings() == settings


def test_the_aws_section_is_read_on_aws_only(settings, monkeypatch):
    set_all(monkeypatch, {**AWS, "LAKEHOUSE_ENV": "local", "LAKEHOUSE_WAREHOUSE_URI": "/not/s3"})
    assert load_settings().aws is None
    set_all(monkeypatch, AWS)
    settings = load_settings()
    assert settings.aws == AwsSettings(
        landing_uri="s3://acme-landing/lakehouse",
        warehouse_uri="s3://acme-warehouse/lakehouse",
        glue_database_prefix="",
        notify_from="lakehouse@example.com",
        notify_to=("data-team@example.com", "oncall@example.com"),
        metrics_namespace="MedallionLakehouse",
        notify_ledger_uri="s3://acme-warehouse/lakehouse/_notifications",
        file_io="pyiceberg.io.pyarrow.PyArrowFileIO",
    )
    assert settings.deployment == "aws"


def test_aws_options_and_the_deployment_named_after_the_prefix(settings, monkeypatch):
    set_all(
        monkeypatch,
        {
            **AWS,
            "LAKEHOUSE_GLUE_DATABASE_PREFIX": "prod_",
            "LAKEHOUSE_METRICS_NAMESPACE": "Lakehouse/Prod",
            "LAKEHOUSE_FILE_IO": "fsspec",
            "LAKEHOUSE_NOTIFY_LEDGER_URI": "s3://acme-ledger/mails",
        },
    )
    settings = load_settings()
    assert settings.deployment == "prod"
    assert settings.aws.metrics_namespace == "Lakehouse/Prod"
    assert settings.aws.file_io == "pyiceberg.io.fsspec.FsspecFileIO"
    assert settings.aws.notify_ledger_uri == "s3://acme-ledger/mails"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LAKEHOUSE_ENV", "gcp", "LAKEHOUSE_ENV='gcp' is not one of local, aws (for example aws)"),
        (
            "LAKEHOUSE_SPARK_THRESHOLD_BYTES",
            "128MiB",
            "LAKEHOUSE_SPARK_THRESHOLD_BYTES='128MiB' is not a whole number of bytes, 0 or more "
            "(for example 134217728)",
        ),
        (
            "LAKEHOUSE_PANDAS_DAYS_PER_RUN",
            "0",
            "LAKEHOUSE_PANDAS_DAYS_PER_RUN='0' is not a whole number of days, 1 or more (for example 31)",
        ),
        (
            "LAKEHOUSE_SCHEDULE_LAG_DAYS",
            "-1",
            "LAKEHOUSE_SCHEDULE_LAG_DAYS='-1' is not a whole number of days, 0 or more (for example 1)",
        ),
        (
            "LAKEHOUSE_SPARK_CONF",
            "{spark.executor.memory: 8g}",
            "LAKEHOUSE_SPARK_CONF='{spark.executor.memory: 8g}' is not a JSON object of Spark settings "
            '(for example {"spark.executor.memory": "8g"})',
        ),
        (
            "LAKEHOUSE_SPARK_CONF",
            '["spark.executor.memory=8g"]',
            "LAKEHOUSE_SPARK_CONF='[\"spark.executor.memory=8g\"]' is not a JSON object of Spark settings",
        ),
        (
            "LAKEHOUSE_CATALOG_URI",
            "db:5432/lakehouse",
            "LAKEHOUSE_CATALOG_URI='db:5432/lakehouse' is not a SQLAlchemy database URL "
            "(for example postgresql+psycopg://lakehouse:secret@db:5432/lakehouse)",
        ),
        (
            "LAKEHOUSE_SCHEDULE_TIME",
            "2am",
            "LAKEHOUSE_SCHEDULE_TIME='2am' is not a time of day (for example 02:00)",
        ),
        (
            "LAKEHOUSE_MAINTENANCE_TIME",
            "24:00",
            "LAKEHOUSE_MAINTENANCE_TIME='24:00' is not a time of day (for example 04:00)",
        ),
        (
            "LAKEHOUSE_SCHEDULE_TIMEZONE",
            "Mars/Olympus_Mons",
            "LAKEHOUSE_SCHEDULE_TIMEZONE='Mars/Olympus_Mons' is not an IANA time zone "
            "(for example America/New_York)",
        ),
    ],
    ids=lambda value: re.sub(r"\W", "_", value)[:40].upper(),
)
def test_a_malformed_value_is_named_with_an_example(settings, monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=re.escape(message)):
        load_settings()


def test_every_wrong_variable_is_named_at_once(settings, monkeypatch):
    set_all(
        monkeypatch,
        {
            **AWS,
            "LAKEHOUSE_WAREHOUSE_URI": "warehouse",
            "LAKEHOUSE_NOTIFY_FROM": " ",
            "LAKEHOUSE_NOTIFY_TO": "",
        },
    )
    with pytest.raises(ValueError) as raised:
        load_settings()
    assert str(raised.value).splitlines() == [
        "LAKEHOUSE_WAREHOUSE_URI='warehouse' is not an s3://bucket/prefix URI "
        "(for example s3://acme-warehouse/lakehouse)",
        "LAKEHOUSE_ENV=aws needs LAKEHOUSE_NOTIFY_FROM (for example lakehouse@example.com)",
        "LAKEHOUSE_ENV=aws needs LAKEHOUSE_NOTIFY_TO (for example data-team@example.com,oncall@example.com)",
    ]


def test_the_definitions_pass_the_settings_on(settings, monkeypatch):
    set_all(
        monkeypatch,
        {
            "LAKEHOUSE_SCHEDULE_TIMEZONE": "Europe/Paris",
            "LAKEHOUSE_SCHEDULE_TIME": "01:45",
            "LAKEHOUSE_SCHEDULE_LAG_DAYS": "2",
            "LAKEHOUSE_MAINTENANCE_TIME": "05:30",
            "LAKEHOUSE_PANDAS_DAYS_PER_RUN": "7",
        },
    )
    definitions = defs()
    schedules = {schedule.name: schedule for schedule in definitions.schedules}
    daily, maintenance = schedules["daily_tables_daily"], schedules["table_maintenance_daily"]
    assert (daily.cron_schedule, daily.execution_timezone) == ("45 1 * * *", "Europe/Paris")
    assert "2 day(s) before" in daily.description
    assert (maintenance.cron_schedule, maintenance.execution_timezone) == ("30 5 * * *", "Europe/Paris")
    graph = definitions.resolve_asset_graph()
    policies = {
        key.to_user_string(): graph.get(key).backfill_policy
        for key in graph.get_all_asset_keys()
        if graph.get(key).is_partitioned
    }
    assert policies["staging/flights"] == dg.BackfillPolicy.multi_run(max_partitions_per_run=7)


def test_only_settings_reads_the_environment():
    """`os.environ` and `os.getenv` belong to resources/settings.py; a LAKEHOUSE_ variable is
    validated there or read with `dg.EnvVar`, never both."""
    found = []
    for package in PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            relative = path.relative_to(PROJECT_ROOT).as_posix()
            if relative == "resources/settings.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if READS_ENVIRONMENT.search(line) and not (
                    relative == "resources/spark/session.py" and WRITES_FOR_PYSPARK.search(line)
                ):
                    found.append(f"{relative}:{number}: {line.strip()}")
                for name in re.findall(r"EnvVar(?:\.int)?\(\s*[\"'](\w+)", line):
                    if name in VARIABLES:
                        found.append(f"{relative}:{number}: {name} is validated in settings")
    assert found == []


def test_spark_submit_selects_the_job_route_and_emr_serverless_names_what_it_lacks(settings, monkeypatch):
    from resources.environment import spark_job_for

    assert settings.spark.submit is None and spark_job_for(settings) is None
    monkeypatch.setenv("LAKEHOUSE_SPARK_SUBMIT", "local")
    monkeypatch.setenv("LAKEHOUSE_SPARK_MASTER", "local[1]")
    job = spark_job_for(load_settings())
    assert (job.route, job.master) == ("local", "local[1]")
    monkeypatch.setenv("LAKEHOUSE_SPARK_SUBMIT", "emr-serverless")
    monkeypatch.setenv("LAKEHOUSE_SPARK_EMR_EXECUTION_ROLE_ARN", "arn:aws:iam::123456789012:role/emr")
    with pytest.raises(ValueError) as error:
        load_settings()
    assert str(error.value) == (
        "LAKEHOUSE_SPARK_SUBMIT=emr-serverless needs LAKEHOUSE_SPARK_EMR_APPLICATION_ID, "
        "LAKEHOUSE_SPARK_EMR_CODE_URI"
    )
    monkeypatch.setenv("LAKEHOUSE_SPARK_EMR_APPLICATION_ID", "00abc")
    monkeypatch.setenv("LAKEHOUSE_SPARK_EMR_CODE_URI", "s3://code/jobs/")
    job = spark_job_for(load_settings())
    assert (job.route, job.emr_application_id, job.emr_code_uri) == (
        "emr-serverless",
        "00abc",
        "s3://code/jobs",
    )
    monkeypatch.setenv("LAKEHOUSE_SPARK_SUBMIT", "yarn")
    with pytest.raises(ValueError, match="LAKEHOUSE_SPARK_SUBMIT='yarn' is not one of local, emr-serverless"):
        load_settings()
