"""The bad-file matrix under both landing policies, and what landing accepts but reports."""

import datetime as dt

import dagster as dg
import pyarrow as pa
import pytest

from lakehouse_assets.assets.factory import build_landing_asset
from lakehouse_assets.contracts.contract import DatasetContract
from lakehouse_assets.layers.file_checks import file_name_problem
from lakehouse_assets.layers.landing import LINEAGE_COLUMNS, ROW_ERROR, LandingFileError, read_landed_file
from lakehouse_assets.layers.raw import REJECT_REASON, type_landing_rows
from resources.landing.local import LocalLandingStorage
from resources.spark.compute import ComputeResource
from resources.spark.session import SparkResource
from tests.lakehouse_assets.layers.test_landing import FAILURES, KEY, landed, make_contract, read, rows

QUARANTINE = {"policy": "quarantine_rows"}
ROW_COUNT_FAILURES = {"too few fields", "too many fields"}


def read_noting(data: bytes, contract) -> tuple[pa.Table, list[str]]:
    findings: list[str] = []
    table = read_landed_file(data, landed(data), contract, dt.datetime(2024, 1, 1, tzinfo=dt.UTC), findings)
    return table, findings


def contract_with(file_checks: dict, csv: dict | None = None, columns=("a", "b"), **extra):
    source = {**extra.pop("source", {}), "file_checks": file_checks}
    return make_contract(columns=columns, csv=csv, source=source, **extra)


@pytest.mark.parametrize(
    ("data", "csv", "expected"),
    [case for name, case in FAILURES.items() if name not in ROW_COUNT_FAILURES],
    ids=[name for name in FAILURES if name not in ROW_COUNT_FAILURES],
)
def test_problems_no_row_can_carry_reject_the_file_even_when_rows_are_quarantined(data, csv, expected):
    with pytest.raises(LandingFileError) as raised:
        read(data, contract_with(QUARANTINE, csv))
    for part in expected:
        assert part in str(raised.value)


def test_quarantine_flags_short_and_long_rows_in_file_order_and_raw_rejects_them():
    contract = contract_with(QUARANTINE)
    table, findings = read_noting(b'a,b\n1,2\n3\n4,5,6\n"7",8\n', contract)
    assert table.column_names == ["a", "b", *LINEAGE_COLUMNS, ROW_ERROR]
    assert rows(table, "_source_line", "a", "b") == [
        (2, "1", "2"),
        (3, "3", None),
        (4, "4", "5"),
        (5, "7", "8"),
    ]
    errors = table.column(ROW_ERROR).to_pylist()
    assert errors[0] is None and errors[3] is None
    assert errors[1] == "line 3: 1 fields, expected 2; text: '3'"
    assert errors[2] == "line 4: 3 fields, expected 2; text: '4,5,6'"
    assert findings == [f"2 rows with the wrong number of fields flagged in {ROW_ERROR}"]

    result = type_landing_rows(table, contract)
    # nothing is lost: landing = raw + rejects
    assert result.typed.num_rows + result.rejects.num_rows == table.num_rows
    assert result.typed.column("_source_line").to_pylist() == [2, 5]
    assert ROW_ERROR not in result.typed.column_names
    assert result.rejects.column("_source_line").to_pylist() == [3, 4]
    assert result.rejects.column(REJECT_REASON).to_pylist() == [
        f"landing: {errors[1]}",
        f"landing: {errors[2]}",
    ]


def test_under_reject_file_a_row_with_the_wrong_number_of_fields_rejects_the_file():
    with pytest.raises(LandingFileError, match=r"2 rows have the wrong number of fields: line 3: .*line 4:"):
        read(b"a,b\n1,2\n3\n4,5,6\n", contract_with({"policy": "reject_file"}))


def test_a_utf8_byte_order_mark_is_stripped_and_reported_or_rejected():
    data = b"\xef\xbb\xbfa,b\n1,2\n"
    table, findings = read_noting(data, contract_with({}))
    assert rows(table, "a", "b") == [("1", "2")]
    assert findings == ["UTF-8 byte-order mark stripped"]
    with pytest.raises(LandingFileError, match="UTF-8 byte-order mark, which the contract rejects"):
        read(data, contract_with({"byte_order_mark": "reject"}))


