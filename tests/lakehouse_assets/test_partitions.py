"""Datasets with their own partitions live beside the demo's: another start date, months, hours.

The demo's contracts are loaded with three generated datasets (and a model on one of them), the
code location is validated as the UI loads it, and a partition of each generated dataset runs
through its own job, landing -> raw -> staging (-> output), into a real SQLite Iceberg catalog.
"""

import datetime as dt
import pathlib
import textwrap

import dagster as dg
import pytest
from pyiceberg.transforms import DayTransform, HourTransform, MonthTransform

from lakehouse_assets.automation.arrival_sensors import partition_of
from lakehouse_assets.automation.jobs import build_jobs
from lakehouse_assets.automation.schedules import build_schedules, target_partition
from lakehouse_assets.components.defs_folder import load_folder
from lakehouse_assets.contracts.base import ContractError
from lakehouse_assets.definitions import build_resources
from resources.landing.local import LandedFile
from tests.conftest import defs_module_of

READINGS = r"""
name: readings
description: Daily station readings since 2012, one file per day.
owners: ["team:test"]
source:
  glob: "readings/readings_*.csv"
  file_date_pattern: 'readings_(?P<date>\d{4}-\d{2}-\d{2})\.csv$'
columns:
  - {name: station, type: string, nullable: false}
  - {name: reading_date, type: date, nullable: false}
  - {name: value, type: double}
primary_key: [station, reading_date]
partitioning: {column: reading_date, granularity: day, start: 2012-01-01, end: 2016-01-01}
"""
METERS = r"""
name: meters
description: Daily meter readings, delivered as one file per month.
owners: ["team:test"]
source:
  glob: "meters/meters_*.csv"
  file_date_pattern: 'meters_(?P<date>\d{4}-\d{2})\.csv$'
columns:
  - {name: meter, type: string, nullable: false}
  - {name: read_on, type: date, nullable: false}
  - {name: kwh, type: double}
primary_key: [meter, read_on]
partitioning: {column: read_on, granularity: month, start: 2024-01-01, timezone: Europe/Paris}
"""
SENSORS = r"""
name: sensors
description: Sensor values, one file per hour of New York time.
owners: ["team:test"]
source:
  glob: "sensors/sensors_*.csv"
  file_date_pattern: 'sensors_(?P<date>\d{4}-\d{2}-\d{2}T\d{2})\.csv$'
columns:
  - {name: sensor, type: string, nullable: false}
  - {name: reading_at, type: timestamptz, nullable: false}
  - {name: value, type: double}
primary_key: [sensor, reading_at]
partitioning:
  column: reading_at
  granularity: hour
  start: 2024-03-01
  end: 2024-04-01
  timezone: America/New_York
"""
# A model that names only its partition column: it takes the hourly New York partitions of its input.
SENSOR_VALUES = r"""
kind: model
layer: output
name: sensor_values
description: Sensor readings that carry a value.
owners: ["team:test"]
inputs: {sensors: staging.sensors}
partitioning: {column: reading_at}
steps:
  - filter: {column: value, op: not_null}
"""


def _meters_file() -> str:
    days = [dt.date(2024, 3, 1) + dt.timedelta(days=offset) for offset in range(31)]
    return "meter,read_on,kwh\n" + "".join(
        f"{meter},{day},{index}.5\n" for index, day in enumerate(days) for meter in ("m1", "m2")
    )


LANDING_FILES = {
    "readings/readings_2012-06-01.csv": "station,reading_date,value\ns1,2012-06-01,1.5\ns2,2012-06-01,\n",
    "readings/readings_2012-06-02.csv": "station,reading_date,value\ns1,2012-06-02,2.5\n",
    "meters/meters_2024-03.csv": _meters_file(),
    "meters/meters_2024-04.csv": "meter,read_on,kwh\nm1,2024-04-01,1\n",
    # 07:00 in New York on 5 March 2024 is 12:00 UTC
    "sensors/sensors_2024-03-05T07.csv": (
        "sensor,reading_at,value\n"
        "a,2024-03-05T12:00:00Z,1\na,2024-03-05T12:30:00Z,\nb,2024-03-05T07:59:59-05:00,3\n"
    ),
    "sensors/sensors_2024-03-05T08.csv": "sensor,reading_at,value\na,2024-03-05T13:00:00Z,4\n",
}


