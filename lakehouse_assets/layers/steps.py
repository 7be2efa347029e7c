"""What the assets `factory.py` defines do when their steps run: read, type, transform, check, audit.

`factory.py` builds the definitions from the contracts when the code location loads; each asset's
body calls one function here, and imports this module only then. So the data stack (pyarrow,
Narwhals, pyiceberg, pandera) is imported by the first step that needs it, never by loading the
definitions.
"""

import datetime as dt
import functools
import importlib
from collections.abc import Callable, Iterator

import dagster as dg
import narwhals as nw
import pyarrow as pa

from checks.asset_checks import validated_output
from checks.audits import (
    MODEL_AUDIT,
    STAGING_AUDIT,
    committed_rows,
    landing_reconciliation,
    removal_reconciliation,
    rows_before_append,
)
from io_managers.slices import TableSlice, partition_window
from io_managers.spark_frames import to_spark
from lakehouse_assets.contracts.columns import SOURCE_FILE, SOURCE_LINE
from lakehouse_assets.contracts.contract import Contract, DatasetContract, ModelContract
from lakehouse_assets.layers.file_checks import LandingFileError, file_name_problem
from lakehouse_assets.layers.landing import empty_landing_table, read_landed_file
from lakehouse_assets.layers.raw import type_landing_rows
from lakehouse_assets.layers.spark import landing_on_spark, raw_on_spark
from lakehouse_assets.layers.transforms import apply_model_steps, apply_staging_steps, row_count
from resources.catalog.resource import IcebergCatalogResource
from resources.landing.local import LandingStorage
from resources.spark.compute import ComputeResource, is_spark_frame


def choose_engine(compute: ComputeResource, contract: Contract, estimated_bytes: int) -> str:
    pinned = None if contract.engine == "auto" else contract.engine
    return compute.choose(estimated_bytes, pinned, contract.spark_threshold_bytes)


def materialize_landing(
    context: dg.AssetExecutionContext,
    contract: DatasetContract,
    landing_storage: LandingStorage,
    compute: ComputeResource,
):
    """The partition's files, verbatim as strings with lineage: an Arrow table, or a Spark frame."""
    files = landing_storage.list_files(contract.source.glob)
    # a file no partition can own is never skipped silently: it fails the run or is reported
    problems = {file.key: file_name_problem(contract, file.name) for file in files}
    misnamed = {key: problem for key, problem in problems.items() if problem}
    if misnamed and contract.source.file_checks.file_names == "reject_file":
        raise LandingFileError(
            f"{len(misnamed)} files in {contract.source.glob!r} cannot be assigned to a partition: "
            + "; ".join(misnamed.values())
        )
    if misnamed:
        context.log.warning(
            f"skipped {len(misnamed)} files no partition can own: " + "; ".join(misnamed.values())
        )
    if (window := partition_window(context)) is not None:
        files = [
            file
            for file in files
            if (moment := contract.file_time(file.name)) is not None and window.start <= moment < window.end
        ]
    loaded_at = dt.datetime.now(dt.UTC)
    size = sum(file.size for file in files)
    metadata = {
        "files": dg.MetadataValue.json([file.key for file in files]),
        "bytes_read": dg.MetadataValue.int(size),
        "estimated_bytes": dg.MetadataValue.int(size),
        "skipped_files": dg.MetadataValue.json(misnamed),
    }
    if not files:
        context.log.warning(f"no files match {contract.source.glob!r} in this partition")
    if choose_engine(compute, contract, size) == "spark":
        context.add_output_metadata(metadata)
        return landing_on_spark(compute.session(), files, landing_storage.reader(), contract, loaded_at)
    findings: dict[str, list[str]] = {}
    tables = [
        read_landed_file(
            landing_storage.read_bytes(file.key),
            file,
            contract,
            loaded_at,
            findings.setdefault(file.key, []),
        )
        for file in files
    ]
    # what the contract's file checks accepted (a stripped BOM, flagged rows, ...)
    metadata["file_findings"] = dg.MetadataValue.json(
        {key: found for key, found in findings.items() if found}
    )
    context.add_output_metadata(metadata)
    return pa.concat_tables(tables) if tables else empty_landing_table(contract)


