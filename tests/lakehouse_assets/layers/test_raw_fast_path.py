"""Raw's fast path (Arrow's plain cast) accepts exactly what the validating parse accepts, alike.

`_parse` casts a whole column with Arrow when it can and falls back to `_parse_validated` when the
cast fails or a value could be one the two read differently. Each spelling is typed on its own
(so the cast is really tried: one bad value would send a whole column to the validator), next to
good values, and in random batches; the typed arrays must be identical, bit for bit.
"""

import random
import struct

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lakehouse_assets.contracts.base import Column
from lakehouse_assets.layers import raw
from lakehouse_assets.layers.raw import REJECT_REASON, _cast_agrees, _parse, _parse_validated, arrow_type
from tests.lakehouse_assets.layers.test_raw import land, make_contract, type_rows

NUMBER_TYPES = ("int", "long", "double", "decimal(5,2)", "decimal(38,0)", "decimal(38,10)", "decimal(10,0)")
# 2**128 + 5: Arrow's decimal128 cast wraps it around to 5
WRAPS_AROUND = "340282366920938463463374607431768211461"

TRICKY = [
    # plain, signs, leading zeros
    *("0", "1", "-1", "+1", "-0", "+0", "007", "-007", "+007", "00", "0" * 40 + "5", "-" + "0" * 40 + "5"),
    # whitespace (ASCII, tab, vertical tab, form feed, no-break space, ideographic space)
    *(" 5", "5 ", " 5 ", "\t5", "5\t", "\n5", "5\r", "\v5", "\f5", "\u00a05", "5\u3000", "5 5", "- 5"),
    # int bounds
    *("2147483647", "2147483648", "-2147483648", "-2147483649"),
    *("9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809"),
    *("18446744073709551616", "99999999999999999999", "1" * 38, "1" * 39, WRAPS_AROUND),
    # exponents, fractions
    *("1e3", "1E3", "1e+3", "1e-3", "1e", "e5", "1e3.5", "1.e5", ".e5", "1e+", "1e-", "-1E-2"),
    *("1.5", "-2.5E-2", ".5", "5.", "-.5", "+.5", "-5.", ".", "-.", "1.2.3", "1,5", "1.0", "0.10", "1.00"),
    *("123.45", "123.450", "1.234", "1234.5", "-0.01", "-0.00", "0.001", "99999.99", "999.999", "999.99"),
    *("1e2", "1e38", "9e38", "1e50", "0e-50", "0e50", "1e-40", "1e400", "-1e400", "1e-400", "1e-5"),
    # beyond a double, underflowing to zero, subnormal, spellings of zero
    *("1.8e308", "1.7976931348623157e308", "-1e-400", "2e-324", "4.9e-324", "1e-310", "0e-400", "00.000e5"),
    *("0.", ".0", "-0e-999", "1e-99999", "1e99999"),
    # separators, hexadecimal, suffixes
    *("1_000", "1,000", "1'000", "0x10", "0X1f", "0x", "-0x10", "0xFFFFFFFF", "0x7fffffff"),
    *("0xFFFFFFFFFFFFFFFF", "0x7FFFFFFFFFFFFFFF", "0x1F", "0xfg"),
    *("0x1p3", "0b101", "0o17", "1d", "1f", "1L", "5%", "$5", "1/2"),
    # inf and nan
    *("inf", "-inf", "+inf", "INF", "Inf", "infinity", "Infinity", "-Infinity", "INFINITY", "infinit"),
    *("infinityy", "nan", "NaN", "-nan", "+nan", "NAN", "nan(abc)", "nan()", "nan(", "NaN(1)", "snan", "-"),
    # unicode digits and signs
    *("\u0661\u0662", "\uff15", "\u0665", "1\u0662", "\u2212" + "1", "\u00b2", "\u2155"),
    # empty and words
    *("", "abc", "NA", "null", "true", "-", "+", "--1", "+-1", "1-"),
    # long digit strings (decimals: Arrow wraps beyond 38 digits; the validator goes through Decimal)
    *("1" * 36, "9" * 37, "9" * 38, "0." + "1" * 37, "1" * 20 + "." + "1" * 18, "1" * 36 + ".00"),
    *("0" * 60 + "1.5", "1." + "0" * 43, "-" + "9" * 36, "9" * 33 + ".99", "9" * 28 + "." + "9" * 10),
]


def typed(
    function, values: list[str | None], type_name: str, **options
) -> tuple[pa.DataType, list] | tuple[str, str]:
    """The typed values as comparable items: null, or the exact bits of a double, or the value."""
    try:
        result = function(pa.array(values, pa.string()), Column(name="v", type=type_name, **options))
    except Exception as exc:  # the two must fail alike too
        return "raises", type(exc).__name__
    items = []
    for value in result.to_pylist():
        if isinstance(value, float):
            value = ("double", struct.pack("<d", value))
        items.append(value)
    return result.type, items


