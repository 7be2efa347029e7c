"""What the Iceberg IO manager does with an asset's output: commit it to the table's slice.

Which rows an asset owns comes from the `TableSpec` in its definition metadata (partition column,
write mode, primary key) and from the partition *time window* of the run, so a single run over a range of
partitions writes exactly that range.
"""

import dagster as dg
import narwhals as nw
import pandas as pd
import pyarrow as pa
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.table import Table

from io_managers.arrow_memory import use_reusing_pool
from io_managers.commit import CommitResult, WriteRequest, count_rows, mark_pair
from io_managers.pairs import FIRST, PAIR_ID_PROPERTY, PairMarker
from io_managers.retries import commit_with_retries, retry_commit
from io_managers.schema import create_table_if_missing, normalise_arrow
from io_managers.slices import TableSlice
from io_managers.table_spec import PairSpec, TableSpec
from resources.catalog.resource import IcebergCatalogResource
from resources.spark.compute import is_spark_frame

PREVIEW_ROWS = 5


def to_arrow(obj: object) -> pa.Table:
    """The engines a materialisation may hand over: pandas, Arrow or any frame Narwhals knows."""
    if isinstance(obj, pa.Table):
        table = obj
    elif isinstance(obj, pd.DataFrame):
        table = pa.Table.from_pandas(obj, preserve_index=False)
    else:
        table = nw.from_native(obj, eager_only=True).to_arrow()
    return normalise_arrow(table)


def _column_docs(metadata: dict) -> dict[str, str]:
    schema = metadata.get("dagster/column_schema")
    if schema is None:
        return {}
    return {column.name: column.description or "" for column in schema.columns}


def commit_metadata(
    table: Table, result: CommitResult, table_slice: TableSlice, preview: pd.DataFrame, engine: str
) -> dict:
    """What a materialisation records about its commit (also the Pipes Spark route's, whose files
    are committed outside this IO manager)."""
    columns = dg.TableSchema(
        columns=[
            dg.TableColumn(name=field.name, type=str(field.field_type), description=field.doc)
            for field in table.schema().fields
        ]
    )
    slice_rows = _slice_rows(table, result, table_slice, engine)
    metadata = {
        # Dagster's standard entries (its TableMetadataSet and UriMetadataSet, which dagster 1.13
        # does not export): the catalog's row count column, the partitions' row count plot
        "dagster/table_name": dg.MetadataValue.text(table_identifier_of(table)),
        "dagster/uri": dg.MetadataValue.text(table.location()),
        "dagster/row_count": dg.MetadataValue.int(_table_rows(table, table_slice, slice_rows)),
        "engine": engine,
        "write_mode": result.mode,
        "rows_written": dg.MetadataValue.int(result.rows_written),
        "rows_replaced": dg.MetadataValue.int(result.rows_replaced),
        "slice": table_slice.label,
        "slice_row_count": dg.MetadataValue.int(slice_rows),
        "table": table_identifier_of(table),
        "table_location": dg.MetadataValue.path(table.location()),
        "dagster/column_schema": columns,
        "preview": dg.MetadataValue.md(preview.to_markdown(index=False) if len(preview) else "(no rows)"),
    }
    if table_slice.is_partitioned:
        metadata["dagster/partition_row_count"] = dg.MetadataValue.int(slice_rows)
    if result.mode == "upsert":
        metadata["rows_kept"] = dg.MetadataValue.int(result.rows_kept)
        metadata["rows_withdrawn"] = dg.MetadataValue.int(result.rows_withdrawn)
    if result.snapshot_id is not None:
        metadata["snapshot_id"] = dg.MetadataValue.text(str(result.snapshot_id))
    if result.skipped_reason:
        metadata["skipped"] = result.skipped_reason
    return metadata


def _table_rows(table: Table, table_slice: TableSlice, slice_rows: int) -> int:
    """The whole table's rows, from the current snapshot's summary (no scan)."""
    if not table_slice.is_partitioned:
        return slice_rows
    snapshot = table.current_snapshot()
    total = snapshot.summary.get("total-records") if snapshot is not None and snapshot.summary else None
    return int(total) if total is not None else slice_rows


