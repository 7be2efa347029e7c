"""Column lineage derived from the contracts' steps: renames, casts, derived dates, lookups and
aggregates, for generated contracts loaded as components and for the demo's."""

from pathlib import Path

import dagster as dg
import pytest
import yaml

from lakehouse_assets.assets.factory import build_assets
from lakehouse_assets.assets.lineage import LINEAGE_KEY
from lakehouse_assets.components.defs_folder import contracts_in, load_defs_folder
from lakehouse_assets.contracts.base import ContractError
from lakehouse_assets.contracts.contract import contract_from
from tests.conftest import defs_module_of

LINEAGE = ["_source_file", "_source_checksum", "_source_line", "_loaded_at", "_file_date"]

SHOPS = {
    "name": "shops",
    "description": "Shops and their regions.",
    "source": {"glob": "reference/shops.csv"},
    "columns": [
        {"name": "shop_code", "type": "string", "nullable": False},
        {"name": "region_name", "type": "string"},
    ],
    "primary_key": ["shop_code"],
}
SALES = {
    "name": "sales",
    "description": "One row per sale, a file per day.",
    "source": {"glob": "sales/sales_*.csv", "file_date_pattern": r"sales_(?P<date>\d{4}-\d{2}-\d{2})\.csv$"},
    "columns": [
        {"name": "sale_id", "type": "string", "nullable": False},
        {"name": "shop", "type": "string"},
        {"name": "amt", "type": "int"},
        {"name": "y", "type": "int"},
        {"name": "m", "type": "int"},
        {"name": "d", "type": "int"},
    ],
    "primary_key": ["sale_id"],
    "partitioning": {"column": "sale_date", "start": "2024-01-01"},
    "staging": [
        {"rename": {"amt": "amount", "shop": "shop_code"}},
        {"cast": {"amount": "long"}},
        {"derive_date": {"column": "sale_date", "year": "y", "month": "m", "day": "d"}},
    ],
}
SALES_WITH_REGION = {
    "layer": "common",
    "name": "sales",
    "description": "Sales with their shop's region.",
    "inputs": {"sales": "staging.sales", "shops": "staging.shops"},
    "steps": [
        {
            "lookup": {
                "input": "shops",
                "match": {"shop_code": "shop_code"},
                "columns": {"region_name": "region"},
            }
        }
    ],
}
REGION_DAILY = {
    "layer": "output",
    "name": "region_daily",
    "description": "Sales per region and day.",
    "inputs": {"sales": "common.sales"},
    "steps": [
        {
            "aggregate": {
                "by": ["sale_date", "region"],
                "metrics": {"sales": {"fn": "count"}, "revenue": {"fn": "sum", "column": "amount"}},
            }
        }
    ],
}


def deps(definitions_or_assets, key: str) -> dict[str, set[str]]:
    """`dagster/column_lineage` of an asset as column -> {"layer/table.column"}."""
    assets = getattr(definitions_or_assets, "assets", definitions_or_assets)
    spec = next(spec for asset in assets for spec in asset.specs if spec.key.to_user_string() == key)
    lineage = spec.metadata[LINEAGE_KEY]
    assert isinstance(lineage, dg.TableColumnLineage)
    return {
        column: {f"{dep.asset_key.to_user_string()}.{dep.column_name}" for dep in column_deps}
        for column, column_deps in lineage.deps_by_column.items()
    }


