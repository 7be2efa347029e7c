"""The Spark commit path's guarantees, on real local Spark and a real SQLite catalog."""

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException
from pyspark.sql import functions as F

from io_managers.commit import UpsertKeyError, WriteRequest
from io_managers.schema import create_table_if_missing
from io_managers.slices import PartitionWindowError, TableSlice
from io_managers.spark_frames import commit_spark, read_slice
from resources.spark.session import SparkResource, spark_job_tags

DAY = TableSlice("day", dt.datetime(2024, 3, 1, tzinfo=dt.UTC), dt.datetime(2024, 3, 2, tzinfo=dt.UTC))
SCHEMA = pa.schema([("day", pa.date32()), ("key", pa.string()), ("value", pa.int64())])


@pytest.fixture(scope="module")
def spark():
    return SparkResource(master="local[2]").session()


@pytest.fixture
def table(catalog):
    return create_table_if_missing(catalog, "staging.values", SCHEMA, "day")


def frame(spark, *rows):
    return spark.createDataFrame(
        pa.Table.from_pylist([dict(zip(SCHEMA.names, row, strict=True)) for row in rows], SCHEMA)
    )


def request(mode="overwrite", run_id="run-1"):
    return WriteRequest(mode=mode, slice=DAY, run_id=run_id, primary_key=("day", "key"))


def data_files(table) -> list[Path]:
    root = Path(table.location().removeprefix("file://")) / "data"
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_overwrite_commits_spark_files_that_plain_pyiceberg_reads(spark, table):
    day = dt.date(2024, 3, 1)
    commit_spark(table, frame(spark, (day, "a", 1), (day, "b", 2)), request())
    result = commit_spark(table, frame(spark, (day, "a", 10)), request())
    assert result.rows_written == 1
    assert table.scan().to_arrow().to_pylist() == [{"day": day, "key": "a", "value": 10}]
    assert table.current_snapshot().snapshot_id == result.snapshot_id
    assert read_slice(spark, table, DAY).count() == 1


def test_upsert_on_spark_merges_inside_the_partition(spark, table):
    day = dt.date(2024, 3, 1)
    commit_spark(table, frame(spark, (day, "a", 1), (day, "b", 2)), request("upsert"))
    result = commit_spark(table, frame(spark, (day, "b", 20), (day, "c", 30)), request("upsert"))
    rows = sorted((row["key"], row["value"]) for row in table.scan().to_arrow().to_pylist())
    assert rows == [("a", 1), ("b", 20), ("c", 30)]
    assert result.rows_replaced == 1
    with pytest.raises(UpsertKeyError):
        commit_spark(table, frame(spark, (day, "a", 1), (day, "a", 2)), request("upsert"))


def test_rows_outside_the_partition_fail_and_leave_no_file_and_no_commit(spark, table):
    with pytest.raises(PartitionWindowError, match="1 rows .* outside the partition 2024-03-01"):
        commit_spark(
            table, frame(spark, (dt.date(2024, 3, 1), "a", 1), (dt.date(2024, 3, 5), "b", 2)), request()
        )
    assert data_files(table) == []
    assert table.current_snapshot() is None


def test_a_spark_job_that_fails_leaves_no_files_and_no_commit(spark, table):
    day = dt.date(2024, 3, 1)
    commit_spark(table, frame(spark, (day, "a", 1)), request())
    before_files, before_snapshot = data_files(table), table.current_snapshot().snapshot_id

    def fail_on_b(batches):
        for batch in batches:
            if "b" in batch.column("key").to_pylist():
                raise RuntimeError("executor lost while writing")
            yield batch

    many = frame(spark, *[(day, key, index) for index, key in enumerate("aaaaab")]).repartition(3)
    failing = many.mapInArrow(fail_on_b, many.schema)
    with pytest.raises(Exception, match="executor lost while writing"):
        commit_spark(table, failing, request())
    table.refresh()
    assert table.current_snapshot().snapshot_id == before_snapshot
    assert data_files(table) == before_files


