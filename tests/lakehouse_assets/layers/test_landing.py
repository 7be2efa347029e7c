"""Landing reads a file verbatim as strings, adds lineage, and refuses files it cannot read faithfully."""

import datetime as dt
import hashlib
import random
import re

import pyarrow as pa
import pytest

from lakehouse_assets.contracts.contract import DatasetContract
from lakehouse_assets.layers.landing import (
    LINEAGE_COLUMNS,
    LandingFileError,
    _first_blank_line,
    read_landed_file,
)
from resources.landing.local import LandedFile

KEY = "orders/orders_2024-05-06.csv"
LOADED_AT = dt.datetime(2024, 5, 7, 8, 9, 10, 123456, tzinfo=dt.UTC)


def make_contract(columns=("a", "b"), csv=None, **extra) -> DatasetContract:
    return DatasetContract.model_validate(
        {
            "name": "orders",
            "description": "test dataset",
            "source": {"glob": "orders/*.csv", "csv": csv or {}, **extra.pop("source", {})},
            "columns": [{"name": name} for name in columns],
            **extra,
        }
    )


def landed(data: bytes, key: str = KEY) -> LandedFile:
    return LandedFile(key=key, size=len(data), checksum=hashlib.md5(data).hexdigest())


def read(data: bytes, contract: DatasetContract | None = None, key: str = KEY) -> pa.Table:
    return read_landed_file(data, landed(data, key), contract or make_contract(), LOADED_AT)


def rows(table: pa.Table, *names: str) -> list[tuple]:
    return list(zip(*(table.column(name).to_pylist() for name in names), strict=True))


def test_values_are_kept_verbatim_as_strings():
    data = b'a,b\n007,NA\n,  spaced  \n"",0.50\n'
    table = read(data)
    assert rows(table, "a", "b") == [("007", "NA"), ("", "  spaced  "), ("", "0.50")]
    assert table.schema.field("a").type == pa.string()
    assert table.schema.field("b").type == pa.string()
    assert table.column("a").null_count == 0 and table.column("b").null_count == 0


def test_columns_are_returned_in_contract_order_whatever_the_file_order():
    table = read(b"c,a,b\n3,1,2\n6,4,5\n", make_contract(columns=("a", "b", "c")))
    assert table.column_names == ["a", "b", "c", *LINEAGE_COLUMNS]
    assert rows(table, "a", "b", "c") == [("1", "2", "3"), ("4", "5", "6")]


