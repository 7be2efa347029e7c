"""Which engine computes a partition: pandas below a size threshold, Spark above it."""

from typing import Literal

import dagster as dg

from resources.spark.jobs import SparkJobResource
from resources.spark.session import SparkResource

Engine = Literal["pandas", "spark"]
# On a 2-core, 24 GiB machine (bench/ENGINES.md) pandas is faster at every size measured, but its
# peak memory grows ~24x the CSV size (2 GiB at 85 MiB) while Spark's stays near its fixed 2 GiB
# heap: 128 MiB keeps a pandas partition near 3 GiB. Table inputs are measured in Parquet bytes.
DEFAULT_SPARK_THRESHOLD_BYTES = 128 * 1024 * 1024


def is_spark_frame(obj: object) -> bool:
    """A PySpark DataFrame, classic or Spark Connect; asking never imports pyspark."""
    # narwhals here, not at the top: loading the definitions imports none of the data stack
    from narwhals.dependencies import is_pyspark_connect_dataframe, is_pyspark_dataframe

    return is_pyspark_dataframe(obj) or is_pyspark_connect_dataframe(obj)


class ComputeResource(dg.ConfigurableResource):
    """The size threshold and the Spark session; contracts may override the threshold or pin an engine.

    With `spark_job` (LAKEHOUSE_SPARK_SUBMIT) a staging step chosen for Spark runs as a submitted
    job instead, and this process opens no session for it.
    """

    spark: dg.ResourceDependency[SparkResource]
    spark_threshold_bytes: int = DEFAULT_SPARK_THRESHOLD_BYTES
    spark_job: dg.ResourceDependency[SparkJobResource | None] = None

    def choose(self, estimated_bytes: int, pinned: str | None = None, threshold: int | None = None) -> Engine:
        if pinned in ("pandas", "spark"):
            return pinned
        limit = self.spark_threshold_bytes if threshold is None else threshold
        # a threshold of 0 sends everything, empty partitions included, to Spark
        return "spark" if estimated_bytes >= limit else "pandas"

    def session(self):
        return self.spark.session()