def write_component(defs_dir, folder: str, text: str) -> pathlib.Path:
    """A contract as its component's `defs.yaml` (`kind: model` picks the Model type)."""
    contract = textwrap.dedent(text).strip("\n")
    kind = "Model" if "kind: model" in contract else "Dataset"
    contract = "\n".join(line for line in contract.splitlines() if line.strip() != "kind: model")
    path = defs_dir / folder / "defs.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(
        f"type: lakehouse_assets.components.{kind}\nattributes:\n" + textwrap.indent(contract, "  ") + "\n"
    )
    return path


@pytest.fixture
def defs_dir(defs_copy):
    """The demo's defs folder (a copy) beside three generated datasets and a model."""
    for folder, text in (
        ("datasets/readings", READINGS),
        ("datasets/meters", METERS),
        ("datasets/sensors", SENSORS),
        ("models/output_sensor_values", SENSOR_VALUES),
    ):
        write_component(defs_copy, folder, text)
    return defs_copy


def _load(defs_dir, settings) -> tuple[list, dg.Definitions]:
    # as `lakehouse_assets.definitions.defs` builds the code location, from this defs folder
    folder = load_folder(defs_module=defs_module_of(defs_dir))
    contracts = list(folder.contracts)
    location = dg.Definitions(
        jobs=build_jobs(contracts),
        schedules=build_schedules(contracts, settings.schedule),
        resources=build_resources(settings),
        executor=dg.in_process_executor,
    )
    return contracts, dg.Definitions.merge(folder.definitions, location)


def test_datasets_with_their_own_partitions_load_and_run_beside_the_demo(settings, catalog, defs_dir):
    _, definitions = _load(defs_dir, settings)
    # what the UI and `dagster definitions validate` do: resolve every job's selection
    dg.Definitions.validate_loadable(definitions)
    repository = definitions.get_repository_def()
    assert sorted(job.name for job in repository.get_all_jobs() if not job.name.startswith("__")) == [
        "daily_tables",
        "daily_tables_from_2012_01_01_to_2016_01_01",
        "hourly_tables",
        "monthly_tables",
        "reference_tables",
    ]
    assert sorted((s.name, s.cron_schedule) for s in repository.schedule_defs) == [
        ("daily_tables_daily", "0 2 * * *"),
        ("daily_tables_from_2012_01_01_to_2016_01_01_daily", "0 2 * * *"),
        ("hourly_tables_hourly", "0 * * * *"),
        ("monthly_tables_monthly", "0 2 1 * *"),
    ]
    graph = definitions.resolve_asset_graph()
    demo = graph.get(dg.AssetKey(["staging", "flights"])).partitions_def
    assert demo.get_first_partition_key() == "2013-01-01" and demo.timezone == "UTC"
    hourly = graph.get(dg.AssetKey(["output", "sensor_values"])).partitions_def
    assert hourly == graph.get(dg.AssetKey(["landing", "sensors"])).partitions_def
    assert hourly.timezone == "America/New_York"
    assert hourly.get_first_partition_key() == "2024-03-01-00:00"
    assert graph.get(dg.AssetKey(["raw", "meters"])).backfill_policy.max_partitions_per_run == 1
    assert graph.get(dg.AssetKey(["raw", "sensors"])).backfill_policy.max_partitions_per_run == 31 * 24

    landing = settings.landing_dir
    for key, text in LANDING_FILES.items():
        (landing / key).parent.mkdir(parents=True, exist_ok=True)
        (landing / key).write_text(text)
    runs = {
        "daily_tables_from_2012_01_01_to_2016_01_01": "2012-06-01",
        "monthly_tables": "2024-03-01",
        "hourly_tables": "2024-03-05-07:00",
    }
    for job, partition in runs.items():
        result = definitions.resolve_job_def(job).execute_in_process(partition_key=partition)
        assert result.success, job
        failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
        assert not failed, failed

    def rows(identifier: str) -> int:
        return catalog.load_table(identifier).scan().count()

    for name, expected in (("readings", 2), ("meters", 62), ("sensors", 3)):
        assert rows(f"landing.{name}") == expected, name
        assert rows(f"raw.{name}") + rows(f"raw.{name}_rejects") == expected, name
        assert rows(f"staging.{name}") == rows(f"raw.{name}") == expected, name
    assert rows("output.sensor_values") == 2

    def transform(identifier: str) -> tuple:
        (field,) = catalog.load_table(identifier).spec().fields
        return field.name, field.transform

    assert transform("landing.readings") == ("_file_date_day", DayTransform())
    assert transform("staging.readings") == ("reading_date_day", DayTransform())
    assert transform("raw.meters") == ("_file_date_month", MonthTransform())
    assert transform("staging.meters") == ("read_on_month", MonthTransform())
    assert transform("raw.sensors_rejects") == ("_file_date_hour", HourTransform())
    assert transform("staging.sensors") == ("reading_at_hour", HourTransform())
    assert transform("output.sensor_values") == ("reading_at_hour", HourTransform())

    sensors = catalog.load_table("landing.sensors").scan().to_arrow()
    assert set(sensors.column("_file_date").to_pylist()) == {dt.datetime(2024, 3, 5, 12, tzinfo=dt.UTC)}
    meters = catalog.load_table("staging.meters").scan().to_arrow()
    assert {day.month for day in meters.column("read_on").to_pylist()} == {3}
    assert set(catalog.load_table("raw.meters").scan().to_arrow().column("_file_date").to_pylist()) == {
        dt.date(2024, 3, 1)
    }