def assert_same(values: list[str | None], type_name: str, **options) -> None:
    expected = typed(_parse_validated, values, type_name, **options)
    assert expected[0] == arrow_type(type_name)
    assert typed(_parse, values, type_name, **options) == expected, (type_name, values)


@pytest.mark.parametrize("type_name", NUMBER_TYPES)
@pytest.mark.parametrize("value", TRICKY)
def test_each_spelling_alone_and_among_good_values(type_name, value):
    assert_same([value], type_name)
    assert_same([None, value, "1", None], type_name)


@pytest.mark.parametrize("value", TRICKY)
def test_each_spelling_alike_in_a_double_column_that_allows_non_finite_values(value):
    assert_same([value], "double", allow_non_finite=True)
    assert_same([None, value, "1", None], "double", allow_non_finite=True)


@pytest.mark.parametrize(
    ("value", "allow_non_finite", "expected"),
    [
        ("1e400", False, None),
        ("-1e400", False, None),
        ("1e-400", False, None),
        ("inf", False, None),
        ("nan", False, None),
        ("1e400", True, None),
        ("1e-400", True, None),
        ("-inf", True, float("-inf")),
        ("0e-400", False, 0.0),
    ],
)
def test_the_cast_does_not_bend_a_double_on_either_path(value, allow_non_finite, expected):
    column = Column(name="v", type="double", allow_non_finite=allow_non_finite)
    values = pa.array([value, "1"], pa.string())
    assert _cast_agrees(values, "double", pa.float64())
    for function in (_parse, _parse_validated):
        assert function(values, column).to_pylist() == [expected, 1.0], function


@pytest.mark.parametrize("type_name", NUMBER_TYPES)
def test_the_cast_is_really_taken_for_ordinary_values(type_name):
    values = pa.array(["1", "-2", "0", None, "007"], pa.string())
    assert _cast_agrees(values, type_name, arrow_type(type_name))
    assert_same(values.to_pylist(), type_name)


@pytest.mark.parametrize(
    ("type_name", "value"),
    [
        ("int", "0x10"),
        ("long", "0XFF"),
        ("double", "nan(1)"),
        ("decimal(5,2)", "1e2"),
        ("decimal(5,2)", "1" * 37),
        ("decimal(38,10)", "1" * 29),
    ],
)
def test_values_the_cast_reads_differently_go_to_the_validator(type_name, value):
    assert not _cast_agrees(pa.array([value, "1"], pa.string()), type_name, arrow_type(type_name))


def test_bytes_outside_a_slice_only_make_the_check_cautious():
    values = pa.array(["0x10", "1", "2"], pa.string()).slice(1)
    assert not _cast_agrees(values, "int", pa.int32())
    assert_same(values.to_pylist(), "int")


def test_null_slots_are_not_read():
    # a null slot's bytes are still in the buffer; the cast must not look at them
    values = pa.array(["1", "NA", "3"], pa.string())
    keep = pc.not_equal(values, "NA")
    masked = pa.Array.from_buffers(pa.string(), 3, [keep.buffers()[1], *values.buffers()[1:]])
    column = Column(name="v", type="int")
    assert _parse(masked, column).to_pylist() == [1, None, 3]
    assert _parse_validated(masked, column).to_pylist() == [1, None, 3]


_PIECES = [
    "",
    *"0123456789",
    "00",
    "12",
    "999",
    "-",
    "+",
    ".",
    "e",
    "E",
    "e-",
    "E+",
    "x",
    "X",
    "0x",
    "a",
    "f",
    "F",
    "inf",
    "Infinity",
    "nan",
    "NaN",
    "(",
    ")",
    "_",
    ",",
    " ",
    "\t",
    "\u00a0",
    "\u0661",
    "\uff15",
]


def random_spelling(rng: random.Random) -> str:
    """Mostly number-like strings: a sign, digits, a fraction, an exponent, each sometimes mangled."""
    if rng.random() < 0.3:
        return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 6)))
    digits = lambda low, high: "".join(rng.choice("0123456789") for _ in range(rng.randint(low, high)))  # noqa: E731
    text = rng.choice(["", "", "-", "+", " ", "0", "00"]) + digits(0, 42)
    if rng.random() < 0.4:
        text += "." + digits(0, 12)
    if rng.random() < 0.2:
        text += rng.choice("eE") + rng.choice(["", "-", "+"]) + digits(0, 3)
    if rng.random() < 0.1:
        position = rng.randint(0, len(text))
        text = text[:position] + rng.choice(_PIECES) + text[position:]
    return text


@pytest.mark.parametrize("type_name", NUMBER_TYPES)
def test_random_spellings(type_name):
    rng = random.Random(f"raw-fast-path-{type_name}")
    spellings = [random_spelling(rng) for _ in range(2000)]
    for value in spellings:
        assert_same([value], type_name)
    # and in batches, as columns arrive (mostly good, sometimes one bad value)
    good = [value for value in spellings if typed(_parse_validated, [value], type_name)[1] != [None]]
    for start in range(0, len(spellings), 100):
        batch = good[start : start + 50] + [None] + spellings[start : start + rng.randint(0, 2)]
        assert_same(batch, type_name)


