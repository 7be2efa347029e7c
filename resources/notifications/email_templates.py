"""E-mail templates: one per event kind. The subject always starts with the environment."""

from string import Template

TEMPLATES: dict[str, tuple[str, str]] = {
    "file_arrived": (
        "$count new file(s) for $dataset",
        "New files arrived in the landing zone $landing for dataset $dataset:\n\n$files\n\n"
        "Runs requested for: $partitions\n",
    ),
    "file_unmatched": (
        "$count file(s) for $dataset match no partition",
        "These files match the glob of dataset $dataset but their names carry no date of its "
        "partitions (pattern $pattern). They were left in place and will not be loaded until renamed:\n\n"
        "$files\n",
    ),
    "file_unassigned": (
        "$count file(s) for $dataset recorded as unassigned",
        "Landing found these files of dataset $dataset that no partition can own. They are recorded "
        "as `unassigned` in the file ledger (landing.files), left in place and not loaded; the other "
        "files load as usual:\n\n$files\n",
    ),
    "run_failed": (
        "Run failed: $job $partition",
        "Run $run_id of $job failed$partition_clause.\n\n$message\n\nSteps that failed: $steps\n",
    ),
    "check_failed": (
        "Blocking check failed: $asset $check $partition",
        "The blocking check $check on $asset failed$partition_clause in run $run_id; downstream assets "
        "were not materialised.\n\n$description\n\n$metadata\n",
    ),
    "output_generated": (
        "Output ready: $asset $partition",
        "$asset was materialised$partition_clause by run $run_id.\n\n$metadata\n",
    ),
    "extract_generated": (
        "Output generated: $extract $partition",
        "The extract $extract of $table$partition_clause is ready:\n\n  $uri\n\n"
        "rows: $rows\nbytes: $bytes\nsha256: $sha256\nread from snapshot $snapshot_id of $table\n"
        "manifest: $manifest\nrun: $run_id\n",
    ),
}


def render(kind: str, environment: str, fields: dict[str, object]) -> tuple[str, str]:
    """Subject and body; every template field must be given (a missing one raises KeyError)."""
    subject, body = TEMPLATES[kind]
    values = {key: str(value) for key, value in fields.items()}
    partition = values.get("partition", "")
    values.setdefault("partition_clause", f" for partition {partition}" if partition else "")
    return (
        f"[{environment}] {Template(subject).substitute(values)}".strip(),
        Template(body).substitute(values),
    )
