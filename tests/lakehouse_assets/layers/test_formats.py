"""Every source format lands the same rows with the same lineage, and raw types them the same way.

Generated files: CSV plain and gzip / bz2 / zstd compressed, zip archives of CSV members, JSON
Lines (nested paths, JSON text), Parquet; and a broken file of each, which fails naming the file
and the place.
"""

import bz2
import datetime as dt
import gzip
import hashlib
import io
import json
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse_assets.contracts.contract import DatasetContract
from lakehouse_assets.layers.landing import LandingFileError, empty_landing_table, read_landed_file
from lakehouse_assets.layers.raw import type_landing_rows
from resources.landing.local import LandedFile

LOADED_AT = dt.datetime(2024, 5, 7, 8, 9, 10, tzinfo=dt.UTC)
COLUMNS = [
    {"name": "meter", "type": "string", "nullable": False},
    {"name": "kwh", "type": "decimal(10,2)"},
    {"name": "read_on", "type": "date"},
]
ROWS = [("m-007", "1.50", "2024-05-06"), ("m-042", "12x", "2024-05-06"), ("m-043", "", "2024-05-06")]
CSV = "meter,kwh,read_on\n" + "".join(f"{m},{k},{d}\n" for m, k, d in ROWS)


def contract(glob: str, **source) -> DatasetContract:
    return DatasetContract.model_validate(
        {
            "name": "meters",
            "description": "meter readings",
            "source": {"glob": glob, **source},
            "columns": COLUMNS,
        }
    )


def land(data: bytes, key: str, the_contract: DatasetContract, findings: list | None = None) -> pa.Table:
    file = LandedFile(key=key, size=len(data), checksum=hashlib.md5(data).hexdigest())
    return read_landed_file(data, file, the_contract, LOADED_AT, findings)


def values(table: pa.Table, *names: str) -> list[tuple]:
    return list(zip(*(table.column(name).to_pylist() for name in names), strict=True))


def zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as stream:
        stream.write(data)
    return sink.getvalue().to_pybytes()


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def parquet_bytes(table: pa.Table, **options) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **options)
    return sink.getvalue().to_pybytes()


COMPRESSED = {
    "meters/m.csv.gz": gzip.compress(CSV.encode()),
    "meters/m.csv.bz2": bz2.compress(CSV.encode()),
    "meters/m.csv.zst": zstd(CSV.encode()),
}


@pytest.mark.parametrize("key", sorted(COMPRESSED))
def test_compressed_csv_lands_like_plain_csv(key):
    plain = land(CSV.encode(), "meters/m.csv", contract("meters/*.csv"))
    table = land(COMPRESSED[key], key, contract("meters/*"))
    assert values(table, "meter", "kwh", "read_on", "_source_line") == values(
        plain, "meter", "kwh", "read_on", "_source_line"
    )
    assert table.column_names == plain.column_names
    assert set(table.column("_source_file").to_pylist()) == {key}
    assert set(table.column("_source_checksum").to_pylist()) == {hashlib.md5(COMPRESSED[key]).hexdigest()}


