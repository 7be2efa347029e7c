"""A staging step on Spark as a submitted job (`LAKEHOUSE_SPARK_SUBMIT`), with write-audit-publish.

The Dagster process opens no Spark session: the IO manager hands the step the raw slice's data
files (`io_managers.spark_pipes.SubmittedInput`), and the step launches `io_managers.pipes_job`
through the environment's Pipes client (local spark-submit or EMR Serverless) with the contract's
staging steps and rules as extras. In the job, `stage_on_spark` applies the steps, counts the rows
each named rule removed and validates the staged frame with the same rules as the in-process path;
the job writes files only when no blocking rule failed, and reports files, counts and rule outcomes.
Back here the outcomes become the same check results, the files are committed through the one
commit path only when no error rule failed, and the rows are reconciled with raw as on any engine.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import narwhals as nw
import pyarrow as pa

from checks.asset_checks import (
    PublishOutcome,
    blocked,
    outcome_record,
    reported_results,
    rule_outcomes,
)
from checks.audits import rows_before_append
from io_managers.commit import WriteRequest, partition_type_of
from io_managers.pipes_job import decode_schema, encode_schema
from io_managers.slices import TableSlice, partition_window
from io_managers.spark_files import executor_io_properties
from io_managers.spark_pipes import SubmittedInput, commit_job_files, job_script, slice_window
from lakehouse_assets.contracts.columns import SOURCE_FILE, SOURCE_LINE
from lakehouse_assets.contracts.contract import DatasetContract
from lakehouse_assets.layers.transforms import apply_staging_steps, row_count
from resources.catalog.resource import IcebergCatalogResource

TRANSFORM = f"{__name__}:stage_on_spark"
# the check results' engine: the rules ran on a PySpark frame, as in process
CHECK_ENGINE = "pyspark"


def materialize_submitted_staging(
    step, raw: SubmittedInput, *, catalog: IcebergCatalogResource, reconcile
) -> Iterator:
    """The staging step as a job: its check results, its output's metadata, then `reconcile`
    (input rows, rows removed per rule, lakehouse, rows before) with raw."""
    from io_managers.schema import create_table_if_missing

    context, contract, spec = step.context, step.contract, step.spec
    lakehouse = catalog.load()
    identifier, window = ".".join(spec.key), partition_window(context)
    table_slice = TableSlice.for_run(spec.partition_column, context)
    before = rows_before_append(lakehouse, identifier, spec.partition_column, window, spec.write_mode)
    table = create_table_if_missing(
        lakehouse,
        catalog.identifier(spec.asset_key),
        _staged_schema(raw.table.schema().as_arrow(), contract),
        spec.partition_column,
        spec.granularity or "day",
    )
    run = context.run
    definition = context.assets_def.metadata_by_key.get(spec.asset_key, {})
    request = WriteRequest(
        mode=spec.write_mode,
        slice=table_slice,
        run_id=run.root_run_id or run.run_id,
        primary_key=spec.primary_key,
        column_docs=_column_docs(definition),
        properties=catalog.table_properties(spec.asset_key, spec.table_properties),
    )
    validate_first = spec.quality is None or spec.quality.validate_before_commit
    arguments = {
        "steps": [staging.model_dump(mode="json", by_alias=True) for staging in contract.staging],
        "quality": contract.quality.model_dump(mode="json", by_alias=True),
        "identity": [*spec.primary_key, SOURCE_FILE, SOURCE_LINE],
        "partition_column": spec.partition_column,
        "references": _references(lakehouse, contract),
        "validate_before_commit": validate_first,
        "io_properties": executor_io_properties(raw.table.io.properties),
    }
    decided: dict[str, Any] = {}

    def launch(extras: dict):
        extras = {
            **extras,
            "input_window": slice_window(raw.table, raw.slice),
            "input_schema": encode_schema(raw.table.schema().as_arrow()),
        }
        name = f"lakehouse-{identifier}-{table_slice.label}"
        return raw.job.run(context, job_script(), extras, name=_job_name(name))

    def accept(report: dict) -> bool:
        decided["report"] = report
        decided["results"] = reported_results(
            report["outcomes"], asset_key=spec.asset_key, slice_label=table_slice.label, engine=CHECK_ENGINE
        )
        return not (validate_first and blocked(decided["results"]))

    result = commit_job_files(table, request, launch, raw.files, TRANSFORM, arguments, accept)
    report, results = decided["report"], decided["results"]
    metadata = {f"rows_removed_{rule}": count for rule, count in report["removed"].items()}
    if result is not None:
        metadata |= _commit_metadata(table, result, table_slice, raw.job.engine)
    outcome = PublishOutcome(
        output=dg.Output(None, metadata=metadata),
        results=results,
        failed_error_rules=blocked(results),
        validated_before_commit=validate_first,
        asset_key=spec.asset_key,
        slice_label=table_slice.label,
    )
    # A blocked outcome raises here, after its check results: the job's files were removed.
    yield from outcome.events()
    yield from reconcile(
        lakehouse=lakehouse, before=before, input_rows=report["input_rows"], removed=report["removed"]
    )


def _job_name(name: str) -> str:
    # EMR Serverless job names: 1-256 characters
    return "".join(char if char.isalnum() or char in "-_." else "-" for char in name)[:256]


def _column_docs(metadata: dict) -> dict[str, str]:
    schema = metadata.get("dagster/column_schema")
    if schema is None:
        return {}
    return {column.name: column.description or "" for column in schema.columns}


def _staged_schema(raw_schema: pa.Schema, contract: DatasetContract) -> pa.Schema:
    """The staging table's schema when the job's step creates it: the staging steps applied to no
    rows on pandas, so the table is created as the pandas path creates it."""
    from io_managers.read import arrow_to_pandas
    from io_managers.write import to_arrow

    staged, _ = apply_staging_steps(
        nw.from_native(arrow_to_pandas(raw_schema.empty_table())), contract.staging
    )
    return to_arrow(staged.to_native()).schema


def _references(lakehouse, contract: DatasetContract) -> dict[str, dict | None]:
    """The data files of every table a rule checks references against, so the job reads them
    without the catalog; None for a table that does not exist yet (the rule warns, as in process)."""
    from pyiceberg.exceptions import NoSuchTableError

    from io_managers.spark_pipes import SubmittedStepError

    references: dict[str, dict | None] = {}
    for rule in contract.quality.rules:
        name = getattr(rule, "table", None)
        if not name or name in references:
            continue
        try:
            table = lakehouse.load_table(name)
        except NoSuchTableError:
            references[name] = None
            continue
        tasks = list(table.scan().plan_files())
        if any(task.delete_files for task in tasks):
            raise SubmittedStepError(
                f"{name} has delete files; a submitted Spark job reads copy-on-write tables"
            )
        references[name] = {
            "files": [task.file.file_path for task in tasks],
            "schema": encode_schema(table.schema().as_arrow()),
        }
    return references


def _commit_metadata(table, result, table_slice: TableSlice, engine: str) -> dict:
    """The metadata the IO manager records for a commit, with this route's engine."""
    from io_managers.write import PREVIEW_ROWS, commit_metadata

    row_filter = table_slice.row_filter(partition_type_of(table, table_slice))
    preview = table.scan(row_filter=row_filter, limit=PREVIEW_ROWS).to_arrow().to_pandas()
    return commit_metadata(table, result, table_slice, preview, engine)