def test_a_utf16_file_declared_as_utf8_is_named_for_what_it_is():
    with pytest.raises(LandingFileError, match=r"UTF-16 LE byte-order mark: the file is UTF-16 LE.*utf-8"):
        read("a,b\n1,2\n".encode("utf-16"), contract_with({}))


def test_a_header_in_another_delimiter_says_which():
    with pytest.raises(LandingFileError, match=r"the header is delimited by ';', the contract declares ','"):
        read(b"a;b\n1;2\n", contract_with({}))


def test_reordered_columns_are_read_by_name_and_reported_or_rejected():
    table, findings = read_noting(b"b,a\n2,1\n", contract_with({}))
    assert rows(table, "a", "b") == [("1", "2")]
    assert findings == ["columns in file order ['b', 'a'], read by name"]
    with pytest.raises(LandingFileError, match=r"another order.*got \['b', 'a'\], expected \['a', 'b'\]"):
        read(b"b,a\n2,1\n", contract_with({"column_order": "contract"}))


def test_a_header_only_file_is_reported_or_rejected():
    table, findings = read_noting(b"a,b\n", contract_with({}))
    assert table.num_rows == 0 and findings == ["header only: no rows"]
    with pytest.raises(LandingFileError, match=f"{KEY}: has a header but no rows"):
        read(b"a,b\n", contract_with({"header_only": "reject"}))


DATED = {
    "source": {"glob": "orders/*.csv", "file_date_pattern": r"orders_(?P<date>\d{4}-\d{2}-\d{2})\.csv$"},
    "partitioning": {"column": "order_date", "start": "2024-01-01", "end": "2025-01-01"},
}


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("orders_2024-05-06.csv", None),
        ("orders-latest.csv", "does not match the pattern"),
        ("orders_2024-02-30.csv", "'2024-02-30' in the name is not a date"),
        ("orders_2025-01-01.csv", "date 2025-01-01 lies outside the partitions [2024-01-01, 2025-01-01)"),
    ],
)
def test_file_names_must_carry_a_valid_date_inside_the_partitions(name, problem):
    contract = make_contract(columns=("order_date", "amount"), **DATED)
    found = file_name_problem(contract, name)
    assert found == problem if problem is None else problem in found


PANDAS_ONLY = ComputeResource(spark=SparkResource(), spark_threshold_bytes=1 << 40)


def land(asset, context, storage, resources):
    """A landing asset invoked directly: its table (the step also writes the file ledger after it)."""
    events = asset(
        context=context,
        landing_storage=storage,
        compute=PANDAS_ONLY,
        catalog=resources["catalog"],
        notifier=resources["notifier"],
    )
    return next(event.value for event in list(events) if isinstance(event, dg.Output))


@pytest.mark.parametrize("policy", ["reject_file", "skip"])
def test_a_misnamed_file_in_the_glob_fails_landing_or_is_skipped_and_reported(tmp_path, policy, resources):
    storage = LocalLandingStorage(root=str(tmp_path))
    storage.write_bytes("orders/orders_2024-05-06.csv", b"order_date,amount\n2024-05-06,1\n")
    storage.write_bytes("orders/orders_2024-02-30.csv", b"order_date,amount\n2024-02-30,2\n")
    contract = make_contract(
        columns=("order_date", "amount"),
        source={**DATED["source"], "file_checks": {"file_names": policy}},
        partitioning=DATED["partitioning"],
    )
    asset = build_landing_asset(contract)
    context = dg.build_asset_context(partition_key="2024-05-06")
    if policy == "reject_file":
        with pytest.raises(LandingFileError, match=r"1 files .* orders_2024-02-30.csv: '2024-02-30'"):
            land(asset, context, storage, resources)
        return
    table = land(asset, context, storage, resources)
    assert table.column("amount").to_pylist() == ["1"]
    metadata = context.get_output_metadata("result")
    assert list(metadata["skipped_files"].value) == ["orders/orders_2024-02-30.csv"]


