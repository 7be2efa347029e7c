"""The pandas path and the Spark path (real local Spark) produce identical tables.

Each scenario runs twice into two lakehouse homes, once with every partition on pandas and once
with every partition on Spark (threshold 0), then compares every table read with plain pyiceberg:
same rows, same types, same partition layout.
"""

import datetime as dt

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml
from pyiceberg.catalog.sql import SqlCatalog

from checks import history
from io_managers.iceberg_io_manager import IcebergIOManager
from lakehouse_assets.assets.factory import build_assets
from lakehouse_assets.cli.demo import write_demo_landing
from lakehouse_assets.components.defs_folder import contracts_in
from lakehouse_assets.contracts.contract import DatasetContract, ModelContract
from resources.catalog.resource import IcebergCatalogResource
from resources.landing.local import LocalLandingStorage
from resources.notifications.notifier import OutboxNotifier
from resources.settings import Settings
from resources.spark.compute import DEFAULT_SPARK_THRESHOLD_BYTES, ComputeResource
from resources.spark.session import SparkResource
from tests.conftest import materialize_partitions
from tests.io_managers.duckdb_reads import assert_duckdb_reads_what_pyiceberg_reads

VOLATILE_COLUMNS = {"_loaded_at"}

EVENTS = DatasetContract.model_validate(
    {
        "name": "events",
        "description": "Synthetic events that exercise the corners both engines must agree on.",
        "owners": ["team:platform"],
        "source": {
            "glob": "events/events_*.csv",
            "file_date_pattern": r"events_(?P<date>\d{4}-\d{2}-\d{2})\.csv$",
            "csv": {"null_values": ["", "NA"]},
        },
        "columns": [
            {"name": "event_id", "type": "string", "nullable": False},
            {"name": "account", "type": "string", "description": "leading zeros matter"},
            {"name": "amount", "type": "int"},
            {"name": "price", "type": "decimal(10,2)"},
            {"name": "happened_at", "type": "timestamptz", "nullable": False},
            {"name": "local_time", "type": "timestamp"},
            {"name": "y", "type": "int", "nullable": False},
            {"name": "m", "type": "int", "nullable": False},
            {"name": "d", "type": "int", "nullable": False},
            {"name": "email", "type": "string", "pii": True},
        ],
        "primary_key": ["event_id"],
        "partitioning": {"column": "event_date", "start": "2024-03-09", "end": "2024-03-13"},
        "write_modes": {"staging": "upsert"},
        "staging": [
            {"trim": ["account"]},
            {"derive_date": {"column": "event_date", "year": "y", "month": "m", "day": "d"}},
            {"deduplicate": {"keys": ["event_id"], "latest_by": "happened_at"}},
            {"mask": {"columns": ["email"], "method": "sha256"}},
        ],
    }
)
DAILY = ModelContract.model_validate(
    {
        "kind": "model",
        "layer": "output",
        "name": "account_daily",
        "description": "Per account and day.",
        "inputs": {"events": "staging.events"},
        "partitioning": {"column": "event_date", "start": "2024-03-09", "end": "2024-03-13"},
        "steps": [
            {"filter": {"column": "amount", "op": "not_null"}},
            {
                "aggregate": {
                    "by": ["event_date", "account"],
                    "metrics": {
                        "events": {"fn": "count"},
                        "total": {"fn": "sum", "column": "amount"},
                        "no_price": {"fn": "count_null", "column": "price"},
                        "last_at": {"fn": "max", "column": "happened_at"},
                    },
                }
            },
        ],
    }
)
# Columns shuffled in the file; midnight UTC and the 2024-03-10 US DST change; nulls; a duplicate
# key whose later version must win; a bad amount that goes to quarantine.
EVENT_FILES = {
    "events/events_2024-03-09.csv": (
        "d,m,y,amount,event_id,account,happened_at,local_time,price,email\n"
        "9,3,2024,5,e1,007,2024-03-09T23:59:59.999999Z,2024-03-09 18:59:59,1.50,a@x.org\n"
        "9,3,2024,NA,e2, 0042 ,2024-03-09T00:00:00Z,2024-03-08 19:00:00,,\n"
        "9,3,2024,7,e3,007,2024-03-09T12:00:00+02:00,,2.25,b@x.org\n"
        "9,3,2024,12x,e4,007,2024-03-09T01:00:00Z,,3.00,c@x.org\n"
    ),
    "events/events_2024-03-10.csv": (
        "d,m,y,amount,event_id,account,happened_at,local_time,price,email\n"
        "10,3,2024,1,e5,0042,2024-03-10T06:59:59Z,2024-03-10 01:59:59,0.10,d@x.org\n"
        "10,3,2024,2,e6,0042,2024-03-10T07:00:00Z,2024-03-10 03:00:00,NA,d@x.org\n"
        "10,3,2024,3,e5,0042,2024-03-10T08:00:00Z,2024-03-10 04:00:00,0.20,d@x.org\n"
    ),
    # a day with a file but no rows
    "events/events_2024-03-11.csv": "d,m,y,amount,event_id,account,happened_at,local_time,price,email\n",
}


