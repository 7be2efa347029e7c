"""Raw: landing rows cast to the contract's types; rows that cannot be typed are quarantined.

Nothing is dropped: every landing row ends up either in `raw.<dataset>` or, with its original
strings and the reason, in `raw.<dataset>_rejects`.
"""

import datetime as dt
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from io_managers.arrow_memory import use_reusing_pool
from lakehouse_assets.contracts.arrow_types import arrow_type
from lakehouse_assets.contracts.base import Column
from lakehouse_assets.contracts.columns import REJECT_COLUMNS, REJECT_REASON
from lakehouse_assets.contracts.contract import DatasetContract
from lakehouse_assets.layers.landing import ROW_ERROR, lineage_types

# At most 38 significant digits: Arrow's cast to decimal128 silently wraps longer numbers around.
_INTEGER = r"^\s*[+-]?0*\d{1,38}\s*$"
_NUMBER = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$|^\s*[+-]?(inf|infinity|nan)\s*$"
_NON_FINITE = r"^[+-]?(inf|infinity|nan)$"
# a spelling of zero; any other spelling that the cast turns into 0.0 underflowed
_ZERO = r"^[+-]?(0+\.?0*|\.0+)([eE][+-]?\d+)?$"
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_INT_BOUNDS = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


@dataclass
class RawResult:
    typed: pa.Table
    rejects: pa.Table


def _parse(values: pa.Array, column: Column) -> pa.Array:
    """Typed values; a value that does not parse becomes null (the caller flags it).

    Numbers first try Arrow's plain cast, which is many times faster than `_parse_validated` but
    refuses a whole column for one bad value, and is used only where it accepts exactly what
    `_parse_validated` accepts, with the same values (tests/test_raw_fast_path.py holds them to it):
    when the cast fails, or a value could be one the two read differently, `_parse_validated`
    types the column.
    """
    if column.type == "string":
        return values
    target = arrow_type(column.type)
    if _cast_agrees(values, column.type, target):
        try:
            typed = pc.cast(values, target)
        except pa.ArrowInvalid:
            pass
        else:
            return _only_exact_doubles(values, typed, column) if column.type == "double" else typed
    return _parse_validated(values, column)


def _only_exact_doubles(texts: pa.Array, typed: pa.Array, column: Column) -> pa.Array:
    """`typed` with null where the cast bent the value: beyond a double's range (inf), a non-zero
    value that underflowed to 0.0, or an explicit inf/nan the column does not allow.

    Arrow's cast turns `1e400` into inf and `1e-400` into 0.0 without a word.
    """
    finite = pc.is_finite(typed)
    zero = pc.equal(typed, 0.0)
    if not finite.false_count and not zero.true_count:  # the common case: nothing to look at
        return typed
    # Only the values that are not finite or are 0.0 need their text read (a column of delays holds
    # many zeros, but few enough that matching every value's text would cost most of the column).
    suspects = pc.indices_nonzero(pc.fill_null(pc.or_(pc.invert(finite), zero), False))
    trimmed = pc.utf8_trim_whitespace(pc.take(texts, suspects))
    values = pc.take(typed, suspects)
    keep = pc.is_finite(values)
    if column.allow_non_finite:
        keep = pc.or_(keep, pc.match_substring_regex(trimmed, _NON_FINITE, ignore_case=True))
    keep = pc.and_(keep, pc.or_(pc.not_equal(values, 0.0), pc.match_substring_regex(trimmed, _ZERO)))
    dropped = pc.filter(suspects, pc.invert(keep)).to_numpy()
    if not len(dropped):
        return typed
    mask = np.zeros(len(typed), dtype=bool)
    mask[dropped] = True
    return pc.if_else(pa.array(mask), pa.scalar(None, pa.float64()), typed)


def _cast_agrees(values: pa.Array, type_name: str, target: pa.DataType) -> bool:
    """Whether Arrow's cast to `target` can only accept values the validator accepts, as it types them.

    What the cast refuses goes to the validator anyway: a leading "+" (ints) or whitespace, which
    the validator accepts, and "", unicode digits, "1_000", "1e3" (ints), overflow, which it does
    not. What the cast accepts beyond the validator is kept from it here:
    - int/long: hexadecimal ("0x1F"; the cast also wraps "0xFFFFFFFF" around to -1): an "x";
    - double: "nan(...)" (a C-style NaN payload): a "(";
    - decimal: more digits than 128 bits hold, which the cast wraps around silently (also when it
      multiplies the value up to the column's scale), and exponents, which get there too: an "e",
      or a value longer than 38 - scale characters.
    """
    if not isinstance(values, pa.Array) or values.type != pa.string():
        return False
    if type_name in _INT_BOUNDS:
        return not _data_contains(values, b"xX")
    if type_name == "double":
        return not _data_contains(values, b"(")
    if target.id == pa.decimal128(1, 0).id:
        longest = pc.max(pc.binary_length(values)).as_py() or 0
        return longest <= 38 - target.scale and not _data_contains(values, b"eE")
    return False


