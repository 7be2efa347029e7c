"""Landing: every row of every arrived file, verbatim as strings, with where it came from.

No type inference happens here (leading zeros, "NA" and empty strings survive untouched). A file
that cannot be read as the contract describes fails the whole materialisation, naming the file
and the problem, before anything is written.
"""

import csv
import datetime as dt
import functools
import io
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from lakehouse_assets.contract_model import DatasetContract
from resources.landing_storage import LandedFile

SOURCE_FILE = "_source_file"
SOURCE_CHECKSUM = "_source_checksum"
SOURCE_LINE = "_source_line"
LOADED_AT = "_loaded_at"
FILE_DATE = "_file_date"
LINEAGE_COLUMNS = (SOURCE_FILE, SOURCE_CHECKSUM, SOURCE_LINE, LOADED_AT, FILE_DATE)
LINEAGE_TYPES = {
    SOURCE_FILE: pa.string(),
    SOURCE_CHECKSUM: pa.string(),
    SOURCE_LINE: pa.int64(),
    LOADED_AT: pa.timestamp("us", tz="UTC"),
    FILE_DATE: pa.date32(),
}
LINEAGE_DESCRIPTIONS = {
    SOURCE_FILE: "Key of the landed file, relative to the landing zone",
    SOURCE_CHECKSUM: "MD5 of the landed file (the S3 etag of a single-part upload)",
    SOURCE_LINE: "Line of the row in its file (the header is line 1)",
    LOADED_AT: "When the landing materialisation read the file (UTC)",
    FILE_DATE: "Partition date taken from the file name",
}
MAX_REPORTED_ROWS = 5


class LandingFileError(ValueError):
    """A landed file that cannot be read as its contract describes."""


def _header(text: str, contract: DatasetContract, key: str) -> list[str]:
    options = contract.source.csv
    first_line = text.split("\n", 1)[0].rstrip("\r")
    if not options.header:
        return contract.column_names
    if not first_line.strip():
        raise LandingFileError(f"{key}: line 1 should be the header but is empty")
    header = next(csv.reader([first_line], delimiter=options.delimiter, quotechar=options.quote_char))
    repeated = sorted({name for name in header if header.count(name) > 1})
    expected = set(contract.column_names)
    missing = [name for name in contract.column_names if name not in header]
    extra = [name for name in header if name not in expected]
    problems = []
    if repeated:
        problems.append(f"repeated columns {repeated}")
    if missing:
        problems.append(f"missing columns {missing}")
    if extra:
        problems.append(f"unexpected columns {extra}")
    if problems:
        raise LandingFileError(
            f"{key}: header does not match contract {contract.name!r}: {'; '.join(problems)} "
            f"(header: {header}; expected delimiter {options.delimiter!r})"
        )
    return header


def read_landed_file(data: bytes, file: LandedFile, contract: DatasetContract, loaded_at: dt.datetime) -> pa.Table:
    """The file's rows as strings in contract column order, followed by the lineage columns."""
    options = contract.source.csv
    if not data.strip():
        raise LandingFileError(f"{file.key}: the file is empty")
    try:
        text = data.decode(options.encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LandingFileError(
            f"{file.key}: line {line}, byte {exc.start}: {data[exc.start:exc.start + 1]!r} is not valid "
            f"{options.encoding}; re-export the file in {options.encoding} or declare its encoding in the contract"
        ) from None
    # A byte-order mark would otherwise become part of the first column's name.
    text = text.removeprefix("\ufeff")
    header = _header(text, contract, file.key)
    utf8 = data if options.encoding.lower().replace("-", "") == "utf8" and not data.startswith(b"\xef\xbb\xbf") else text.encode()
    if not utf8.endswith(b"\n"):
        # Otherwise a quote left open on the last line would end quietly at the end of the file.
        utf8 += b"\n"

    bad_rows: list[str] = []

    def reject_row(row: pacsv.InvalidRow) -> str:
        bad_rows.append(
            f"line {row.number}: {row.actual_columns} fields, expected {row.expected_columns}: {row.text[:80]!r}"
            if row.number is not None and row.number >= 0
            else f"{row.actual_columns} fields, expected {row.expected_columns}: {row.text[:80]!r}"
        )
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(utf8),
            read_options=pacsv.ReadOptions(
                # Only the serial reader tells the invalid-row handler the row's line number.
                column_names=header, skip_rows=1 if options.header else 0, use_threads=False
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=options.delimiter,
                quote_char=options.quote_char,
                newlines_in_values=False,
                ignore_empty_lines=False,
                invalid_row_handler=reject_row,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise LandingFileError(f"{file.key}: cannot be parsed as CSV: {exc}") from None
    if bad_rows:
        shown = "; ".join(bad_rows[:MAX_REPORTED_ROWS])
        raise LandingFileError(f"{file.key}: {len(bad_rows)} rows have the wrong number of fields: {shown}")

    first_line = 2 if options.header else 1
    # The parser still follows an open quote past the end of a line, which would shift every
    # _source_line after it (and, with an unclosed quote, swallow the rest of the file).
    spans_lines = functools.reduce(pc.or_, (pc.match_substring(table.column(name), "\n") for name in header))
    index = pc.index(spans_lines, True).as_py()
    if index >= 0:
        raise LandingFileError(
            f"{file.key}: line {first_line + index}: a quoted value runs past the end of the line "
            f"(is a quote not closed?); values cannot contain line breaks"
        )
    # The parser would read a blank line as a row of empty strings. (The "\n" in front finds a blank
    # first line too and makes the count below the blank line's number.)
    lines = "\n" + text
    blank = re.search(r"\n\r?\n", lines)
    if blank:
        line = lines.count("\n", 0, blank.end() - 1)
        raise LandingFileError(f"{file.key}: line {line} is blank; a CSV file cannot have blank lines")
    rows = table.num_rows
    lineage = {
        SOURCE_FILE: pa.repeat(pa.scalar(file.key, pa.string()), rows),
        SOURCE_CHECKSUM: pa.repeat(pa.scalar(file.checksum, pa.string()), rows),
        SOURCE_LINE: pa.array(np.arange(first_line, first_line + rows, dtype=np.int64)),
        LOADED_AT: pa.repeat(pa.scalar(loaded_at, LINEAGE_TYPES[LOADED_AT]), rows),
        FILE_DATE: pa.repeat(pa.scalar(contract.source.file_date(file.name), pa.date32()), rows),
    }
    columns = {name: table.column(name) for name in contract.column_names} | lineage
    return pa.table(columns)


def empty_landing_table(contract: DatasetContract) -> pa.Table:
    schema = pa.schema(
        [pa.field(name, pa.string()) for name in contract.column_names]
        + [pa.field(name, LINEAGE_TYPES[name]) for name in LINEAGE_COLUMNS]
    )
    return schema.empty_table()
