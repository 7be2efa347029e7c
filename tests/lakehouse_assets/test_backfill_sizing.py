"""Backfill runs sized by the contract: `partitioning.partition_size` (landed bytes of one partition,
turned into partitions per run against the pandas threshold) or `.backfill_partitions_per_run`.

Datasets the demo does not have: hourly sensors sized by bytes, monthly meters with a fixed count,
a model over the hourly one; loaded as the code location loads them.
"""

import dagster as dg
import pytest

from lakehouse_assets.automation.arrival_sensors import partition_ranges
from lakehouse_assets.automation.policies import partitions_per_run
from lakehouse_assets.components.defs_folder import contract_in, load_folder
from lakehouse_assets.contracts.base import ContractError
from lakehouse_assets.contracts.contract import DatasetContract, resolve_partitions
from tests.conftest import defs_module_of
from tests.lakehouse_assets.components.test_components import causes
from tests.lakehouse_assets.test_partitions import METERS, SENSOR_VALUES, SENSORS, write_component

MIB = 1024 * 1024
# 2 MiB an hour: a 128 MiB run is 64 hours (March 2024 in New York has 743 of them)
SIZED_SENSORS = SENSORS.replace(
    "  timezone: America/New_York\n", "  timezone: America/New_York\n  partition_size: 2 MiB\n"
)
COUNTED_METERS = METERS.replace(
    "timezone: Europe/Paris}", "timezone: Europe/Paris, backfill_partitions_per_run: 3}"
)


def _dataset(text: str) -> DatasetContract:
    import yaml

    return DatasetContract.model_validate(yaml.safe_load(text))


def _policies(defs_copy, *components) -> dict[str, dg.BackfillPolicy]:
    for folder, text in components:
        write_component(defs_copy, folder, text)
    definitions = load_folder(defs_module=defs_module_of(defs_copy)).definitions
    return {
        key.to_user_string(): asset.backfill_policy
        for asset in definitions.assets
        for key in asset.keys
        if asset.partitions_def is not None
    }


def test_runs_are_sized_by_the_declared_bytes_or_count(defs_copy):
    policies = _policies(
        defs_copy,
        ("datasets/sensors", SIZED_SENSORS),
        ("datasets/meters", COUNTED_METERS),
        ("models/output_sensor_values", SENSOR_VALUES),
    )
    hours = dg.BackfillPolicy.multi_run(max_partitions_per_run=128 // 2)
    for layer in ("landing", "raw", "staging"):
        assert policies[f"{layer}/sensors"] == hours
        assert policies[f"{layer}/meters"] == dg.BackfillPolicy.multi_run(max_partitions_per_run=3)
    # the model runs in its input's runs: the same policy, or a backfill would split them
    assert policies["output/sensor_values"] == hours
    # a contract without a hint keeps the environment's days (LAKEHOUSE_PANDAS_DAYS_PER_RUN)
    assert policies["staging/flights"] == dg.BackfillPolicy.multi_run(max_partitions_per_run=31)


def test_a_sized_run_is_at_most_the_whole_range_and_follows_the_contracts_threshold():
    tiny = _dataset(
        SENSORS.replace(
            "  timezone: America/New_York\n", "  timezone: America/New_York\n  partition_size: 1 KB\n"
        )
    )
    # 128 MiB of 1 KB hours would be 134,217 partitions; March 2024 has 31 * 24 of them
    assert partitions_per_run(tiny) == 31 * 24
    own_threshold = tiny.model_copy(update={"spark_threshold_bytes": 10_000})
    assert partitions_per_run(own_threshold) == 10
    huge = _dataset(
        SENSORS.replace(
            "  timezone: America/New_York\n", "  timezone: America/New_York\n  partition_size: 1 GiB\n"
        )
    )
    assert partitions_per_run(huge) == 1
    # pinned to Spark: any range in one run, whatever the size
    assert partitions_per_run(huge.model_copy(update={"engine": "spark"})) is None
    # open-ended monthly meters sized by bytes: no range to cap at
    meters = _dataset(
        METERS.replace("timezone: Europe/Paris}", "timezone: Europe/Paris, partition_size: 1 MB}")
    )
    assert partitions_per_run(meters) == 128 * MIB // 1_000_000


def test_the_arrival_sensor_cuts_its_ranges_by_the_contract():
    sensors = _dataset(SIZED_SENSORS)
    hours = [f"2024-03-0{day}-{hour:02d}:00" for day in (5, 6, 7) for hour in range(24)]
    # 72 hours arrived: one range of 64 (128 MiB of 2 MiB hours), then the other 8
    assert partition_ranges(sensors, set(hours)) == [(hours[0], hours[63]), (hours[64], hours[71])]


BOTH = "partition_size: 1 MB, backfill_partitions_per_run: 2"


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (
            BOTH,
            "declare one of partitioning.partition_size (runs sized by the data) and "
            "partitioning.backfill_partitions_per_run (a fixed count), not both",
        ),
        ("partition_size: lots", "could not parse value and unit from byte string"),
        ("partition_size: 0", "partitioning.partition_size must be at least 1 byte"),
        ("backfill_partitions_per_run: 0", "Input should be greater than or equal to 1"),
    ],
)
def test_a_bad_run_size_fails_the_load_naming_the_file_and_field(defs_copy, size, message):
    path = write_component(
        defs_copy,
        "datasets/meters",
        METERS.replace("timezone: Europe/Paris}", f"timezone: Europe/Paris, {size}}}"),
    )
    with pytest.raises(Exception) as error:  # noqa: B017 - Dagster's wrapper of the contract's error
        load_folder(defs_module=defs_module_of(defs_copy))
    assert message in causes(error.value)
    with pytest.raises(ContractError) as error:
        contract_in(path)
    assert str(error.value).startswith(f"{path}: invalid contract\n  - partitioning")
    assert message in str(error.value)


def test_a_model_with_an_input_left_to_the_environment_is_too():
    sensors = _dataset(SIZED_SENSORS)
    plain = _dataset(
        SENSORS.replace("name: sensors", "name: sensors_plain").replace("sensors/sensors_", "plain/sensors_")
    )
    import yaml

    from lakehouse_assets.contracts.contract import ModelContract

    model = ModelContract.model_validate(
        yaml.safe_load(
            SENSOR_VALUES.replace(
                "inputs: {sensors: staging.sensors}", "inputs: {a: staging.sensors, b: staging.sensors_plain}"
            )
        )
    )
    resolved = resolve_partitions([sensors, plain, model])[2]
    assert resolved.partitioning.backfill_partitions_per_run is None
    assert partitions_per_run(resolved) == 31 * 24
    declared = model.model_copy(
        update={"partitioning": model.partitioning.model_copy(update={"backfill_partitions_per_run": 5})}
    )
    assert resolve_partitions([sensors, plain, declared])[2].partitioning.backfill_partitions_per_run == 5