def _data_contains(values: pa.Array, characters: bytes) -> bool:
    """Whether any of these (ASCII) characters occurs in the bytes behind the values.

    The whole data buffer is searched, also the bytes of null slots and of values outside a slice,
    so a hit may be a false alarm (the caller then takes the slow path), a miss is certain.
    """
    data = values.buffers()[2]
    if data is None:
        return False
    text = data.to_pybytes()
    return any(text.find(character) >= 0 for character in characters)


def _parse_validated(values: pa.Array, column: Column) -> pa.Array:
    """`_parse` without the cast's shortcut: what a value must look like is checked value by value."""
    type_name = column.type
    target = arrow_type(type_name)
    if type_name == "string":
        return values
    if type_name in _INT_BOUNDS:
        ok = pc.match_substring_regex(values, _INTEGER)
        candidates = pc.utf8_trim_whitespace(pc.if_else(ok, values, None))
        as_decimal = pc.cast(candidates, pa.decimal128(38, 0))
        low, high = _INT_BOUNDS[type_name]
        in_range = pc.and_(
            pc.greater_equal(as_decimal, pa.scalar(low, pa.decimal128(38, 0))),
            pc.less_equal(as_decimal, pa.scalar(high, pa.decimal128(38, 0))),
        )
        # From the decimal, not the string: Arrow's string-to-integer cast fails on a leading "+".
        return pc.cast(pc.if_else(in_range, as_decimal, None), target)
    if type_name == "double" or target.id == pa.decimal128(1, 0).id:
        ok = pc.match_substring_regex(values, _NUMBER, ignore_case=True)
        candidates = pc.utf8_trim_whitespace(pc.if_else(ok, values, None))
        if type_name == "double":
            return _only_exact_doubles(candidates, pc.cast(candidates, pa.float64()), column)
        return _to_decimal(candidates, target)
    if type_name == "boolean":
        lowered = pc.utf8_lower(pc.utf8_trim_whitespace(values))
        return pc.if_else(
            pc.is_in(lowered, pa.array(_TRUE)),
            True,
            pc.if_else(pc.is_in(lowered, pa.array(_FALSE)), False, pa.scalar(None, pa.bool_())),
        )
    # Python's parsers, not pandas': pandas cannot hold dates after 2262-04-11 (9999-12-31 was
    # rejected), and its ISO 8601 parser gave a value without an offset the previous value's offset.
    unique = pc.unique(values)
    parsed = pa.array([_to_temporal(text, column) for text in unique.to_pylist()], target)
    return pc.take(parsed, pc.index_in(values, unique))


def _to_temporal(text: str | None, column: Column) -> dt.date | dt.datetime | None:
    if text is None:
        return None
    try:
        if column.format or column.type == "date":
            value = dt.datetime.strptime(text, column.format or "%Y-%m-%d")
        else:
            value = dt.datetime.fromisoformat(text)
        if column.type == "date":
            return value.date()
        if column.type == "timestamptz":
            # a value without an offset is taken to be in UTC
            return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError):
        return None
    # dropping the offset would shift the value; such a value does not fit a zoneless column
    return None if value.tzinfo else value


def _to_decimal(values: pa.Array, target: pa.DataType) -> pa.Array:
    # Through Python's Decimal: Arrow's string cast silently wraps numbers beyond 38 digits around.
    result = []
    for value in values.to_pylist():
        number = _exact_decimal(value, target.precision, target.scale) if value is not None else None
        try:
            result.append(pa.scalar(number, target).as_py() if number is not None else None)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            result.append(None)
    return pa.array(result, target)


def _exact_decimal(text: str, precision: int, scale: int) -> Decimal | None:
    """The value when it fits `decimal(precision, scale)` exactly, else None.

    Checked on the digits before Arrow sees the value: Arrow rounded `1e-77` to 0.00 without a
    word, and an exponent such as `1e-10000000` crashed the process inside its conversion.
    """
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    _, digits, exponent = number.as_tuple()
    significant = len(digits)
    while significant > 1 and digits[significant - 1] == 0:  # trailing zeros carry no precision
        significant -= 1
        exponent += 1
    if number.is_zero():
        return number
    whole_digits = significant + exponent
    if exponent < -scale or whole_digits > precision - scale:
        return None
    return number


def _why_not_a_double(text: str) -> str:
    """What the reason adds for a number a double cannot hold as written ("" for anything else)."""
    text = text.strip()
    if not re.fullmatch(_NUMBER, text, re.IGNORECASE | re.ASCII):
        return ""
    if re.fullmatch(_NON_FINITE, text, re.IGNORECASE):
        return " (not a finite number, which the column does not allow: allow_non_finite)"
    number = float(text)
    if math.isinf(number):
        return " (beyond the range of a double)"
    if number == 0.0:
        return " (too small for a double: it would be stored as 0)"
    return ""


def _reason(column: Column, value: str) -> str:
    reason = f"{column.name}: {value!r} is not a valid {column.type}"
    return reason + _why_not_a_double(value) if column.type == "double" else reason


