"""The file ledger (landing.files) and partitions taken from the rows (`source.partition_from`).

Generated files in a real local landing zone, a real SQLite Iceberg catalog, the arrival sensor
evaluated as Dagster runs it, and the `lakehouse` command line on the same ledger.
"""

import textwrap
from email import message_from_bytes

import dagster as dg
import pytest

from lakehouse_assets.assets.factory import build_assets
from lakehouse_assets.automation.arrival_sensors import evaluate_arrivals
from lakehouse_assets.cli.main import main as lakehouse_cli
from lakehouse_assets.contracts.contract import load_contract
from lakehouse_assets.layers.ledger import read_entries
from tests.conftest import materialize_partitions

OBSERVATIONS = r"""
name: observations
description: Station observations, exported once a month; each row carries its own date.
source:
  glob: "observations/*.csv"
  partition_from: {column: obs_date, format: "%Y-%m-%d"}
columns:
  - {name: station, type: string, nullable: false}
  - {name: obs_date, type: date, nullable: false}
  - {name: value, type: double}
primary_key: [station, obs_date]
partitioning: {column: obs_date, granularity: day, start: 2024-03-01, end: 2024-04-01}
"""
ORDERS = r"""
name: orders
description: Orders, one file per day named by its date.
source:
  glob: "orders/*.csv"
  file_date_pattern: 'orders_(?P<date>\d{4}-\d{2}-\d{2})'
  file_checks: {duplicates: __DUPLICATES__}
columns:
  - {name: order_id, type: string, nullable: false}
  - {name: order_date, type: date, nullable: false}
  - {name: amount, type: double}
primary_key: [order_id]
partitioning: {column: order_date, granularity: day, start: 2024-05-01, end: 2024-06-01}
"""
MONTHLY_EXPORT = (
    "station,obs_date,value\n"
    "s1,2024-03-01,1.5\ns2,2024-03-01,2.5\ns1,2024-03-02,3.5\n"
    # a row outside the partitions and one without a date: recorded, loaded nowhere
    "s1,2024-04-01,9\ns3,not a date,9\n"
)


def _contract(tmp_path, text: str, **replacements):
    for old, new in replacements.items():
        text = text.replace(old, new)
    path = tmp_path / "contract.yaml"
    path.write_text(textwrap.dedent(text))
    return load_contract(path)


def _rows_by(catalog, identifier: str, column: str) -> dict:
    table = catalog.load_table(identifier).scan().to_arrow()
    counts: dict = {}
    for value in table.column(column).to_pylist():
        counts[str(value)] = counts.get(str(value), 0) + 1
    return counts


def _ledger(catalog, dataset: str) -> dict:
    return {entry.key: entry for entry in read_entries(catalog, dataset)}


def _emails(settings, kind: str) -> list:
    if not settings.outbox_dir.exists():
        return []
    messages = [message_from_bytes(path.read_bytes()) for path in settings.outbox_dir.glob("*.eml")]
    return [message for message in messages if message["X-Lakehouse-Kind"] == kind]


def test_a_monthly_file_whose_rows_carry_the_date_lands_in_each_day_it_touches(
    tmp_path, settings, resources, catalog
):
    contract = _contract(tmp_path, OBSERVATIONS)
    storage = resources["landing_storage"]
    storage.write_bytes("observations/export_2024-03.csv", MONTHLY_EXPORT.encode())

    with dg.build_sensor_context() as context:
        result = evaluate_arrivals(contract, context, storage, resources["notifier"], resources["metrics"])
    # the two days in one range run (the pandas backfill policy takes up to 31 days per run)
    (request,) = result.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2024-03-01"
    assert request.tags["dagster/asset_partition_range_end"] == "2024-03-02"

    assets = build_assets([contract])
    assert materialize_partitions(assets, resources, "2024-03-01", "2024-03-02").success
    assert _rows_by(catalog, "landing.observations", "obs_date") == {"2024-03-01": 2, "2024-03-02": 1}
    assert _rows_by(catalog, "raw.observations", "obs_date") == {"2024-03-01": 2, "2024-03-02": 1}
    (entry,) = read_entries(catalog, "observations")
    assert (entry.status, entry.rows, entry.partitions) == ("loaded", 5, ("2024-03-01", "2024-03-02"))
    assert "2 of 5 rows carry no time inside the partitions" in entry.reason

    # a run of one day reads the file through the ledger's index and keeps only that day's rows
    result = materialize_partitions(assets, resources, "2024-03-02")
    assert result.success
    landing = result.asset_materializations_for_node("landing__observations")
    assert landing[0].metadata["files"].value == ["observations/export_2024-03.csv"]
    # rows are split by partition in the driver, whatever the size: the choice is shown
    assert landing[0].metadata["engine"].value == "pandas"
    assert landing[0].metadata["engine_reason"].value == "partition_from splits the rows in the driver"
    assert _rows_by(catalog, "landing.observations", "obs_date") == {"2024-03-01": 2, "2024-03-02": 1}
    # landing = raw + rejects per partition: the audit after raw passed for both runs
    checks = [check for check in result.get_asset_check_evaluations() if check.asset_key.path[0] == "raw"]
    assert checks and all(check.passed for check in checks)
    # a day the file does not touch does not read it
    result = materialize_partitions(assets, resources, "2024-03-05", selection=[assets[0].key])
    assert result.asset_materializations_for_node("landing__observations")[0].metadata["files"].value == []