def test_lineage_columns_for_an_unpartitioned_dataset():
    data = b"a,b\n1,2\n3,4\n5,6\n"
    table = read(data)
    assert table.column("_source_file").to_pylist() == [KEY] * 3
    assert table.column("_source_checksum").to_pylist() == [hashlib.md5(data).hexdigest()] * 3
    # the header is line 1, so the first row is line 2
    assert table.column("_source_line").to_pylist() == [2, 3, 4]
    assert table.column("_loaded_at").to_pylist() == [LOADED_AT] * 3
    assert table.column("_file_date").to_pylist() == [None] * 3
    assert table.schema.field("_source_line").type == pa.int64()
    assert table.schema.field("_loaded_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("_file_date").type == pa.date32()


def _partitioned_contract() -> DatasetContract:
    return make_contract(
        columns=("order_date", "amount"),
        source={"file_date_pattern": r"orders_(?P<date>\d{4}-\d{2}-\d{2})\.csv$"},
        partitioning={"column": "order_date", "start": "2024-01-01"},
    )


def test_file_date_comes_from_the_file_name_pattern():
    table = read(b"order_date,amount\n2024-05-06,1\n2024-05-06,2\n", _partitioned_contract())
    assert table.column("_file_date").to_pylist() == [dt.date(2024, 5, 6)] * 2


def test_file_date_is_null_when_the_name_does_not_match_the_pattern():
    table = read(
        b"order_date,amount\n2024-05-06,1\n", _partitioned_contract(), key="orders/orders-latest.csv"
    )
    assert table.column("_file_date").to_pylist() == [None]
    assert table.column("_source_file").to_pylist() == ["orders/orders-latest.csv"]


def test_a_file_without_a_header_takes_the_contract_columns_and_starts_at_line_1():
    table = read(b"1,2\n3,4\n", make_contract(csv={"header": False}))
    assert rows(table, "a", "b", "_source_line") == [("1", "2", 1), ("3", "4", 2)]


def test_custom_delimiter():
    data = b"a;b\n1,5;x\n2;y,z\n"
    table = read(data, make_contract(csv={"delimiter": ";"}))
    assert rows(table, "a", "b") == [("1,5", "x"), ("2", "y,z")]


def test_quoted_fields_may_contain_the_delimiter_and_doubled_quotes():
    data = b'a,b\n"Smith, John","say ""hi"""\n"x;y",plain\n'
    table = read(data)
    assert rows(table, "a", "b") == [("Smith, John", 'say "hi"'), ("x;y", "plain")]


def test_quoted_field_with_a_custom_delimiter_and_quote_char():
    data = b"a|b\n'1|2'|3\n"
    table = read(data, make_contract(csv={"delimiter": "|", "quote_char": "'"}))
    assert rows(table, "a", "b") == [("1|2", "3")]


def test_a_utf8_byte_order_mark_is_accepted_and_stripped():
    data = "\ufeffa,b\n\u00e9t\u00e9,2\n".encode()
    table = read(data)
    assert table.column_names[:2] == ["a", "b"]
    assert rows(table, "a", "b", "_source_line") == [("\u00e9t\u00e9", "2", 2)]


def test_latin1_declared_in_the_contract_is_decoded():
    data = "a,b\ncaf\u00e9,na\u00efve\n".encode("latin-1")
    assert b"\xe9" in data
    table = read(data, make_contract(csv={"encoding": "latin-1"}))
    assert rows(table, "a", "b") == [("caf\u00e9", "na\u00efve")]


def test_windows_line_endings_do_not_leak_into_values():
    table = read(b"a,b\r\n1,2\r\n3,4\r\n")
    assert rows(table, "a", "b", "_source_line") == [("1", "2", 2), ("3", "4", 3)]


def test_old_mac_line_endings_are_read_as_lines_and_reported():
    # a lone "\r" ended every line; the header check crashed with `_csv.Error: new-line character
    # seen in unquoted field`, naming no file
    for data in (b"a,b\r1,2\r3,4\r", b"a,b\r1,2\r3,4", b'a,b\r"x,y",2\r3,4\r'):
        findings = []
        table = read_landed_file(data, landed(data), make_contract(), LOADED_AT, findings)
        assert rows(table, "a", "b", "_source_line")[1:] == [("3", "4", 3)], data
        assert findings == ["carriage-return line endings (old Mac) read as line breaks"]
    # what is checked for "\n" lines is checked for these too, on the right line
    with pytest.raises(LandingFileError, match=r"line 3 is blank"):
        read(b"a,b\r1,2\r\r3,4\r")
    with pytest.raises(LandingFileError, match=r"line 3: a quoted value runs past the end of the line"):
        read(b'a,b\r1,2\r3,"4\r5,6\r')
    with pytest.raises(LandingFileError, match=r"line 3: 1 fields, expected 2"):
        read(b"a,b\r1,2\r3\r")


def test_the_last_line_needs_no_line_break():
    table = read(b"a,b\n1,2\n3,4")
    assert rows(table, "a", "b", "_source_line") == [("1", "2", 2), ("3", "4", 3)]


def test_a_header_only_file_gives_no_rows_but_the_full_schema():
    table = read(b"b,a\n")
    assert table.num_rows == 0
    assert table.column_names == ["a", "b", *LINEAGE_COLUMNS]


FAILURES = {
    "empty file": (b"", {}, ["the file is empty"]),
    "whitespace-only file": (b"  \n\t\r\n \n", {}, ["the file is empty"]),
    "empty header line": (b"\na,b\n1,2\n", {}, ["line 1", "header", "empty"]),
    "duplicate header column": (b"a,b,a\n1,2,3\n", {}, ["header does not match", "repeated columns ['a']"]),
    "missing column": (b"a\n1\n", {}, ["header does not match", "missing columns ['b']"]),
    "unexpected column": (b"a,b,c\n1,2,3\n", {}, ["header does not match", "unexpected columns ['c']"]),
    "file delimiter differs from contract": (
        b"a,b\n1,2\n",
        {"delimiter": ";"},
        ["missing columns ['a', 'b']", "expected delimiter ';'"],
    ),
    "undecodable bytes": (b"a,b\n1,2\n3,caf\xe9\n", {}, ["line 3", "is not valid utf-8"]),
    "undecodable bytes in another encoding": (
        b"a,b\n\xff\xfe,1\n",
        {"encoding": "ascii"},
        ["line 2", "is not valid ascii"],
    ),
    "too few fields": (b"a,b\n1,2\n3\n4,5\n", {}, ["line 3", "1 fields, expected 2", "'3'"]),
    "too many fields": (b"a,b\n1,2,3\n4,5\n", {}, ["line 2", "3 fields, expected 2", "'1,2,3'"]),
    "blank line in the middle": (b"a,b\n1,2\n\n3,4\n", {}, ["line 3 is blank"]),
    "blank line after the header": (b"a,b\n\n1,2\n", {}, ["line 2 is blank"]),
    "blank line at the end": (b"a,b\n1,2\n\n", {}, ["line 3 is blank"]),
    "blank first line without a header": (b"\n1,2\n", {"header": False}, ["line 1 is blank"]),
    "blank line with windows line endings": (b"a,b\r\n1,2\r\n3,4\r\n\r\n5,6\r\n", {}, ["line 4 is blank"]),
    "lone carriage return inside a line": (b"a,b\n1,2\r3,4\n5,6\n", {}, ["line 2", "carriage return"]),
    "lone carriage return in the header": (b"a,b\rc\n1,2\n", {}, ["line 1", "carriage return"]),
    "unclosed quote": (b'a,b\n1,2\n3,"4\n5,6\n', {}, ["line 3", "quote"]),
    "unclosed quote on the last line": (b'a,b\n1,2\n3,"4', {}, ["line 3", "quote"]),
}


@pytest.mark.parametrize(("data", "csv", "expected"), FAILURES.values(), ids=FAILURES.keys())
def test_files_that_cannot_be_read_faithfully_fail_naming_the_file_and_the_problem(data, csv, expected):
    with pytest.raises(LandingFileError) as raised:
        read(data, make_contract(csv=csv))
    message = str(raised.value)
    assert message.startswith(f"{KEY}: ")
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


@pytest.mark.parametrize("policy", ["reject_file", "quarantine_rows"])
def test_an_unclosed_quote_in_a_field_before_the_last_is_named_not_counted_as_fields(policy):
    # it was reported as "2 fields, expected 3" on the line, the next line swallowed into the row
    cases = [
        (b'a,b,c\n1,2,3\n4,"5,6\n7,8,9\n', ",", "line 3: a quote is not closed (a quoted value runs"),
        (b'a,b,c\r\n1,2,3\r\n"4,5,6\r\n7,8,9\r\n', ",", "line 3: a quote is not closed"),
        (b'a,b,c\n1,2,3\n"4,5,6', ",", "line 3: a quote is not closed"),
        (b'a;b;c\n1;"2;3\n', ";", "line 2: a quote is not closed"),
    ]
    for data, delimiter, expected in cases:
        contract = make_contract(
            columns=("a", "b", "c"), csv={"delimiter": delimiter}, source={"file_checks": {"policy": policy}}
        )
        with pytest.raises(LandingFileError) as raised:
            read(data, contract)
        message = str(raised.value)
        assert message.startswith(f"{KEY}: {expected}"), message
        assert "fields, expected" not in message
    with pytest.raises(
        LandingFileError, match=r"""the line\): '4,"5,6'; values cannot contain line breaks"""
    ):
        read(cases[0][0], make_contract(columns=("a", "b", "c")))
    # a quote inside an unquoted value is a character like any other, not an open quote
    assert rows(read(b'a,b,c\n1,x"y,3\n', make_contract(columns=("a", "b", "c"))), "b") == [('x"y',)]


def test_a_blank_line_is_an_error_even_for_a_single_column():
    # a single empty value has to be quoted, or it reads as a blank line
    with pytest.raises(LandingFileError, match=r"line 3 is blank"):
        read(b"a\n1\n\n2\n", make_contract(columns=("a",)))
    assert read(b'a\n1\n""\n2\n', make_contract(columns=("a",))).column("a").to_pylist() == ["1", "", "2"]


def test_every_bad_row_is_counted_and_the_first_ones_are_shown():
    data = b"a,b\n" + b"".join(b"x\n" if i % 2 else b"1,2\n" for i in range(20))
    with pytest.raises(LandingFileError) as raised:
        read(data)
    message = str(raised.value)
    assert "10 rows have the wrong number of fields" in message
    assert "line 3:" in message and "line 11:" in message
    # only the first five are listed
    assert "line 13:" not in message


def _old_blank_line(text: str) -> int | None:
    """How landing found the first blank line before it searched the bytes (a regex over a copy)."""
    lines = "\n" + text
    blank = re.search(r"\n\r?\n", lines)
    return lines.count("\n", 0, blank.end() - 1) if blank else None


def test_the_first_blank_line_is_found_as_the_regular_expression_found_it():
    rng = random.Random("blank-lines")
    pieces = ["\n", "\r", "\r\n", "a", ",", " ", "\u00e9"]
    texts = ["", "\n", "\r\n", "\r\r\n", "a\n\n", "a\r\n\r\n", "a\n\r\r\n", "\n\r\n"]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) for _ in range(5000)]
    for text in texts:
        data = text.encode()
        assert _first_blank_line(data, len(data)) == _old_blank_line(text), repr(text)
        # the search stops at `end`: a line break added after it changes nothing
        assert _first_blank_line(data + b"\n", len(data)) == _old_blank_line(text), repr(text)


