"""LAKEHOUSE_ENV=aws switches resources by configuration only; a missing variable is named."""

import dagster as dg
import pytest
from dagster_cloud_cli.config.models import load_dagster_cloud_yaml

from lakehouse_assets.definitions import build_resources, defs
from resources.exports import LocalExportStorage, S3ExportStorage
from resources.landing.s3 import S3LandingStorage
from resources.metrics import CloudWatchMetrics, JsonLinesMetrics
from resources.notifications.notifier import OutboxNotifier, SesNotifier
from resources.settings import PROJECT_ROOT, load_settings
from tests.aws.conftest import REGION

SENSORS = {f"{name}_arrivals" for name in ("airlines", "airports", "planes", "flights", "weather")} | {
    "report_successful_runs",
    "report_failed_runs",
}


def test_the_aws_code_location_loads_with_the_same_resource_keys(aws_env):
    definitions = defs()
    dg.Definitions.validate_loadable(definitions)
    assert {sensor.name for sensor in definitions.sensors} >= SENSORS
    resources = build_resources(load_settings())
    assert set(resources) == {
        "catalog",
        "compute",
        "exports",
        "io_manager",
        "landing_storage",
        "metrics",
        "notifier",
    }
    assert isinstance(resources["landing_storage"], S3LandingStorage)
    assert resources["exports"] == S3ExportStorage(uri_prefix="s3://acme-warehouse/lakehouse/exports")
    assert isinstance(resources["metrics"], CloudWatchMetrics)
    assert isinstance(resources["notifier"], SesNotifier)
    catalog = resources["catalog"]
    assert catalog.properties == {
        "py-catalog-impl": "resources.catalog.glue.PrefixedGlueCatalog",
        "lakehouse.database-prefix": "dev_",
        "warehouse": "s3://acme-warehouse/lakehouse",
        "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO",
        "s3.endpoint": aws_env,
        "s3.region": REGION,
        "glue.region": REGION,
    }
    # every caller names tables by layer; the catalog maps the layer to this environment's database
    glue = catalog.load()
    assert glue.identifier_to_database_and_table("raw.flights_rejects") == ("dev_raw", "flights_rejects")
    assert glue.identifier_to_database_and_table(("dev_raw", "flights")) == ("dev_raw", "flights")
    assert resources["metrics"].environment == resources["notifier"].environment == "dev"


def test_the_local_code_location_has_the_same_keys_and_its_twins(settings):
    resources = build_resources(settings)
    assert set(resources) == {
        "catalog",
        "compute",
        "exports",
        "io_manager",
        "landing_storage",
        "metrics",
        "notifier",
    }
    assert isinstance(resources["metrics"], JsonLinesMetrics)
    assert isinstance(resources["notifier"], OutboxNotifier)
    assert resources["exports"] == LocalExportStorage(root=str(settings.home / "exports"))
    assert resources["catalog"].properties["type"] == "sql"
    definitions = defs()
    sensor = next(s for s in definitions.sensors if s.name == "flights_arrivals")
    # locally the arrival sensors wait to be switched on; on AWS they start with the deployment
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LAKEHOUSE_LANDING_URI", "", "LAKEHOUSE_ENV=aws needs LAKEHOUSE_LANDING_URI"),
        (
            "LAKEHOUSE_WAREHOUSE_URI",
            "/data/warehouse",
            "LAKEHOUSE_WAREHOUSE_URI='/data/warehouse' is not an s3://",
        ),
        ("LAKEHOUSE_NOTIFY_TO", " , ", "LAKEHOUSE_ENV=aws needs LAKEHOUSE_NOTIFY_TO"),
    ],
)
def test_a_missing_or_wrong_variable_is_named(aws_env, monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        load_settings()


def test_dagster_cloud_yaml_is_valid_and_names_the_definitions_module():
    config = load_dagster_cloud_yaml((PROJECT_ROOT / "dagster_cloud.yaml").read_text())
    (location,) = config.locations
    assert location.code_source.module_name == "lakehouse_assets.definitions"
