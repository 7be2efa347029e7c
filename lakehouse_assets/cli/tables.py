"""`lakehouse tables`: every table with its size, history and the outcome of its last checks."""

import sys
from dataclasses import dataclass

from lakehouse_assets.cli.lake import aligned, human_bytes, lake_catalog, lake_tables, moment

CHECK_RESULTS = "audit.check_results"


@dataclass(frozen=True)
class TableSummary:
    name: str
    rows: int
    data_files: int
    snapshots: int
    size: int
    last_commit_ms: int | None
    last_check: str
    error: str | None = None


def summarise(catalog, name: str, last_checks: dict[str, str]) -> TableSummary:
    """Counts from the current snapshot's summary totals: metadata only, no data file is read."""
    try:
        table = catalog.load_table(name)
    except Exception as exc:  # a table whose metadata is gone or unreadable is what this reports
        return TableSummary(name, 0, 0, 0, 0, None, "-", error=f"{type(exc).__name__}: {exc}")
    snapshot = table.current_snapshot()
    totals = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
    return TableSummary(
        name,
        rows=int(totals.get("total-records", 0)),
        data_files=int(totals.get("total-data-files", 0)),
        snapshots=len(table.metadata.snapshots),
        size=int(totals.get("total-files-size", 0)),
        last_commit_ms=snapshot.timestamp_ms if snapshot else None,
        last_check=last_checks.get(name, "-"),
    )


def last_check_outcomes(catalog) -> dict[str, str]:
    """Per table, the outcome of its latest check evaluation in audit.check_results: `passed (N)`,
    `failed: rule, ...` (a failing error rule) or `warned: rule, ...`; nothing when the history
    does not exist (yet)."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    try:
        history = catalog.load_table(CHECK_RESULTS)
    except (NoSuchTableError, NoSuchNamespaceError):
        return {}
    columns = ("evaluated_at", "run_id", "table_name", "check_name", "severity", "passed")
    rows = history.scan(selected_fields=columns).to_arrow().to_pylist()
    # one evaluation: a run's checks of the table (all its partitions, when it ran several)
    runs: dict[tuple, list[dict]] = {}
    for row in rows:
        runs.setdefault((row["table_name"], row["run_id"] or row["evaluated_at"]), []).append(row)
    latest: dict[str, tuple] = {}
    for (name, _), evaluations in runs.items():
        when = max(row["evaluated_at"] for row in evaluations)
        if name not in latest or when > latest[name][0]:
            latest[name] = (when, evaluations)
    return {name: _outcome(evaluations) for name, (_, evaluations) in latest.items()}


def _outcome(evaluations: list[dict]) -> str:
    failing = sorted({row["check_name"] for row in evaluations if not row["passed"]})
    errors = sorted(
        {
            row["check_name"]
            for row in evaluations
            if not row["passed"] and str(row["severity"]).upper() != "WARN"
        }
    )
    if errors:
        return "failed: " + ", ".join(errors)
    if failing:
        return "warned: " + ", ".join(failing)
    return f"passed ({len({row['check_name'] for row in evaluations})})"


def run_tables(out=None, err=None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    from lakehouse_assets.cli.progress import progress

    catalog = lake_catalog()
    names = lake_tables(catalog)
    if not names:
        err.write("no table exists yet: materialise some assets first (see README, `make dev`)\n")
        return 0
    last_checks = last_check_outcomes(catalog)
    summaries = [
        summarise(catalog, name, last_checks)
        for name in progress(names, "reading metadata", plain_lines=False)
    ]
    header = ("table", "rows", "data_files", "snapshots", "size", "last_commit", "last_check")
    lines = [header] + [
        (s.name, "?", "?", "?", "?", "?", f"unreadable: {s.error}")
        if s.error
        else (
            s.name,
            str(s.rows),
            str(s.data_files),
            str(s.snapshots),
            human_bytes(s.size),
            moment(s.last_commit_ms),
            s.last_check,
        )
        for s in summaries
    ]
    out.write(aligned(lines))
    broken = [s.name for s in summaries if s.error]
    if broken:
        err.write(
            f"{len(broken)} table(s) cannot be read: {', '.join(broken)}; their metadata files are "
            "missing or damaged (drop them with `lakehouse drop-table`, then re-materialise them)\n"
        )
        return 1
    return 0
