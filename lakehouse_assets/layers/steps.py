"""What the assets `factory.py` defines do when their steps run: read, type, transform, check, audit.

`factory.py` builds the definitions from the contracts when the code location loads; each asset's
body calls one function here, and imports this module only then. So the data stack (pyarrow,
Narwhals, pyiceberg, pandera) is imported by the first step that needs it, never by loading the
definitions. Each function takes the `Step` (the run's context, the contract, the spec of the table
it writes), its inputs, and the resources it uses by name.
"""

import datetime as dt
import functools
import hashlib
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
from checks.history import recorded
from io_managers.slices import TableSlice, partition_window
from io_managers.spark_frames import to_spark
from io_managers.table_spec import TableSpec
from lakehouse_assets.contracts.columns import SOURCE_FILE, SOURCE_LINE
from lakehouse_assets.contracts.contract import Contract, DatasetContract, ModelContract
from lakehouse_assets.layers.file_checks import LandingFileError, file_name_problem
from lakehouse_assets.layers.landing import empty_landing_table, read_landed_file
from lakehouse_assets.layers.raw import type_landing_rows
from lakehouse_assets.layers.row_partitions import place_rows
from lakehouse_assets.layers.spark import landing_on_spark, raw_on_spark, tags_spark_jobs
from lakehouse_assets.layers.transforms import apply_model_steps, apply_staging_steps, row_count
from resources.catalog.resource import IcebergCatalogResource
from resources.landing.local import LandedFile, LandingStorage
from resources.notifications.notifier import Notifier
from resources.spark.compute import ComputeResource, is_spark_frame

ContractT = TypeVar("ContractT", bound=Contract)


@dataclass(frozen=True)
class Step(Generic[ContractT]):
    """What every asset step works from: the run, the asset's contract, and the table it writes."""

    context: dg.AssetExecutionContext
    contract: ContractT
    spec: TableSpec


def records_check_history(materialize: Callable[..., Iterator]) -> Callable[..., Iterator]:
    """A step's check results also go to the quality history (`audit.check_results`), in one
    append when the step ends, whether it ends with its output or with a failed error rule."""

    @functools.wraps(materialize)
    def step_recording_history(step: Step, *args, catalog: IcebergCatalogResource, **kwargs) -> Iterator:
        events = materialize(step, *args, catalog=catalog, **kwargs)
        yield from recorded(events, context=step.context, catalog=catalog, asset_key=step.spec.asset_key)

    return step_recording_history


def choose_engine(compute: ComputeResource, spec: TableSpec, estimated_bytes: int) -> str:
    return compute.choose(estimated_bytes, spec.pinned_engine, spec.spark_threshold_bytes)