# Two workers keep the suite's Spark time modest on a 2-core machine.
LOCAL_SPARK = SparkResource(master="local[2]")


def _resources(home, threshold: int, spark: SparkResource = LOCAL_SPARK) -> dict:
    settings = Settings(env="local", home=home)
    catalog = IcebergCatalogResource.sql(settings.catalog_uri, settings.warehouse_dir.as_uri())
    compute = ComputeResource(spark=spark, spark_threshold_bytes=threshold)
    return {
        "catalog": catalog,
        "compute": compute,
        "io_manager": IcebergIOManager(catalog=catalog, compute=compute),
        "landing_storage": LocalLandingStorage(root=str(settings.landing_dir)),
        "notifier": OutboxNotifier(directory=str(settings.outbox_dir)),
    }


def _catalog(home) -> SqlCatalog:
    return SqlCatalog(
        "lakehouse", uri=f"sqlite:///{home / 'catalog.db'}", warehouse=(home / "warehouse").as_uri()
    )


def _canonical(table) -> pa.Table:
    # pyiceberg reads strings as string or large_string depending on the file; compare values
    data = table.scan().to_arrow().cast(table.schema().as_arrow())
    data = data.drop_columns([name for name in VOLATILE_COLUMNS if name in data.column_names])
    if data.num_rows:
        data = data.sort_by([(name, "ascending") for name in data.column_names])
    return data


def _partitions(table) -> list[tuple]:
    if table.spec().is_unpartitioned() or table.current_snapshot() is None:
        return []
    rows = table.inspect.partitions().to_pylist()
    return sorted((str(row["partition"]), row["record_count"]) for row in rows if row["record_count"])


LEDGER = "landing.files"
LEDGER_COLUMNS = ["dataset", "key", "etag", "size", "partitions", "status", "reason"]
# the quality history without the runs' times and ids: the same checks, outcomes and counts
HISTORY_COLUMNS = [name for name, _, _ in history.COLUMNS if name not in ("evaluated_at", "run_id")]


def assert_same_tables(pandas_home, spark_home) -> list[str]:
    pandas_catalog, spark_catalog = _catalog(pandas_home), _catalog(spark_home)
    identifiers = sorted(
        ".".join(identifier)
        for namespace in pandas_catalog.list_namespaces()
        for identifier in pandas_catalog.list_tables(namespace)
    )
    spark_identifiers = sorted(
        ".".join(identifier)
        for namespace in spark_catalog.list_namespaces()
        for identifier in spark_catalog.list_tables(namespace)
    )
    assert identifiers == spark_identifiers
    for identifier in identifiers:
        on_pandas, on_spark = pandas_catalog.load_table(identifier), spark_catalog.load_table(identifier)
        assert on_spark.schema().as_struct() == on_pandas.schema().as_struct(), identifier
        assert on_spark.spec().fields == on_pandas.spec().fields, identifier
        expected, actual = _canonical(on_pandas), _canonical(on_spark)
        if identifier == LEDGER:
            # the file ledger's times and run ids are the runs', and the executors that read the
            # files on Spark count no rows and hash no bytes: the same files, statuses and partitions
            expected, actual = expected.select(LEDGER_COLUMNS), actual.select(LEDGER_COLUMNS)
        if identifier == history.IDENTIFIER:
            expected, actual = (
                table.select(HISTORY_COLUMNS).sort_by([(name, "ascending") for name in HISTORY_COLUMNS])
                for table in (expected, actual)
            )
        assert actual.equals(expected), (
            f"{identifier}:\npandas {expected.to_pylist()}\nspark  {actual.to_pylist()}"
        )
        assert _partitions(on_spark) == _partitions(on_pandas), identifier
    # and another engine reads both engines' files as pyiceberg does
    for catalog in (pandas_catalog, spark_catalog):
        assert assert_duckdb_reads_what_pyiceberg_reads(catalog) == identifiers
    return identifiers


