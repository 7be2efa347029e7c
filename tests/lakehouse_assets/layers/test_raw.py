"""Raw types landing rows by the contract; a row that cannot be typed goes, untouched, to the rejects."""

import datetime as dt
import hashlib
import math
from decimal import Decimal

import pyarrow as pa
import pytest

from lakehouse_assets.contracts.contract import DatasetContract
from lakehouse_assets.layers.landing import LINEAGE_COLUMNS, empty_landing_table, read_landed_file
from lakehouse_assets.layers.raw import REJECT_COLUMNS, REJECT_REASON, RawResult, type_landing_rows
from resources.landing.local import LandedFile

KEY = "events/events_2024-05-06.csv"
LOADED_AT = dt.datetime(2024, 5, 7, 8, 9, 10, tzinfo=dt.UTC)
UTC = dt.UTC
# 2**128 + 5: Arrow's decimal128 cast wraps it around to 5
WRAPS_AROUND = "340282366920938463463374607431768211461"


def make_contract(columns: list[dict], null_values: list[str] | None = None) -> DatasetContract:
    csv = {} if null_values is None else {"null_values": null_values}
    return DatasetContract.model_validate(
        {
            "name": "events",
            "description": "test dataset",
            "source": {
                "glob": "events/*.csv",
                "csv": csv,
                "file_date_pattern": r"events_(?P<date>\d{4}-\d{2}-\d{2})\.csv$",
            },
            "columns": [{"name": "id", "nullable": False}, *columns],
            # partitioned only so that rows carry a _file_date to check in the rejects
            "partitioning": {"column": "id", "start": "2024-01-01"},
        }
    )


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def land(contract: DatasetContract, rows: list[list[str]]) -> pa.Table:
    """A landing table read from a real CSV, every value quoted so it arrives exactly as given."""
    lines = [",".join(contract.column_names)] + [",".join(_quoted(value) for value in row) for row in rows]
    data = ("\n".join(lines) + "\n").encode()
    file = LandedFile(key=KEY, size=len(data), checksum=hashlib.md5(data).hexdigest())
    return read_landed_file(data, file, contract, LOADED_AT)


def type_rows(landing: pa.Table, contract: DatasetContract) -> RawResult:
    result = type_landing_rows(landing, contract)
    # nothing is lost and nothing is invented
    assert result.typed.num_rows + result.rejects.num_rows == landing.num_rows
    assert sorted(result.typed.column("id").to_pylist() + result.rejects.column("id").to_pylist()) == sorted(
        landing.column("id").to_pylist()
    )
    assert result.typed.column_names == [*contract.column_names, *LINEAGE_COLUMNS]
    assert result.rejects.column_names == [
        *contract.column_names,
        *LINEAGE_COLUMNS,
        REJECT_COLUMNS,
        REJECT_REASON,
    ]
    for name in contract.column_names:
        assert result.rejects.schema.field(name).type == pa.string()
    return result


def outcomes(
    column: dict, values: list[str], null_values: list[str] | None = None
) -> tuple[pa.DataType, list]:
    """Type one column's values; each becomes ("ok", typed value) or ("rejected", reason)."""
    contract = make_contract([{"name": "v", **column}], null_values)
    result = type_rows(land(contract, [[str(index), value] for index, value in enumerate(values)]), contract)
    typed = dict(
        zip(result.typed.column("id").to_pylist(), result.typed.column("v").to_pylist(), strict=True)
    )
    reasons = dict(
        zip(
            result.rejects.column("id").to_pylist(),
            result.rejects.column(REJECT_REASON).to_pylist(),
            strict=True,
        )
    )
    found = [
        ("ok", typed[str(index)]) if str(index) in typed else ("rejected", reasons[str(index)])
        for index in range(len(values))
    ]
    return result.typed.schema.field("v").type, found


def accepted(*pairs) -> tuple[list[str], list]:
    return [text for text, _ in pairs], [("ok", value) for _, value in pairs]


def check(column: dict, good: list[tuple[str, object]], bad: list[str], arrow_type: pa.DataType, **options):
    values, expected = accepted(*good)
    type_name = column.get("type", "string")
    expected += [("rejected", f"v: {text!r} is not a valid {type_name}") for text in bad]
    found_type, found = outcomes(column, values + bad, **options)
    assert found_type == arrow_type
    assert found == expected


def test_string_values_pass_through_unchanged():
    check({"type": "string"}, [("007", "007"), (" x ", " x "), ("NA", "NA"), ("1e3", "1e3")], [], pa.string())


def test_int():
    check(
        {"type": "int"},
        [("007", 7), ("+5", 5), ("-3", -3), (" 4 ", 4), ("2147483647", 2**31 - 1), ("-2147483648", -(2**31))],
        ["2147483648", "-2147483649", "1.5", "1e3", "abc", "1 2", "0x10", WRAPS_AROUND],
        pa.int32(),
    )