@tags_spark_jobs
def materialize_landing(
    step: Step[DatasetContract],
    *,
    landing_storage: LandingStorage,
    compute: ComputeResource,
    catalog: IcebergCatalogResource,
    notifier: Notifier,
) -> Iterator:
    """The partition's files, verbatim as strings with lineage (an Arrow table, or a Spark frame),
    then what happened to each file in the file ledger (`landing.files`).

    The landing rows are committed before the ledger is written: the output is yielded first and
    the IO manager commits it before this generator resumes. So a ledger write that fails loses no
    landing data (it is logged, and the next run that sees the file records it). A run that fails on
    a file (rejected, or unassigned under `file_names: strict`) records that file first.
    """
    from lakehouse_assets.layers import ledger

    context, contract = step.context, step.contract
    checks, from_rows = contract.source.file_checks, contract.source.partition_from
    files, refused = landing_storage.scan(contract.source.glob)
    if refused:
        context.log.warning(f"refused {len(refused)} entries: " + "; ".join(refused.values()))
    lakehouse = catalog.load()
    known = {(entry.key, entry.etag): entry for entry in _ledger_entries(context, lakehouse, contract.name)}
    run_id = context.run_id
    window = partition_window(context)
    wanted = set(context.partition_keys) if window is not None else None

    def entry(file: LandedFile, status: str, **fields) -> ledger.Entry:
        return ledger.Entry(
            contract.name, file.key, file.checksum, status, size=file.size, run_id=run_id, **fields
        )

    def duplicate(file: LandedFile, original: ledger.Entry, checksum: str | None = None) -> ledger.Entry:
        return entry(
            file,
            "duplicate",
            checksum=checksum,
            partitions=original.partitions,
            reason=f"same bytes as {original.key}",
        )

    # a file no partition can own is never skipped silently: it fails the run or is reported
    problems = {file.key: file_name_problem(contract, file.name) for file in files}
    misnamed = {key: problem for key, problem in problems.items() if problem}
    unassigned = [
        entry(file, "unassigned", reason=misnamed[file.key]) for file in files if file.key in misnamed
    ]
    strict = checks.file_names != "skip"
    if misnamed and strict:
        _record_ledger(context, lakehouse, contract.name, unassigned)
        raise LandingFileError(
            f"{len(misnamed)} files in {contract.source.glob!r} cannot be assigned to a partition: "
            + "; ".join(misnamed.values())
        )
    if misnamed:
        context.log.warning(
            f"skipped {len(misnamed)} files no partition can own: " + "; ".join(misnamed.values())
        )
    if window is not None and from_rows is None:
        files = [
            file
            for file in files
            if (moment := contract.file_time(file.name)) is not None and window.start <= moment < window.end
        ]
    elif window is not None:
        # the ledger is the index: a file already read is read again only for the partitions it lists
        files = [
            file
            for file in files
            if (seen := known.get((file.key, file.checksum))) is None
            or seen.status == "rejected"
            or wanted & set(seen.partitions)
        ]
    loaded_at = dt.datetime.now(dt.UTC)
    size = sum(file.size for file in files)
    duplicates = _DuplicateFinder(contract.name, known.values(), checks.duplicates == "skip")
    seen: list[ledger.Entry] = list(unassigned)
    metadata = {
        "bytes_read": dg.MetadataValue.int(size),
        "estimated_bytes": dg.MetadataValue.int(size),
        "skipped_files": dg.MetadataValue.json({**misnamed, **refused}),
    }
    if not files:
        context.log.warning(f"no files match {contract.source.glob!r} in this partition")
    engine = choose_engine(compute, step.spec, size)
    if from_rows is not None:
        # Rows are placed in partitions in the driver: the ledger records, per file, its checksum,
        # the partitions its rows touch and the rows placed nowhere, which the executors would have
        # to send back. Raw and later layers still choose their engine by size.
        if engine == "spark":
            context.log.info(f"{size} bytes land on pandas: partition_from splits the rows in the driver")
        engine = "pandas"
        # the IO manager records the engine that wrote; this says why it is not the size's choice
        metadata["engine_reason"] = dg.MetadataValue.text("partition_from splits the rows in the driver")
    if engine == "spark":
        # (the executors read the files: only the storage's etag tells copies apart here)
        loading = []
        for file in files:
            original = duplicates.original_of(file, None)
            if original is not None:
                seen.append(duplicate(file, original))
            else:
                loading.append(file)
                seen.append(entry(file, "loaded", partitions=_named_partitions(contract, file)))
        metadata["files"] = dg.MetadataValue.json([file.key for file in loading])
        metadata["duplicate_files"] = dg.MetadataValue.json(_duplicates(seen))
        context.add_output_metadata(metadata)
        _report_unassigned(context, notifier, contract, unassigned, known)
        yield dg.Output(
            landing_on_spark(compute.session(), loading, landing_storage.reader(), contract, loaded_at)
        )
        _record_ledger(context, lakehouse, contract.name, seen)
        return
    findings: dict[str, list[str]] = {}
    tables, loaded = [], []
    for file in files:
        data = landing_storage.read_bytes(file.key)
        checksum = hashlib.sha256(data).hexdigest()
        original = duplicates.original_of(file, checksum)
        if original is not None:
            seen.append(duplicate(file, original, checksum))
            continue
        try:
            table = read_landed_file(data, file, contract, loaded_at, findings.setdefault(file.key, []))
        except LandingFileError as error:
            _record_ledger(
                context,
                lakehouse,
                contract.name,
                [*seen, entry(file, "rejected", checksum=checksum, reason=str(error))],
            )
            raise
        rows, reason = table.num_rows, None
        if from_rows is None:
            partitions = _named_partitions(contract, file)
        else:
            placed = place_rows(table, contract, wanted)
            table, partitions = placed.table, placed.partitions
            if placed.unplaced:
                reason = (
                    f"{placed.unplaced} of {rows} rows carry no time inside the partitions in "
                    f"{from_rows.source_columns} (format {from_rows.format!r}; "
                    f"e.g. {placed.unplaced_example})"
                )
            if not partitions:
                unassigned.append(entry(file, "unassigned", checksum=checksum, rows=rows, reason=reason))
                seen.append(unassigned[-1])
                misnamed[file.key] = f"{file.key}: {reason}"
                if strict:
                    _record_ledger(context, lakehouse, contract.name, seen)
                    raise LandingFileError(f"{file.key} cannot be assigned to a partition: {reason}")
                continue
        duplicates.claim(file, checksum)
        seen.append(entry(file, "loaded", checksum=checksum, rows=rows, partitions=partitions, reason=reason))
        tables.append(table)
        loaded.append(file.key)
    metadata["files"] = dg.MetadataValue.json(loaded)
    metadata["duplicate_files"] = dg.MetadataValue.json(_duplicates(seen))
    metadata["skipped_files"] = dg.MetadataValue.json({**misnamed, **refused})
    # what the contract's file checks accepted (a stripped BOM, flagged rows, ...)
    metadata["file_findings"] = dg.MetadataValue.json(
        {key: found for key, found in findings.items() if found}
    )
    context.add_output_metadata(metadata)
    _report_unassigned(context, notifier, contract, unassigned, known)
    yield dg.Output(pa.concat_tables(tables) if tables else empty_landing_table(contract))
    _record_ledger(context, lakehouse, contract.name, seen)


