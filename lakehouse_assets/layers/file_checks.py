"""File-level checks at landing: byte-order marks, delimiters, column order and file names.

`landing.py` reads a file; these functions say what is wrong with it in words a data engineer can
act on, and the contract's `source.file_checks` says whether that rejects the file.
"""

import codecs
import csv

from lakehouse_assets.contracts.contract import DatasetContract
from lakehouse_assets.contracts.partitioning import NAMED_TIME_FORMATS, named_time, precise_enough

_OTHER_BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32 LE",
    codecs.BOM_UTF32_BE: "UTF-32 BE",
    codecs.BOM_UTF16_LE: "UTF-16 LE",
    codecs.BOM_UTF16_BE: "UTF-16 BE",
}
_CANDIDATE_DELIMITERS = (",", ";", "\t", "|")


class LandingFileError(ValueError):
    """A landed file that cannot be read as its contract describes."""


def check_byte_order_mark(data: bytes, contract: DatasetContract, key: str, findings: list[str]) -> bytes:
    """The bytes without a UTF-8 byte-order mark (when the contract allows one)."""
    encoding = contract.source.csv.encoding.lower().replace("-", "").replace("_", "")
    for mark, name in _OTHER_BOMS.items():
        if data.startswith(mark) and not encoding.startswith(("utf16", "utf32")):
            raise LandingFileError(
                f"{key}: starts with a {name} byte-order mark: the file is {name}, but the contract declares "
                f"{contract.source.csv.encoding}; re-export it or declare its encoding"
            )
    if data.startswith(codecs.BOM_UTF8):
        if contract.source.file_checks.byte_order_mark == "reject":
            raise LandingFileError(
                f"{key}: starts with a UTF-8 byte-order mark, which the contract rejects "
                "(source.file_checks.byte_order_mark: reject)"
            )
        findings.append("UTF-8 byte-order mark stripped")
    return data


def delimiter_hint(first_line: str, contract: DatasetContract) -> str:
    """Which other delimiter would split the header into the contract's columns, if any."""
    options = contract.source.csv
    expected = set(contract.column_names)
    for delimiter in _CANDIDATE_DELIMITERS:
        if delimiter == options.delimiter:
            continue
        fields = next(csv.reader([first_line], delimiter=delimiter, quotechar=options.quote_char))
        if set(fields) == expected:
            return f"; the header is delimited by {delimiter!r}, the contract declares {options.delimiter!r}"
    return ""


def check_columns(
    found: list[str], contract: DatasetContract, where: str, findings: list[str], *, what: str, detail: str
) -> list[str]:
    """The contract's columns a file lacks and lands as null; raises for what the policy rejects.

    `found` are the file's own column names (a CSV header, a Parquet schema, a JSON file's fields),
    matched to the contract's by name, so reordered columns are never drift. `what` names them in
    the message and `detail` adds what helps to fix the file.
    """
    checks = contract.source.file_checks
    repeated = sorted({name for name in found if found.count(name) > 1})
    expected = set(contract.column_names)
    missing = [column for column in contract.columns if column.name not in found]
    extra = [name for name in found if name not in expected]
    rejected = [
        column.name for column in missing if checks.missing_optional == "reject_file" or not column.nullable
    ]
    problems = []
    if repeated:
        problems.append(f"repeated columns {repeated}")
    if rejected:
        problems.append(
            f"missing columns {rejected}"
            if checks.missing_optional == "reject_file"
            else f"missing columns {rejected}, which are required (nullable: false)"
        )
    if extra and checks.extra_columns == "reject_file":
        problems.append(f"unexpected columns {extra}")
    if problems:
        raise LandingFileError(
            f"{where}: {what} does not match contract {contract.name!r}: {'; '.join(problems)} ({detail})"
        )
    if extra:
        findings.append(f"columns the contract does not declare ignored: {extra}")
    absent = [column.name for column in missing]
    if absent:
        findings.append(f"optional columns missing from the file landed as null: {absent}")
    return absent


def check_column_order(header: list[str], contract: DatasetContract, key: str, findings: list[str]) -> None:
    if header == contract.column_names:
        return
    declared = set(contract.column_names)
    # columns that drifted in or out (see `check_columns`) say nothing about the order
    in_file = [name for name in header if name in declared]
    if in_file == [name for name in contract.column_names if name in in_file]:
        return
    if contract.source.file_checks.column_order == "contract":
        raise LandingFileError(
            f"{key}: header has the contract's columns in another order, which the contract rejects "
            f"(source.file_checks.column_order: contract): got {header}, expected {contract.column_names}"
        )
    findings.append(f"columns in file order {header}, read by name")


def file_name_problem(contract: DatasetContract, name: str) -> str | None:
    """Why a file in the dataset's glob cannot be assigned to a partition, or None when it can."""
    pattern = contract.source.file_date_pattern
    partitioning = contract.partitioning
    if pattern is None or partitioning is None:
        return None
    text = contract.source.named_time_text(name)
    if text is None:
        return f"{name}: the name does not match the pattern {pattern!r}"
    named = named_time(text)
    if named is None:
        return (
            f"{name}: {text!r} in the name is not a date "
            f"({NAMED_TIME_FORMATS[partitioning.granularity]} for {partitioning.granularity} partitions)"
        )
    moment, precision = named
    if not precise_enough(precision, partitioning.granularity):
        return (
            f"{name}: {text!r} names a whole {precision}, which spans many {partitioning.granularity} "
            f"partitions; name the file by its {partitioning.granularity} "
            f"({NAMED_TIME_FORMATS[partitioning.granularity]})"
        )
    if not partitioning.contains(partitioning.local(moment)):
        end = partitioning.end or "open-ended"
        what = "date" if precision != "hour" else "hour"
        return (
            f"{name}: {what} {text} lies outside the partitions [{partitioning.start}, {end}) "
            "(partitioning.start and partitioning.end; end is exclusive)"
        )
    return None