def _engines_used(result) -> set[str]:
    return {
        event.materialization.metadata["engine"].value
        for event in result.get_asset_materialization_events()
        if "engine" in event.materialization.metadata
    }


@pytest.fixture
def spark_resource() -> SparkResource:
    """In-process local Spark; tests/spark_connect runs the same tests over a Spark Connect server."""
    return LOCAL_SPARK


@pytest.fixture
def homes(tmp_path):
    return tmp_path / "on_pandas", tmp_path / "on_spark"


def test_every_layer_and_write_mode_matches_on_synthetic_corners(homes, spark_resource):
    assets = build_assets([EVENTS, DAILY])
    for home, threshold, engine in ((homes[0], 1 << 40, "pandas"), (homes[1], 0, "spark")):
        for key, text in EVENT_FILES.items():
            (home / "landing" / key).parent.mkdir(parents=True, exist_ok=True)
            (home / "landing" / key).write_text(text)
        resources = _resources(home, threshold, spark_resource)
        # a range run, then one day again: upsert and overwrite must converge identically
        result = materialize_partitions(assets, resources, "2024-03-09", "2024-03-12")
        assert result.success
        assert _engines_used(result) == {engine}
        assert materialize_partitions(assets, resources, "2024-03-10").success

    tables = assert_same_tables(*homes)
    assert tables == [
        "audit.check_results",
        "landing.events",
        "landing.files",
        "output.account_daily",
        "raw.events",
        "raw.events_rejects",
        "staging.events",
    ]
    catalog = _catalog(homes[1])
    rejects = catalog.load_table("raw.events_rejects").scan().to_arrow()
    assert rejects.column("_reject_reason").to_pylist() == ["amount: '12x' is not a valid int"]
    staged = catalog.load_table("staging.events").scan().to_arrow().sort_by("event_id")
    assert staged.column("account").to_pylist() == ["007", "0042", "007", "0042", "0042"]
    assert staged.column("event_id").to_pylist() == ["e1", "e2", "e3", "e5", "e6"]
    assert pc.sum(staged.column("amount")).as_py() == 5 + 7 + 3 + 2
    assert staged.schema.field("happened_at").type == pa.timestamp("us", tz="UTC")
    assert staged.schema.field("local_time").type == pa.timestamp("us")
    e3 = staged.filter(pc.equal(staged.column("event_id"), "e3"))
    assert e3.column("happened_at")[0].as_py() == dt.datetime(2024, 3, 9, 10, tzinfo=dt.UTC)


def test_append_matches_on_both_engines(homes, spark_resource):
    contract = EVENTS.model_copy(
        update={"write_modes": EVENTS.write_modes.model_copy(update={"staging": "append"})}
    )
    assets = build_assets([contract])
    for home, threshold in ((homes[0], 1 << 40), (homes[1], 0)):
        for key, text in EVENT_FILES.items():
            (home / "landing" / key).parent.mkdir(parents=True, exist_ok=True)
            (home / "landing" / key).write_text(text)
        resources = _resources(home, threshold, spark_resource)
        assert materialize_partitions(assets, resources, "2024-03-10").success
        # a second run appends its rows again, on both engines alike
        staging = dg.AssetKey(["staging", "events"])
        assert materialize_partitions(assets, resources, "2024-03-10", selection=[staging]).success
    assert_same_tables(*homes)
    assert len(_catalog(homes[1]).load_table("staging.events").scan().to_arrow()) == 2 * 2