def _named_partitions(contract: DatasetContract, file: LandedFile) -> tuple[str, ...]:
    moment = contract.file_time(file.name)
    return () if moment is None else (contract.partitioning.partition_key(moment),)


def _duplicates(seen: list) -> dict[str, str]:
    return {entry.key: entry.reason for entry in seen if entry.status == "duplicate"}


class _DuplicateFinder:
    """Which loaded file (under another key) has the same bytes: by content checksum where the file
    was read, by the storage's etag otherwise. The first of several copies in one run is loaded."""

    def __init__(self, dataset: str, known, active: bool):
        self.active = active
        loaded = [entry for entry in known if entry.status == "loaded"]
        self.by_checksum = {entry.checksum: entry for entry in loaded if entry.checksum}
        self.by_etag = {entry.etag: entry for entry in loaded if entry.etag}
        self.dataset = dataset

    def original_of(self, file: LandedFile, checksum: str | None):
        if not self.active:
            return None
        original = self.by_checksum.get(checksum) if checksum else None
        original = original or self.by_etag.get(file.checksum)
        if original is None or original.key == file.key:
            if checksum is None:
                self.claim(file, None)
            return None
        return original

    def claim(self, file: LandedFile, checksum: str | None, partitions: tuple[str, ...] = ()) -> None:
        from lakehouse_assets.layers.ledger import Entry

        mine = Entry(
            self.dataset, file.key, file.checksum, "loaded", checksum=checksum, partitions=partitions
        )
        if checksum:
            self.by_checksum.setdefault(checksum, mine)
        self.by_etag.setdefault(file.checksum, mine)


def _ledger_entries(context, lakehouse, dataset: str) -> list:
    from lakehouse_assets.layers import ledger

    try:
        return ledger.read_entries(lakehouse, dataset)
    except Exception as error:  # noqa: BLE001 - without the ledger every file is new, none lost
        context.log.error(f"could not read the file ledger {ledger.IDENTIFIER}: {error!r}")
        return []


def _record_ledger(context, lakehouse, dataset: str, seen: list) -> None:
    from lakehouse_assets.layers import ledger

    if not seen:
        return
    try:
        ledger.record(lakehouse, dataset, seen)
    except Exception as error:  # noqa: BLE001 - the landing rows are committed; the next run records
        context.log.error(
            f"could not record {len(seen)} files in the file ledger {ledger.IDENTIFIER}: {error!r}; "
            "the landing data is committed, the next run that sees these files records them"
        )


def _report_unassigned(
    context, notifier: Notifier, contract: DatasetContract, unassigned: list, known
) -> None:
    """Once per file version: those the ledger has not recorded as unassigned yet (the notifier
    sends once per event id, so a failed ledger write does not repeat the e-mail either)."""
    new = [e for e in unassigned if getattr(known.get((e.key, e.etag)), "status", None) != "unassigned"]
    if not new:
        return
    listing = "\n".join(f"  {e.key}: {e.reason}" for e in new)
    context.log.warning(f"{len(new)} file(s) of {contract.name} recorded as unassigned:\n{listing}")
    digest = hashlib.sha256("|".join(sorted(f"{e.key}@{e.etag}" for e in new)).encode()).hexdigest()[:32]
    notifier.notify(
        "file_unassigned",
        f"unassigned/{contract.name}/{digest}",
        dataset=contract.name,
        count=len(new),
        files=listing,
    )


