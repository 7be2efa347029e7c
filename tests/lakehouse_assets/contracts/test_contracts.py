"""A wrong contract fails at load, naming the file, the field and what was expected."""

import textwrap

import pytest

from lakehouse_assets.components.defs_folder import contracts_in
from lakehouse_assets.contracts.base import ContractError
from lakehouse_assets.contracts.contract import DatasetContract, load_contract, load_contracts

VALID = """
name: meters
description: Meter readings
source: {glob: "meters/meters_*.csv", file_date_pattern: 'meters_(?P<date>\\d{4}-\\d{2}-\\d{2})\\.csv'}
columns:
  - {name: meter_id, type: string, nullable: false}
  - {name: reading, type: "decimal(10,3)"}
  - {name: read_at, type: timestamptz}
primary_key: [meter_id, read_date]
partitioning: {column: read_date, start: 2024-01-01}
staging:
  - derive_date: {column: read_date, year: meter_id, month: meter_id, day: meter_id}
"""


def write(tmp_path, text: str, name="meters.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_shipped_contracts_load():
    names = sorted((type(c).__name__, c.name) for c in contracts_in())
    assert names == [
        ("DatasetContract", "airlines"),
        ("DatasetContract", "airports"),
        ("DatasetContract", "flights"),
        ("DatasetContract", "planes"),
        ("DatasetContract", "weather"),
        ("ModelContract", "carrier_daily_stats"),
        ("ModelContract", "flights"),
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda t: t.replace("type: timestamptz", "type: datetime"),
            r"columns\.2\.type: .*unknown type 'datetime'",
        ),
        (lambda t: t.replace("description: Meter readings\n", ""), r"description: Field required"),
        (
            lambda t: t.replace("[meter_id, read_date]", "[meter_id, nope]"),
            r"primary_key: \['nope'\] are not staged",
        ),
        (
            lambda t: t.replace("year: meter_id", "yeer: meter_id"),
            r"staging\.0\.derive_date\.yeer: Extra inputs",
        ),
        (
            lambda t: t.replace("start: 2024-01-01", "start: someday"),
            r"partitioning\.start: Input should be a valid date",
        ),
        (
            lambda t: t.replace("{column: read_date, start", "{column: read_at_day, start"),
            r"partitioning\.column 'read_at_day'",
        ),
        (lambda t: t.replace("(?P<date>", "(?P<day>"), r"file_date_pattern: .*named group"),
        (lambda t: t + "  - mask: {columns: [secret]}\n", r"names unknown columns \['secret'\]"),
        (lambda t: t.replace("name: meters", "name: Meters!"), r"name: String should match pattern"),
        (
            lambda t: t.replace("start: 2024-01-01", "start: 2024-01-01, end: 2023-06-01"),
            r"partitioning: .*end 2023-06-01 must come after start 2024-01-01",
        ),
        (
            lambda t: t.replace("start: 2024-01-01", "start: 2024-01-01, granularity: week"),
            r"partitioning\.granularity: Input should be 'hour', 'day' or 'month' \(got 'week'\)",
        ),
        (
            lambda t: t.replace("start: 2024-01-01", "start: 2024-01-01, timezone: Europe/Atlantis"),
            r"partitioning\.timezone: .*unknown time zone 'Europe/Atlantis'; expected an IANA name",
        ),
        (
            lambda t: t.replace("start: 2024-01-01", "start: 2024-01-15, granularity: month"),
            r"partitioning: .*start 2024-01-15: month partitions start and end on the first day of a month",
        ),
        (
            lambda t: t.replace("start: 2024-01-01", "start: 2024-01-01, granularity: hour"),
            r"partitioning\.column 'read_date' is a date column; hour partitions need a timestamp",
        ),
        (
            lambda t: t + "write_modes: {staging: upsert, redelivery: keep}\n",
            r"write_modes\.redelivery: Input should be 'replace' or 'merge'",
        ),
        (
            lambda t: t + "write_modes: {redelivery: merge}\n",
            r"write_modes\.redelivery: merge needs staging: upsert \(staging is overwrite",
        ),
    ],
)
def test_errors_name_the_file_and_the_field(tmp_path, change, expected):
    path = write(tmp_path, change(VALID))
    with pytest.raises(ContractError, match=expected) as error:
        load_contract(path)
    assert str(error.value).startswith(f"{path}: ")