def test_the_example_gives_identical_tables_with_the_threshold_at_zero_and_at_its_default(
    homes, spark_resource
):
    assets = build_assets(contracts_in())
    unpartitioned = [key for asset in assets if asset.partitions_def is None for key in asset.keys]
    dated = dg.AssetSelection.all() - dg.AssetSelection.assets(*unpartitioned)
    for home, threshold in ((homes[0], DEFAULT_SPARK_THRESHOLD_BYTES), (homes[1], 0)):
        write_demo_landing(
            LocalLandingStorage(root=str(home / "landing")), dt.date(2013, 1, 2), dt.date(2013, 1, 2)
        )
        resources = _resources(home, threshold, spark_resource)
        assert dg.materialize(assets, resources=resources, selection=unpartitioned).success
        assert materialize_partitions(assets, resources, "2013-01-02", selection=dated).success
    tables = assert_same_tables(*homes)
    # the layers' 22 tables, the file ledger and the quality history
    assert len(tables) == 24


def test_deduplication_keeps_the_same_row_on_both_engines_with_nulls_and_ties(spark_resource):
    import narwhals as nw

    from lakehouse_assets.layers.transforms import deduplicate_latest

    rows = pa.table(
        {
            "key": ["a", "a", "b", "b", "c", "c", "d"],
            "loaded": [1, 2, None, None, 5, 5, None],
            "_source_file": ["f1", "f1", "f1", "f2", "f1", "f1", "f1"],
            "_source_line": [2, 3, 4, 2, 7, 6, 9],
        }
    )
    on_pandas = deduplicate_latest(
        nw.from_native(rows.to_pandas(types_mapper=pd.ArrowDtype)), ["key"], "loaded"
    )
    spark = spark_resource.session()
    on_spark = deduplicate_latest(nw.from_native(spark.createDataFrame(rows)), ["key"], "loaded")
    kept_pandas = sorted(on_pandas.select("key", "_source_file", "_source_line").rows())
    kept_spark = sorted(on_spark.select("key", "_source_file", "_source_line").collect().rows())
    assert kept_pandas == kept_spark == [("a", "f1", 3), ("b", "f2", 2), ("c", "f1", 7), ("d", "f1", 9)]


def test_a_partition_whose_rows_all_fail_typing_goes_whole_to_the_rejects_on_both_engines(
    homes, spark_resource
):
    # every row fails: a bad amount, a bad time, a missing required value
    files = {
        "events/events_2024-03-10.csv": (
            "d,m,y,amount,event_id,account,happened_at,local_time,price,email\n"
            "10,3,2024,1x,e5,0042,2024-03-10T06:59:59Z,,0.10,\n"
            "10,3,2024,2,e6,0042,yesterday,,0.20,\n"
            "10,3,2024,3,e7,0042,,,0.30,\n"
        ),
    }
    assets = build_assets([EVENTS])
    for home, threshold, engine in ((homes[0], 1 << 40, "pandas"), (homes[1], 0, "spark")):
        for key, text in files.items():
            (home / "landing" / key).parent.mkdir(parents=True, exist_ok=True)
            (home / "landing" / key).write_text(text)
        resources = _resources(home, threshold, spark_resource)
        result = materialize_partitions(assets, resources, "2024-03-10")
        assert result.success, engine
        assert _engines_used(result) == {engine}
        audits = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert audits["landing_rows_reconcile"] and audits["raw_rows_reconcile"], (engine, audits)

    assert_same_tables(*homes)
    catalog = _catalog(homes[1])
    landing = catalog.load_table("landing.events").scan().to_arrow()
    raw = catalog.load_table("raw.events").scan().to_arrow()
    rejects = catalog.load_table("raw.events_rejects").scan().to_arrow().sort_by("event_id")
    assert landing.num_rows == raw.num_rows + rejects.num_rows == 3 and raw.num_rows == 0
    assert rejects.column("_reject_reason").to_pylist() == [
        "amount: '1x' is not a valid int",
        "happened_at: 'yesterday' is not a valid timestamptz",
        "happened_at: required value is missing",
    ]
    assert catalog.load_table("staging.events").scan().count() == 0


