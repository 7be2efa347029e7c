"""The engine choice: by size against the threshold, unless a contract pins one or moves the threshold."""

from lakehouse_assets.definitions import build_resources
from resources.spark.compute import ComputeResource, is_spark_frame
from resources.spark.session import SparkResource

MIB = 1 << 20


def test_size_against_the_threshold_decides():
    compute = ComputeResource(spark=SparkResource(), spark_threshold_bytes=64 * MIB)
    assert compute.choose(64 * MIB - 1) == "pandas"
    assert compute.choose(64 * MIB) == "spark"


def test_a_threshold_of_zero_sends_even_empty_partitions_to_spark():
    assert ComputeResource(spark=SparkResource(), spark_threshold_bytes=0).choose(0) == "spark"


def test_contracts_pin_an_engine_or_move_the_threshold():
    compute = ComputeResource(spark=SparkResource(), spark_threshold_bytes=64 * MIB)
    assert compute.choose(10 * 1024 * MIB, pinned="pandas") == "pandas"
    assert compute.choose(0, pinned="spark") == "spark"
    assert compute.choose(2 * MIB, threshold=MIB) == "spark"


def test_environment_sets_the_threshold_and_the_spark_session_settings(settings, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_SPARK_THRESHOLD_BYTES", "1234")
    monkeypatch.setenv("LAKEHOUSE_SPARK_MASTER", "spark://cluster:7077")
    monkeypatch.setenv("LAKEHOUSE_SPARK_CONF", '{"spark.executor.memory": "8g"}')
    from resources.settings import load_settings

    compute = build_resources(load_settings())["compute"]
    assert compute.spark_threshold_bytes == 1234
    assert compute.spark.spark_conf()["spark.master"] == "spark://cluster:7077"
    assert compute.spark.spark_conf()["spark.executor.memory"] == "8g"
    assert not is_spark_frame(object())
