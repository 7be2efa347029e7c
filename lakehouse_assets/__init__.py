"""Medallion Lakehouse: YAML dataset contracts become Dagster assets over Apache Iceberg."""