@pytest.mark.parametrize("key", sorted(COMPRESSED))
def test_a_truncated_stream_names_the_file_and_how_far_it_read(key):
    data = COMPRESSED[key]
    with pytest.raises(
        LandingFileError, match=rf"{key}: the \w+ stream is truncated or corrupt after \d+ bytes"
    ):
        land(data[: len(data) // 2], key, contract("meters/*"))


def test_an_explicit_compression_overrides_the_extension():
    table = land(gzip.compress(CSV.encode()), "meters/m.dat", contract("meters/*", compression="gzip"))
    assert table.num_rows == 3


def test_zip_members_matching_the_pattern_land_with_archive_and_member_in_the_lineage():
    archive = zipped(
        {
            "export/a.csv": CSV.encode(),
            "export/b.csv.gz": gzip.compress(CSV.encode()),
            "export/README.txt": b"not data",
        }
    )
    findings: list[str] = []
    the_contract = contract("meters/*.zip", zip={"members": "export/*.csv*"})
    table = land(archive, "meters/m.zip", the_contract, findings)
    assert table.column_names[3:5] == ["_source_file", "_source_member"]
    assert values(table, "_source_member", "_source_line", "meter") == [
        ("export/a.csv", 2, "m-007"),
        ("export/a.csv", 3, "m-042"),
        ("export/a.csv", 4, "m-043"),
        ("export/b.csv.gz", 2, "m-007"),
        ("export/b.csv.gz", 3, "m-042"),
        ("export/b.csv.gz", 4, "m-043"),
    ]
    assert set(table.column("_source_file").to_pylist()) == {"meters/m.zip"}
    assert findings == ["1 members not matching 'export/*.csv*' left alone"]
    assert table.schema == empty_landing_table(the_contract).schema
    result = type_landing_rows(table, the_contract)
    assert result.typed.num_rows == 4 and result.rejects.num_rows == 2
    assert result.rejects.column("_source_member").to_pylist() == ["export/a.csv", "export/b.csv.gz"]


@pytest.mark.parametrize(
    "name", ["../escape.csv", "/etc/passwd.csv", "a/../../b.csv", "C:/x.csv", "..\\x.csv"]
)
def test_a_member_outside_the_archive_tree_rejects_the_archive(name):
    archive = zipped({"ok.csv": CSV.encode(), name: CSV.encode()})
    with pytest.raises(LandingFileError, match=r"meters/m.zip: members \[.*\] point outside the archive"):
        land(archive, "meters/m.zip", contract("meters/*.zip"))


def test_broken_zip_archives_name_the_file_and_member():
    the_contract = contract("meters/*.zip")
    with pytest.raises(LandingFileError, match="meters/m.zip: is not a readable zip archive"):
        land(b"PK\x03\x04 this is not really a zip", "meters/m.zip", the_contract)
    # a member whose compressed bytes were damaged in transit
    archive = bytearray(zipped({"a.csv": CSV.encode() * 50}))
    archive[60:70] = b"\x00" * 10
    with pytest.raises(LandingFileError, match=r"meters/m.zip: member 'a.csv': cannot be extracted"):
        land(bytes(archive), "meters/m.zip", the_contract)
    with pytest.raises(LandingFileError, match=r"no member matches '\*.csv'.*\['notes.txt'\]"):
        land(zipped({"notes.txt": b"x"}), "meters/m.zip", contract("meters/*.zip", zip={"members": "*.csv"}))
    # a member's own problems are named with the member
    with pytest.raises(LandingFileError, match=r"meters/m.zip: member 'a.csv': header does not match"):
        land(zipped({"a.csv": b"x,y\n1,2\n"}), "meters/m.zip", the_contract)


def test_a_zip_archive_needs_a_contract_that_declares_archives():
    with pytest.raises(LandingFileError, match="declare `source.compression: zip`"):
        land(zipped({"a.csv": CSV.encode()}), "meters/m.zip", contract("meters/*"))


JSONL = (
    '{"meter": "m-007", "payload": {"reading": {"kwh": 1.50}, "tags": ["a", 1.0]}, "day": "2024-05-06"}\n'
    '{"meter": "m-042", "payload": {"reading": {"kwh": "12x"}}, "day": "2024-05-06"}\n'
    "\n"
    '{"meter": "m-043", "payload": {"reading": {}}, "day": "2024-05-06"}\n'
)


def jsonl_contract(**source) -> DatasetContract:
    return DatasetContract.model_validate(
        {
            "name": "meters",
            "description": "meter readings",
            "source": {
                "glob": "meters/*.jsonl",
                "format": "jsonl",
                "jsonl": {"paths": {"kwh": "payload.reading.kwh", "read_on": "day", "payload": "payload"}},
                **source,
            },
            "columns": [*COLUMNS, {"name": "payload", "type": "string"}],
        }
    )


def test_json_lines_pick_nested_paths_keep_numbers_as_written_and_objects_as_json():
    table = land(JSONL.encode(), "meters/m.jsonl", jsonl_contract())
    assert values(table, "meter", "kwh", "read_on", "_source_line") == [
        ("m-007", "1.50", "2024-05-06", 1),
        ("m-042", "12x", "2024-05-06", 2),
        ("m-043", None, "2024-05-06", 4),
    ]
    assert table.column("payload").to_pylist()[0] == '{"reading":{"kwh":1.50},"tags":["a",1.0]}'
    assert json.loads(table.column("payload").to_pylist()[1]) == {"reading": {"kwh": "12x"}}
    result = type_landing_rows(table, jsonl_contract())
    assert values(result.typed, "meter", "kwh") == [("m-007", pytest.approx(1.5)), ("m-043", None)]
    assert result.rejects.column("_reject_reason").to_pylist() == ["kwh: '12x' is not a valid decimal(10,2)"]


def test_json_lines_land_like_the_same_rows_in_csv_once_typed():
    csv_raw = type_landing_rows(land(CSV.encode(), "meters/m.csv", contract("meters/*.csv")), contract("x"))
    jsonl = "".join(json.dumps({"meter": m, "kwh": k, "read_on": d}) + "\n" for m, k, d in ROWS)
    the_contract = contract("meters/*.jsonl.gz", format="jsonl")
    table = land(gzip.compress(jsonl.encode()), "meters/m.jsonl.gz", the_contract)
    raw = type_landing_rows(table, the_contract)
    names = ["meter", "kwh", "read_on"]
    assert raw.typed.select(names).equals(csv_raw.typed.select(names))
    assert raw.rejects.select(names).equals(csv_raw.rejects.select(names))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"meter": "m-1"}\n{"meter": "m-2", \n', r"meters/m.jsonl: line 2: column \d+: not JSON"),
        ('{"meter": "m-1"}\n["m-2"]\n', "meters/m.jsonl: line 2: is a JSON list, not an object"),
    ],
)
def test_a_line_that_is_not_a_json_object_names_the_file_and_line(text, expected):
    with pytest.raises(LandingFileError, match=expected):
        land(text.encode(), "meters/m.jsonl", contract("meters/*.jsonl", format="jsonl"))


