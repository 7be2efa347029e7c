"""What the assets `factory.py` defines do when their steps run: read, type, transform, check, audit.

`factory.py` builds the definitions from the contracts when the code location loads; each asset's
body calls one function here, and imports this module only then. So the data stack (pyarrow,
Narwhals, pyiceberg, pandera) is imported by the first step that needs it, never by loading the
definitions. Each function takes the `Step` (the run's context, the contract, the spec of the table
it writes), its inputs, and the resources it uses by name.
"""

import datetime as dt
import functools
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import dagster as dg
import narwhals as nw
import pyarrow as pa

from checks.asset_checks import write_audit_publish
from checks.audits import (
    committed_rows,
    landing_reconciliation,
    removal_reconciliation,
    rows_before_append,
    rows_kept_from_earlier_deliveries,
)
from io_managers.slices import TableSlice, partition_window
from io_managers.spark_frames import to_spark
from io_managers.table_spec import TableSpec
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

ContractT = TypeVar("ContractT", bound=Contract)


@dataclass(frozen=True)
class Step(Generic[ContractT]):
    """What every asset step works from: the run, the asset's contract, and the table it writes."""

    context: dg.AssetExecutionContext
    contract: ContractT
    spec: TableSpec


def choose_engine(compute: ComputeResource, spec: TableSpec, estimated_bytes: int) -> str:
    return compute.choose(estimated_bytes, spec.pinned_engine, spec.spark_threshold_bytes)


def materialize_landing(
    step: Step[DatasetContract], *, landing_storage: LandingStorage, compute: ComputeResource
):
    """The partition's files, verbatim as strings with lineage: an Arrow table, or a Spark frame."""
    context, contract = step.context, step.contract
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
    if choose_engine(compute, step.spec, size) == "spark":
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


def materialize_raw(step: Step[DatasetContract], landing, *, catalog: IcebergCatalogResource) -> Iterator:
    """Typed rows and rejects as the two outputs, then the landing reconciliation of what was committed."""
    contract = step.contract
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
        step.spec.partition_column,
        partition_window(step.context),
        contract.quality.audit_tolerance,
    )


def materialize_staging(step: Step[DatasetContract], raw, *, catalog: IcebergCatalogResource) -> Iterator:
    """The staging steps, the rules (write-audit-publish) and the raw reconciliation."""
    raw = nw.from_native(raw)
    staged, counts = apply_staging_steps(raw, step.contract.staging)
    yield from _publish_and_reconcile(
        step, staged, removed=counts.removed, input_name="raw", input_frame=raw, catalog=catalog
    )


@functools.cache
def model_function(reference: str) -> Callable:
    """A model's Python function from its `module:function` reference."""
    module_name, _, function_name = reference.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


def materialize_model(
    step: Step[ModelContract], inputs: dict, *, compute: ComputeResource, catalog: IcebergCatalogResource
) -> Iterator:
    """The model's steps or function over its inputs, the rules and (row-preserving) the reconciliation."""
    contract = step.contract
    frames = {alias: nw.from_native(frame) for alias, frame in align_engines(compute, inputs).items()}
    if contract.function is not None:
        result, removed = model_function(contract.function)(**frames), {}
    else:
        result, counts = apply_model_steps(frames[contract.primary_input], frames, contract.steps)
        removed = counts.removed
    primary = contract.primary_input
    yield from _publish_and_reconcile(
        step, result, removed=removed, input_name=primary, input_frame=frames[primary], catalog=catalog
    )


def _publish_and_reconcile(
    step: Step,
    result: nw.DataFrame,
    *,
    removed: dict[str, int],
    input_name: str,
    input_frame: nw.DataFrame,
    catalog: IcebergCatalogResource,
) -> Iterator:
    """Write-audit-publish the result; once it is committed, reconcile its rows with the input's."""
    spec, quality = step.spec, step.contract.quality
    lakehouse = catalog.load()
    identifier, window = ".".join(spec.key), partition_window(step.context)
    before = rows_before_append(lakehouse, identifier, spec.partition_column, window, spec.write_mode)
    outcome = write_audit_publish(
        step.context,
        result.to_native(),
        quality,
        spec,
        metadata={f"rows_removed_{rule}": count for rule, count in removed.items()},
        catalog=lakehouse,
        identity=[*spec.primary_key, SOURCE_FILE, SOURCE_LINE],
    )
    # A blocked outcome raises here, after its check results and before any output.
    yield from outcome.events()
    if spec.quality is not None and spec.quality.audit is not None:
        # the id the IO manager recorded its commit under: a re-executed run keeps its root's
        run = step.context.run
        kept = rows_kept_from_earlier_deliveries(
            lakehouse,
            identifier,
            spec.partition_column,
            window,
            spec.write_mode,
            run.root_run_id or run.run_id,
        )
        yield removal_reconciliation(
            check_name=spec.quality.audit,
            asset_key=spec.asset_key,
            input_name=input_name,
            input_rows=row_count(input_frame),
            removed=removed,
            committed=committed_rows(lakehouse, identifier, spec.partition_column, window) - before,
            kept=kept,
            tolerance=quality.audit_tolerance,
            slice_label=TableSlice.of(spec.partition_column, window).label,
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
