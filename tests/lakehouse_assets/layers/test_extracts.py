"""Extracts: each partition's file equals the table's partition, is replaced whole, never seen half
written, and described by a manifest whose checksum matches. Shown on a dataset the demo does not
have: monthly meter readings with other columns, delivered as JSON Lines, CSV and Parquet."""

import csv
import datetime as dt
import email
import hashlib
import io
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from pyiceberg.expressions import And, GreaterThanOrEqual, LessThan

from lakehouse_assets.assets.extracts import build_extract_assets
from lakehouse_assets.contracts.base import ContractError
from lakehouse_assets.contracts.contract import contract_from, refuse_duplicate_tables
from lakehouse_assets.contracts.extracts import Extract
from lakehouse_assets.layers.extracts import MANIFEST_SUFFIX
from resources.exports import LocalExportStorage

PROJECT_ROOT = Path(__file__).resolve().parents[3]
RECIPIENT = "billing@example.com"
METERS = {
    "name": "meters",
    "description": "Meter readings, one row per meter and day.",
    "owners": ["team:energy"],
    "source": {"glob": "meters/*.csv", "file_date_pattern": r"(?P<date>\d{4}-\d{2})"},
    "columns": [
        {"name": "meter_id", "type": "string"},
        {"name": "reading_date", "type": "date"},
        {"name": "site", "type": "string"},
        {"name": "kwh", "type": "double"},
        {"name": "estimated", "type": "boolean"},
    ],
    "primary_key": ["meter_id", "reading_date"],
    "partitioning": {"column": "reading_date", "granularity": "month", "start": "2024-01-01"},
    "extracts": [
        {
            "name": "meter_readings_jsonl",
            "format": "jsonl",
            "columns": ["meter_id", "reading_date", "kwh"],
            "rename": {"kwh": "energy_kwh"},
            "filter": [{"column": "kwh", "op": "ge", "value": 1.0}],
            "path": "meters/{year}/{month}/readings.jsonl",
            "recipients": [RECIPIENT],
        },
        {
            "name": "meter_readings_csv",
            "format": "csv",
            "csv": {"delimiter": "|", "quoting": "all", "encoding": "latin-1", "line_terminator": "\n"},
            "path": "meters/readings_{partition}.csv",
        },
        {"name": "meter_readings_parquet", "format": "parquet", "path": "meters/parquet/{date}.parquet"},
    ],
}
SCHEMA = pa.schema(
    [
        ("meter_id", pa.string()),
        ("reading_date", pa.date32()),
        ("site", pa.string()),
        ("kwh", pa.float64()),
        ("estimated", pa.bool_()),
    ]
)
FEBRUARY = "2024-02-01"


def readings(month: int, scale: float = 1.0) -> pa.Table:
    rows = [
        {
            "meter_id": f"M{meter}",
            "reading_date": dt.date(2024, month, day),
            # a site name latin-1 can write, and one value to quote
            "site": "Zürich" if meter % 2 else "Bern, Nord",
            "kwh": None if (meter, day) == (2, 3) else round(scale * (meter * 0.7 + day / 4), 3),
            "estimated": day % 5 == 0,
        }
        for meter in (3, 1, 2)
        for day in (1, 2, 3, 10, 28)
    ]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


@pytest.fixture
def contract():
    return contract_from(METERS, Path("meters.yaml"))


@pytest.fixture
def table(catalog):
    catalog.create_namespace_if_not_exists("staging")
    table = catalog.create_table("staging.meters", schema=SCHEMA)
    for month in (1, 2, 3):
        table.append(readings(month))
    return table


@pytest.fixture
def extracts(contract):
    return {asset.key.path[-1]: asset for asset in build_extract_assets([contract])}


def materialize(asset, resources, partition=FEBRUARY):
    result = dg.materialize([asset], resources=resources, partition_key=partition)
    assert result.success
    return result


def partition_rows(table, month_start: dt.date, month_end: dt.date) -> pa.Table:
    scan = table.refresh().scan(
        row_filter=And(
            GreaterThanOrEqual("reading_date", month_start.isoformat()),
            LessThan("reading_date", month_end.isoformat()),
        )
    )
    return scan.to_arrow().sort_by([("meter_id", "ascending"), ("reading_date", "ascending")])


def exports(settings) -> Path:
    return settings.exports_dir


def manifest_of(path: Path) -> dict:
    return json.loads(path.with_name(path.name + MANIFEST_SUFFIX).read_text())


