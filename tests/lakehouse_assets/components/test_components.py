"""Each contract is a component: its defs.yaml's attributes are the contract, checked as it was."""

import importlib
import tomllib
from pathlib import Path

import dagster as dg
import jsonschema
import pytest
import yaml
from dagster.components.scaffold.scaffold import NoParams

from lakehouse_assets.components import Dataset, Model
from lakehouse_assets.components.contract_components import DatasetScaffolder, ModelScaffolder
from lakehouse_assets.components.defs_folder import (
    DEFS_DIR,
    DEFS_MODULE,
    contract_in,
    contracts_in,
    load_defs_folder,
)
from lakehouse_assets.contracts.base import ContractError
from lakehouse_assets.contracts.contract import DatasetContract, ModelContract
from tests.conftest import defs_module_of

DATASET = "lakehouse_assets.components.Dataset"
MODEL = "lakehouse_assets.components.Model"
# a line of the flights contract, and the field it sets
TIME_HOUR = "  - {name: time_hour, type: timestamptz"


def causes(error: BaseException) -> str:
    """Every message along an exception's chain: Dagster wraps the contract's own error."""
    messages = []
    while error is not None:
        messages.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(messages)


def line_of(path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def scaffold(scaffolder: dg.Scaffolder, type_name: str, target) -> None:
    target.mkdir(parents=True)
    scaffolder.scaffold(
        dg.ScaffoldRequest(
            type_name=type_name,
            target_path=target,
            scaffold_format="yaml",
            project_root=None,
            params=NoParams(),
        )
    )


def test_every_component_file_names_its_type_and_holds_its_contract_as_attributes():
    # (which contracts the demo ships: tests/lakehouse_assets/contracts/test_contracts.py)
    kinds = {type(contract).__name__ for contract in contracts_in()}
    assert kinds == {"DatasetContract", "ModelContract"}
    # what Dagster hands each component is the contract these files hold
    assert Dataset.get_model_cls() is DatasetContract and Model.get_model_cls() is ModelContract


def test_dg_and_the_code_location_read_one_defs_folder():
    pyproject = tomllib.loads((Path(__file__).resolve().parents[3] / "pyproject.toml").read_text())
    assert pyproject["tool"]["dg"]["project"]["defs_module"] == DEFS_MODULE
    assert Path(importlib.import_module(DEFS_MODULE).__path__[0]) == DEFS_DIR


def test_the_folder_builds_every_contracts_assets_checks_and_arrival_sensor():
    definitions = load_defs_folder()
    specs = [spec for assets in definitions.assets for spec in assets.specs]
    assert len({spec.key for spec in specs}) == len(specs) == 23
    assert {spec.group_name for spec in specs} == {
        "landing",
        "raw",
        "staging",
        "common",
        "output",
        "delivery",
    }
    assert len({key for assets in definitions.assets for key in assets.check_keys}) == 60
    assert {sensor.name for sensor in definitions.sensors} == {
        f"{name}_arrivals" for name in ("airlines", "airports", "flights", "planes", "weather")
    }
    assert {sensor.default_status for sensor in definitions.sensors} == {dg.DefaultSensorStatus.STOPPED}


def test_the_arrival_sensors_start_as_the_load_says():
    running = load_defs_folder(dg.DefaultSensorStatus.RUNNING)
    assert {sensor.default_status for sensor in running.sensors} == {dg.DefaultSensorStatus.RUNNING}


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        (
            lambda t: t.replace(TIME_HOUR, "  - {name: time_hour, type: datetime"),
            "columns.18.type",
            "unknown type 'datetime'; expected one of string",
        ),
        (lambda t: t.replace('    glob: "flights/flights_*.csv"\n', ""), "source.glob", "Field required"),
        (
            lambda t: t.replace("name: flights\n", "name: Flights!\n", 1),
            "name",
            "String should match pattern",
        ),
    ],
)
def test_a_wrong_contract_fails_the_load_with_its_file_line_field_and_expectation(
    defs_copy, change, field, expected
):
    path = defs_copy / "datasets" / "flights" / "defs.yaml"
    original = path.read_text()
    path.write_text(change(original))
    with pytest.raises(Exception) as error:  # noqa: B017 - Dagster's wrapper of the contract's error
        load_defs_folder(defs_module=defs_module_of(defs_copy))
    message = causes(error.value)
    assert f"attributes.{field} at {path}:" in message
    assert expected in message
    # the same file read without Dagster fails as a contract file always has
    with pytest.raises(ContractError, match=rf"^{path}: invalid contract\n  - {field}: .*{expected}"):
        contract_in(path)