def test_hour_and_month_partitions_match_on_both_engines(homes, spark_resource):
    """Spark writes one file per hour or month too: the tables and their partitions are the same."""
    from tests.lakehouse_assets.test_partitions import LANDING_FILES, METERS, SENSOR_VALUES, SENSORS

    contracts = [
        DatasetContract.model_validate(yaml.safe_load(METERS)),
        DatasetContract.model_validate(yaml.safe_load(SENSORS)),
        ModelContract.model_validate(yaml.safe_load(SENSOR_VALUES)),
    ]
    assets = build_assets(contracts)
    hourly = [asset for asset in assets if asset.partitions_def.get_first_partition_key().endswith(":00")]
    monthly = [asset for asset in assets if asset not in hourly]
    for home, threshold, engine in ((homes[0], 1 << 40, "pandas"), (homes[1], 0, "spark")):
        for key, text in LANDING_FILES.items():
            (home / "landing" / key).parent.mkdir(parents=True, exist_ok=True)
            (home / "landing" / key).write_text(text)
        resources = _resources(home, threshold, spark_resource)
        # two hours of New York time in one run, and a month
        hours = materialize_partitions(hourly, resources, "2024-03-05-07:00", "2024-03-05-08:00")
        month = materialize_partitions(monthly, resources, "2024-03-01")
        assert hours.success and month.success, engine
        assert _engines_used(hours) == _engines_used(month) == {engine}
    assert_same_tables(*homes)
    catalog = _catalog(homes[1])
    assert catalog.load_table("staging.sensors").scan().count() == 4
    assert catalog.load_table("staging.meters").scan().count() == 62
    # hours since the epoch: 12:00 and 13:00 UTC on 5 March 2024 (07:00 and 08:00 in New York)
    assert _partitions(catalog.load_table("staging.sensors")) == [
        ("{'reading_at_hour': 474900}", 3),
        ("{'reading_at_hour': 474901}", 1),
    ]


def _format_contract(name: str, glob: str, pattern: str, **source) -> DatasetContract:
    return DatasetContract.model_validate(
        {
            "name": name,
            "description": f"Meter readings delivered as {name}.",
            "source": {"glob": glob, "file_date_pattern": pattern, **source},
            "columns": [
                {"name": "meter", "type": "string", "nullable": False},
                {"name": "kwh", "type": "decimal(10,2)"},
                {"name": "read_on", "type": "date", "nullable": False},
                {"name": "payload", "type": "string"},
            ],
            "partitioning": {"column": "read_on", "start": "2024-05-06", "end": "2024-05-08"},
        }
    )


def _format_files() -> dict[str, bytes]:
    import gzip
    import io
    import json
    import zipfile

    import pyarrow.parquet as pq

    rows = [("m-007", "1.50", '{"a":[1,2.0]}'), ("m-042", "12x", ""), ("m-043", "", "{}")]
    files = {}
    for day in ("2024-05-06", "2024-05-07"):
        csv = "payload|meter|kwh|read_on\n" + "".join(f"{p}|{m}|{k}|{day}\n" for m, k, p in rows)
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
            out.writestr("part-1.csv", csv.replace("|", ";"))
            out.writestr("nested/part-2.csv.gz", gzip.compress(csv.replace("|", ";").encode()))
            out.writestr("manifest.json", "{}")
        files[f"readings/zip/r_{day}.zip"] = archive.getvalue()
        lines = "".join(
            json.dumps(
                {"meter": m, "reading": {"kwh": k or None}, "on": day, "payload": json.loads(p or "null")}
            )
            + "\n"
            for m, k, p in rows
        )
        files[f"readings/jsonl/r_{day}.jsonl.gz"] = gzip.compress(lines.encode())
        table = pa.table(
            {
                "read_on": pa.array([dt.date.fromisoformat(day)] * 3),
                "kwh": pa.array([1.5, None, 2.25]),
                "meter": [m for m, _, _ in rows],
                "payload": pa.array([{"a": 1}, None, {"a": 3}], pa.struct([("a", pa.int64())])),
            }
        )
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, row_group_size=2)
        files[f"readings/parquet/r_{day}.parquet"] = sink.getvalue().to_pybytes()
    return files


