"""Tables for the operator's commands to work on, written through the product's own commit path, and
the quality history in the schema `audit.check_results` has."""

import datetime as dt

import pyarrow as pa

from io_managers.commit import WriteRequest, commit
from io_managers.schema import create_table_if_missing
from io_managers.slices import TableSlice

CHECK_RESULTS_SCHEMA = pa.schema(
    [
        ("evaluated_at", pa.timestamp("us", tz="UTC")),
        ("run_id", pa.string()),
        ("layer", pa.string()),
        ("table_name", pa.string()),
        ("partition", pa.string()),
        ("check_name", pa.string()),
        ("rule", pa.string()),
        ("severity", pa.string()),
        ("passed", pa.bool_()),
        ("rows_checked", pa.int64()),
        ("rows_failing", pa.int64()),
        ("description", pa.string()),
    ]
)


def day_slice(day: dt.date) -> TableSlice:
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    return TableSlice("reading_date", start, start + dt.timedelta(days=1))


def readings(day: dt.date, first: int, count: int) -> pa.Table:
    return pa.table(
        {
            "reading_date": pa.array([day] * count, pa.date32()),
            "sensor": pa.array([f"s{index:04d}" for index in range(first, first + count)], pa.string()),
            "value": pa.array(range(first, first + count), pa.int64()),
        }
    )


def appended_table(catalog, name: str, days: dict[dt.date, int], rows_per_append: int = 5):
    """A daily table whose days hold `days[day]` small files each, appended one by one."""
    table = create_table_if_missing(catalog, name, readings(dt.date(2024, 1, 1), 0, 0).schema, "reading_date")
    for day, appends in days.items():
        for index in range(appends):
            commit(
                table,
                readings(day, index * rows_per_append, rows_per_append),
                WriteRequest("append", day_slice(day), f"run-{day}-{index}"),
            )
    return table


def reference_table(catalog, name: str, rows: int = 7):
    data = pa.table({"code": pa.array([f"c{n}" for n in range(rows)], pa.string())})
    table = create_table_if_missing(catalog, name, data.schema, None)
    commit(table, data, WriteRequest("overwrite", TableSlice(), "reference"))
    return table


def check_result(table_name: str, check: str, passed: bool, run_id: str, at: dt.datetime, severity="error"):
    return {
        "evaluated_at": at,
        "run_id": run_id,
        "layer": table_name.split(".")[0],
        "table_name": table_name,
        "partition": "2024-01-01",
        "check_name": check,
        "rule": check.split("__")[0],
        "severity": severity,
        "passed": passed,
        "rows_checked": 10,
        "rows_failing": 0 if passed else 2,
        "description": f"{check} on {table_name}",
    }


def write_check_results(catalog, rows: list[dict]):
    catalog.create_namespace_if_not_exists("audit")
    from io_managers.schema import iceberg_schema

    table = catalog.create_table("audit.check_results", schema=iceberg_schema(CHECK_RESULTS_SCHEMA))
    table.append(pa.Table.from_pylist(rows, CHECK_RESULTS_SCHEMA))
    return table