def test_the_line_is_the_wrong_fields(defs_copy):
    path = defs_copy / "datasets" / "flights" / "defs.yaml"
    path.write_text(path.read_text().replace(TIME_HOUR, "  - {name: time_hour, type: datetime"))
    with pytest.raises(Exception) as error:  # noqa: B017
        load_defs_folder(defs_module=defs_module_of(defs_copy))
    assert f"{path}:{line_of(path, 'type: datetime')}" in causes(error.value)


def test_a_component_without_its_contract_says_where_it_goes(defs_copy):
    path = defs_copy / "datasets" / "airlines" / "defs.yaml"
    path.write_text(f"type: {DATASET}\n")
    with pytest.raises(Exception) as error:  # noqa: B017
        load_defs_folder(defs_module=defs_module_of(defs_copy))
    assert f"{path}: a dataset's contract goes under `attributes:`" in causes(error.value)


def test_two_components_for_one_table_are_refused(defs_copy):
    (defs_copy / "datasets" / "airlines_again").mkdir()
    (defs_copy / "datasets" / "airlines" / "defs.yaml").replace(
        defs_copy / "datasets" / "airlines_again" / "defs.yaml"
    )
    (defs_copy / "datasets" / "airlines" / "defs.yaml").write_text(
        (defs_copy / "datasets" / "airlines_again" / "defs.yaml").read_text()
    )
    with pytest.raises(ContractError, match="two contracts define the table landing.airlines"):
        load_defs_folder(defs_module=defs_module_of(defs_copy))
    with pytest.raises(ContractError, match="two contracts define the table landing.airlines"):
        contracts_in(defs_copy)


def test_the_json_schema_editors_and_dg_check_yaml_use_knows_the_column_types():
    """`dg check yaml` and editors validate against the JSON schema, without running the contract."""
    schema = DatasetContract.model_json_schema()
    attributes = yaml.safe_load(contracts_in()[0].model_dump_json())
    jsonschema.validate(attributes, schema)
    attributes["columns"][0]["type"] = "datetime"
    with pytest.raises(jsonschema.ValidationError, match="'datetime' is not valid"):
        jsonschema.validate(attributes, schema)
    attributes["columns"][0]["type"] = "decimal(12, 3)"
    jsonschema.validate(attributes, schema)


def test_the_scaffolded_skeletons_load_with_the_demo(defs_copy, resources):
    scaffold(DatasetScaffolder(), DATASET, defs_copy / "datasets" / "meters")
    scaffold(ModelScaffolder(), MODEL, defs_copy / "models" / "output_meter_daily")
    dataset = (defs_copy / "datasets" / "meters" / "defs.yaml").read_text()
    assert (
        dataset.startswith("# A dataset")
        and f"type: {DATASET}\n" in dataset
        and "  name: meters\n" in dataset
    )
    model = contract_in(defs_copy / "models" / "output_meter_daily" / "defs.yaml")
    assert (model.layer, model.name) == ("output", "meter_daily")

    definitions = load_defs_folder(defs_module=defs_module_of(defs_copy))
    keys = {spec.key.to_user_string() for assets in definitions.assets for spec in assets.specs}
    assert {
        "landing/meters",
        "raw/meters",
        "raw/meters_rejects",
        "staging/meters",
        "output/meter_daily",
        "delivery/meter_daily_csv",
    } <= keys
    assert "meters_arrivals" in {sensor.name for sensor in definitions.sensors}
    dg.Definitions.validate_loadable(dg.Definitions.merge(definitions, dg.Definitions(resources=resources)))


def test_a_folder_that_cannot_name_a_table_is_refused(tmp_path):
    with pytest.raises(ValueError, match="'Meters-2' does not match"):
        scaffold(DatasetScaffolder(), DATASET, tmp_path / "Meters-2")


def test_the_readmes_example_is_a_valid_component_file(tmp_path):
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    example = next(block for block in readme.split("```yaml\n")[1:] if block.startswith(f"type: {DATASET}"))
    path = tmp_path / "defs.yaml"
    path.write_text(example.split("```")[0])
    contract = contract_in(path)
    assert contract.name == "meters" and contract.staged_columns()[-1] == "read_date"