def test_long():
    check(
        {"type": "long"},
        [("2147483648", 2**31), ("9223372036854775807", 2**63 - 1), ("-9223372036854775808", -(2**63))],
        ["9223372036854775808", "-9223372036854775809", "1.0", WRAPS_AROUND],
        pa.int64(),
    )


def test_double():
    check(
        # -Infinity is a value only where the contract says so (test_double_non_finite_...)
        {"type": "double", "allow_non_finite": True},
        [
            ("1.5", 1.5),
            ("-2.5E-2", -0.025),
            ("1e3", 1000.0),
            ("6.02e+23", 6.02e23),
            (".5", 0.5),
            ("5.", 5.0),
            (" 2 ", 2.0),
            ("+1", 1.0),
            ("-Infinity", -math.inf),
        ],
        ["abc", "1,5", "0x10", "1.2.3", "e5", "1e"],
        pa.float64(),
    )


def test_double_not_a_number_is_a_value_not_a_reject_where_the_column_allows_it():
    found_type, found = outcomes({"type": "double", "allow_non_finite": True}, ["NaN"])
    assert found_type == pa.float64()
    assert found[0][0] == "ok" and math.isnan(found[0][1])


def test_double_overflow_and_underflow_are_rejected_with_a_reason_not_bent_to_inf_or_zero():
    found_type, found = outcomes(
        {"type": "double"},
        ["1e400", "-1e400", "1e-400", "-1E-400", "0e-400", "-0.0", "1e308", "4.9e-324", " 00.00e5 "],
    )
    assert found_type == pa.float64()
    beyond, too_small = "(beyond the range of a double)", "(too small for a double: it would be stored as 0)"
    assert found[:4] == [
        ("rejected", f"v: '1e400' is not a valid double {beyond}"),
        ("rejected", f"v: '-1e400' is not a valid double {beyond}"),
        ("rejected", f"v: '1e-400' is not a valid double {too_small}"),
        ("rejected", f"v: '-1E-400' is not a valid double {too_small}"),
    ]
    assert found[4:] == [("ok", 0.0), ("ok", -0.0), ("ok", 1e308), ("ok", 5e-324), ("ok", 0.0)]
    assert math.copysign(1, found[5][1]) == -1


NOT_FINITE = "(not a finite number, which the column does not allow: allow_non_finite)"


def test_double_non_finite_spellings_are_rejected_unless_the_column_allows_them():
    spellings = ["inf", "-Infinity", "NaN", "+nan", " INF "]
    _, found = outcomes({"type": "double"}, spellings)
    assert found == [("rejected", f"v: {text!r} is not a valid double {NOT_FINITE}") for text in spellings]
    _, found = outcomes({"type": "double", "allow_non_finite": True}, [*spellings, "1e400", "1e-400"])
    assert [outcome for outcome, _ in found] == ["ok"] * 5 + ["rejected"] * 2
    assert [value for _, value in found[:2]] == [math.inf, -math.inf]
    assert all(math.isnan(value) for _, value in found[2:4]) and found[4][1] == math.inf


def test_allow_non_finite_is_refused_on_a_column_that_is_not_a_double():
    with pytest.raises(ValueError, match="allow_non_finite applies to double columns only"):
        make_contract([{"name": "v", "type": "decimal(5,2)", "allow_non_finite": True}])


def test_decimal():
    check(
        {"type": "decimal(5,2)"},
        [
            ("1.5", Decimal("1.50")),
            ("123.45", Decimal("123.45")),
            ("-0.01", Decimal("-0.01")),
            ("1e2", Decimal("100.00")),
            (" 1.5 ", Decimal("1.50")),
            ("+2", Decimal("2.00")),
            ("123.450", Decimal("123.45")),
        ],
        ["1234.5", "1.234", "abc", "nan", "Infinity", WRAPS_AROUND],
        pa.decimal128(5, 2),
    )


def test_decimal_exponents_beyond_the_column_are_rejected_not_rounded_or_fatal():
    # 1e-77 was rounded to 0.00; 1e-10000000 crashed the process; the last raised InvalidOperation.
    check(
        {"type": "decimal(5,2)"},
        [("0e-99", Decimal("0.00")), ("1.5e1", Decimal("15.00")), ("12300e-2", Decimal("123.00"))],
        ["1e-77", "1e-10000000", "1e-99999999999999999999", "1e400", "1e3"],
        pa.decimal128(5, 2),
    )