def test_zip_json_lines_and_parquet_sources_match_on_both_engines(homes, spark_resource):
    contracts = [
        _format_contract(
            "readings_zip",
            "readings/zip/*.zip",
            r"r_(?P<date>\d{4}-\d{2}-\d{2})\.zip$",
            zip={"members": "*.csv*"},
            csv={"delimiter": ";"},
        ),
        _format_contract(
            "readings_jsonl",
            "readings/jsonl/*.jsonl.gz",
            r"r_(?P<date>\d{4}-\d{2}-\d{2})\.jsonl\.gz$",
            format="jsonl",
            jsonl={"paths": {"kwh": "reading.kwh", "read_on": "on"}},
        ),
        _format_contract(
            "readings_parquet",
            "readings/parquet/*.parquet",
            r"r_(?P<date>\d{4}-\d{2}-\d{2})\.parquet$",
            format="parquet",
        ),
    ]
    assets = build_assets(contracts)
    # made once: gzip and zip write the time into the bytes, hence into the checksums
    files = _format_files()
    for home, threshold, engine in ((homes[0], 1 << 40, "pandas"), (homes[1], 0, "spark")):
        for key, data in files.items():
            (home / "landing" / key).parent.mkdir(parents=True, exist_ok=True)
            (home / "landing" / key).write_bytes(data)
        result = materialize_partitions(
            assets, _resources(home, threshold, spark_resource), "2024-05-06", "2024-05-07"
        )
        assert result.success
        assert _engines_used(result) == {engine}

    # four tables of each of the three datasets, the file ledger and the quality history
    assert len(assert_same_tables(*homes)) == 14
    catalog = _catalog(homes[1])
    landing = catalog.load_table("landing.readings_zip").scan().to_arrow()
    assert sorted(set(landing.column("_source_member").to_pylist())) == ["nested/part-2.csv.gz", "part-1.csv"]
    rejects = catalog.load_table("raw.readings_zip_rejects").scan().to_arrow()
    assert rejects.column("_reject_reason").to_pylist() == ["kwh: '12x' is not a valid decimal(10,2)"] * 4
    jsonl = catalog.load_table("staging.readings_jsonl").scan().to_arrow().sort_by("meter")
    assert jsonl.column("payload").to_pylist()[:2] == ['{"a":[1,2.0]}', '{"a":[1,2.0]}']
    parquet = catalog.load_table("staging.readings_parquet").scan().to_arrow().sort_by("_source_line")
    assert parquet.num_rows == 6
    assert parquet.column("_source_line").to_pylist() == [1, 1, 2, 2, 3, 3]


def test_doubles_beyond_range_underflowing_or_not_finite_are_rejects_on_both_engines(homes, spark_resource):
    """1e400, -1e400 and 1e-400 were typed inf, -inf and 0.0; an explicit inf or nan is a reject
    unless the column allows it (allow_non_finite)."""
    contract = DatasetContract.model_validate(
        {
            "name": "gauges",
            "description": "Readings that a double cannot always hold.",
            "source": {
                "glob": "gauges/*.csv",
                "file_date_pattern": r"gauges_(?P<date>\d{4}-\d{2}-\d{2})\.csv$",
            },
            "columns": [
                {"name": "id", "nullable": False},
                {"name": "reading", "type": "double"},
                {"name": "ratio", "type": "double", "allow_non_finite": True},
                {"name": "read_on", "type": "date", "nullable": False},
            ],
            "partitioning": {"column": "read_on", "start": "2024-05-06", "end": "2024-05-08"},
        }
    )
    text = (
        "id,reading,ratio,read_on\n"
        "g1,1.5,inf,2024-05-06\n"
        "g2,1e400,1,2024-05-06\n"
        "g3,-1e400,1,2024-05-06\n"
        "g4,1e-400,1,2024-05-06\n"
        "g5,nan,1,2024-05-06\n"
        "g6,0e-400,-Infinity,2024-05-06\n"
        "g7,2,1e400,2024-05-06\n"
    )
    assets = build_assets([contract])
    for home, threshold, engine in ((homes[0], 1 << 40, "pandas"), (homes[1], 0, "spark")):
        path = home / "landing" / "gauges" / "gauges_2024-05-06.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        result = materialize_partitions(assets, _resources(home, threshold, spark_resource), "2024-05-06")
        assert result.success, engine
        assert _engines_used(result) == {engine}

    assert_same_tables(*homes)
    catalog = _catalog(homes[1])
    raw = catalog.load_table("raw.gauges").scan().to_arrow().sort_by("id")
    assert raw.column("id").to_pylist() == ["g1", "g6"]
    assert raw.column("reading").to_pylist() == [1.5, 0.0]
    assert raw.column("ratio").to_pylist() == [float("inf"), float("-inf")]
    rejects = catalog.load_table("raw.gauges_rejects").scan().to_arrow().sort_by("id")
    assert dict(
        zip(rejects.column("id").to_pylist(), rejects.column("_reject_reason").to_pylist(), strict=True)
    ) == {
        "g2": "reading: '1e400' is not a valid double (beyond the range of a double)",
        "g3": "reading: '-1e400' is not a valid double (beyond the range of a double)",
        "g4": "reading: '1e-400' is not a valid double (too small for a double: it would be stored as 0)",
        "g5": "reading: 'nan' is not a valid double (not a finite number, which the column does not allow: "
        "allow_non_finite)",
        "g7": "ratio: '1e400' is not a valid double (beyond the range of a double)",
    }