@pytest.mark.parametrize("quote_char", ['"', "'"])
def test_no_value_read_holds_a_line_break_whatever_the_quotes(quote_char):
    # the per-value search for line breaks runs only when the file holds a quote character
    rng = random.Random(f"line-breaks-{quote_char}")
    contract = make_contract(csv={"quote_char": quote_char})
    pieces = ["1", "x", ",", "\n", "\r\n", "\r", '"', "'", '""', "''"]
    read_ok = failed = 0
    for _ in range(3000):
        body = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 10)))
        data = f"a,b\n{body}".encode()
        try:
            table = read(data, contract)
        except LandingFileError:
            failed += 1
            continue
        read_ok += 1
        for name in ("a", "b"):
            assert not any("\n" in value for value in table.column(name).to_pylist() if value), repr(data)
    assert read_ok > 100 and failed > 100


def test_a_quoted_line_break_is_found_in_a_later_column_and_with_another_quote_char():
    contract = make_contract(columns=("a", "b", "c"), csv={"quote_char": "'"})
    with pytest.raises(LandingFileError, match=r"line 3: a quoted value runs past the end of the line"):
        read(b"a,b,c\n1,2,3\n4,5,'6\n7'\n8,9,10\n", contract)
    # a double quote is no quote character here: a value may hold it, and no line break
    table = read(b'a,b,c\n1,"2,3\n', make_contract(columns=("a", "b", "c"), csv={"quote_char": "'"}))
    assert rows(table, "a", "b", "c") == [("1", '"2', "3")]


