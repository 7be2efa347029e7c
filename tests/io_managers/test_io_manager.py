"""The Iceberg IO manager against a real SQLite catalog: write modes, windows, schema evolution."""

import datetime as dt

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest

from io_managers.schema import SchemaEvolutionError
from io_managers.slices import PartitionWindowError
from io_managers.table_spec import TableSpec
from tests.conftest import materialize_partitions

DAYS = dg.DailyPartitionsDefinition(start_date="2024-03-01", end_date="2024-04-01")


def readings(day: str, *values: int, extra: dict | None = None) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "reading_date": pd.Series([dt.date.fromisoformat(day)] * len(values), dtype="date32[pyarrow]"),
            "sensor": [f"s{index}" for index in range(len(values))],
            "value": pd.Series(values, dtype="int64[pyarrow]"),
        }
    )
    for name, column in (extra or {}).items():
        frame[name] = column
    return frame


def table_asset(mode: str, produce, *, key=("staging", "readings"), partitions=DAYS, primary_key=("sensor",)):
    """An asset owned by the IO manager the way the factory declares it, with `produce(context)` as body."""
    spec = TableSpec(
        layer=key[0],
        table=key[1],
        write_mode=mode,
        primary_key=tuple(primary_key),
        table_properties={"comment": "test readings", "lakehouse.layer": key[0]},
    )
    if partitions is not None:
        spec = spec.model_copy(
            update={
                "partition_column": "reading_date",
                "granularity": "day",
                "primary_key": ("reading_date", *primary_key),
            }
        )
    metadata = spec.to_metadata() | {
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn("value", "long", description="the measured value")]
        ),
    }

    @dg.asset(key=list(key), partitions_def=partitions, metadata=metadata)
    def readings_table(context: dg.AssetExecutionContext):
        return produce(context)

    return readings_table


def rows(catalog, identifier="staging.readings") -> pd.DataFrame:
    return (
        catalog.load_table(identifier)
        .scan()
        .to_pandas()
        .sort_values(["reading_date", "sensor"], ignore_index=True)
    )


def test_overwrite_replaces_exactly_the_partition_and_is_idempotent(resources, catalog):
    values = {"2024-03-01": (1, 2, 3), "2024-03-02": (4, 5)}
    asset = table_asset(
        "overwrite", lambda context: readings(context.partition_key, *values[context.partition_key])
    )
    for key in ("2024-03-01", "2024-03-02", "2024-03-01", "2024-03-01"):
        assert materialize_partitions([asset], resources, key).success
    table = rows(catalog)
    assert table.groupby("reading_date").size().to_dict() == {dt.date(2024, 3, 1): 3, dt.date(2024, 3, 2): 2}

    values["2024-03-01"] = (9,)
    result = materialize_partitions([asset], resources, "2024-03-01")
    assert rows(catalog).value.tolist() == [9, 4, 5]
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["rows_written"].value == 1
    assert metadata["slice_row_count"].value == 1
    snapshot = catalog.load_table("staging.readings").current_snapshot()
    assert metadata["snapshot_id"].value == str(snapshot.snapshot_id)
    assert metadata["table"].value == "staging.readings"


def test_a_range_run_writes_every_partition_of_the_window(resources, catalog):
    def produce(context):
        window = context.partition_time_window
        days = pd.date_range(window.start.date(), window.end.date(), inclusive="left")
        return pd.concat([readings(str(day.date()), 10, 20) for day in days], ignore_index=True)

    asset = table_asset("overwrite", produce)
    assert materialize_partitions([asset], resources, "2024-03-05", "2024-03-08").success
    assert rows(catalog).reading_date.nunique() == 4
    assert len(rows(catalog)) == 8


def test_rows_outside_the_partition_raise_a_clear_error(resources, catalog):
    assert materialize_partitions(
        [table_asset("overwrite", lambda c: readings("2024-03-01", 1))], resources, "2024-03-01"
    ).success
    bad = table_asset("overwrite", lambda context: readings("2024-03-02", 7))
    with pytest.raises(PartitionWindowError, match=r"1 rows lie outside the partition 2024-03-01"):
        materialize_partitions([bad], resources, "2024-03-01")
    assert rows(catalog).value.tolist() == [1]


def test_append_adds_rows_but_a_repeated_run_does_not(resources, catalog):
    asset = table_asset("append", lambda context: readings(context.partition_key, 1, 2))
    assert materialize_partitions([asset], resources, "2024-03-01").success
    assert materialize_partitions([asset], resources, "2024-03-01").success
    assert len(rows(catalog)) == 4

    table = catalog.load_table("staging.readings")
    from io_managers.commit import WriteRequest, commit
    from io_managers.slices import TableSlice

    window = TableSlice(
        "reading_date", dt.datetime(2024, 3, 1, tzinfo=dt.UTC), dt.datetime(2024, 3, 2, tzinfo=dt.UTC)
    )
    request = WriteRequest(mode="append", slice=window, run_id="retried-run")
    data = pa.Table.from_pandas(readings("2024-03-01", 5), preserve_index=False)
    first = commit(table, data, request)
    again = commit(table, data, request)
    assert first.rows_written == 1 and first.skipped_reason is None
    assert again.skipped_reason == "this run already appended this slice"
    assert len(rows(catalog)) == 5