def test_old_mac_line_endings_are_read_alike_on_both_engines(homes, spark_resource):
    # a lone "\r" ended each line: the header check crashed with a bare `_csv.Error`
    contract = _format_contract("mac", "mac/*.csv", r"mac_(?P<date>\d{4}-\d{2}-\d{2})\.csv$")
    text = 'meter,kwh,read_on,payload\rm1,1.50,2024-05-06,a\rm2,2x,2024-05-06,"b,c"\rm3,3,2024-05-06,d\r'
    assets = build_assets([contract])
    for home, threshold, engine in ((homes[0], 1 << 40, "pandas"), (homes[1], 0, "spark")):
        path = home / "landing" / "mac" / "mac_2024-05-06.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
        result = materialize_partitions(assets, _resources(home, threshold, spark_resource), "2024-05-06")
        assert result.success, engine
        assert _engines_used(result) == {engine}

    assert_same_tables(*homes)
    catalog = _catalog(homes[1])
    raw = catalog.load_table("raw.mac").scan().to_arrow().sort_by("meter")
    assert raw.select(["meter", "payload", "_source_line"]).to_pylist() == [
        {"meter": "m1", "payload": "a", "_source_line": 2},
        {"meter": "m3", "payload": "d", "_source_line": 4},
    ]
    rejects = catalog.load_table("raw.mac_rejects").scan().to_arrow()
    assert rejects.select(["meter", "payload", "_source_line", "_reject_reason"]).to_pylist() == [
        {
            "meter": "m2",
            "payload": "b,c",
            "_source_line": 3,
            "_reject_reason": "kwh: '2x' is not a valid decimal(10,2)",
        }
    ]


def test_an_unclosed_quote_in_a_middle_field_is_named_on_both_engines(homes, spark_resource):
    # it was reported as a wrong number of fields, with the next line swallowed into the row
    contract = _format_contract("quotes", "quotes/*.csv", r"quotes_(?P<date>\d{4}-\d{2}-\d{2})\.csv$")
    text = 'meter,kwh,read_on,payload\nm1,1.50,2024-05-06,a\nm2,"2,2024-05-06,b\nm3,3,2024-05-06,d\n'
    assets = build_assets([contract])
    for home, threshold in ((homes[0], 1 << 40), (homes[1], 0)):
        path = home / "landing" / "quotes" / "quotes_2024-05-06.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        with pytest.raises(Exception) as raised:
            materialize_partitions(assets, _resources(home, threshold, spark_resource), "2024-05-06")
        message = str(raised.value)
        assert (
            "quotes/quotes_2024-05-06.csv: line 3: a quote is not closed (a quoted value runs past the end "
            "of the line): 'm2,\"2,2024-05-06,b'" in message
        ), message
        assert "fields, expected" not in message
