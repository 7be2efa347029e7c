"""The operator's commands on the local default (SQLite catalog, local warehouse): what they print,
what they change, and their exit status (0 ok, 1 failure found, 2 usage error)."""

import datetime as dt
import io
from pathlib import Path

import dagster as dg
import pytest

from lakehouse_assets.cli.main import main
from tests.lakehouse_assets.cli.tables import (
    appended_table,
    check_result,
    reference_table,
    write_check_results,
)

COMMANDS = ("validate", "tables", "drop-table", "copy", "maintain")
FLIGHTS_HEADER = (
    "year,month,day,dep_time,sched_dep_time,dep_delay,arr_time,sched_arr_time,arr_delay,carrier,flight,"
    "tailnum,origin,dest,air_time,distance,hour,minute,time_hour"
)
GOOD_FLIGHT = "2013,1,2,42,2359,43,518,442,36,B6,707,N580JB,JFK,SJU,189,1598,23,59,2013-01-03T04:00:00Z"
BAD_FLIGHT = "2013,1,2,abc,515,2,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,2013-01-02T10:00:00Z"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _tree(root: Path) -> dict[str, float]:
    return {str(path): path.stat().st_mtime for path in root.rglob("*")} if root.exists() else {}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself_and_its_exit_status(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "Exit status: 0 ok, 1" in " ".join(capsys.readouterr().out.split())


def test_validate_loads_every_contract_and_the_definitions(settings, capsys):
    code, out, _ = _run(capsys, "validate")
    assert code == 0
    assert "contracts and the definitions load" in out


def test_validate_names_the_contracts_when_a_name_is_unknown(settings, capsys):
    code, _, err = _run(capsys, "validate", "nope")
    assert code == 2
    assert "no contract is named 'nope'; the contracts are: airlines, airports" in err


def test_a_dry_run_prints_header_partitions_and_rejected_rows_and_writes_nothing(settings, tmp_path, capsys):
    path = tmp_path / "incoming" / "flights_2013-01-02.csv"
    path.parent.mkdir()
    path.write_text(f"{FLIGHTS_HEADER}\n{GOOD_FLIGHT}\n{BAD_FLIGHT}\n")
    before = _tree(settings.home)

    code, out, err = _run(capsys, "validate", "flights", "--file", str(path))

    assert code == 1
    assert f"header: {FLIGHTS_HEADER.replace(',', ', ')}" in out
    assert "rows: 2" in out
    assert "partitions it would touch: 2013-01-02" in out
    assert "rejected: line 3: dep_time: 'abc' is not a valid int" in out
    assert "1 rows would go to raw.flights_rejects" in err
    # nothing written: no table, no ledger, no file in the lakehouse's home
    assert _tree(settings.home) == before
    assert not (settings.home / "catalog.db").exists()


def test_a_clean_file_would_load_whole_and_its_dataset_is_found_by_its_name(settings, tmp_path, capsys):
    path = tmp_path / "flights_2013-01-02.csv"
    path.write_text(f"{FLIGHTS_HEADER}\n{GOOD_FLIGHT}\n")
    code, out, _ = _run(capsys, "validate", "--file", str(path))
    assert code == 0
    assert "as flights" in out and "the file would load whole" in out


def test_a_dry_run_reports_a_file_landing_would_reject_and_one_it_would_not_pick_up(
    settings, tmp_path, capsys
):
    path = tmp_path / "flights_2013-01-02.csv"
    path.write_text("year;month;day\n2013;1;2\n")
    code, _, err = _run(capsys, "validate", "flights", "--file", str(path))
    assert code == 1
    assert "landing would reject the file" in err

    misnamed = tmp_path / "flights-2013-01-02.txt"
    misnamed.write_text(f"{FLIGHTS_HEADER}\n{GOOD_FLIGHT}\n")
    code, _, err = _run(capsys, "validate", "flights", "--file", str(misnamed))
    assert code == 1
    assert "landing would not pick it up" in err


def test_validate_refuses_a_missing_file(settings, tmp_path, capsys):
    code, _, err = _run(capsys, "validate", "flights", "--file", str(tmp_path / "absent.csv"))
    assert (code, "no such file" in err) == (2, True)


def test_tables_lists_counts_history_and_the_last_check_outcome(settings, catalog, capsys):
    appended_table(catalog, "staging.readings", {dt.date(2024, 1, 1): 3, dt.date(2024, 1, 2): 1})
    reference_table(catalog, "staging.codes")
    code, out, _ = _run(capsys, "tables")
    assert code == 0
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert lines["staging.readings"][1:4] == ["20", "4", "4"]  # rows, data files, snapshots
    assert lines["staging.codes"][1:4] == ["7", "1", "1"]
    assert lines["staging.readings"][-1] == "-"  # no quality history yet

    early, late = dt.datetime(2024, 1, 2, 3, tzinfo=dt.UTC), dt.datetime(2024, 1, 3, 3, tzinfo=dt.UTC)
    write_check_results(
        catalog,
        [
            check_result("staging.readings", "not_null__sensor", True, "run-1", early),
            check_result("staging.readings", "range__value", False, "run-1", early),
            check_result("staging.readings", "not_null__sensor", True, "run-2", late),
            check_result("staging.readings", "range__value", True, "run-2", late),
            check_result("staging.codes", "unique__code", False, "run-3", early),
            check_result("staging.codes", "row_count", False, "run-3", early, severity="warn"),
        ],
    )
    code, out, _ = _run(capsys, "tables")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert rows["staging.readings"].endswith("passed (2)")  # the latest run's outcome
    assert rows["staging.codes"].endswith("failed: unique__code")
    assert "audit.check_results" in rows


def test_tables_says_what_to_do_when_there_is_none(settings, capsys):
    code, _, err = _run(capsys, "tables")
    assert code == 0 and "no table exists yet" in err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    with dg.DagsterInstance.get() as instance:
        yield instance


def test_drop_table_removes_the_catalog_entry_and_every_file(settings, catalog, instance, capsys):
    table = appended_table(catalog, "staging.readings", {dt.date(2024, 1, 1): 2})
    location = Path(table.location().removeprefix("file://"))
    assert any(location.rglob("*.parquet"))
    code, out, _ = _run(capsys, "drop-table", "staging.readings", "--yes")
    assert code == 0
    assert "dropped staging.readings" in out
    assert not catalog.table_exists("staging.readings")
    assert not location.exists()


def test_drop_table_asks_first_and_refuses_without_a_terminal(
    settings, catalog, instance, monkeypatch, capsys
):
    appended_table(catalog, "staging.readings", {dt.date(2024, 1, 1): 1})
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # piped: not a terminal
    code, _, err = _run(capsys, "drop-table", "staging.readings")
    assert code == 2 and "re-run with --yes" in err

    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    code, _, err = _run(capsys, "drop-table", "staging.readings")
    assert code == 1 and "not dropped" in err and catalog.table_exists("staging.readings")

    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    from lakehouse_assets.cli.drop_table import run_drop_table

    assert run_drop_table("staging.readings", yes=False, stdin=_Terminal("y\n")) == 0
    assert not catalog.table_exists("staging.readings")


def test_drop_table_refuses_while_a_run_plans_to_write_the_table(settings, catalog, instance, capsys):
    appended_table(catalog, "staging.readings", {dt.date(2024, 1, 1): 1})

    @dg.asset(key=["staging", "readings"])
    def readings():
        return None

    job = dg.Definitions(assets=[readings], jobs=[dg.define_asset_job("load", [readings])]).resolve_job_def(
        "load"
    )
    run = instance.create_run_for_job(job_def=job, run_config={})  # queued: its writes are planned

    code, _, err = _run(capsys, "drop-table", "staging.readings", "--yes")
    assert code == 1
    assert f"refusing to drop staging.readings: run(s) {run.run_id} (load, NOT_STARTED) write it" in err
    assert catalog.table_exists("staging.readings")

    instance.report_run_canceled(run)
    code, _, _ = _run(capsys, "drop-table", "staging.readings", "--yes")
    assert code == 0


def test_drop_table_usage_errors(settings, catalog, instance, capsys):
    assert _run(capsys, "drop-table", "readings", "--yes")[0] == 2
    code, _, err = _run(capsys, "drop-table", "staging.absent", "--yes")
    assert code == 1 and "does not exist" in err


def test_copy_to_another_sqlite_catalog_matches_every_partition_and_converges(
    settings, catalog, tmp_path, capsys
):
    from pyiceberg.catalog.sql import SqlCatalog

    appended_table(catalog, "staging.readings", {dt.date(2024, 1, 1): 3, dt.date(2024, 1, 2): 2})
    reference_table(catalog, "staging.codes")
    target_uri = f"sqlite:///{tmp_path / 'stage' / 'catalog.db'}"
    (tmp_path / "stage").mkdir()

    code, out, err = _run(capsys, "copy", "--to-catalog", target_uri)
    assert code == 0, err
    assert "staging.readings: 25 rows in 2 partitions copied, counts match" in out
    assert "copying [2/2]" in err  # progress, as plain lines off a terminal
    target = SqlCatalog("lakehouse", uri=target_uri, warehouse=(tmp_path / "stage" / "warehouse").as_uri())
    copied = target.load_table("staging.readings")
    assert copied.location().startswith((tmp_path / "stage" / "warehouse").as_uri())
    order = [("reading_date", "ascending"), ("sensor", "ascending")]
    source_rows = catalog.load_table("staging.readings").scan().to_arrow().sort_by(order)
    assert copied.scan().to_arrow().sort_by(order).equals(source_rows)

    code, _, _ = _run(capsys, "copy", "--to-catalog", target_uri, "--tables", "staging.readings")
    assert code == 0
    assert target.load_table("staging.readings").scan().count() == 25


def test_copy_finds_a_partition_whose_counts_differ(settings, catalog):
    from lakehouse_assets.cli.copy_tables import partition_counts, verify_counts

    table = appended_table(catalog, "staging.readings", {dt.date(2024, 1, 1): 2})
    assert partition_counts(table) == {"reading_date_day=2024-01-01": 10}
    assert verify_counts(table, {"reading_date_day=2024-01-01": 11, "reading_date_day=2024-01-02": 3}) == [
        "reading_date_day=2024-01-01: 11 rows in the source, 10 in the target",
        "reading_date_day=2024-01-02: 3 rows in the source, 0 in the target",
    ]


def test_copy_usage_errors(settings, catalog, capsys):
    reference_table(catalog, "staging.codes")
    assert _run(capsys, "copy")[0] == 2
    assert _run(capsys, "copy", "--to-prefix", "stage_")[0] == 2  # Glue prefixes need AWS
    assert _run(capsys, "copy", "--to-catalog", settings.catalog_uri)[0] == 2
    code, _, err = _run(capsys, "copy", "--to-catalog", "sqlite:////tmp/x.db", "--tables", "raw.nope")
    assert code == 2 and "`lakehouse tables` lists them" in err


def test_maintain_compacts_a_crowded_partition_and_reports_each_table(settings, catalog, capsys):
    appended_table(catalog, "staging.readings", {dt.date(2024, 1, 1): 5, dt.date(2024, 1, 2): 1})
    code, out, err = _run(capsys, "maintain", "--table", "staging.readings")
    assert code == 0
    assert "staging.readings: 1 partitions compacted (5 files into 1)" in out
    assert "maintaining [1/1] staging.readings" in err
    table = catalog.load_table("staging.readings")
    assert len(list(table.scan().plan_files())) == 2
    assert table.scan().count() == 30


def test_maintain_refuses_an_unsafe_orphan_age_and_unknown_tables(settings, catalog, capsys):
    reference_table(catalog, "staging.codes")
    code, _, err = _run(capsys, "maintain", "--orphan-min-age-hours", "0.1")
    assert code == 2 and "could delete files a running write has not committed yet" in err
    assert _run(capsys, "maintain", "--table", "staging.nope")[0] == 2


def test_drop_table_refuses_a_table_whose_location_is_not_its_own(settings, catalog, instance, capsys):
    from io_managers.schema import iceberg_schema
    from tests.lakehouse_assets.cli.tables import readings

    catalog.create_namespace_if_not_exists("staging")
    shared = settings.home / "shared"
    catalog.create_table(
        "staging.elsewhere",
        iceberg_schema(readings(dt.date(2024, 1, 1), 0, 0).schema),
        location=shared.as_uri(),
    )
    code, _, err = _run(capsys, "drop-table", "staging.elsewhere", "--yes")
    assert code == 1 and "is not a folder of its own" in err
    assert catalog.table_exists("staging.elsewhere")
