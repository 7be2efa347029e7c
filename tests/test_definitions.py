"""The code location loads and shows the graph the contracts describe."""

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from lakehouse_assets.assets.factory import build_model_asset
from lakehouse_assets.components import defs_folder
from lakehouse_assets.components.defs_folder import contracts_in
from lakehouse_assets.contracts.base import COLUMN_TYPES
from lakehouse_assets.contracts.columns import LINEAGE_COLUMN_TYPES, type_label
from lakehouse_assets.contracts.contract import ModelContract
from lakehouse_assets.definitions import defs
from lakehouse_assets.layers.landing import LINEAGE_TYPES
from lakehouse_assets.layers.raw import arrow_type
from tests.conftest import defs_module_of

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Needed only when a step runs. Loading them with the definitions cost a code location more than a
# second on every load (dagster dev, every run's process, `dagster definitions validate`).
DATA_STACK = (
    "boto3",
    "botocore",
    "narwhals",
    "numpy",
    "pandas",
    "pandera",
    "pyarrow",
    "pyiceberg",
    "pyspark",
    "sqlalchemy",
)

DATASETS = ("airlines", "airports", "planes", "flights", "weather")
EXPECTED_KEYS = (
    {dg.AssetKey([layer, name]) for layer in ("landing", "raw", "staging") for name in DATASETS}
    | {dg.AssetKey(["raw", f"{name}_rejects"]) for name in DATASETS}
    | {dg.AssetKey(["common", "flights"]), dg.AssetKey(["output", "carrier_daily_stats"])}
)
# files for consumers, not tables (README, "Delivering extracts")
EXTRACT_KEYS = {dg.AssetKey(["delivery", "carrier_daily_stats_csv"])}


def test_definitions_load_with_the_exact_asset_keys(settings):
    definitions = defs()
    assert set(definitions.resolve_all_asset_keys()) == EXPECTED_KEYS | EXTRACT_KEYS
    dg.Definitions.validate_loadable(definitions)


def test_assets_are_grouped_by_layer_documented_and_owned(settings):
    graph = defs().resolve_asset_graph()
    for key in EXPECTED_KEYS:
        node = graph.get(key)
        assert node.group_name == key.path[0]
        assert node.description
        assert node.owners
        assert "iceberg" in node.kinds
    flights = graph.get(dg.AssetKey(["staging", "flights"]))
    columns = {
        column.name: column.description for column in flights.metadata["dagster/column_schema"].columns
    }
    assert columns["dep_delay"] == "Departure delay in minutes; negative is early"
    for key in EXTRACT_KEYS:
        node = graph.get(key)
        assert (node.group_name, node.kinds, node.owners) == ("delivery", {"csv"}, ["team:analytics"])
        assert node.parent_keys == {dg.AssetKey(["output", "carrier_daily_stats"])}
        assert node.partitions_def == graph.get(dg.AssetKey(["output", "carrier_daily_stats"])).partitions_def


def test_partitioned_layers_map_identity_and_reference_tables_are_unpartitioned(settings):
    graph = defs().resolve_asset_graph()
    common = graph.get(dg.AssetKey(["common", "flights"]))
    assert common.partitions_def == graph.get(dg.AssetKey(["staging", "flights"])).partitions_def
    assert graph.get(dg.AssetKey(["staging", "airlines"])).partitions_def is None
    assert set(common.parent_keys) == {
        dg.AssetKey(["staging", name]) for name in ("flights", "airlines", "airports", "weather")
    }
    assert common.partitions_def.get_first_partition_key() == "2013-01-01"
    assert common.partitions_def.get_last_partition_key() == "2013-12-31"


def test_raw_carries_the_landing_reconciliation_audit(settings):
    check_keys = defs().resolve_asset_graph().asset_check_keys
    assert dg.AssetCheckKey(dg.AssetKey(["raw", "flights"]), "landing_rows_reconcile") in check_keys
    audits = {key for key in check_keys if key.name.endswith("_rows_reconcile")}
    assert audits == (
        {dg.AssetCheckKey(dg.AssetKey(["raw", name]), "landing_rows_reconcile") for name in DATASETS}
        | {dg.AssetCheckKey(dg.AssetKey(["staging", name]), "raw_rows_reconcile") for name in DATASETS}
        | {dg.AssetCheckKey(dg.AssetKey(["common", "flights"]), "input_rows_reconcile")}
    )


def test_contract_rules_are_checks_on_their_tables_and_error_rules_block(settings):
    graph = defs().resolve_asset_graph()
    flights = dg.AssetKey(["staging", "flights"])
    staging = {
        key.name: graph.get_check_spec(key) for key in graph.asset_check_keys if key.asset_key == flights
    }
    assert staging["references__carrier"].blocking
    assert not staging["references__dest"].blocking
    assert staging["cancelled_flights_have_no_times"].blocking
    assert staging["raw_rows_reconcile"].blocking
    output = {key.name for key in graph.asset_check_keys if key.asset_key.path[0] == "output"}
    # an aggregate changes the grain: no row reconciliation there, only its rules
    assert "input_rows_reconcile" not in output and "unique__flight_date__carrier" in output


def test_loading_the_definitions_imports_no_data_stack(settings):
    """In a fresh interpreter: a module-level import of any of these on the load path fails here."""
    script = (
        "import sys\n"
        "import lakehouse_assets.definitions as definitions\n"
        "definitions.defs()\n"
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    # (`python -c` imports the project from the working directory; LAKEHOUSE_HOME is the test's)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    imported = set(result.stdout.split())
    assert "lakehouse_assets" in imported and "dagster" in imported
    assert sorted(imported.intersection(DATA_STACK)) == []


@pytest.mark.parametrize("type_name", [*COLUMN_TYPES, "decimal(10,2)", "decimal(38, 0)"])
def test_column_schemas_name_types_as_arrow_does(type_name):
    assert type_label(type_name) == str(arrow_type(type_name))


def test_lineage_types_by_name_are_the_arrow_types_landing_writes():
    assert {name: arrow_type(type_name) for name, type_name in LINEAGE_COLUMN_TYPES.items()} == LINEAGE_TYPES


def test_a_model_function_in_a_missing_module_fails_when_the_definitions_load():
    model = next(
        contract for contract in contracts_in() if isinstance(contract, ModelContract) and contract.function
    )
    wrong = model.model_copy(update={"function": "lakehouse_assets.models.no_such_module:build"})
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        build_model_asset(wrong)


def test_a_second_load_reuses_the_assets_until_a_contract_changes(settings, defs_copy, monkeypatch):
    """Dagster calls `defs()` twice per load: the contracts are parsed and built into assets once."""
    monkeypatch.setattr(defs_folder, "DEFS_MODULE", defs_module_of(defs_copy))
    airlines = dg.AssetKey(["landing", "airlines"])
    first, second = defs(), defs()
    assert all(built is reused for built, reused in zip(first.assets, second.assets, strict=True))

    contract = defs_copy / "datasets" / "airlines" / "defs.yaml"
    contract.write_text(contract.read_text().replace("description: ", "description: Changed. ", 1))
    changed = defs().resolve_asset_graph().get(airlines)
    assert changed.description.startswith("Changed. ")