def test_boolean():
    true = ["true", "TRUE", "t", "Yes", "y", "1", " yes "]
    false = ["false", "False", "F", "no", "N", "0"]
    check(
        {"type": "boolean"},
        [(text, True) for text in true] + [(text, False) for text in false],
        ["maybe", "2", "tru"],
        pa.bool_(),
    )


def test_date_default_format():
    check(
        {"type": "date"},
        [
            ("2013-01-02", dt.date(2013, 1, 2)),
            ("2024-02-29", dt.date(2024, 2, 29)),
            ("9999-12-31", dt.date(9999, 12, 31)),
            ("0001-01-01", dt.date(1, 1, 1)),
        ],
        ["2013-02-30", "2023-02-29", "02/01/2013", "2013-01-02 10:00", "20130", "yesterday"],
        pa.date32(),
    )


def test_date_custom_format():
    check(
        {"type": "date", "format": "%d/%m/%Y"},
        [("02/01/2013", dt.date(2013, 1, 2)), ("31/12/1999", dt.date(1999, 12, 31))],
        ["2013-01-02", "12/31/1999"],
        pa.date32(),
    )


def test_timestamp_without_time_zone():
    check(
        {"type": "timestamp"},
        [
            ("2013-01-02 10:30:00", dt.datetime(2013, 1, 2, 10, 30)),
            ("2013-01-02T10:30:00.123456", dt.datetime(2013, 1, 2, 10, 30, 0, 123456)),
            ("2013-01-02", dt.datetime(2013, 1, 2)),
            ("9999-12-31T23:59:59", dt.datetime(9999, 12, 31, 23, 59, 59)),
        ],
        # an offset cannot be dropped from a value without shifting it
        ["bad", "2013-01-02 25:00:00", "2013-01-02T10:30:00Z", "2013-01-02T10:30:00+01:00"],
        pa.timestamp("us"),
    )


def test_timestamp_custom_format():
    check(
        {"type": "timestamp", "format": "%d/%m/%Y %H:%M"},
        [("02/01/2013 10:30", dt.datetime(2013, 1, 2, 10, 30))],
        ["2013-01-02 10:30"],
        pa.timestamp("us"),
    )


def test_timestamptz_with_z_and_offsets_is_normalised_to_utc():
    check(
        {"type": "timestamptz"},
        [
            ("2013-01-02T10:30:00Z", dt.datetime(2013, 1, 2, 10, 30, tzinfo=UTC)),
            ("2013-01-02T10:30:00+01:00", dt.datetime(2013, 1, 2, 9, 30, tzinfo=UTC)),
            ("2013-01-02 10:30:00-05:00", dt.datetime(2013, 1, 2, 15, 30, tzinfo=UTC)),
            # a value without an offset is UTC, not the offset of the value before it
            ("2013-01-02 10:30:00", dt.datetime(2013, 1, 2, 10, 30, tzinfo=UTC)),
            ("2013-01-02T10:30:00.5+05:30", dt.datetime(2013, 1, 2, 5, 0, 0, 500000, tzinfo=UTC)),
        ],
        ["bad", "2013-13-01T00:00:00Z"],
        pa.timestamp("us", tz="UTC"),
    )


def test_timestamptz_custom_format_with_offset():
    check(
        {"type": "timestamptz", "format": "%d.%m.%Y %H:%M %z"},
        [("02.01.2013 10:30 +0100", dt.datetime(2013, 1, 2, 9, 30, tzinfo=UTC))],
        ["2013-01-02T10:30:00Z"],
        pa.timestamp("us", tz="UTC"),
    )


@pytest.mark.parametrize(
    "type_name", ["string", "int", "double", "decimal(5,2)", "boolean", "date", "timestamp", "timestamptz"]
)
def test_declared_null_values_become_null_for_every_type(type_name):
    _, found = outcomes({"type": type_name}, ["NA", ""], null_values=["", "NA"])
    assert found == [("ok", None), ("ok", None)]


def test_with_default_null_values_only_the_empty_string_is_null():
    _, found = outcomes({"type": "int"}, ["", "NA"])
    assert found == [("ok", None), ("rejected", "v: 'NA' is not a valid int")]
    _, found = outcomes({"type": "string"}, ["", "NA"])
    assert found == [("ok", None), ("ok", "NA")]


def test_without_null_values_an_empty_string_is_a_value():
    _, found = outcomes({"type": "string"}, [""], null_values=[])
    assert found == [("ok", "")]
    _, found = outcomes({"type": "int"}, [""], null_values=[])
    assert found == [("rejected", "v: '' is not a valid int")]


@pytest.mark.parametrize("type_name", ["string", "int", "date", "timestamptz"])
def test_a_missing_required_value_is_rejected(type_name):
    column = {"type": type_name, "nullable": False}
    _, found = outcomes(column, ["", "NA"], null_values=["", "NA"])
    assert found == [("rejected", "v: required value is missing")] * 2


