"""The code location's one entry point: contracts -> assets, resources for the environment."""

from pathlib import Path

import dagster as dg

from io_managers.iceberg_io_manager import IcebergIOManager
from lakehouse_assets.contract_model import load_contracts
from lakehouse_assets.factory import build_assets
from lakehouse_assets.jobs import JOBS
from lakehouse_assets.maintenance import build_maintenance_schedule, table_maintenance_job
from lakehouse_assets.schedules import build_schedules
from lakehouse_assets.settings import Settings, load_settings
from resources.catalog import IcebergCatalogResource
from resources.compute import ComputeResource
from resources.spark import SparkResource
from resources.landing_storage import LocalLandingStorage

PACKAGE_DIR = Path(__file__).resolve().parent
CONTRACT_DIRS = (PACKAGE_DIR / "contracts", PACKAGE_DIR / "models")


def build_resources(settings: Settings) -> dict:
    if settings.env != "local":
        raise NotImplementedError(f"LAKEHOUSE_ENV={settings.env} is not available yet; use local")
    catalog = IcebergCatalogResource.sqlite(settings.catalog_uri, settings.warehouse_dir.as_uri())
    spark = SparkResource(master=settings.spark_master, remote=settings.spark_remote, conf=settings.spark_conf)
    threshold = {} if settings.spark_threshold_bytes is None else {"spark_threshold_bytes": settings.spark_threshold_bytes}
    compute = ComputeResource(spark=spark, **threshold)
    return {
        "catalog": catalog,
        "compute": compute,
        "io_manager": IcebergIOManager(catalog=catalog, compute=compute),
        "landing_storage": LocalLandingStorage(root=str(settings.landing_dir)),
    }


@dg.definitions
def defs() -> dg.Definitions:
    settings = load_settings()
    return dg.Definitions(
        assets=build_assets(load_contracts(*CONTRACT_DIRS)),
        jobs=[*JOBS, table_maintenance_job],
        schedules=[*build_schedules(), build_maintenance_schedule()],
        resources=build_resources(settings),
        # Steps of one partition are small: one process avoids paying the imports once per step.
        executor=dg.in_process_executor,
    )