def test_a_blank_line_is_found_also_where_only_a_flagged_row_shows_it():
    # the table has no row of empty strings here: the blank line is inside a row with too many fields
    contract = make_contract(source={"file_checks": {"policy": "quarantine_rows"}})
    with pytest.raises(LandingFileError, match=r"line 3 is blank"):
        read(b'a,b\n1,"x\n\ny",3\n4,5\n', contract)
    with pytest.raises(LandingFileError, match=r"line 3 is blank"):
        read(b"a,b\n1,2,3\n\n4,5\n", contract)


AGREEMENT = {
    **{name: (data, csv) for name, (data, csv, _) in FAILURES.items()},
    "plain": (b"a,b\n1,2\n3,4\n", {}),
    "no final line break": (b"a,b\n1,2\n3,4", {}),
    "windows line endings": (b"a,b\r\n1,2\r\n3,4\r\n", {}),
    "windows line endings, last line open": (b"a,b\r\n1,2\r\n3,4\r", {}),
    "quoted values": (b'a,b\n"1,5","x ""y"""\n3,4\n', {}),
    "quoted, no final line break": (b'a,b\n"1",2\n3,"4"', {}),
    "quoted line break": (b'a,b\n1,"2\n3"\n4,5\n', {}),
    "empty values": (b"a,b\n,\n1,\n", {}),
    "header only": (b"b,a\n", {}),
    "header only, no line break": (b"b,a", {}),
    "no header": (b"1,2\n3,4\n", {"header": False}),
    "columns in another order": (b"b,a\n2,1\n", {}),
    "utf-8 values": ("a,b\ncafé,ñ\n".encode(), {}),
    "byte-order mark": (b"\xef\xbb\xbfa,b\n1,2\n", {}),
    "undecodable header": (b"a,b\xe9\n1,2\n", {}),
    "latin-1": ("a,b\ncafé,1\n".encode("latin-1"), {"encoding": "latin-1"}),
    "semicolons": (b"a;b\n1;2\n", {"delimiter": ";"}),
    "old mac": (b"a,b\r1,2\r3,4\r", {}),
}


