"""What the Iceberg IO manager does for an asset's input: read the upstream table's slice for the run.

The engine is chosen from the slice's size in Iceberg metadata: pandas below the threshold, a
Spark DataFrame at or above it. The upstream table's spec says which rows the run owns; the spec
the consuming asset puts on its input says how it computes (a pinned engine, its own threshold).
"""

import dagster as dg
import pandas as pd
import pyarrow as pa
from pyiceberg.exceptions import NoSuchTableError

from io_managers.commit import estimate_slice_bytes, slice_scan
from io_managers.pairs import torn_pair_message, torn_stretches
from io_managers.slices import TableSlice
from io_managers.table_spec import PairSpec, TableSpec
from resources.catalog.resource import IcebergCatalogResource
from resources.spark.compute import ComputeResource


def arrow_to_pandas(data: pa.Table) -> pd.DataFrame:
    # Arrow-backed columns keep nullable integers as integers and dates as dates.
    return data.to_pandas(types_mapper=pd.ArrowDtype)


def read_input(context: dg.InputContext, catalog: IcebergCatalogResource, compute: ComputeResource):
    """The upstream table's slice for this run, as pandas or (when large) as a Spark frame."""
    upstream = context.upstream_output
    written = TableSpec.from_metadata(upstream.definition_metadata if upstream else None)
    reader = TableSpec.from_metadata(context.definition_metadata)
    identifier = catalog.identifier(context.asset_key)
    try:
        table = catalog.load().load_table(identifier)
    except NoSuchTableError:
        raise dg.Failure(
            f"table {identifier} does not exist yet: materialise {context.asset_key.to_user_string()} first"
        ) from None
    table_slice = TableSlice.for_run(written.partition_column if written else None, context)
    if written is not None and written.pair is not None:
        refuse_torn_pair(catalog, written.pair, identifier, table, table_slice)
    size, records = estimate_slice_bytes(table, table_slice)
    engine = (
        compute.choose(size, reader.pinned_engine, reader.spark_threshold_bytes)
        if reader
        else compute.choose(size)
    )
    # a staging step chosen for Spark may run as a submitted job (LAKEHOUSE_SPARK_SUBMIT): it gets
    # the slice's files, and this process opens no Spark session for it
    job = compute.spark_job if engine == "spark" and reader and reader.layer == "staging" else None
    choice = {
        "engine": job.engine if job else engine,
        "estimated_bytes": size,
        "estimated_records": records,
        "slice": table_slice.label,
    }
    if context.has_asset_partitions and len(context.asset_partition_keys) > 1:
        # Dagster attaches input metadata to one partition only; a range run logs the choice.
        context.log.info(f"reading {identifier}: {choice}")
    else:
        context.add_input_metadata(choice)
    if job is not None:
        from io_managers.spark_pipes import refuse_upsert, submitted_input

        if reader.write_mode == "upsert":
            refuse_upsert(".".join(reader.key), job.route)
        return submitted_input(table, table_slice, job)
    if engine == "spark":
        from io_managers.spark_frames import read_slice

        return read_slice(compute.session(), table, table_slice)
    return arrow_to_pandas(slice_scan(table, table_slice).to_arrow())


def refuse_torn_pair(
    catalog: IcebergCatalogResource, pair: PairSpec, identifier: str, table, table_slice: TableSlice
) -> None:
    """Fail the read when the slice's two commits (the table's and its partner's) are not one run's.

    From the snapshot summaries of the two tables' metadata: the partner's metadata is loaded,
    no manifest or data file is read.
    """
    try:
        partner = catalog.load().load_table(pair.partner_of(identifier))
    except NoSuchTableError:
        partner = None
    first, last = (table, partner) if identifier == pair.first else (partner, table)
    stretches = torn_stretches(first, last, table_slice)
    if stretches:
        partitions = [stretch.slice.label for stretch in stretches]
        runs = sorted({stretch.first.pair_id for stretch in stretches})
        raise dg.Failure(
            description=torn_pair_message(identifier, pair.first, pair.last, stretches),
            metadata={
                "torn_partitions": dg.MetadataValue.json(partitions),
                "killed_runs": dg.MetadataValue.json(runs),
            },
        )
