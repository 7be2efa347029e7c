"""The code location's one entry point: the defs folder's components (a dataset or a model per
contract) and what the whole location shares: jobs, schedules, run sensors, resources, executor."""

import gc

import dagster as dg

from io_managers.iceberg_io_manager import IcebergIOManager
from lakehouse_assets.automation.automation_sensor import build_automation_sensor
from lakehouse_assets.automation.jobs import build_jobs
from lakehouse_assets.automation.maintenance import build_maintenance_schedule, table_maintenance_job
from lakehouse_assets.automation.schedules import build_schedules
from lakehouse_assets.components.defs_folder import load_folder
from lakehouse_assets.monitoring.run_sensors import RUN_SENSORS
from resources.environment import resources_for
from resources.settings import Settings, load_settings

# Everything imported so far (Dagster, pydantic, the contract models) lives as long as the process.
# Moved out of the collector's reach, the full collections that follow, including the one at exit,
# no longer walk its ~120k objects: about 0.7 s of CPU off `dagster definitions validate` (bench/REPORT.md,
# case 5). Reference counting still frees these objects; only cycles among them stay.
gc.freeze()


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
    # On AWS the arrival sensors start with the deployment; locally they are switched on in the UI.
    arrivals = dg.DefaultSensorStatus.RUNNING if settings.aws else dg.DefaultSensorStatus.STOPPED
    folder = load_folder(arrivals, pandas_days_per_run=settings.pandas_days_per_run)
    contracts = list(folder.contracts)
    location = dg.Definitions(
        # one job and schedule per partitions definition: datasets with their own ranges live side by side
        jobs=[*build_jobs(contracts), table_maintenance_job],
        schedules=[
            *build_schedules(contracts, settings.schedule),
            build_maintenance_schedule(settings.maintenance, settings.schedule.timezone),
        ],
        # declared, not Dagster's default (created STOPPED): see automation/automation_sensor.py
        sensors=[*RUN_SENSORS, build_automation_sensor(dg.DefaultSensorStatus.RUNNING)],
        resources=build_resources(settings),
        # Steps of one partition are small: one process avoids paying the imports once per step.
        executor=dg.in_process_executor,
    )
    return dg.Definitions.merge(folder.definitions, location)
