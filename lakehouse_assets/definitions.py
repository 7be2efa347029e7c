"""The code location's one entry point: contracts -> assets, resources for the environment."""

import functools
from pathlib import Path

import dagster as dg

from io_managers.iceberg_io_manager import IcebergIOManager
from lakehouse_assets.assets.factory import build_assets
from lakehouse_assets.automation.arrival_sensors import build_arrival_sensors
from lakehouse_assets.automation.jobs import build_jobs
from lakehouse_assets.automation.maintenance import build_maintenance_schedule, table_maintenance_job
from lakehouse_assets.automation.schedules import build_schedules
from lakehouse_assets.contracts.contract import Contract, load_contracts
from lakehouse_assets.monitoring.run_sensors import RUN_SENSORS
from resources.environment import resources_for
from resources.settings import Settings, load_settings

PACKAGE_DIR = Path(__file__).resolve().parent
CONTRACT_DIRS = (PACKAGE_DIR / "defs" / "datasets", PACKAGE_DIR / "defs" / "models")


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
    contract_files: tuple[tuple[str, int, int], ...], pandas_days_per_run: int
) -> tuple[tuple[Contract, ...], tuple[dg.AssetsDefinition, ...]]:
    # Dagster calls `defs()` twice per load of the code location (once to resolve the lazy
    # definitions, once to build the repository); the second call reuses what the first parsed and
    # built, as long as no contract file and no setting the assets use changed in between.
    contracts = load_contracts(*CONTRACT_DIRS)
    return tuple(contracts), tuple(build_assets(contracts, pandas_days_per_run))


def build_resources(settings: Settings) -> dict:
    """The environment's resources and the Iceberg IO manager that writes every asset with them."""
    resources = resources_for(settings)
    return {
        **resources,
        "io_manager": IcebergIOManager(catalog=resources["catalog"], compute=resources["compute"]),
    }


@dg.definitions
def defs() -> dg.Definitions:
    # the one read of the environment; each builder below gets the part it needs
    settings = load_settings()
    contracts, assets = _contracts_and_assets(_contract_files(), settings.pandas_days_per_run)
    # On AWS the arrival sensors start with the deployment; locally they are switched on in the UI.
    arrivals = dg.DefaultSensorStatus.RUNNING if settings.aws else dg.DefaultSensorStatus.STOPPED
    return dg.Definitions(
        assets=assets,
        jobs=[*build_jobs(list(contracts)), table_maintenance_job],
        schedules=[
            *build_schedules(list(contracts), settings.schedule),
            build_maintenance_schedule(settings.maintenance, settings.schedule.timezone),
        ],
        sensors=[*build_arrival_sensors(list(contracts), default_status=arrivals), *RUN_SENSORS],
        resources=build_resources(settings),
        # Steps of one partition are small: one process avoids paying the imports once per step.
        executor=dg.in_process_executor,
    )
