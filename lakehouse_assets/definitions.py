"""The code location's one entry point: contracts -> assets, resources for the environment."""

import functools
from pathlib import Path

import dagster as dg

from io_managers.iceberg_io_manager import IcebergIOManager
from lakehouse_assets.contract_model import Contract, load_contracts
from lakehouse_assets.factory import build_assets
from lakehouse_assets.jobs import JOBS
from lakehouse_assets.maintenance import build_maintenance_schedule, table_maintenance_job
from lakehouse_assets.run_sensors import RUN_SENSORS
from lakehouse_assets.schedules import build_schedules
from lakehouse_assets.sensors import build_arrival_sensors
from lakehouse_assets.settings import Settings, load_settings
from resources.catalog import IcebergCatalogResource
from resources.compute import ComputeResource
from resources.landing_storage import LandingStorage, LocalLandingStorage
from resources.metrics import CloudWatchMetrics, JsonLinesMetrics, MetricsPublisher
from resources.notifications import Notifier, OutboxNotifier, SesNotifier
from resources.s3_landing_storage import S3LandingStorage
from resources.spark import SparkResource

PACKAGE_DIR = Path(__file__).resolve().parent
CONTRACT_DIRS = (PACKAGE_DIR / "contracts", PACKAGE_DIR / "models")


def _contract_files() -> tuple[tuple[str, int, int], ...]:
    """Each contract file's path, modification time and size: what the assets are built from."""
    return tuple(
        (str(path), stat.st_mtime_ns, stat.st_size)
        for directory in CONTRACT_DIRS
        for path in sorted(directory.glob("*.yaml"))
        for stat in (path.stat(),)
    )


@functools.cache
def _contracts_and_assets(
    contract_files: tuple[tuple[str, int, int], ...],
) -> tuple[tuple[Contract, ...], tuple[dg.AssetsDefinition, ...]]:
    # Dagster calls `defs()` twice per load of the code location (once to resolve the lazy
    # definitions, once to build the repository); the second call reuses what the first parsed and
    # built, as long as no contract file changed in between. Settings are read on every call.
    contracts = load_contracts(*CONTRACT_DIRS)
    return tuple(contracts), tuple(build_assets(contracts))


def build_resources(settings: Settings) -> dict:
    """The same resource keys in every environment; only the classes' arguments differ."""
    if settings.aws is None:
        catalog = IcebergCatalogResource.sqlite(settings.catalog_uri, settings.warehouse_dir.as_uri())
        landing: LandingStorage = LocalLandingStorage(root=str(settings.landing_dir))
        metrics: MetricsPublisher = JsonLinesMetrics(
            environment=settings.deployment, directory=str(settings.metrics_dir)
        )
        notifier: Notifier = OutboxNotifier(
            environment=settings.deployment,
            sender=settings.notify_from,
            recipients=list(settings.notify_to),
            directory=str(settings.outbox_dir),
        )
    else:
        aws = settings.aws
        catalog = IcebergCatalogResource.glue(aws.warehouse_uri, aws.glue_database_prefix, aws.file_io)
        # read from the environment when the resource is initialised (Dagster shows the variable's name)
        landing = S3LandingStorage(uri=dg.EnvVar("LAKEHOUSE_LANDING_URI"))
        metrics = CloudWatchMetrics(environment=settings.deployment, namespace=aws.metrics_namespace)
        notifier = SesNotifier(
            environment=settings.deployment,
            sender=dg.EnvVar("LAKEHOUSE_NOTIFY_FROM"),
            recipients=list(aws.notify_to),
            ledger_uri=aws.notify_ledger_uri,
        )
    spark = SparkResource(
        master=settings.spark_master, remote=settings.spark_remote, conf=settings.spark_conf
    )
    compute = ComputeResource(spark=spark, spark_threshold_bytes=settings.spark_threshold_bytes)
    return {
        "catalog": catalog,
        "compute": compute,
        "io_manager": IcebergIOManager(catalog=catalog, compute=compute),
        "landing_storage": landing,
        "metrics": metrics,
        "notifier": notifier,
    }


@dg.definitions
def defs() -> dg.Definitions:
    settings = load_settings()
    contracts, assets = _contracts_and_assets(_contract_files())
    # On AWS the arrival sensors start with the deployment; locally they are switched on in the UI.
    arrivals = dg.DefaultSensorStatus.RUNNING if settings.aws else dg.DefaultSensorStatus.STOPPED
    return dg.Definitions(
        assets=assets,
        jobs=[*JOBS, table_maintenance_job],
        schedules=[*build_schedules(), build_maintenance_schedule()],
        sensors=[*build_arrival_sensors(list(contracts), default_status=arrivals), *RUN_SENSORS],
        resources=build_resources(settings),
        # Steps of one partition are small: one process avoids paying the imports once per step.
        executor=dg.in_process_executor,
    )