def test_a_jsonl_extract_is_the_filtered_renamed_partition_with_a_matching_manifest(
    settings, resources, table, extracts
):
    result = materialize(extracts["meter_readings_jsonl"], resources)
    path = exports(settings) / "meters/2024/02/readings.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    february = partition_rows(table, dt.date(2024, 2, 1), dt.date(2024, 3, 1)).to_pylist()
    expected = [
        {
            "meter_id": row["meter_id"],
            "reading_date": row["reading_date"].isoformat(),
            "energy_kwh": row["kwh"],
        }
        for row in february
        if row["kwh"] is not None and row["kwh"] >= 1.0
    ]
    assert records == expected and 0 < len(records) < len(february)
    body = path.read_bytes()
    manifest = manifest_of(path)
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
    assert (manifest["rows"], manifest["bytes"]) == (len(records), len(body))
    assert manifest["snapshot_id"] == table.refresh().current_snapshot().snapshot_id
    assert (manifest["run_id"], manifest["partition"], manifest["table"]) == (
        result.run_id,
        FEBRUARY,
        "staging.meters",
    )
    assert manifest["columns"] == ["meter_id", "reading_date", "energy_kwh"]
    materialization = result.asset_materializations_for_node("delivery__meter_readings_jsonl")[0]
    metadata = materialization.metadata
    assert metadata["dagster/row_count"].value == len(records)
    assert metadata["dagster/uri"].value == path.as_uri()
    lineage = metadata["dagster/column_lineage"].value.deps_by_column
    assert lineage["energy_kwh"] == [
        dg.TableColumnDep(asset_key=dg.AssetKey(["staging", "meters"]), column_name="kwh")
    ]


def test_a_csv_extract_keeps_its_dialect_and_encoding(settings, resources, table, extracts):
    materialize(extracts["meter_readings_csv"], resources)
    path = exports(settings) / "meters/readings_2024-02.csv"
    body = path.read_bytes()
    assert "Zürich".encode("latin-1") in body and "Zürich".encode() not in body
    rows = list(csv.reader(io.StringIO(body.decode("latin-1"), newline=""), delimiter="|"))
    assert rows[0] == SCHEMA.names
    # quoting "all": every field, the header too, is quoted
    assert body.startswith(b'"meter_id"|"reading_date"|') and b"\r" not in body
    february = partition_rows(table, dt.date(2024, 2, 1), dt.date(2024, 3, 1)).to_pylist()
    expected = [
        [
            row["meter_id"],
            row["reading_date"].isoformat(),
            row["site"],
            "" if row["kwh"] is None else repr(row["kwh"]),
            "true" if row["estimated"] else "false",
        ]
        for row in february
    ]
    assert rows[1:] == expected
    assert manifest_of(path)["sha256"] == hashlib.sha256(body).hexdigest()


def test_a_parquet_extract_reads_back_as_the_partition(settings, resources, table, extracts):
    materialize(extracts["meter_readings_parquet"], resources, "2024-03-01")
    path = exports(settings) / "meters/parquet/2024-03-01.parquet"
    assert pq.read_table(path).equals(partition_rows(table, dt.date(2024, 3, 1), dt.date(2024, 4, 1)))


def test_a_rerun_replaces_the_file_exactly_and_a_changed_table_delivers_the_new_rows(
    settings, resources, table, extracts
):
    asset = extracts["meter_readings_csv"]
    path = exports(settings) / "meters/readings_2024-02.csv"
    first_run = materialize(asset, resources)
    first, first_manifest = path.read_bytes(), manifest_of(path)
    second_run = materialize(asset, resources)
    assert path.read_bytes() == first
    assert manifest_of(path)["sha256"] == first_manifest["sha256"]
    assert manifest_of(path)["run_id"] == second_run.run_id != first_run.run_id
    # nothing else is left beside the file: no temporary file, no second copy
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + MANIFEST_SUFFIX]

    february = And(GreaterThanOrEqual("reading_date", "2024-02-01"), LessThan("reading_date", "2024-03-01"))
    table.refresh().overwrite(readings(2, scale=10).slice(0, 4), overwrite_filter=february)
    materialize(asset, resources)
    changed = path.read_bytes()
    rows = list(csv.reader(io.StringIO(changed.decode("latin-1"), newline=""), delimiter="|"))
    assert len(rows) == 1 + 4 and changed != first
    manifest = manifest_of(path)
    assert manifest["snapshot_id"] == table.refresh().current_snapshot().snapshot_id
    assert manifest["snapshot_id"] != first_manifest["snapshot_id"]
    assert (manifest["rows"], manifest["sha256"]) == (4, hashlib.sha256(changed).hexdigest())
    # the other months' files were not touched
    assert not (path.parent / "readings_2024-03.csv").exists()