# --- in the job (spark-submit's driver) ---


def _reference_reader(references: dict[str, dict | None], io_properties: dict):
    def read(identifier: str, columns: list[str]) -> pa.Table:
        import pyarrow.parquet as pq
        from pyiceberg.exceptions import NoSuchTableError
        from pyiceberg.io.pyarrow import PyArrowFileIO

        reference = references.get(identifier)
        if reference is None:
            raise NoSuchTableError(identifier)
        io = PyArrowFileIO(io_properties)
        parts = [decode_schema(reference["schema"]).empty_table().select(columns)]
        for path in reference["files"]:
            with io.new_input(path).open() as stream:
                parts.append(pq.read_table(stream, columns=columns))
        return pa.concat_tables(parts, promote_options="permissive")

    return read


def stage_on_spark(
    frame,
    *,
    steps: list[dict],
    quality: dict,
    identity: list[str],
    partition_column: str | None,
    references: dict[str, dict | None],
    validate_before_commit: bool,
    io_properties: dict | None = None,
):
    """The staging steps and the rules on the job's Spark frame: the staged frame and the report
    (input rows, rows removed per rule, rule outcomes, whether to write)."""
    from pydantic import TypeAdapter
    from pyspark import StorageLevel

    from checks.rule_models import Quality
    from lakehouse_assets.contracts.steps import StagingStep

    # read once: counted, de-duplicated, validated and written from the same rows
    raw = nw.from_native(frame.persist(StorageLevel.MEMORY_AND_DISK))
    staged, counts = apply_staging_steps(raw, TypeAdapter(list[StagingStep]).validate_python(steps))
    rules = Quality.model_validate(quality)
    outcomes = rule_outcomes(
        staged.to_native(),
        rules,
        identity=identity,
        partition_column=partition_column,
        reader=_reference_reader(references, io_properties or {}),
    )
    records = [outcome_record(outcome) for outcome in outcomes]
    failed = [record["name"] for record in records if not record["passed"] and record["severity"] == "error"]
    report = {
        "input_rows": row_count(raw),
        "removed": counts.removed,
        "outcomes": records,
        "failed_error_rules": failed,
        "write": not (validate_before_commit and failed),
    }
    return staged.to_native(), report
