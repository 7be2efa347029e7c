"""The automation sensor is declared in code and starts with the deployment (issue 13, item 7)."""

import dagster as dg
import pytest

from lakehouse_assets.automation.automation_sensor import AUTOMATION_SENSOR
from lakehouse_assets.definitions import defs
from tests.resources.test_settings import AWS, set_all


def sensors_of(definitions: dg.Definitions) -> dict[str, dg.SensorDefinition]:
    return {sensor.name: sensor for sensor in definitions.sensors}


@pytest.mark.parametrize("environment", ["local", "aws"])
def test_the_automation_sensor_runs_from_the_start(settings, monkeypatch, environment):
    if environment == "aws":
        set_all(monkeypatch, AWS)
    definitions = defs()
    sensors = sensors_of(definitions)
    sensor = sensors[AUTOMATION_SENSOR]
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    # the arrival sensors differ by environment; the automation sensor does not
    arrivals = sensors["flights_arrivals"].default_status
    assert arrivals == (
        dg.DefaultSensorStatus.RUNNING if environment == "aws" else dg.DefaultSensorStatus.STOPPED
    )
    # it covers every model, so Dagster adds no default sensor (which 1.13 would create STOPPED)
    graph = definitions.resolve_asset_graph()
    automated = {key for key in graph.get_all_asset_keys() if graph.get(key).automation_condition}
    assert automated
    assert automated <= sensor.asset_selection.resolve(graph)
    repository = definitions.get_repository_def()
    names = {sensor.name for sensor in repository.sensor_defs}
    assert "default_automation_condition_sensor" not in names