def test_an_output_generated_email_goes_to_the_extracts_recipients(settings, resources, table, extracts):
    result = materialize(extracts["meter_readings_jsonl"], resources)
    messages = [email.message_from_bytes(p.read_bytes()) for p in settings.outbox_dir.glob("*.eml")]
    assert len(messages) == 1
    message = messages[0]
    assert message["To"] == RECIPIENT
    assert message["Subject"] == f"[local] Output generated: meter_readings_jsonl {FEBRUARY}"
    body = message.get_payload(decode=True).decode()
    assert "meters/2024/02/readings.jsonl" in body and result.run_id in body and "sha256" in body


def test_a_reader_polling_during_repeated_writes_only_ever_sees_whole_files(tmp_path):
    storage = LocalExportStorage(root=str(tmp_path))
    versions = [bytes([65 + index]) * (1_000_000 + index * 250_000) for index in range(4)]
    target = tmp_path / "deliveries/today.csv"
    storage.put("deliveries/today.csv", versions[0])
    seen, done = [], threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(target.read_bytes())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for round_ in range(60):
            storage.put("deliveries/today.csv", versions[round_ % len(versions)])
    finally:
        done.set()
        reader.join()
    assert seen and all(content in versions for content in seen)
    assert [p.name for p in target.parent.iterdir()] == ["today.csv"]


KILLED_WRITER = """
import sys
from resources.exports import LocalExportStorage

def chunks():
    yield b"new,partial,"
    print("writing", flush=True)
    sys.stdin.readline()  # the test kills this process here, half way through the file
    yield b"rest\\n"

LocalExportStorage(root=sys.argv[1]).put("deliveries/today.csv", chunks())
"""


def test_a_writer_killed_mid_write_leaves_the_previous_file(tmp_path):
    storage = LocalExportStorage(root=str(tmp_path))
    storage.put("deliveries/today.csv", b"old,complete\n")
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path)],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert writer.stdout.readline() == b"writing\n"
        writer.kill()
    finally:
        writer.wait()
    target = tmp_path / "deliveries/today.csv"
    assert target.read_bytes() == b"old,complete\n"
    # what the killed writer left is hidden and never has the file's name or suffix
    leftovers = [p.name for p in target.parent.iterdir() if p != target]
    assert len(leftovers) == 1 and leftovers[0].startswith(".today.csv.") and leftovers[0].endswith(".tmp")
    assert (target.parent / leftovers[0]).read_bytes() == b"new,partial,"


@pytest.mark.parametrize(
    ("granularity", "start", "path", "expected"),
    [
        ("hour", dt.datetime(2024, 3, 5, 7), "h/{partition}.csv", "h/2024-03-05T07.csv"),
        ("hour", dt.datetime(2024, 3, 5, 7), "h/{date}/{hour}.csv", "h/2024-03-05/07.csv"),
        ("day", dt.datetime(2024, 3, 5), "carrier_stats/{date}/x.csv", "carrier_stats/2024-03-05/x.csv"),
        ("month", dt.datetime(2024, 3, 1), "m/{year}/{month}/x.csv", "m/2024/03/x.csv"),
        ("month", dt.datetime(2024, 3, 1), "m/x_{partition}.csv", "m/x_2024-03.csv"),
    ],
)
def test_the_path_names_the_partition_at_every_granularity(granularity, start, path, expected):
    extract = Extract(name="x", path=path)
    extract.check_partitions(granularity)
    assert extract.file_path(start, granularity) == expected


