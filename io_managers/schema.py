"""Creating tables, evolving their schemas and keeping their documentation in the catalog."""

from collections.abc import Mapping

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.io.pyarrow import _ConvertToIcebergWithoutIDs, visit_pyarrow
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionField, PartitionSpec
from pyiceberg.schema import Schema, assign_fresh_schema_ids
from pyiceberg.table import Table, Transaction
from pyiceberg.transforms import DayTransform, HourTransform, MonthTransform
from pyiceberg.types import (
    DecimalType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
)

MANAGED_PROPERTY_PREFIX = "lakehouse."
COMMENT_PROPERTY = "comment"
# Iceberg's own safe widenings: a table column may take these wider types without rewriting data.
_WIDENINGS = {(IntegerType, LongType), (FloatType, DoubleType)}
# pyiceberg reads its commit retry budget from the table, so it is set at creation, before the first
# write. Its defaults (4 retries from 100 ms) are too few for a dozen processes on one table.
NEW_TABLE_PROPERTIES = {
    "commit.retry.num-retries": "10",
    "commit.retry.min-wait-ms": "50",
    "commit.retry.max-wait-ms": "2000",
    "commit.retry.total-timeout-ms": "120000",
    # pyiceberg copies the whole table metadata some 40 times per commit, so its log of earlier
    # metadata files (100 by default) makes every write slower. Ten are plenty next to the
    # maintenance job's five days of snapshots; older metadata files are deleted as they drop out.
    "write.metadata.previous-versions-max": "10",
    "write.metadata.delete-after-commit.enabled": "true",
}


# A table's time partitions as Iceberg transforms of its partition column (`granularity` in contracts).
TRANSFORMS = {"hour": HourTransform, "day": DayTransform, "month": MonthTransform}


class SchemaEvolutionError(ValueError):
    """An incoming frame whose columns cannot be written without rewriting or losing data."""


def normalise_arrow(data: pa.Table) -> pa.Table:
    """Types Iceberg stores: microsecond timestamps, plain strings, no dictionaries or null columns."""
    fields = []
    for field in data.schema:
        type_ = field.type
        if pa.types.is_timestamp(type_) and type_.unit != "us":
            type_ = pa.timestamp("us", tz=type_.tz)
        elif pa.types.is_large_string(type_) or pa.types.is_string_view(type_):
            type_ = pa.string()
        elif pa.types.is_dictionary(type_):
            type_ = type_.value_type
        elif pa.types.is_null(type_):
            type_ = pa.string()
        fields.append(pa.field(field.name, type_, nullable=True))
    schema = pa.schema(fields)
    # pandas metadata describes the frame's index, which an Iceberg table does not have
    return data.cast(schema) if schema != data.schema.remove_metadata() else data.replace_schema_metadata()


def iceberg_schema(arrow_schema: pa.Schema) -> Schema:
    return assign_fresh_schema_ids(visit_pyarrow(arrow_schema, _ConvertToIcebergWithoutIDs()))


def _is_widening(narrow: IcebergType, wide: IcebergType) -> bool:
    if (type(narrow), type(wide)) in _WIDENINGS:
        return True
    if isinstance(narrow, DecimalType) and isinstance(wide, DecimalType):
        return wide.scale == narrow.scale and wide.precision > narrow.precision
    return False


def create_table_if_missing(
    catalog: Catalog,
    identifier: str,
    arrow_schema: pa.Schema,
    partition_column: str | None,
    granularity: str = "day",
) -> Table:
    """Create namespace and table if absent; a concurrent creator wins harmlessly (race-safe).

    A partitioned table is partitioned by the `granularity` transform (hour, day, month) of its column.
    """
    namespace = identifier.rsplit(".", 1)[0]
    try:
        catalog.create_namespace_if_not_exists(namespace)
    except Exception:
        # SqlCatalog checks, then inserts: a concurrent creator's insert wins and ours raises a
        # database integrity error instead of NamespaceAlreadyExistsError. Existing is what we wanted.
        if not catalog.namespace_exists(namespace):
            raise
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        pass
    schema = iceberg_schema(arrow_schema)
    spec = UNPARTITIONED_PARTITION_SPEC
    if partition_column:
        source = schema.find_field(partition_column)
        spec = PartitionSpec(
            PartitionField(
                source_id=source.field_id,
                field_id=1000,
                transform=TRANSFORMS[granularity](),
                name=f"{partition_column}_{granularity}",
            )
        )
    return catalog.create_table_if_not_exists(
        identifier, schema=schema, partition_spec=spec, properties=NEW_TABLE_PROPERTIES
    )


def plan_schema(table_schema: Schema, data: pa.Table) -> tuple[pa.Table, list[NestedField]]:
    """The frame cast to the table's types, and the columns the table must add or widen first.

    Additive evolution only: new columns (nullable) and safe widenings. Anything else fails and
    names every offending column, before anything is written. An empty frame stands for a schema
    (the Spark path plans with one).
    """
    incoming = iceberg_schema(data.schema)
    existing = {field.name: field for field in table_schema.fields}
    table_arrow = table_schema.as_arrow()
    evolutions, problems, target_fields = [], [], []
    for field in incoming.fields:
        current = existing.get(field.name)
        incoming_type = data.schema.field(field.name).type
        all_null = pa.types.is_null(incoming_type) or (
            data.num_rows > 0 and data.column(field.name).null_count == data.num_rows
        )
        if current is None:
            evolutions.append(field)
            target_fields.append(data.schema.field(field.name))
        elif current.field_type == field.field_type or _is_widening(field.field_type, current.field_type):
            target_fields.append(table_arrow.field(field.name))
        elif _is_widening(current.field_type, field.field_type):
            evolutions.append(field)
            target_fields.append(data.schema.field(field.name))
        elif all_null:
            target_fields.append(table_arrow.field(field.name))
        else:
            problems.append(f"{field.name}: table has {current.field_type}, data has {field.field_type}")
    if problems:
        raise SchemaEvolutionError(
            "incompatible column types (only new nullable columns and widening int->long, "
            "float->double, decimal precision are allowed): " + "; ".join(problems)
        )
    target = pa.schema([pa.field(field.name, field.type, nullable=True) for field in target_fields])
    return cast_to_target(data, target), evolutions


def cast_to_target(data: pa.Table, target: pa.Schema) -> pa.Table:
    return data if data.schema == target else data.cast(target)


def evolve_and_document(
    transaction: Transaction,
    evolutions: list[NestedField],
    arrow_schema: pa.Schema,
    column_docs: Mapping[str, str],
    properties: Mapping[str, str],
) -> None:
    """Additive schema changes, column docs and managed table properties, inside the write's transaction.

    Only properties named here are set, so properties other tools put on the table are preserved.
    """
    if evolutions:
        with transaction.update_schema() as update:
            update.union_by_name(arrow_schema)
    schema = transaction.table_metadata.schema()
    stale_docs = {}
    for name, doc in column_docs.items():
        field = schema.find_field(name, case_sensitive=True) if doc and name in schema.column_names else None
        if field is not None and field.doc != doc:
            stale_docs[name] = doc
    if stale_docs:
        with transaction.update_schema() as update:
            for name, doc in stale_docs.items():
                update.update_column(name, doc=doc)
    metadata = transaction.table_metadata.properties
    changed = {key: value for key, value in properties.items() if metadata.get(key) != value}
    if changed:
        transaction.set_properties(changed)