def test_valid_contract_loads(tmp_path):
    contract = load_contract(write(tmp_path, VALID))
    assert isinstance(contract, DatasetContract)
    assert contract.staged_columns()[-1] == "read_date"


def test_broken_yaml_and_non_mapping_are_reported(tmp_path):
    with pytest.raises(ContractError, match="not valid YAML"):
        load_contract(write(tmp_path, "name: [unclosed"))
    with pytest.raises(ContractError, match="expected a mapping"):
        load_contract(write(tmp_path, "- a\n- b\n"))


def test_model_must_declare_steps_or_function_and_known_lookup_inputs(tmp_path):
    model = """
    kind: model
    layer: output
    name: daily
    description: d
    inputs: {readings: staging.meters}
    steps:
      - lookup: {input: sites, match: {site: site}, columns: {name: site_name}}
    """
    with pytest.raises(ContractError, match=r"lookup input 'sites' is not one of inputs \['readings'\]"):
        load_contract(write(tmp_path, model, "daily.yaml"))
    with pytest.raises(ContractError, match="exactly one of `steps` or `function`"):
        load_contract(write(tmp_path, model.replace("steps:", "function: a.b:c\n    steps:"), "daily.yaml"))
    with pytest.raises(ContractError, match=r"inputs: .*not `layer.table`"):
        load_contract(write(tmp_path, model.replace("staging.meters", "meters"), "daily.yaml"))


def test_two_contracts_for_one_table_are_refused(tmp_path):
    write(tmp_path, VALID, "a.yaml")
    write(tmp_path, VALID, "b.yaml")
    with pytest.raises(ContractError, match="two contracts define the table landing.meters"):
        load_contracts(tmp_path)


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        ("implies_present", r"expected `package\.module:function`, such as `checks\.custom_checks:"),
        ("checks.custom_check:implies_present", r"no module named 'checks\.custom_check'"),
        ("checks.custom_checks:implies_presnt", r"defines no function 'implies_presnt'; its functions: "),
    ],
)
def test_a_custom_check_that_no_module_defines_names_the_file_and_the_field(tmp_path, check, expected):
    rule = f"quality:\n  rules:\n    - {{rule: custom, check: '{check}', columns: [reading]}}\n"
    path = write(tmp_path, VALID + rule)
    with pytest.raises(ContractError, match=rf"quality\.rules\.0\.custom\.check: .*{expected}") as error:
        load_contract(path)
    assert str(error.value).startswith(f"{path}: ")


MODEL = """
kind: model
layer: output
name: daily
description: d
inputs: {readings: staging.meters}
partitioning: {column: read_date}
steps:
  - filter: {column: reading, op: not_null}
"""


def test_a_model_takes_its_partitions_from_its_inputs(tmp_path):
    write(tmp_path, VALID)
    write(tmp_path, MODEL, "daily.yaml")
    by_name = {contract.name: contract for contract in load_contracts(tmp_path)}
    assert by_name["daily"].partitioning == by_name["meters"].partitioning.model_copy(
        update={"column": "read_date"}
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda t: t.replace("{column: read_date}", "{column: read_date, start: 2023-01-01}"),
            r"partitioning\.start: 2023-01-01 differs from 2024-01-01 of its input readings "
            r"\(staging.meters\)",
        ),
        (
            lambda t: t.replace("{column: read_date}", "{column: read_date, granularity: hour}"),
            r"partitioning\.granularity: hour differs from day of its input",
        ),
        (lambda t: t.replace("staging.meters", "staging.metres"), r"inputs\.readings: no contract defines"),
        (
            lambda t: t.replace("staging.meters}", "staging.meters, old: staging.old_meters}"),
            r"inputs: old \(staging.old_meters\) has day partitions \[2020-01-01, open-ended\) but readings "
            r"\(staging.meters\) has day partitions \[2024-01-01, open-ended\)",
        ),
    ],
)
def test_a_model_whose_partitions_disagree_with_its_inputs_fails_naming_its_file(tmp_path, change, expected):
    write(tmp_path, VALID)
    write(
        tmp_path,
        VALID.replace("name: meters", "name: old_meters").replace("2024-01-01", "2020-01-01"),
        "old.yaml",
    )
    path = write(tmp_path, change(MODEL), "daily.yaml")
    with pytest.raises(ContractError, match=expected) as error:
        load_contracts(tmp_path)
    assert str(error.value).startswith(f"{path}: ")