def write_component(folder, type_name: str, attributes: dict) -> None:
    folder.mkdir(parents=True)
    document = {"type": f"lakehouse_assets.components.{type_name}", "attributes": attributes}
    (folder / "defs.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


@pytest.fixture
def generated(defs_copy):
    """The demo's folder plus two generated datasets and two models, loaded as the product loads it."""
    write_component(defs_copy / "datasets" / "shops", "Dataset", SHOPS)
    write_component(defs_copy / "datasets" / "sales", "Dataset", SALES)
    write_component(defs_copy / "models" / "common_sales", "Model", SALES_WITH_REGION)
    write_component(defs_copy / "models" / "output_region_daily", "Model", REGION_DAILY)
    return load_defs_folder(defs_module=defs_module_of(defs_copy))


def test_staging_follows_renames_casts_and_derived_dates_back_to_raw(generated):
    staging = deps(generated, "staging/sales")
    assert staging["sale_id"] == {"raw/sales.sale_id"}
    assert staging["amount"] == {"raw/sales.amt"}  # renamed, then cast
    assert staging["shop_code"] == {"raw/sales.shop"}
    assert staging["sale_date"] == {"raw/sales.y", "raw/sales.m", "raw/sales.d"}
    assert staging["_source_line"] == {"raw/sales._source_line"}
    assert list(staging) == ["sale_id", "shop_code", "amount", "y", "m", "d", "sale_date", *LINEAGE]
    raw = deps(generated, "raw/sales")
    assert raw["amt"] == {"landing/sales.amt"}


def test_a_lookup_column_comes_from_the_lookup_table_and_the_matched_keys(generated):
    common = deps(generated, "common/sales")
    assert common["region"] == {
        "staging/shops.region_name",
        "staging/shops.shop_code",
        "staging/sales.shop_code",
    }
    # every column of the primary input passes through, though the model's contract names none
    assert common["amount"] == {"staging/sales.amount"}
    assert common["sale_date"] == {"staging/sales.sale_date"}
    assert common["_source_file"] == {"staging/sales._source_file"}


def test_an_aggregate_keeps_its_groups_and_computes_each_metric_from_its_column(generated):
    output = deps(generated, "output/region_daily")
    assert output == {
        "sale_date": {"common/sales.sale_date"},
        "region": {"common/sales.region"},
        "sales": {"common/sales.sale_date", "common/sales.region"},
        "revenue": {"common/sales.amount"},
    }


def test_the_factory_alone_derives_the_same_lineage_from_the_contracts():
    contracts = [
        contract_from(SHOPS, Path("shops.yaml")),
        contract_from(SALES, Path("sales.yaml")),
        contract_from({"kind": "model", **SALES_WITH_REGION}, Path("common_sales.yaml")),
        contract_from({"kind": "model", **REGION_DAILY}, Path("output_region_daily.yaml")),
    ]
    assets = build_assets(contracts)
    assert deps(assets, "output/region_daily")["revenue"] == {"common/sales.amount"}
    assert deps(assets, "common/sales")["amount"] == {"staging/sales.amount"}


def test_the_demo_lineage_reaches_from_output_through_common_to_staging():
    assets = build_assets(contracts_in())
    common = deps(assets, "common/flights")
    assert common["carrier_name"] == {
        "staging/airlines.name",
        "staging/airlines.carrier",
        "staging/flights.carrier",
    }
    assert common["origin_temp"] >= {"staging/weather.temp", "staging/flights.time_hour"}
    assert common["dep_delay"] == {"staging/flights.dep_delay"}
    # the Python model's lineage is what its contract declares
    output = deps(assets, "output/carrier_daily_stats")
    assert output["avg_dep_delay_min"] == {"common/flights.dep_delay"}
    assert output["cancelled"] == {"common/flights.dep_time"}
    assert set(output) == {
        "flight_date",
        "carrier",
        "carrier_name",
        "flights",
        "cancelled",
        "avg_dep_delay_min",
        "avg_arr_delay_min",
    }
    # every layer's asset still describes its columns
    for key in ("staging/flights", "common/flights", "output/carrier_daily_stats"):
        spec = next(spec for asset in assets for spec in asset.specs if spec.key.to_user_string() == key)
        assert isinstance(spec.metadata["dagster/column_schema"], dg.TableSchema)


def test_a_declared_lineage_must_name_an_input():
    model = {
        "kind": "model",
        **REGION_DAILY,
        "steps": [],
        "function": "lakehouse_assets.models.carrier_daily_stats:build",
        "columns": [{"name": "revenue", "lineage": ["orders.amount"]}],
    }
    with pytest.raises(ContractError, match="'orders.amount' is not `alias.column`"):
        contract_from(model, Path("output_region_daily.yaml"))