def test_schedules_and_arrivals_target_hours_and_months_in_their_time_zones(settings, defs_dir):
    contracts, definitions = _load(defs_dir, settings)
    by_name = {contract.name: contract for contract in contracts}
    sensors, meters = by_name["sensors"], by_name["meters"]

    def arrival(contract, key: str) -> str | None:
        return partition_of(contract, LandedFile(key=key, size=1, checksum="x"))

    assert arrival(sensors, "sensors/sensors_2024-03-05T07.csv") == "2024-03-05-07:00"
    assert arrival(sensors, "sensors/sensors_2024-04-01T00.csv") is None  # past the end
    assert arrival(meters, "meters/meters_2024-03.csv") == "2024-03-01"
    assert arrival(meters, "meters/meters_2023-12.csv") is None  # before the start

    repository = definitions.get_repository_def()

    def tick(schedule: str, at: dt.datetime) -> str:
        context = dg.build_schedule_context(scheduled_execution_time=at, repository_def=repository)
        (request,) = repository.get_schedule_def(schedule).evaluate_tick(context).run_requests
        return request.partition_key

    # 13:00 UTC is 08:00 in New York: the hour that has just closed is 07:00 there
    assert tick("hourly_tables_hourly", dt.datetime(2024, 3, 5, 13, tzinfo=dt.UTC)) == "2024-03-05-07:00"
    assert tick("monthly_tables_monthly", dt.datetime(2024, 4, 1, 2, tzinfo=dt.UTC)) == "2024-03-01"
    assert target_partition(dt.datetime(2024, 1, 1, 1, tzinfo=dt.UTC), "UTC", 2, "month") == "2023-11-01"
    # the spring-forward night in New York: the hour before 03:00 is 01:00
    assert target_partition(dt.datetime(2024, 3, 10, 7, tzinfo=dt.UTC), "America/New_York", 1, "hour") == (
        "2024-03-10-01:00"
    )


def test_a_model_whose_inputs_have_other_partitions_fails_naming_its_file(defs_dir):
    path = write_component(
        defs_dir,
        "models/output_mixed",
        """
        kind: model
        layer: output
        name: mixed
        description: Joins hours with days.
        inputs: {sensors: staging.sensors, readings: staging.readings}
        partitioning: {column: reading_at}
        steps:
          - filter: {column: value, op: not_null}
        """,
    )
    with pytest.raises(
        ContractError, match=r"inputs: readings \(staging.readings\) has day partitions"
    ) as error:
        load_folder(defs_module=defs_module_of(defs_dir))
    assert str(error.value).startswith(f"{path}: ")
    assert "sensors (staging.sensors) has hour partitions [2024-03-01, 2024-04-01) America/New_York" in str(
        error.value
    )