def _slice_rows(table: Table, result: CommitResult, table_slice: TableSlice, engine: str) -> int:
    """The slice's rows after the write. An overwrite that committed replaced the whole slice with
    exactly its rows (each checked to fall in it), so only other writes need the scan, which reads
    every manifest of the slice."""
    committed = result.snapshot_id is not None and not result.skipped_reason
    if engine == "pandas" and result.mode == "overwrite" and committed:
        return result.rows_written
    return count_rows(table, table_slice)


def table_identifier_of(table: Table) -> str:
    return ".".join(table.name())


def write_output(context: dg.OutputContext, obj: object, catalog: IcebergCatalogResource) -> None:
    """Commit the frame an asset returned (pandas, Arrow, Narwhals or Spark) to its table's slice."""
    use_reusing_pool()
    metadata = context.definition_metadata or {}
    # an asset declared without a spec (outside the factory) is an unpartitioned overwrite
    spec = TableSpec.from_metadata(metadata) or TableSpec.for_key(context.asset_key)
    partition_column = spec.partition_column
    table_slice = TableSlice.for_run(partition_column, context)
    on_spark = is_spark_frame(obj)
    if on_spark:
        from io_managers.spark_frames import arrow_schema_of

        schema = arrow_schema_of(obj)
    else:
        data = to_arrow(obj)
        schema = data.schema
    identifier = catalog.identifier(context.asset_key)
    table = create_table_if_missing(
        catalog.load(), identifier, schema, partition_column, spec.granularity or "day"
    )
    run = context.step_context.dagster_run
    pair = _pair_marker(spec.pair, identifier, run.run_id) if spec.pair else None
    if pair is not None and pair.role != FIRST:
        _check_first_committed(catalog, pair, identifier)
    request = WriteRequest(
        mode=spec.write_mode,
        slice=table_slice,
        # a re-executed run keeps its root run id, so its append is recognised as a repeat
        run_id=run.root_run_id or run.run_id,
        primary_key=spec.primary_key,
        delivery_column=spec.delivery_column if spec.write_mode == "upsert" else None,
        column_docs=_column_docs(metadata),
        properties=catalog.table_properties(context.asset_key, spec.table_properties),
        pair=pair,
    )
    if on_spark:
        from io_managers.spark_frames import commit_spark

        previews = []
        result = retry_commit(
            table, request, lambda fresh: commit_spark(fresh, obj, request, previews.append)
        )
        # the writing job's own first rows; a write that wrote nothing has none to show
        preview = previews[-1].to_pandas() if previews else pd.DataFrame()
    else:
        result = commit_with_retries(table, data, request)
        preview = data.slice(0, PREVIEW_ROWS).to_pandas()
    if pair is not None and result.snapshot_id is None:
        result = retry_commit(table, request, lambda fresh: mark_pair(fresh, request, result))
    engine = "spark" if on_spark else "pandas"
    context.add_output_metadata(commit_metadata(table, result, table_slice, preview, engine))


def _pair_marker(pair: PairSpec, identifier: str, run_id: str) -> PairMarker:
    # The run's own id, not its root's: a re-execution is a new pair, told apart from the run it repeats.
    return PairMarker(pair_id=run_id, role=pair.role_of(identifier), partner=pair.partner_of(identifier))


def _check_first_committed(catalog: IcebergCatalogResource, pair: PairMarker, identifier: str) -> None:
    """The order the readers rely on: the pair's first table is committed before its last."""
    try:
        snapshots = catalog.load().load_table(pair.partner).metadata.snapshots
    except NoSuchTableError:
        snapshots = []
    if not any(
        snapshot.summary is not None
        and snapshot.summary.additional_properties.get(PAIR_ID_PROPERTY) == pair.pair_id
        for snapshot in snapshots
    ):
        raise RuntimeError(
            f"{identifier} is committed after {pair.partner} in the same run; run {pair.pair_id} "
            f"has not committed {pair.partner} (its step must yield that output first)"
        )