def _positions(mask: pa.Array) -> list[int]:
    return np.flatnonzero(pc.fill_null(mask, False).to_numpy(zero_copy_only=False)).tolist()


def _present(values: pa.Array, null_values: list[str]) -> pa.Array:
    """True where a value is neither null nor one of the contract's null values.

    A null is what a JSON or Parquet file had no value for, a CSV column the file lacked, or a field
    of a row landing flagged (which raw rejects whole anyway). (A few comparisons are cheaper than
    `is_in`'s hashing; "" is told from the offsets alone: see `_equal_to`.)
    """
    if len(null_values) > 3:
        present = pc.invert(pc.is_in(values, pa.array(null_values, pa.string())))
    else:
        absent = None
        for null_value in dict.fromkeys(null_values):
            equal = _equal_to(values, null_value)
            if equal is not None:
                absent = equal if absent is None else pc.or_(absent, equal)
        present = None if absent is None else pc.invert(absent)
    if values.null_count:
        valid = pc.is_valid(values)
        return valid if present is None else pc.and_kleene(present, valid)
    return pa.repeat(pa.scalar(True), len(values)) if present is None else present


def _equal_to(values: pa.Array, text: str) -> pa.Array | None:
    """Where a value is `text` (null where it is null); None when no value is.

    "" in a plain string array is found from the offsets (a value's length) without reading a
    string, and a column without one (the common case) needs no mask at all. (Searching the data
    buffer for another text first cost as much as comparing every value.)
    """
    plain = values.type in (pa.string(), pa.large_string()) and values.buffers()[1] is not None
    if plain and text == "":
        width = 4 if values.type == pa.string() else 8
        offsets = np.frombuffer(
            values.buffers()[1], dtype=f"<i{width}", count=len(values) + 1, offset=values.offset * width
        )
        empty = offsets[1:] == offsets[:-1]
        if not empty.any():
            return None
        # (a null slot also reads as empty here; the caller makes every null slot absent anyway)
        return pa.array(empty)
    return pc.equal(values, pa.scalar(text, pa.string()))


def _nulled(values: pa.Array, present: pa.Array) -> pa.Array:
    """`values` with null where `present` is false; without copying the strings where it can."""
    if not present.false_count:
        return values
    if (
        values.type == pa.string()
        and values.null_count == 0
        and present.null_count == 0
        and values.offset == present.offset == 0
    ):
        # present's bits become the validity bitmap: a null slot keeps its bytes, which nobody reads
        return pa.Array.from_buffers(pa.string(), len(values), [present.buffers()[1], *values.buffers()[1:]])
    return pc.if_else(present, values, pa.scalar(None, pa.string()))


def type_landing_rows(landing: pa.Table, contract: DatasetContract) -> RawResult:
    use_reusing_pool()
    null_values = list(contract.source.csv.null_values)
    reasons: dict[int, list[str]] = defaultdict(list)
    failed_columns: dict[int, list[str]] = defaultdict(list)
    typed_columns = {}
    for column in contract.columns:
        original = landing.column(column.name).combine_chunks()
        present = _present(original, null_values)
        typed = _parse(_nulled(original, present), column)
        # whole-column checks first: when nothing failed (the common case) no row is visited
        failed = pc.and_(present, pc.is_null(typed))
        if failed.true_count:
            for index in _positions(failed):
                value = original[index].as_py()
                reasons[index].append(_reason(column, value))
                failed_columns[index].append(column.name)
        if not column.nullable and present.false_count:
            for index in _positions(pc.invert(present)):
                reasons[index].append(f"{column.name}: required value is missing")
                failed_columns[index].append(column.name)
        typed_columns[column.name] = typed
    if ROW_ERROR in landing.column_names:
        # rows landing quarantined (wrong number of fields) are rejected whole, with landing's reason
        row_errors = landing.column(ROW_ERROR).combine_chunks()
        # (all null, the common case: no row to look up)
        flagged = _positions(pc.is_valid(row_errors)) if row_errors.null_count < len(row_errors) else []
        for index in flagged:
            reasons[index] = [f"landing: {row_errors[index].as_py()}"]
            failed_columns[index] = [ROW_ERROR]

    lineage_names = list(lineage_types(contract))
    lineage = {name: landing.column(name) for name in lineage_names}
    typed = pa.table(typed_columns | lineage)
    rejects = landing.select([*(column.name for column in contract.columns), *lineage_names])
    if reasons:
        rejected = np.zeros(landing.num_rows, dtype=bool)
        rejected[list(reasons)] = True
        rejects = rejects.filter(pa.array(rejected))
        typed = typed.filter(pa.array(~rejected))
    else:
        # every row typed (the common case): no filtering, which would copy every column
        rejects = rejects.slice(0, 0)
    ordered = sorted(reasons)
    rejects = rejects.append_column(
        REJECT_COLUMNS, pa.array([",".join(failed_columns[index]) for index in ordered], pa.string())
    ).append_column(REJECT_REASON, pa.array(["; ".join(reasons[index]) for index in ordered], pa.string()))
    return RawResult(typed=typed, rejects=rejects)