def test_quarantined_json_lines_reach_the_rejects_with_their_text():
    the_contract = contract("meters/*.jsonl", format="jsonl", file_checks={"policy": "quarantine_rows"})
    text = '{"meter": "m-1", "kwh": 2, "read_on": "2024-05-06"}\n{"meter": oops}\n'
    result = type_landing_rows(land(text.encode(), "meters/m.jsonl", the_contract), the_contract)
    assert result.typed.column("meter").to_pylist() == ["m-1"]
    assert result.rejects.column("_source_line").to_pylist() == [2]
    assert "line 2: column 11: not JSON" in result.rejects.column("_reject_reason")[0].as_py()
    assert '{"meter": oops}' in result.rejects.column("_reject_reason")[0].as_py()


PARQUET = pa.table(
    {
        "read_on": pa.array([dt.date(2024, 5, 6)] * 3, pa.date32()),
        "kwh": pa.array(["1.50", "12x", None]),
        "meter": pa.array(["m-007", "m-042", "m-043"]),
    }
)


def test_parquet_lands_its_values_as_text_and_raw_casts_them():
    the_contract = contract("meters/*.parquet", format="parquet")
    table = land(parquet_bytes(PARQUET, row_group_size=2), "meters/m.parquet", the_contract)
    assert values(table, "meter", "kwh", "read_on", "_source_line") == [
        ("m-007", "1.50", "2024-05-06", 1),
        ("m-042", "12x", "2024-05-06", 2),
        ("m-043", None, "2024-05-06", 3),
    ]
    assert table.schema == empty_landing_table(the_contract).schema
    result = type_landing_rows(table, the_contract)
    assert result.typed.column("read_on").to_pylist() == [dt.date(2024, 5, 6)] * 2
    assert result.rejects.column("_reject_reason").to_pylist() == ["kwh: '12x' is not a valid decimal(10,2)"]


def test_parquet_types_that_do_not_fit_the_contract_are_quarantined():
    the_contract = contract("meters/*.parquet", format="parquet")
    native = pa.table(
        {
            "meter": ["m-1", "m-2"],
            "kwh": pa.array([1.25, 1e300], pa.float64()),
            "read_on": pa.array([dt.datetime(2024, 5, 6), dt.datetime(2024, 5, 6, 7)], pa.timestamp("us")),
        }
    )
    table = land(parquet_bytes(native), "meters/m.parquet", the_contract)
    assert table.column("kwh").to_pylist() == ["1.25", "1e+300"]
    result = type_landing_rows(table, the_contract)
    # a timestamp is not a date: the contract says what raw accepts, not the file
    assert result.typed.num_rows == 0
    assert result.rejects.column("_reject_columns").to_pylist() == ["read_on", "kwh,read_on"]


def test_a_file_that_is_not_parquet_names_the_file():
    the_contract = contract("meters/*.parquet", format="parquet")
    with pytest.raises(LandingFileError, match="meters/m.parquet: is not a Parquet file"):
        land(CSV.encode(), "meters/m.parquet", the_contract)
    data = parquet_bytes(PARQUET)
    with pytest.raises(LandingFileError, match="meters/m.parquet: is not a Parquet file"):
        land(data[: len(data) - 20], "meters/m.parquet", the_contract)


def test_every_format_has_the_same_lineage_columns_and_types():
    schemas = {
        fmt: empty_landing_table(contract("meters/*", format=fmt)).schema
        for fmt in ("csv", "jsonl", "parquet")
    }
    assert schemas["csv"] == schemas["jsonl"] == schemas["parquet"]
    assert "_source_member" not in schemas["csv"].names