class RefusingCatalog(SqlCatalog):
    """A real SQLite catalog whose commits are refused, as when another writer keeps winning."""

    def commit_table(self, table, requirements, updates):
        raise CommitFailedException("injected: the catalog refused the commit")


def test_files_written_for_a_commit_that_fails_are_removed(spark, table, settings):
    day = dt.date(2024, 3, 1)
    commit_spark(table, frame(spark, (day, "a", 1)), request())
    before_files = data_files(table)
    refusing = RefusingCatalog(
        "lakehouse", uri=settings.catalog_uri, warehouse=settings.warehouse_dir.as_uri()
    )
    with pytest.raises(CommitFailedException, match="injected"):
        commit_spark(refusing.load_table("staging.values"), frame(spark, (day, "b", 2)), request())
    assert data_files(table) == before_files
    table.refresh()
    assert table.scan().to_arrow().column("key").to_pylist() == ["a"]


def test_spark_writes_evolve_the_schema_additively(spark, table):
    day = dt.date(2024, 3, 1)
    commit_spark(table, frame(spark, (day, "a", 1)), request())
    wider = frame(spark, (day, "b", 2)).withColumn("unit", F.lit("kWh"))
    commit_spark(table, wider, request("append", run_id="run-2"))
    rows = sorted((row["key"], row["unit"]) for row in table.scan().to_arrow().to_pylist())
    assert rows == [("a", None), ("b", "kWh")]
    assert read_slice(spark, table, DAY).columns == ["day", "key", "value", "unit"]


def test_spark_session_settings_come_from_configuration_alone():
    local = SparkResource(conf={"spark.executor.memory": "8g"}).spark_conf()
    assert local["spark.master"] == "local[*]"
    assert local["spark.executor.memory"] == "8g"
    assert local["spark.sql.session.timeZone"] == "UTC"
    connect = SparkResource(remote="sc://spark-connect:15002").spark_conf()
    assert connect["spark.remote"] == "sc://spark-connect:15002"
    assert "spark.master" not in connect
    cluster = SparkResource(master="yarn").spark_conf()
    assert cluster["spark.master"] == "yarn" and "spark.driver.memory" not in cluster


def test_the_writing_job_returns_the_rows_and_a_preview_of_what_it_wrote(spark, table):
    day = dt.date(2024, 3, 1)
    previews = []
    rows = [(day, f"k{index}", index) for index in range(12)]
    result = commit_spark(table, frame(spark, *rows).repartition(3), request(), previews.append)
    assert result.rows_written == 12
    (preview,) = previews
    assert preview.schema.names == SCHEMA.names
    assert 0 < preview.num_rows <= 5
    written = {(row["day"], row["key"], row["value"]) for row in table.scan().to_arrow().to_pylist()}
    assert {(row["day"], row["key"], row["value"]) for row in preview.to_pylist()} <= written


def test_a_steps_spark_jobs_carry_its_tags_while_it_runs(spark):
    resource = SparkResource(master="local[2]")
    with spark_job_tags("dagster-run-r1", "dagster-step-r1-staging__values-2024-03-01"):
        # a session started during the step is tagged too, and so is one open before it
        session = resource.session()
        assert {"dagster-run-r1", "dagster-step-r1-staging__values-2024-03-01"} <= session.getTags()
        assert "dagster-run-r1" in spark.getTags()
    assert not {"dagster-run-r1", "dagster-step-r1-staging__values-2024-03-01"} & session.getTags()
    assert "dagster-run-r1" not in spark.getTags()


def test_a_step_that_ends_out_of_order_removes_only_its_own_tags(spark):
    # an abandoned step's generator is closed when collected, possibly inside a later step
    abandoned, later = spark_job_tags("dagster-run-old"), spark_job_tags("dagster-run-new")
    abandoned.__enter__()
    later.__enter__()
    abandoned.__exit__(None, None, None)
    assert "dagster-run-new" in spark.getTags()
    assert "dagster-run-old" not in spark.getTags()
    later.__exit__(None, None, None)
    assert not {"dagster-run-old", "dagster-run-new"} & spark.getTags()