@pytest.mark.parametrize("seed", range(4))
def test_whole_tables_type_each_value_as_the_validator_types_it_alone(seed, monkeypatch):
    """type_landing_rows, fast path and bookkeeping together, against the validator value by value."""
    rng = random.Random(f"raw-tables-{seed}")
    types = {"i": "int", "l": "long", "f": "double", "m": "decimal(5,2)", "n": "int"}
    contract = make_contract(
        [{"name": name, "type": type_name, "nullable": name != "n"} for name, type_name in types.items()],
        null_values=["", "NA"],
    )
    good = {
        "int": ["1", "-2", "007", "NA", ""],
        "long": ["1", "-2", "9223372036854775807", "NA", ""],
        "double": ["1.5", "-2", ".5", "1e3", "NA", ""],
        "decimal(5,2)": ["12.5", "0.25", "-1", "999.99", "NA", ""],
    }
    # (a value cannot hold a line break in a landed file)
    tricky = [value for value in TRICKY if "\n" not in value and "\r" not in value]
    # mostly good rows; in the first table every row is good, so that every column takes the cast
    bad_share = [0.0, 0.01, 0.1, 0.5][seed]
    values = [
        [
            str(row),
            *(
                rng.choice(tricky) if rng.random() < bad_share else rng.choice(good[type_name])
                for type_name in types.values()
            ),
        ]
        for row in range(300)
    ]
    validated = []
    monkeypatch.setattr(
        raw,
        "_parse_validated",
        lambda values, column: validated.append(column.name) or _parse_validated(values, column),
    )
    result = type_rows(land(contract, values), contract)
    if seed == 0:
        assert validated == []
    typed = {row["id"]: row for row in result.typed.to_pylist()}
    rejected = {row["id"]: row[REJECT_REASON] for row in result.rejects.to_pylist()}
    for row in values:
        reasons = []
        expected = {}
        for (name, type_name), text in zip(types.items(), row[1:], strict=True):
            if text in ("", "NA"):
                expected[name] = None
                if name == "n":
                    reasons.append(f"{name}: required value is missing")
                continue
            value = typed_alone(text, type_name)
            if value is None:
                reasons.append(f"{name}: {text!r} is not a valid {type_name}")
            expected[name] = value
        if reasons:
            # a double's reason may go on to say why (beyond its range, underflow, not finite)
            found = rejected[row[0]].split("; ")
            assert len(found) == len(reasons), (found, reasons)
            for reason, expected_start in zip(found, reasons, strict=True):
                assert reason == expected_start or (
                    reason.startswith(expected_start + " (") and expected_start.endswith("double")
                ), (reason, expected_start)
        else:
            assert {name: _bits(typed[row[0]][name]) for name in types} == {
                name: _bits(value) for name, value in expected.items()
            }, row


def _bits(value):
    return ("double", struct.pack("<d", value)) if isinstance(value, float) else value


def typed_alone(text: str, type_name: str):
    return _parse_validated(pa.array([text], pa.string()), Column(name="v", type=type_name))[0].as_py()


def _present_by_comparison(values: pa.Array, null_values: list[str]) -> pa.Array:
    """What `_present` must give: every value compared with every null value, null slots absent."""
    present = pa.repeat(pa.scalar(True), len(values))
    for value in null_values:
        present = pc.and_(present, pc.not_equal(values, pa.scalar(value, pa.string())))
    return pc.fill_null(pc.and_kleene(present, pc.is_valid(values)), False)


PRESENT_VALUES = ["", "NA", "na", "N/A", "NAN", "NA ", " ", "0", "x", "ünïcödé", '""', "''", "A", "N"]


@pytest.mark.parametrize("null_values", [[], [""], ["NA"], ["", "NA"], ["", "", "NA"], ["NA", "null", ""]])
@pytest.mark.parametrize("seed", range(6))
def test_present_finds_the_null_values_as_comparing_every_value_does(null_values, seed):
    """ "" is found from the offsets: also in slices, large strings, columns with nulls, none or only
    empty values."""
    rng = random.Random(seed)
    rows = [rng.choice([*PRESENT_VALUES, None]) for _ in range(rng.choice([1, 7, 300, 2000]))]
    cases = [
        rows,
        [value for value in rows if value != ""],
        [value if value is not None else "" for value in rows],
        [""] * len(rows),
        ["1"] * len(rows),
    ]
    for case in cases:
        for type_ in (pa.string(), pa.large_string()):
            whole = pa.array(case, type_)
            for values in (whole, whole.slice(len(case) // 3), whole.slice(1, max(0, len(case) - 2))):
                expected = _present_by_comparison(values, null_values)
                got = raw._present(values, null_values)
                assert got.null_count == 0
                assert got.equals(expected), (case[:20], type_, null_values)