def test_a_skipped_file_outside_the_partitions_is_reported_as_outside_their_range(tmp_path, capfd, resources):
    storage = LocalLandingStorage(root=str(tmp_path))
    storage.write_bytes("orders/orders_2024-05-06.csv", b"order_date,amount\n2024-05-06,1\n")
    storage.write_bytes("orders/orders_2025-01-01.csv", b"order_date,amount\n2025-01-01,2\n")
    contract = make_contract(
        columns=("order_date", "amount"),
        source={**DATED["source"], "file_checks": {"file_names": "skip"}},
        partitioning=DATED["partitioning"],
    )
    context = dg.build_asset_context(partition_key="2024-05-06")
    land(build_landing_asset(contract), context, storage, resources)
    # (Dagster's console log handler writes to the process's stderr)
    (warning,) = [line for line in capfd.readouterr().err.splitlines() if "skipped" in line]
    assert (
        "orders_2025-01-01.csv: date 2025-01-01 lies outside the partitions [2024-01-01, 2025-01-01)"
        in warning
    )
    assert "not a valid date" not in warning and "not a date" not in warning
    skipped = context.get_output_metadata("result")["skipped_files"].value
    assert "lies outside the partitions" in skipped["orders/orders_2025-01-01.csv"]


MONTHLY = {
    "source": {"glob": "meters/*.csv", "file_date_pattern": r"meters_(?P<date>[\d-]+)\.csv$"},
    "partitioning": {"column": "read_on", "granularity": "month", "start": "2024-01-01", "end": "2025-01-01"},
}
HOURLY = {
    "source": {"glob": "sensors/*.csv", "file_date_pattern": r"sensors_(?P<date>[\dT-]+)\.csv$"},
    "partitioning": {
        "column": "at",
        "granularity": "hour",
        "start": "2024-03-01",
        "timezone": "Europe/Paris",
    },
}


@pytest.mark.parametrize(
    ("shape", "name", "problem"),
    [
        (MONTHLY, "meters_2024-03.csv", None),
        (MONTHLY, "meters_2024-03-05.csv", None),  # a day lies in one month
        (MONTHLY, "meters_2024-13.csv", "'2024-13' in the name is not a date (YYYY-MM for month partitions)"),
        (MONTHLY, "meters_2025-01.csv", "date 2025-01 lies outside the partitions [2024-01-01, 2025-01-01)"),
        (HOURLY, "sensors_2024-03-05T07.csv", None),
        (HOURLY, "sensors_2024-03-05T24.csv", "'2024-03-05T24' in the name is not a date (YYYY-MM-DDTHH"),
        (
            HOURLY,
            "sensors_2024-03-05.csv",
            "'2024-03-05' names a whole day, which spans many hour partitions",
        ),
        (HOURLY, "sensors_2024-02-29T23.csv", "hour 2024-02-29T23 lies outside the partitions [2024-03-01"),
    ],
)
def test_month_and_hour_files_carry_a_month_or_an_hour_inside_the_partitions(shape, name, problem):
    column = (
        {"name": "read_on", "type": "date"} if shape is MONTHLY else {"name": "at", "type": "timestamptz"}
    )
    contract = DatasetContract.model_validate(
        {"name": "things", "description": "d", "columns": [column, {"name": "value"}], **shape}
    )
    found = file_name_problem(contract, name)
    assert found == problem if problem is None else problem in found


def test_a_symbolic_link_out_of_the_zone_is_skipped_and_reported_by_landing(tmp_path, capfd, resources):
    zone = tmp_path / "zone"
    storage = LocalLandingStorage(root=str(zone))
    storage.write_bytes("orders/orders_2024-05-06.csv", b"order_date,amount\n2024-05-06,1\n")
    secret = tmp_path / "secret.csv"
    secret.write_bytes(b"order_date,amount\n2024-05-06,999\n")
    (zone / "orders" / "orders_2024-05-06b.csv").symlink_to(secret)
    contract = make_contract(
        columns=("order_date", "amount"),
        source={"glob": "orders/*.csv", "file_date_pattern": r"orders_(?P<date>\d{4}-\d{2}-\d{2})b?\.csv$"},
        partitioning=DATED["partitioning"],
    )
    context = dg.build_asset_context(partition_key="2024-05-06")
    table = land(build_landing_asset(contract), context, storage, resources)
    assert table.column("amount").to_pylist() == ["1"]
    skipped = context.get_output_metadata("result")["skipped_files"].value
    assert "symbolic link" in skipped["orders/orders_2024-05-06b.csv"]
    assert "refused 1 entries" in capfd.readouterr().err