def test_a_row_failing_in_two_columns_names_both():
    contract = make_contract(
        [{"name": "n", "type": "int"}, {"name": "d", "type": "date"}, {"name": "s", "nullable": False}]
    )
    landing = land(contract, [["1", "12x", "2013-02-30", ""], ["2", "5", "2013-01-02", "ok"]])
    result = type_rows(landing, contract)
    assert result.rejects.column(REJECT_COLUMNS).to_pylist() == ["n,d,s"]
    assert result.rejects.column(REJECT_REASON).to_pylist() == [
        "n: '12x' is not a valid int; d: '2013-02-30' is not a valid date; s: required value is missing"
    ]
    assert result.typed.column("id").to_pylist() == ["2"]


def test_rejected_rows_keep_their_original_strings_and_lineage():
    contract = make_contract([{"name": "n", "type": "int"}, {"name": "when", "type": "timestamptz"}])
    landing = land(
        contract,
        [["a", "007", "2013-01-02T10:00:00Z"], ["b", " 12x ", "2013-01-02T11:00:00Z"], ["c", "3", "soon"]],
    )
    result = type_rows(landing, contract)
    rejects = result.rejects.to_pylist()
    assert [(row["id"], row["n"], row["when"]) for row in rejects] == [
        ("b", " 12x ", "2013-01-02T11:00:00Z"),
        ("c", "3", "soon"),
    ]
    assert [row["_source_line"] for row in rejects] == [3, 4]
    checksum = landing.column("_source_checksum")[0].as_py()
    for row in rejects:
        assert row["_source_file"] == KEY
        assert row["_source_checksum"] == checksum
        assert row["_loaded_at"] == LOADED_AT
        assert row["_file_date"] == dt.date(2024, 5, 6)
    assert [row[REJECT_COLUMNS] for row in rejects] == ["n", "when"]
    typed = result.typed.to_pylist()
    assert [(row["id"], row["n"], row["when"], row["_source_line"]) for row in typed] == [
        ("a", 7, dt.datetime(2013, 1, 2, 10, tzinfo=UTC), 2)
    ]
    assert result.typed.schema.field("_file_date").type == pa.date32()


def test_typed_columns_have_the_contract_types():
    columns = {
        "s": ("string", "x", pa.string()),
        "i": ("int", "1", pa.int32()),
        "l": ("long", "1", pa.int64()),
        "f": ("double", "1.5", pa.float64()),
        "m": ("decimal(10,3)", "1.5", pa.decimal128(10, 3)),
        "b": ("boolean", "yes", pa.bool_()),
        "d": ("date", "2013-01-02", pa.date32()),
        "t": ("timestamp", "2013-01-02 03:04:05", pa.timestamp("us")),
        "z": ("timestamptz", "2013-01-02T03:04:05Z", pa.timestamp("us", tz="UTC")),
    }
    contract = make_contract(
        [{"name": name, "type": type_name} for name, (type_name, _, _) in columns.items()]
    )
    landing = land(contract, [["1", *(value for _, value, _ in columns.values())]])
    result = type_rows(landing, contract)
    assert result.rejects.num_rows == 0
    for name, (_, _, arrow_type) in columns.items():
        assert result.typed.schema.field(name).type == arrow_type, name
    assert result.typed.to_pylist()[0]["m"] == Decimal("1.500")


def test_an_empty_landing_table_gives_empty_typed_and_rejects_tables():
    contract = make_contract(
        [
            {"name": "i", "type": "int"},
            {"name": "m", "type": "decimal(5,2)"},
            {"name": "z", "type": "timestamptz"},
        ]
    )
    for landing in (empty_landing_table(contract), land(contract, [])):
        result = type_rows(landing, contract)
        assert result.typed.num_rows == 0 and result.rejects.num_rows == 0
        assert result.typed.schema.field("i").type == pa.int32()
        assert result.typed.schema.field("z").type == pa.timestamp("us", tz="UTC")


@pytest.mark.parametrize(
    "null_values", [["NA"], ["", "NA", "null"], ["", "NA", "null", "-", "n/a"]], ids=["one", "three", "five"]
)
@pytest.mark.parametrize("type_name", ["string", "int", "double"])
def test_any_number_of_declared_null_values(null_values, type_name):
    values = [*null_values, "1", "NULL"]
    _, found = outcomes({"type": type_name}, values, null_values=null_values)
    assert found[: len(null_values)] == [("ok", None)] * len(null_values)
    assert found[-2][0] == "ok"
    expected_last = (
        ("ok", "NULL") if type_name == "string" else ("rejected", f"v: 'NULL' is not a valid {type_name}")
    )
    assert found[-1] == expected_last