@pytest.mark.parametrize("duplicates", ["skip", "load"])
def test_the_same_bytes_under_another_name_are_recorded_as_a_duplicate_and_not_loaded_twice(
    tmp_path, settings, resources, catalog, duplicates
):
    contract = _contract(tmp_path, ORDERS, __DUPLICATES__=duplicates)
    storage = resources["landing_storage"]
    data = b"order_id,order_date,amount\no1,2024-05-06,1\no2,2024-05-06,2\n"
    storage.write_bytes("orders/orders_2024-05-06.csv", data)
    storage.write_bytes("orders/orders_2024-05-06_resent.csv", data)
    assets = build_assets([contract])
    assert materialize_partitions(assets, resources, "2024-05-06").success
    ledger = _ledger(catalog, "orders")
    resent = ledger["orders/orders_2024-05-06_resent.csv"]
    assert ledger["orders/orders_2024-05-06.csv"].status == "loaded"
    if duplicates == "load":
        assert resent.status == "loaded"
        assert _rows_by(catalog, "landing.orders", "order_id") == {"o1": 2, "o2": 2}
        return
    assert (resent.status, resent.reason) == ("duplicate", "same bytes as orders/orders_2024-05-06.csv")
    assert resent.checksum == ledger["orders/orders_2024-05-06.csv"].checksum
    assert _rows_by(catalog, "landing.orders", "order_id") == {"o1": 1, "o2": 1}
    # run again: still one row per file version, the first sighting kept
    first_seen = resent.first_seen
    assert materialize_partitions(assets, resources, "2024-05-06").success
    again = _ledger(catalog, "orders")
    assert len(again) == 2
    assert again["orders/orders_2024-05-06_resent.csv"].first_seen == first_seen
    assert again["orders/orders_2024-05-06_resent.csv"].last_seen > first_seen
    assert _rows_by(catalog, "landing.orders", "order_id") == {"o1": 1, "o2": 1}


def test_an_unassigned_file_is_recorded_and_reported_once_and_does_not_block_the_others(
    tmp_path, settings, resources, catalog
):
    contract = _contract(tmp_path, ORDERS, __DUPLICATES__="skip")
    storage = resources["landing_storage"]
    storage.write_bytes("orders/orders_2024-05-06.csv", b"order_id,order_date,amount\no1,2024-05-06,1\n")
    storage.write_bytes("orders/orders_2024-05-07.csv", b"order_id,order_date,amount\no2,2024-05-07,1\n")
    storage.write_bytes("orders/orders_2025-01-01.csv", b"order_id,order_date,amount\no3,2025-01-01,1\n")
    assets = build_assets([contract])
    assert materialize_partitions(assets, resources, "2024-05-06").success
    assert materialize_partitions(assets, resources, "2024-05-07").success
    assert _rows_by(catalog, "staging.orders", "order_id") == {"o1": 1, "o2": 1}
    ledger = _ledger(catalog, "orders")
    assert len(ledger) == 3
    unassigned = ledger["orders/orders_2025-01-01.csv"]
    assert unassigned.status == "unassigned"
    assert "lies outside the partitions" in unassigned.reason
    (email,) = _emails(settings, "file_unassigned")
    assert "orders/orders_2025-01-01.csv" in email.get_payload()

    # `strict` keeps failing the run, naming the file (and the ledger still records it)
    strict = _contract(tmp_path, ORDERS.replace("{duplicates: __DUPLICATES__}", "{file_names: strict}"))
    with pytest.raises(Exception, match="orders_2025-01-01.csv"):
        materialize_partitions(build_assets([strict]), resources, "2024-05-06")