@pytest.mark.parametrize(
    ("granularity", "path", "message"),
    [
        ("day", "stats/{year}/{month}/x.csv", "day partitions need placeholders"),
        ("hour", "stats/{date}/x.csv", "hour partitions need placeholders"),
        (None, "stats/{date}/x.csv", "not partitioned"),
    ],
)
def test_a_path_that_would_give_two_partitions_one_file_is_refused(granularity, path, message):
    with pytest.raises(ValueError, match=message):
        Extract(name="x", path=path).check_partitions(granularity)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"path": "../outside/{date}.csv"}, r"`\.\.` path segments"),
        ({"path": "/abs/{date}.csv"}, "not a relative file path"),
        ({"path": "x/{when}.csv"}, "unknown placeholders"),
        ({"path": "x/{date}.csv.manifest.json"}, "names the manifest"),
        ({"path": "x/{year}.csv"}, "month partitions need placeholders"),
        ({"columns": ["meter_id", "watts"]}, r"\['watts'\] are not columns"),
        ({"filter": [{"column": "volts", "op": "gt", "value": 1}]}, r"\['volts'\] are not columns"),
        ({"rename": {"kwh": "meter_id"}}, r"columns \['meter_id'\] twice"),
        ({"columns": ["meter_id"], "rename": {"kwh": "energy"}}, "rename names columns not in `columns`"),
        ({"format": "xlsx"}, "format"),
        ({"csv": {"encoding": "klingon"}}, "unknown encoding"),
        ({"csv": {"delimiter": "||"}}, "delimiter"),
    ],
)
def test_a_wrong_extract_fails_the_contract_naming_the_field(change, message):
    document = {**METERS, "extracts": [{"name": "x", "path": "x/{partition}.csv", **change}]}
    with pytest.raises(ContractError, match=message):
        contract_from(document, Path("meters.yaml"))


def test_two_extracts_of_one_name_are_refused(contract):
    twice = contract_from({**METERS, "name": "meters_again"}, Path("again.yaml"))
    with pytest.raises(ContractError, match="two extracts are named 'meter_readings_jsonl'"):
        refuse_duplicate_tables([contract, twice])


def test_the_readmes_example_is_the_demos_extract():
    from lakehouse_assets.components.defs_folder import contracts_in

    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Delivering extracts") :]
    block = re.search(r"```yaml\n(.*?)```", section, flags=re.DOTALL).group(1)
    shown = [Extract.model_validate(item) for item in yaml.safe_load(block)["extracts"]]
    demo = next(contract for contract in contracts_in() if contract.name == "carrier_daily_stats")
    assert shown == demo.extracts


EVENTS = {
    "name": "sensor_events",
    "description": "Sensor events, partitioned by the hour in Zurich time.",
    "source": {
        "glob": "events/*.jsonl",
        "format": "jsonl",
        "file_date_pattern": r"(?P<date>\d{4}-\d{2}-\d{2}T\d{2})",
    },
    "columns": [
        {"name": "event_id", "type": "long"},
        {"name": "event_at", "type": "timestamptz"},
        {"name": "reading", "type": "decimal(10,3)"},
    ],
    "primary_key": ["event_id"],
    "partitioning": {
        "column": "event_at",
        "granularity": "hour",
        "start": "2024-03-05",
        "timezone": "Europe/Zurich",
    },
    "extracts": [{"name": "sensor_events_jsonl", "format": "jsonl", "path": "events/{date}/{hour}.jsonl"}],
}


def test_an_hourly_extract_delivers_the_hour_of_its_time_zone(settings, resources, catalog):
    import decimal

    (asset,) = build_extract_assets([contract_from(EVENTS, Path("events.yaml"))])
    schema = pa.schema(
        [
            ("event_id", pa.int64()),
            ("event_at", pa.timestamp("us", tz="UTC")),
            ("reading", pa.decimal128(10, 3)),
        ]
    )
    catalog.create_namespace_if_not_exists("staging")
    table = catalog.create_table("staging.sensor_events", schema=schema)
    start = dt.datetime(2024, 3, 5, 5, 30, tzinfo=dt.UTC)
    rows = [
        {"event_id": n, "event_at": start + dt.timedelta(minutes=10 * n), "reading": decimal.Decimal(n) / 8}
        for n in range(12, 0, -1)
    ]
    table.append(pa.Table.from_pylist(rows, schema=schema))
    # 07:00 in Zurich (UTC+1 in March) is 06:00 to 07:00 UTC
    materialize(asset, resources, "2024-03-05-07:00")
    path = exports(settings) / "events/2024-03-05/07.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    in_hour = sorted(
        (row for row in rows if dt.time(6) <= row["event_at"].time() < dt.time(7)),
        key=lambda r: r["event_id"],
    )
    assert records == [
        {
            "event_id": row["event_id"],
            "event_at": row["event_at"].isoformat(),
            "reading": f"{row['reading']:.3f}",
        }
        for row in in_hour
    ]
    assert len(records) == 6 and manifest_of(path)["partition"] == "2024-03-05-07:00"
