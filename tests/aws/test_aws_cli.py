"""The operator's commands on AWS (Glue catalog, S3 warehouse), against moto's server."""

import datetime as dt

import dagster as dg
import pytest

from lakehouse_assets.cli.lake import lake_catalog
from lakehouse_assets.cli.main import main
from resources.catalog.resource import IcebergCatalogResource
from tests.aws.conftest import WAREHOUSE_BUCKET, aws_client
from tests.lakehouse_assets.cli.tables import (
    appended_table,
    check_result,
    reference_table,
    write_check_results,
)
from tests.lakehouse_assets.cli.test_operator_cli import FLIGHTS_HEADER, GOOD_FLIGHT


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _objects(prefix: str) -> list[str]:
    pages = aws_client("s3").get_paginator("list_objects_v2").paginate(Bucket=WAREHOUSE_BUCKET, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture
def glue(infrastructure):
    return lake_catalog(infrastructure)


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    with dg.DagsterInstance.get() as instance:
        yield instance


def test_validate_loads_the_aws_definitions_and_dry_runs_a_file(infrastructure, tmp_path, capsys):
    path = tmp_path / "flights_2013-01-02.csv"
    path.write_text(f"{FLIGHTS_HEADER}\n{GOOD_FLIGHT}\n")
    before = _objects("")
    code, out, _ = _run(capsys, "validate", "flights", "--file", str(path))
    assert code == 0
    assert "contracts and the definitions load" in out
    assert "partitions it would touch: 2013-01-02" in out
    assert _objects("") == before  # nothing written to the warehouse
    assert aws_client("glue").get_databases()["DatabaseList"] == []


def test_tables_reads_glue_and_the_quality_history(glue, capsys):
    appended_table(glue, "staging.readings", {dt.date(2024, 1, 1): 2})
    reference_table(glue, "staging.codes")
    at = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    write_check_results(glue, [check_result("staging.readings", "range__value", False, "run-1", at)])
    code, out, _ = _run(capsys, "tables")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert rows["staging.readings"].split()[1:4] == ["10", "2", "2"]
    assert rows["staging.readings"].endswith("failed: range__value")
    assert rows["staging.codes"].endswith("-")


def test_maintain_compacts_on_s3(glue, capsys):
    appended_table(glue, "staging.readings", {dt.date(2024, 1, 1): 4})
    code, out, _ = _run(capsys, "maintain", "--table", "staging.readings")
    assert code == 0
    assert "1 partitions compacted (4 files into 1)" in out
    table = glue.load_table("staging.readings")
    assert len(list(table.scan().plan_files())) == 1 and table.scan().count() == 20


def test_copy_to_another_glue_prefix_checks_every_partition(glue, infrastructure, capsys):
    appended_table(glue, "staging.readings", {dt.date(2024, 1, 1): 2, dt.date(2024, 1, 2): 1})
    code, out, err = _run(capsys, "copy", "--to-prefix", "test_", "--tables", "staging.readings")
    assert code == 0, err
    assert "staging.readings: 15 rows in 2 partitions copied, counts match" in out
    assert aws_client("glue").get_table(DatabaseName="test_staging", Name="readings")
    target = IcebergCatalogResource.glue(
        infrastructure.aws.warehouse_uri, "test_", infrastructure.aws.file_io
    ).load()
    assert target.load_table("staging.readings").scan().count() == 15
    assert any("test_staging.db/readings/data/" in key for key in _objects(""))


def test_drop_table_removes_the_glue_entry_and_the_s3_objects(glue, instance, capsys):
    table = appended_table(glue, "staging.readings", {dt.date(2024, 1, 1): 2})
    prefix = table.location().removeprefix(f"s3://{WAREHOUSE_BUCKET}/") + "/"
    assert _objects(prefix)
    code, out, _ = _run(capsys, "drop-table", "staging.readings", "--yes")
    assert code == 0, out
    assert not glue.table_exists("staging.readings")
    assert _objects(prefix) == []
