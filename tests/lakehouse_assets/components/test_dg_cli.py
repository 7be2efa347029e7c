"""The `dg` commands a contract's author runs, in a copy of the project: scaffold, check, list."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DG = str(Path(sys.executable).with_name("dg"))
DATASET = "lakehouse_assets.components.Dataset"
MODEL = "lakehouse_assets.components.Model"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The project's packages and pyproject.toml, importable before the installed (editable) copy."""
    root = tmp_path_factory.mktemp("dg-project")
    for package in ("lakehouse_assets", "checks", "io_managers", "resources"):
        shutil.copytree(PROJECT_ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    return root


def dg(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(project),
        "LAKEHOUSE_HOME": str(project / ".lakehouse"),
        "VIRTUAL_ENV": str(Path(sys.executable).parent.parent),
    }
    env.pop("DAGSTER_HOME", None)
    return subprocess.run(
        [DG, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )


def component_file(project: Path, folder: str) -> Path:
    return project / "lakehouse_assets" / "defs" / folder / "defs.yaml"


def test_our_component_types_are_listed(project):
    result = dg(project, "list", "components", "--json")
    assert result.returncode == 0, result.stderr
    assert {DATASET, MODEL} <= {item["key"] for item in json.loads(result.stdout)["items"]}


def test_scaffold_check_and_list_a_new_dataset_and_model(project):
    result = dg(project, "scaffold", "defs", DATASET, "datasets/meters")
    assert result.returncode == 0, result.stderr
    result = dg(project, "scaffold", "defs", MODEL, "models/output_meter_daily")
    assert result.returncode == 0, result.stderr
    skeleton = component_file(project, "datasets/meters").read_text()
    assert skeleton.startswith("# A dataset") and "\n  name: meters\n" in skeleton
    assert (
        "\n  layer: output\n  name: meter_daily\n"
        in component_file(project, "models/output_meter_daily").read_text()
    )

    result = dg(
        project,
        "check",
        "yaml",
        "lakehouse_assets/defs/datasets/meters",
        "lakehouse_assets/defs/models/output_meter_daily",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    result = dg(project, "check", "defs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully." in result.stdout

    result = dg(project, "list", "defs", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assets = {asset["asset_key"] for asset in listed["assets"]}
    assert {
        "landing/meters",
        "raw/meters",
        "raw/meters_rejects",
        "staging/meters",
        "output/meter_daily",
        "delivery/meter_daily_csv",
    } <= assets
    assert {"staging/flights", "common/flights", "output/carrier_daily_stats"} <= assets
    assert "delivery/carrier_daily_stats_csv" in assets and len(assets) == 29
    assert "staging/meters:unique__id__day" in {check["key"] for check in listed["asset_checks"]}
    assert {"meters_arrivals", "flights_arrivals", "report_failed_runs"} <= {
        s["name"] for s in listed["sensors"]
    }
    assert {s["name"] for s in listed["schedules"]} == {"daily_tables_daily", "table_maintenance_daily"}
    assert {"daily_tables", "reference_tables", "table_maintenance"} <= {j["name"] for j in listed["jobs"]}

    shutil.rmtree(component_file(project, "datasets/meters").parent)
    shutil.rmtree(component_file(project, "models/output_meter_daily").parent)


@pytest.mark.parametrize(
    ("old", "new", "field", "yaml_error", "load_error"),
    [
        (
            "{name: time_hour, type: timestamptz",
            "{name: time_hour, type: datetime",
            "attributes.columns.18.type",
            "'datetime' is not valid under any of the given schemas",
            "unknown type 'datetime'; expected one of string, int",
        ),
        (
            '    glob: "flights/flights_*.csv"\n',
            "",
            "attributes.source",
            "'glob' is a required property",
            "Field required",
        ),
    ],
)
def test_a_wrong_contract_is_caught_with_its_line(project, old, new, field, yaml_error, load_error):
    path = component_file(project, "datasets/flights")
    original = path.read_text()
    line = next(number for number, text in enumerate(original.splitlines(), 1) if old.strip() in text)
    path.write_text(original.replace(old, new))
    try:
        result = dg(project, "check", "yaml", "lakehouse_assets/defs/datasets/flights")
        assert result.returncode == 1
        assert f"{path}:" in result.stdout and f"{field}" in result.stdout and yaml_error in result.stdout

        result = dg(project, "check", "defs", "--no-check-yaml")
        assert result.returncode == 1
        output = result.stdout + result.stderr
        field_path = field if field.endswith("type") else f"{field}.glob"
        located = f"{field_path} at {path}:{line if field.endswith('type') else ''}"
        assert located in output and load_error in output
    finally:
        path.write_text(original)


def test_the_component_schema_for_editors(project, tmp_path):
    schema_path = tmp_path / "schema.json"
    result = dg(project, "utils", "generate-component-schema", "--output-path", str(schema_path))
    assert result.returncode == 0, result.stderr
    schema = json.loads(schema_path.read_text())
    types = {
        definition["properties"]["type"].get("const") or definition["properties"]["type"].get("default")
        for definition in schema["$defs"].values()
        if "type" in definition.get("properties", {})
    }
    assert {DATASET, MODEL} <= types
    assert '"timestamptz"' in schema_path.read_text()