def materialize_raw(
    context: dg.AssetExecutionContext,
    contract: DatasetContract,
    catalog: IcebergCatalogResource,
    landing,
    partition_column: str | None,
) -> Iterator:
    """Typed rows and rejects as the two outputs, then the landing reconciliation of what was committed."""
    if is_spark_frame(landing):
        typed, rejects = raw_on_spark(landing, contract)
    else:
        result = type_landing_rows(pa.Table.from_pandas(landing, preserve_index=False), contract)
        typed, rejects = result.typed, result.rejects
    yield dg.Output(typed, output_name="typed")
    yield dg.Output(rejects, output_name="rejects")
    # The outputs above are committed by now, so the audit reads what readers will see.
    yield landing_reconciliation(
        catalog.load(),
        contract.name,
        partition_column,
        partition_window(context),
        contract.quality.audit_tolerance,
    )


def materialize_staging(
    context: dg.AssetExecutionContext,
    contract: DatasetContract,
    catalog: IcebergCatalogResource,
    raw,
    staging_key: dg.AssetKey,
    partition_column: str | None,
) -> Iterator:
    """The staging steps, the rules (write-audit-publish) and the raw reconciliation."""
    raw = nw.from_native(raw)
    staged, counts = apply_staging_steps(raw, contract.staging)
    lakehouse = catalog.load()
    identifier, window = f"staging.{contract.name}", partition_window(context)
    before = rows_before_append(lakehouse, identifier, partition_column, window, contract.write_modes.staging)
    published = yield from validated_output(
        context,
        staged.to_native(),
        contract.quality,
        metadata={f"rows_removed_{rule}": count for rule, count in counts.removed.items()},
        catalog=lakehouse,
        identity=[*contract.primary_key, SOURCE_FILE, SOURCE_LINE],
        partition_column=partition_column,
    )
    if published:
        yield removal_reconciliation(
            check_name=STAGING_AUDIT,
            asset_key=staging_key,
            input_name="raw",
            input_rows=row_count(raw),
            removed=counts.removed,
            committed=committed_rows(lakehouse, identifier, partition_column, window) - before,
            tolerance=contract.quality.audit_tolerance,
            slice_label=TableSlice.of(partition_column, window).label,
        )


@functools.cache
def model_function(reference: str) -> Callable:
    """A model's Python function from its `module:function` reference."""
    module_name, _, function_name = reference.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def materialize_model(
    context: dg.AssetExecutionContext,
    contract: ModelContract,
    compute: ComputeResource,
    catalog: IcebergCatalogResource,
    inputs: dict,
    model_key: dg.AssetKey,
    partition_column: str | None,
    keeps_rows: bool,
) -> Iterator:
    """The model's steps or function over its inputs, the rules and (row-preserving) the reconciliation."""
    frames = {alias: nw.from_native(frame) for alias, frame in align_engines(compute, inputs).items()}
    if contract.function is not None:
        result, removed = model_function(contract.function)(**frames), {}
    else:
        result, counts = apply_model_steps(frames[contract.primary_input], frames, contract.steps)
        removed = counts.removed
    lakehouse = catalog.load()
    identifier, window = ".".join(model_key.path), partition_window(context)
    before = rows_before_append(lakehouse, identifier, partition_column, window, contract.write_mode)
    published = yield from validated_output(
        context,
        result.to_native(),
        contract.quality,
        metadata={f"rows_removed_{rule}": count for rule, count in removed.items()},
        catalog=lakehouse,
        identity=[*contract.primary_key, SOURCE_FILE, SOURCE_LINE],
        partition_column=partition_column,
    )
    if published and keeps_rows:
        yield removal_reconciliation(
            check_name=MODEL_AUDIT,
            asset_key=model_key,
            input_name=contract.primary_input,
            input_rows=row_count(frames[contract.primary_input]),
            removed=removed,
            committed=committed_rows(lakehouse, identifier, partition_column, window) - before,
            tolerance=contract.quality.audit_tolerance,
            slice_label=TableSlice.of(partition_column, window).label,
        )


def align_engines(compute: ComputeResource, frames: dict) -> dict:
    """One engine per computation: when any input is on Spark, small pandas inputs join it there."""
    if not any(is_spark_frame(frame) for frame in frames.values()):
        return frames
    spark = compute.session()
    return {
        alias: frame
        if is_spark_frame(frame)
        else to_spark(spark, pa.Table.from_pandas(frame, preserve_index=False))
        for alias, frame in frames.items()
    }