def _outcome(data: bytes, contract: DatasetContract):
    findings: list[str] = []
    try:
        table = read_landed_file(data, landed(data), contract, LOADED_AT, findings)
    except LandingFileError as exc:
        return "error", str(exc), findings
    return "table", table, findings


@pytest.mark.parametrize("policy", ["reject_file", "quarantine_rows"])
@pytest.mark.parametrize(("data", "csv"), AGREEMENT.values(), ids=AGREEMENT.keys())
def test_the_clean_file_path_reads_what_the_full_path_reads(data, csv, policy, monkeypatch):
    """A clean file skips decoding and may be parsed in parallel; tables, findings and messages
    are the same as where every file takes the full path."""
    from lakehouse_assets.layers import landing

    contract = make_contract(csv=csv, source={"file_checks": {"policy": policy}})
    fast = _outcome(data, contract)
    monkeypatch.setattr(landing, "_read_clean_csv", lambda *args: None)
    full = _outcome(data, contract)
    assert fast[0] == full[0] and fast[2] == full[2]
    if fast[0] == "table":
        assert fast[1].equals(full[1]), (fast[1].to_pylist(), full[1].to_pylist())
    else:
        assert fast[1] == full[1]


def test_a_large_unquoted_file_is_read_in_parallel_as_the_full_path_reads_it(monkeypatch):
    from lakehouse_assets.layers import landing

    lines = [b"a,b"] + [f"{i},{'x' * (i % 7)}".encode() for i in range(200_000)]
    data = b"\n".join(lines) + b"\n"
    fast = _outcome(data, make_contract())
    monkeypatch.setattr(landing, "_read_clean_csv", lambda *args: None)
    full = _outcome(data, make_contract())
    assert fast[0] == full[0] == "table" and fast[1].equals(full[1]) and fast[1].num_rows == 200_000