def drift_contract(fmt: str = "csv", **checks) -> DatasetContract:
    return DatasetContract.model_validate(
        {
            "name": "meters",
            "description": "meter readings",
            "source": {"glob": "meters/*", "format": fmt, "file_checks": checks},
            "columns": [*COLUMNS, {"name": "note", "type": "string"}],
        }
    )


def test_schema_drift_in_csv_follows_the_contract_policy():
    new_column = b"read_on,meter,kwh,note,site\n2024-05-06,m-1,2.5,x,north\n"
    missing_optional = b"meter,kwh,read_on\nm-1,2.5,2024-05-06\n"
    missing_required = b"kwh,read_on,note\n2.5,2024-05-06,x\n"
    with pytest.raises(LandingFileError, match=r"meters/d1.csv: header .* unexpected columns \['site'\]"):
        land(new_column, "meters/d1.csv", drift_contract())
    with pytest.raises(LandingFileError, match=r"meters/d2.csv: header .* missing columns \['note'\]"):
        land(missing_optional, "meters/d2.csv", drift_contract())
    tolerant = drift_contract(extra_columns="ignore", missing_optional="null")
    findings: list[str] = []
    table = land(new_column, "meters/d1.csv", tolerant, findings)
    # reordered by name, the extra column left out
    assert values(table, "meter", "kwh", "read_on", "note") == [("m-1", "2.5", "2024-05-06", "x")]
    assert findings == [
        "columns the contract does not declare ignored: ['site']",
        "columns in file order ['read_on', 'meter', 'kwh', 'note', 'site'], read by name",
    ]
    findings.clear()
    table = land(missing_optional, "meters/d2.csv", tolerant, findings)
    assert values(table, "meter", "note") == [("m-1", None)]
    assert findings == ["optional columns missing from the file landed as null: ['note']"]
    assert type_landing_rows(table, tolerant).typed.column("note").to_pylist() == [None]
    with pytest.raises(
        LandingFileError, match=r"meters/d3.csv: .* missing columns \['meter'\], which are required"
    ):
        land(missing_required, "meters/d3.csv", tolerant)


def test_schema_drift_in_parquet_and_json_lines_follows_the_same_policy():
    native = pa.table({"meter": ["m-1"], "kwh": [2.5], "read_on": ["2024-05-06"], "site": ["north"]})
    with pytest.raises(LandingFileError, match=r"meters/p.parquet: schema .* unexpected columns \['site'\]"):
        land(parquet_bytes(native), "meters/p.parquet", drift_contract("parquet", missing_optional="null"))
    table = land(
        parquet_bytes(native),
        "meters/p.parquet",
        drift_contract("parquet", missing_optional="null", extra_columns="ignore"),
    )
    assert values(table, "meter", "kwh", "note") == [("m-1", "2.5", None)]
    lines = b'{"meter": "m-1", "kwh": 2.5, "read_on": "2024-05-06"}\n{"meter": "m-2", "site": "n"}\n'
    with pytest.raises(
        LandingFileError, match=r"meters/j.jsonl: fields .* unexpected columns \['site'\].*site on line 2"
    ):
        land(lines, "meters/j.jsonl", drift_contract("jsonl", missing_optional="null"))
    with pytest.raises(LandingFileError, match=r"meters/j.jsonl: fields .* missing columns \['note'\]"):
        land(lines, "meters/j.jsonl", drift_contract("jsonl", extra_columns="ignore"))
    table = land(
        lines, "meters/j.jsonl", drift_contract("jsonl", extra_columns="ignore", missing_optional="null")
    )
    assert values(table, "meter", "kwh", "note") == [("m-1", "2.5", None), ("m-2", None, None)]


def test_reordered_columns_are_no_drift_unless_the_contract_pins_the_order():
    reordered = b"kwh,meter,read_on,note\n2.5,m-1,2024-05-06,x\n"
    assert land(reordered, "meters/r.csv", drift_contract()).column("meter").to_pylist() == ["m-1"]
    with pytest.raises(
        LandingFileError, match="meters/r.csv: header has the contract's columns in another order"
    ):
        land(reordered, "meters/r.csv", drift_contract(column_order="contract"))
    # a dropped optional column does not count as reordering
    dropped = b"meter,kwh,read_on\nm-1,2.5,2024-05-06\n"
    pinned = drift_contract(column_order="contract", missing_optional="null")
    assert land(dropped, "meters/r.csv", pinned).num_rows == 1
