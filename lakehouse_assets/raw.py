"""Raw: landing rows cast to the contract's types; rows that cannot be typed are quarantined.

Nothing is dropped: every landing row ends up either in `raw.<dataset>` or, with its original
strings and the reason, in `raw.<dataset>_rejects`.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse_assets.column_schema import REJECT_COLUMNS, REJECT_REASON
from lakehouse_assets.contract_model import DECIMAL_TYPE, Column, DatasetContract
from lakehouse_assets.landing import LINEAGE_COLUMNS, ROW_ERROR

# At most 38 significant digits: Arrow's cast to decimal128 silently wraps longer numbers around.
_INTEGER = r"^\s*[+-]?0*\d{1,38}\s*$"
_NUMBER = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$|^\s*[+-]?(inf|infinity|nan)\s*$"
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_INT_BOUNDS = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def arrow_type(type_name: str) -> pa.DataType:
    decimal = DECIMAL_TYPE.match(type_name)
    if decimal:
        return pa.decimal128(int(decimal.group(1)), int(decimal.group(2)))
    return {
        "string": pa.string(),
        "int": pa.int32(),
        "long": pa.int64(),
        "double": pa.float64(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
    }[type_name]


@dataclass
class RawResult:
    typed: pa.Table
    rejects: pa.Table


def _parse(values: pa.Array, column: Column) -> pa.Array:
    """Typed values; a value that does not parse becomes null (the caller flags it)."""
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
            return pc.cast(candidates, pa.float64())
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
        try:
            result.append(pa.scalar(Decimal(value), target).as_py() if value is not None else None)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            result.append(None)
    return pa.array(result, target)


def _positions(mask: pa.Array) -> list[int]:
    return np.flatnonzero(pc.fill_null(mask, False).to_numpy(zero_copy_only=False)).tolist()


def type_landing_rows(landing: pa.Table, contract: DatasetContract) -> RawResult:
    null_values = pa.array(contract.source.csv.null_values, pa.string())
    reasons: dict[int, list[str]] = defaultdict(list)
    failed_columns: dict[int, list[str]] = defaultdict(list)
    typed_columns = {}
    for column in contract.columns:
        original = landing.column(column.name).combine_chunks()
        present = pc.invert(pc.is_in(original, null_values))
        source = pc.if_else(present, original, pa.scalar(None, pa.string()))
        typed = _parse(source, column)
        for index in _positions(pc.and_(present, pc.is_null(typed))):
            reasons[index].append(f"{column.name}: {original[index].as_py()!r} is not a valid {column.type}")
            failed_columns[index].append(column.name)
        if not column.nullable:
            for index in _positions(pc.invert(present)):
                reasons[index].append(f"{column.name}: required value is missing")
                failed_columns[index].append(column.name)
        typed_columns[column.name] = typed
    if ROW_ERROR in landing.column_names:
        # rows landing quarantined (wrong number of fields) are rejected whole, with landing's reason
        row_errors = landing.column(ROW_ERROR).combine_chunks()
        for index in _positions(pc.is_valid(row_errors)):
            reasons[index] = [f"landing: {row_errors[index].as_py()}"]
            failed_columns[index] = [ROW_ERROR]

    lineage = {name: landing.column(name) for name in LINEAGE_COLUMNS}
    typed = pa.table(typed_columns | lineage)
    rejected = np.zeros(landing.num_rows, dtype=bool)
    rejected[list(reasons)] = True
    rejects = landing.select([*(column.name for column in contract.columns), *LINEAGE_COLUMNS]).filter(
        pa.array(rejected)
    )
    ordered = sorted(reasons)
    rejects = rejects.append_column(
        REJECT_COLUMNS, pa.array([",".join(failed_columns[index]) for index in ordered], pa.string())
    ).append_column(REJECT_REASON, pa.array(["; ".join(reasons[index]) for index in ordered], pa.string()))
    return RawResult(typed=typed.filter(pa.array(~rejected)), rejects=rejects)