def test_lakehouse_files_and_replay_print_the_ledger_and_the_runs_a_file_touched(
    tmp_path, settings, resources, catalog, capsys
):
    contract = _contract(tmp_path, OBSERVATIONS)
    storage = resources["landing_storage"]
    storage.write_bytes("observations/export_2024-03.csv", MONTHLY_EXPORT.encode())
    assert lakehouse_cli(["files", "observations"]) == 1
    assert materialize_partitions(build_assets([contract]), resources, "2024-03-01", "2024-03-02").success
    capsys.readouterr()

    assert lakehouse_cli(["files", "observations"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:5] == ["key", "etag", "status", "rows", "partitions"]
    assert row.split()[0] == "observations/export_2024-03.csv"
    assert "loaded" in row and "2024-03-01,2024-03-02" in row

    assert lakehouse_cli(["replay", "observations/export_2024-03.csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("observations/export_2024-03.csv (observations, etag ")
    commands = lines[1:]
    assert [command.rsplit(" ", 1)[-1] for command in commands] == ["2024-03-01", "2024-03-02"]
    assert all(
        "--select 'landing/observations,raw/observations,raw/observations_rejects,staging/observations'"
        in command
        for command in commands
    )
    assert lakehouse_cli(["replay", "observations/missing.csv"]) == 1
    for argv, status in ((["files", "--help"], 0), (["replay", "--help"], 0), (["files"], 2)):
        with pytest.raises(SystemExit) as exited:
            lakehouse_cli(argv)
        assert exited.value.code == status


CORRECTED_OBSERVATIONS = OBSERVATIONS.replace(
    "primary_key: [station, obs_date]\n",
    "primary_key: [station, obs_date]\n"
    "write_modes: {staging: upsert, redelivery: __REDELIVERY__}\n"
    "staging:\n"
    "  - deduplicate: {keys: [station, obs_date], latest_by: _loaded_at}\n",
)


def _staged(catalog) -> dict:
    rows = catalog.load_table("staging.observations").scan().to_arrow()
    return {
        (station, str(day)): (value, loaded)
        for station, day, value, loaded in zip(
            *(rows.column(name).to_pylist() for name in ("station", "obs_date", "value", "_loaded_at")),
            strict=True,
        )
    }


@pytest.mark.parametrize("redelivery", ["replace", "merge"])
def test_a_later_file_correcting_an_earlier_day_changes_that_day_only(
    tmp_path, settings, resources, catalog, redelivery
):
    contract = _contract(tmp_path, CORRECTED_OBSERVATIONS, __REDELIVERY__=redelivery)
    storage = resources["landing_storage"]
    assets = build_assets([contract])
    storage.write_bytes(
        "observations/export_1.csv",
        b"station,obs_date,value\ns1,2024-03-01,1\ns2,2024-03-01,2\ns1,2024-03-02,3\ns2,2024-03-02,4\n",
    )
    with dg.build_sensor_context() as context:
        cursor = evaluate_arrivals(
            contract, context, storage, resources["notifier"], resources["metrics"]
        ).cursor
    assert materialize_partitions(assets, resources, "2024-03-01", "2024-03-02").success
    before = _staged(catalog)

    # file B: a corrected row and a new row for 03-02, and the rows of 03-03
    storage.write_bytes(
        "observations/export_2.csv",
        b"station,obs_date,value\ns1,2024-03-02,30\ns3,2024-03-02,5\ns1,2024-03-03,6\ns2,2024-03-03,7\n",
    )
    # the sensor requests the days B touches, not the day before
    with dg.build_sensor_context(cursor=cursor) as context:
        result = evaluate_arrivals(contract, context, storage, resources["notifier"], resources["metrics"])
    (request,) = result.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2024-03-02"
    assert request.tags["dagster/asset_partition_range_end"] == "2024-03-03"
    result = materialize_partitions(assets, resources, "2024-03-02", "2024-03-03")
    assert result.success
    audits = [
        check for check in result.get_asset_check_evaluations() if check.check_name.endswith("reconcile")
    ]
    assert audits and all(check.passed for check in audits), [check.description for check in audits]

    after = _staged(catalog)
    values = {key: value for key, (value, _) in after.items()}
    assert values == {
        ("s1", "2024-03-01"): 1.0,
        ("s2", "2024-03-01"): 2.0,
        ("s1", "2024-03-02"): 30.0,  # B's correction (the later file wins the key)
        ("s2", "2024-03-02"): 4.0,  # A's row B does not mention stays: A still delivers it
        ("s3", "2024-03-02"): 5.0,
        ("s1", "2024-03-03"): 6.0,
        ("s2", "2024-03-03"): 7.0,
    }
    # the day before is untouched: the same rows from the same load
    for key in [("s1", "2024-03-01"), ("s2", "2024-03-01")]:
        assert after[key] == before[key]
    assert _rows_by(catalog, "landing.observations", "obs_date") == {
        "2024-03-01": 2,
        "2024-03-02": 4,
        "2024-03-03": 2,
    }