@records_check_history
@tags_spark_jobs
def materialize_raw(step: Step[DatasetContract], landing, *, catalog: IcebergCatalogResource) -> Iterator:
    """Typed rows and rejects as the two outputs, then the landing reconciliation of what was committed."""
    contract = step.contract
    if is_spark_frame(landing):
        typed, rejects = raw_on_spark(landing, contract)
    else:
        result = type_landing_rows(pa.Table.from_pandas(landing, preserve_index=False), contract)
        typed, rejects = result.typed, result.rejects
    # Rejects first, raw last (the IO manager checks the order): a run killed between the two
    # commits leaves raw's newest commit of the slice older than the rejects', which every read of
    # raw detects (io_managers/pairs.py) and refuses until raw is re-run for the partition.
    yield dg.Output(rejects, output_name="rejects")
    yield dg.Output(typed, output_name="typed")
    # The outputs above are committed by now, so the audit reads what readers will see.
    yield landing_reconciliation(
        catalog.load(),
        contract.name,
        step.spec.partition_column,
        partition_window(step.context),
        contract.quality.audit_tolerance,
    )


@records_check_history
@tags_spark_jobs
def materialize_staging(step: Step[DatasetContract], raw, *, catalog: IcebergCatalogResource) -> Iterator:
    """The staging steps, the rules (write-audit-publish) and the raw reconciliation."""
    from io_managers.spark_pipes import SubmittedInput

    if isinstance(raw, SubmittedInput):
        # Spark chosen with LAKEHOUSE_SPARK_SUBMIT: the same step as a job, no session here
        from lakehouse_assets.layers.submitted_spark import materialize_submitted_staging

        reconcile = functools.partial(reconcile_removals, step, input_name="raw")
        yield from materialize_submitted_staging(step, raw, catalog=catalog, reconcile=reconcile)
        return
    raw = nw.from_native(raw)
    staged, counts = apply_staging_steps(raw, step.contract.staging)
    yield from _publish_and_reconcile(
        step,
        staged,
        removed=counts.removed,
        input_name="raw",
        input_frame=raw,
        catalog=catalog,
        input_rows=counts.input_rows,
    )


@functools.cache
def model_function(reference: str) -> Callable:
    """A model's Python function from its `module:function` reference."""
    module_name, _, function_name = reference.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


@records_check_history
@tags_spark_jobs
def materialize_model(
    step: Step[ModelContract], inputs: dict, *, compute: ComputeResource, catalog: IcebergCatalogResource
) -> Iterator:
    """The model's steps or function over its inputs, the rules and (row-preserving) the reconciliation."""
    contract = step.contract
    frames = {alias: nw.from_native(frame) for alias, frame in align_engines(compute, inputs).items()}
    if contract.function is not None:
        result, removed, input_rows = model_function(contract.function)(**frames), {}, None
    else:
        result, counts = apply_model_steps(frames[contract.primary_input], frames, contract.steps)
        removed, input_rows = counts.removed, counts.input_rows
    primary = contract.primary_input
    yield from _publish_and_reconcile(
        step,
        result,
        removed=removed,
        input_name=primary,
        input_frame=frames[primary],
        catalog=catalog,
        input_rows=input_rows,
    )


def _publish_and_reconcile(
    step: Step,
    result: nw.DataFrame,
    *,
    removed: dict[str, int],
    input_name: str,
    input_frame: nw.DataFrame,
    catalog: IcebergCatalogResource,
    input_rows: int | None = None,
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
    yield from reconcile_removals(
        step,
        input_name=input_name,
        # counted by the steps already when they could (a Spark count is a job)
        input_rows=(lambda: row_count(input_frame)) if input_rows is None else input_rows,
        removed=removed,
        lakehouse=lakehouse,
        before=before,
    )


def reconcile_removals(
    step: Step,
    *,
    input_name: str,
    input_rows: int | Callable[[], int],
    removed: dict[str, int],
    lakehouse,
    before: int,
) -> Iterator:
    """The committed rows against the input's, less the rows each named rule removed (when the
    table has an audit); `input_rows` may be counted only then."""
    spec = step.spec
    if spec.quality is None or spec.quality.audit is None:
        return
    identifier, window = ".".join(spec.key), partition_window(step.context)
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
        input_rows=input_rows() if callable(input_rows) else input_rows,
        removed=removed,
        committed=committed_rows(lakehouse, identifier, spec.partition_column, window) - before,
        kept=kept,
        tolerance=step.contract.quality.audit_tolerance,
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
