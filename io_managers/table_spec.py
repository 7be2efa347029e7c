"""What the asset factory tells the IO manager about each table, in the asset's definition metadata."""

# Definition metadata keys the asset factory sets and the IO manager reads.
PARTITION_COLUMN = "lakehouse/partition_column"
# `hour` or `month`: the Iceberg transform of a table created for the asset; absent means `day`.
PARTITION_GRANULARITY = "lakehouse/partition_granularity"
WRITE_MODE = "lakehouse/write_mode"
PRIMARY_KEY = "lakehouse/primary_key"
TABLE_PROPERTIES = "lakehouse/table_properties"
# Input metadata (on AssetIn) a contract uses to pin an engine or move the threshold.
ENGINE = "lakehouse/engine"
SPARK_THRESHOLD = "lakehouse/spark_threshold_bytes"