def test_upsert_replaces_matching_keys_inside_the_partition_only(resources, catalog):
    batches = iter(
        [
            readings("2024-03-01", 1, 2, 3),  # s0, s1, s2
            readings("2024-03-02", 7, 8),  # s0, s1 on another day
            readings("2024-03-01", 10, 20).assign(sensor=["s1", "s9"]),
        ]
    )
    asset = table_asset("upsert", lambda context: next(batches))
    for key in ("2024-03-01", "2024-03-02", "2024-03-01"):
        result = materialize_partitions([asset], resources, key)
    table = rows(catalog)
    first_day = table[table.reading_date == dt.date(2024, 3, 1)].set_index("sensor").value.to_dict()
    assert first_day == {"s0": 1, "s1": 10, "s2": 3, "s9": 20}
    assert table[table.reading_date == dt.date(2024, 3, 2)].value.tolist() == [7, 8]
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["rows_replaced"].value == 1
    assert metadata["slice_row_count"].value == 4


def test_upsert_refuses_incoming_rows_that_repeat_a_key(resources, catalog):
    from io_managers.commit import UpsertKeyError

    asset = table_asset("upsert", lambda context: readings("2024-03-01", 1, 2).assign(sensor=["s0", "s0"]))
    with pytest.raises(UpsertKeyError, match="repeat the upsert key"):
        materialize_partitions([asset], resources, "2024-03-01")


def test_unpartitioned_overwrite_replaces_the_whole_table(resources, catalog):
    frames = iter([readings("2024-03-01", 1, 2, 3), readings("2024-03-05", 4)])
    asset = table_asset("overwrite", lambda context: next(frames), partitions=None)
    assert dg.materialize([asset], resources=resources).success
    assert dg.materialize([asset], resources=resources).success
    assert rows(catalog).value.tolist() == [4]
    assert catalog.load_table("staging.readings").spec().is_unpartitioned()


def test_schema_evolves_additively_and_keeps_foreign_properties_and_docs(resources, catalog):
    frames = iter(
        [
            readings("2024-03-01", 1),
            readings("2024-03-02", 2, extra={"unit": pd.Series(["kWh"], dtype="string[pyarrow]")}),
        ]
    )
    asset = table_asset("overwrite", lambda context: next(frames))
    assert materialize_partitions([asset], resources, "2024-03-01").success
    catalog.load_table("staging.readings").transaction().set_properties(
        {"owner.team": "energy"}
    ).commit_transaction()
    assert materialize_partitions([asset], resources, "2024-03-02").success

    table = catalog.load_table("staging.readings")
    assert table.schema().find_field("unit").optional
    assert table.schema().find_field("value").doc == "the measured value"
    assert table.properties["owner.team"] == "energy"
    assert table.properties["comment"] == "test readings"
    assert [str(field.transform) for field in table.spec().fields] == ["day"]
    evolved = rows(catalog)
    assert evolved.unit.isna().tolist() == [True, False]


def test_incompatible_type_change_names_the_column_and_writes_nothing(resources, catalog):
    frames = iter(
        [
            readings("2024-03-01", 1),
            readings("2024-03-01", 1).assign(value=pd.Series(["one"], dtype="string[pyarrow]")),
        ]
    )
    asset = table_asset("overwrite", lambda context: next(frames))
    assert materialize_partitions([asset], resources, "2024-03-01").success
    snapshots = len(catalog.load_table("staging.readings").metadata.snapshots)
    with pytest.raises(SchemaEvolutionError, match=r"value: table has long, data has string"):
        materialize_partitions([asset], resources, "2024-03-01")
    assert len(catalog.load_table("staging.readings").metadata.snapshots) == snapshots


def test_safe_widening_int_to_long_is_applied(resources, catalog):
    frames = iter(
        [
            readings("2024-03-01", 1).astype({"value": "int32[pyarrow]"}),
            readings("2024-03-01", 2**40),
        ]
    )
    asset = table_asset("overwrite", lambda context: next(frames))
    assert materialize_partitions([asset], resources, "2024-03-01").success
    assert str(catalog.load_table("staging.readings").schema().find_field("value").field_type) == "int"
    assert materialize_partitions([asset], resources, "2024-03-01").success
    assert str(catalog.load_table("staging.readings").schema().find_field("value").field_type) == "long"
    assert rows(catalog).value.tolist() == [2**40]


def test_downstream_reads_its_partition_as_a_pandas_frame(resources, catalog):
    upstream = table_asset("overwrite", lambda context: readings(context.partition_key, 1, 2))
    seen = {}

    @dg.asset(
        key=["output", "readings_seen"],
        partitions_def=DAYS,
        ins={"source": dg.AssetIn(key=["staging", "readings"])},
    )
    def downstream(source: pd.DataFrame) -> None:
        seen["frame"] = source

    for key in ("2024-03-01", "2024-03-02"):
        assert materialize_partitions([upstream], resources, key).success
    assert materialize_partitions(
        [upstream, downstream], resources, "2024-03-02", selection=[downstream]
    ).success
    frame = seen["frame"]
    assert isinstance(frame, pd.DataFrame)
    assert frame.reading_date.unique().tolist() == [dt.date(2024, 3, 2)]
    assert str(frame.value.dtype) == "int64[pyarrow]"
