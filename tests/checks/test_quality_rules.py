"""Every rule type passes on good rows and fails on purpose on bad ones, on pandas and on PySpark.

One frame of good rows and one of bad rows (each bad row breaks a known rule) are validated with
the same compiled rules on both engines; the failing rows, their count and their identity must be
the same whichever engine ran pandera.
"""

import datetime as dt
import sys

import dagster as dg
import narwhals as nw
import pandas as pd
import pyarrow as pa
import pytest
from pydantic import ValidationError

from checks.asset_checks import evaluate_rules, rule_check_specs
from checks.pandera_schemas import validate_frame
from checks.rule_models import Quality
from checks.rules import compile_rule


def small_ids() -> nw.Expr:
    return nw.col("id") < 100


UTC = dt.UTC
SCHEMA = pa.schema(
    [
        ("_source_line", pa.int64()),
        ("id", pa.int64()),
        ("code", pa.string()),
        ("pair", pa.string()),
        ("amount", pa.float64()),
        ("day", pa.date32()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("part", pa.date32()),
        ("carrier", pa.string()),
    ]
)
SPARK_DDL = (
    "_source_line long, id long, code string, pair string, amount double, day date, ts timestamp, "
    "part date, carrier string"
)
RULES = Quality.model_validate(
    {
        "sample_rows": 20,
        "rules": [
            {"rule": "not_null", "columns": ["code"]},
            {"rule": "unique", "columns": ["id"]},
            {"rule": "unique", "columns": ["code", "pair"]},
            {"rule": "range", "column": "amount", "min": 0, "max": 100},
            {"rule": "allowed_values", "column": "code", "values": ["A", "B", "C"]},
            {"rule": "regex", "column": "code", "pattern": "[A-Z]$"},
            {"rule": "string_length", "column": "pair", "min": 1, "max": 1},
            {"rule": "date_bounds", "column": "day", "min": "2024-01-01", "max": "2024-01-31"},
            {
                "rule": "date_bounds",
                "name": "ts_in_january",
                "column": "ts",
                "min": "2024-01-01",
                "max": "2024-01-31",
            },
            {"rule": "row_count", "min": 2, "max": 3, "severity": "warn"},
            {"rule": "references", "columns": ["carrier"], "table": "staging.carriers", "to": ["code"]},
            {
                "rule": "custom",
                "name": "amount_needs_carrier",
                "check": "checks.custom_checks:implies_present",
                "columns": ["amount", "carrier"],
                "options": {"when": "amount", "then": ["carrier"]},
            },
            {
                "rule": "custom",
                "name": "test_small_ids",
                "check": f"{__name__}:small_ids",
                "columns": ["id"],
                "severity": "warn",
            },
        ],
    }
)


def row(
    line,
    id_,
    code,
    pair,
    amount=None,
    day="2024-01-03",
    ts="2024-01-03T00:00",
    part="2024-01-03",
    carrier=None,
):
    return {
        "_source_line": line,
        "id": id_,
        "code": code,
        "pair": pair,
        "amount": amount,
        "day": dt.date.fromisoformat(day),
        "ts": dt.datetime.fromisoformat(ts).replace(tzinfo=UTC),
        "part": dt.date.fromisoformat(part),
        "carrier": carrier,
    }


GOOD = [
    row(2, 1, "A", "x", 10.0, "2024-01-02", "2024-01-02T10:00", "2024-01-02", "AA"),
    row(3, 2, "B", "x", 20.0, "2024-01-02", "2024-01-02T11:00", "2024-01-02", "UA"),
    row(4, 3, "C", "y"),
    row(5, 4, "A", "y", 100.0, carrier="AA"),
]
BAD = GOOD + [
    row(6, 5, None, "z"),
    row(7, 1, "B", "w"),
    row(8, 7, "A", "x"),
    row(9, 8, "B", "v", 150.0, carrier="UA"),
    row(10, 9, "E", "u"),
    row(11, 10, "c", "t"),
    row(12, 11, "A", "long"),
    row(13, 12, "B", "s", day="2023-12-31"),
    row(14, 13, "C", "r", ts="2024-02-01T00:00"),
    row(15, 14, "A", "q", carrier="ZZ"),
    row(16, 15, "B", "p", 5.0),
    row(17, 150, "C", "o"),
    row(18, 16, "A", "n", part="2024-01-04"),
]
# rule -> source lines that break it
EXPECTED_FAILURES = {
    "not_null__code": {6},
    "unique__id": {2, 7},
    "unique__code__pair": {2, 8},
    "range__amount": {9},
    "allowed_values__code": {10, 11},
    "regex__code": {11},
    "string_length__pair": {12},
    "date_bounds__day": {13},
    "ts_in_january": {14},
    "references__carrier": {15},
    "amount_needs_carrier": {16},
    "test_small_ids": {17},
}


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("quality-rules")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        # tiny frames: a quick JIT and no code generation start faster than they run slower
        .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.codegen.wholeStage", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session


def carriers(table: str, columns: list[str]) -> pa.Table:
    assert table == "staging.carriers"
    return pa.table({"code": ["AA", "UA", None]}).select(columns)


def frame(engine: str, rows: list[dict], spark_session=None):
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    if engine == "pandas":
        return table.to_pandas(types_mapper=pd.ArrowDtype)
    return spark_session.createDataFrame(rows, schema=SPARK_DDL)


def compiled():
    return [compile_rule(rule, partition_column="part", read_reference=carriers) for rule in RULES.rules]


@pytest.fixture(params=["pandas", "pyspark"])
def engine(request):
    return request.param


@pytest.fixture
def spark_if_needed(engine, request):
    return request.getfixturevalue("spark") if engine == "pyspark" else None


def test_every_rule_passes_on_good_rows(engine, spark_if_needed):
    outcomes = validate_frame(
        frame(engine, GOOD, spark_if_needed), compiled(), identity=["_source_line", "id"]
    )
    assert {outcome.rule.name: outcome.passed for outcome in outcomes} == {
        rule.check_name: True for rule in RULES.rules
    }
    assert {outcome.rows_checked for outcome in outcomes} == {len(GOOD)}


def test_every_rule_fails_on_its_bad_rows_with_their_identity(engine, spark_if_needed):
    outcomes = {
        outcome.rule.name: outcome
        for outcome in validate_frame(
            frame(engine, BAD, spark_if_needed), compiled(), identity=["_source_line", "id"], sample_rows=20
        )
    }
    failing_lines = {
        name: {sample["_source_line"] for sample in outcome.sample}
        for name, outcome in outcomes.items()
        if name != "row_count"
    }
    assert failing_lines == EXPECTED_FAILURES
    assert {name: outcomes[name].failing_rows for name in EXPECTED_FAILURES} == {
        name: len(lines) for name, lines in EXPECTED_FAILURES.items()
    }
    assert not any(outcome.passed for outcome in outcomes.values())
    # a sample shows the row's identity and the values the rule read
    (bad_amount,) = outcomes["range__amount"].sample
    assert bad_amount == {"_source_line": 9, "id": 8, "amount": 150.0}
    (early,) = outcomes["date_bounds__day"].sample
    assert early["day"] == "2023-12-31"
    # row counts are judged per partition of the materialised window
    row_count = outcomes["row_count"]
    assert {sample["partition"]: sample["rows"] for sample in row_count.sample} == {
        "2024-01-03": len(BAD) - 3,
        "2024-01-04": 1,
    }


def test_a_rule_whose_column_is_missing_fails_naming_it(engine, spark_if_needed):
    rules = [
        compile_rule(Quality.model_validate({"rules": [{"rule": "not_null", "columns": ["nope"]}]}).rules[0])
    ]
    (outcome,) = validate_frame(frame(engine, GOOD, spark_if_needed), rules, identity=[])
    assert not outcome.passed
    assert outcome.message == "columns ['nope'] are missing from the table"


def test_asset_check_results_carry_severity_counts_and_samples():
    results = {
        result.check_name: result
        for result in evaluate_rules(
            frame("pandas", BAD),
            Quality.model_validate(
                {"rules": [r.model_dump() for r in RULES.rules if r.rule != "references"]}
            ),
            asset_key=dg.AssetKey(["staging", "orders"]),
            identity=["_source_line", "id"],
            partition_column="part",
            slice_label="2024-01-02..2024-01-04",
        )
    }
    regex = results["regex__code"]
    assert not regex.passed
    assert regex.severity == dg.AssetCheckSeverity.ERROR
    assert regex.metadata["failing_rows"].value == 1
    assert regex.metadata["rows_checked"].value == len(BAD)
    assert regex.metadata["slice"].value == "2024-01-02..2024-01-04"
    assert regex.metadata["failing_sample"].value == [{"_source_line": 11, "id": 10, "code": "c"}]
    assert regex.metadata["engine"].value == "pandas"
    assert results["test_small_ids"].severity == dg.AssetCheckSeverity.WARN
    assert results["row_count"].severity == dg.AssetCheckSeverity.WARN


def test_error_rules_are_blocking_checks_and_warnings_are_not():
    specs = {spec.name: spec for spec in rule_check_specs(RULES, dg.AssetKey(["staging", "orders"]))}
    assert list(specs) == [rule.check_name for rule in RULES.rules]
    assert specs["unique__id"].blocking
    assert not specs["row_count"].blocking
    assert not specs["test_small_ids"].blocking
    assert specs["references__carrier"].additional_deps[0].asset_key == dg.AssetKey(["staging", "carriers"])


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        ("no_such_check", "expected `package.module:function`"),
        ("checks.no_such_module:implies_present", "no module named 'checks.no_such_module'"),
        ("checks.custom_checks:no_such_check", r"defines no function 'no_such_check'; its functions: \["),
    ],
)
def test_unknown_custom_check_fails_when_the_rules_are_validated(check, expected):
    with pytest.raises(ValidationError, match=expected):
        Quality.model_validate({"rules": [{"rule": "custom", "check": check}]})


def test_a_custom_check_is_found_without_importing_its_module(tmp_path, monkeypatch):
    """Its module may import the data stack: the code location only reads its source."""
    (tmp_path / "checks_that_must_not_load.py").write_text(
        "raise RuntimeError('imported at load')\n\n\ndef positive(column):\n    return column\n"
    )
    monkeypatch.syspath_prepend(tmp_path)
    quality = Quality.model_validate(
        {"rules": [{"rule": "custom", "check": "checks_that_must_not_load:positive"}]}
    )
    assert quality.rules[0].check_name == "positive"
    assert "checks_that_must_not_load" not in sys.modules
