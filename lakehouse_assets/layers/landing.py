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
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from io_managers.arrow_memory import use_reusing_pool

# (the lineage and row-error column names live with the asset definitions' column schema)
from lakehouse_assets.contracts.arrow_types import arrow_type
from lakehouse_assets.contracts.columns import (
    FILE_DATE,
    LINEAGE_COLUMN_TYPES,
    LINEAGE_COLUMNS,
    LOADED_AT,
    ROW_ERROR,
    SOURCE_CHECKSUM,
    SOURCE_FILE,
    SOURCE_LINE,
    SOURCE_MEMBER,
    lineage_column_types,
)
from lakehouse_assets.contracts.contract import DatasetContract
from lakehouse_assets.contracts.source import CsvOptions
from lakehouse_assets.layers.file_checks import (
    LandingFileError,
    check_byte_order_mark,
    check_column_order,
    check_columns,
    delimiter_hint,
)
from lakehouse_assets.layers.formats import decompress, read_json_lines, read_parquet, zip_members
from resources.landing.local import LandedFile

LINEAGE_TYPES = {name: arrow_type(type_name) for name, type_name in LINEAGE_COLUMN_TYPES.items()}


def lineage_types(contract: DatasetContract) -> dict[str, pa.DataType]:
    """The lineage columns' Arrow types for this dataset, in order (`_file_date` is a timestamp for
    hours; `_source_member` only for zip archives)."""
    types = lineage_column_types(contract.partitioning, contract.source)
    return LINEAGE_TYPES if types is LINEAGE_COLUMN_TYPES else {n: arrow_type(t) for n, t in types.items()}


def file_date_value(contract: DatasetContract, file: LandedFile) -> dt.date | dt.datetime | None:
    """The `_file_date` of a file's rows: the date its name writes, or for hours the hour (in UTC)."""
    moment = contract.file_time(file.name)
    if moment is None:
        return None
    return moment.astimezone(dt.UTC) if contract.partitioning.granularity == "hour" else moment.date()


MAX_REPORTED_ROWS = 5

__all__ = ["LINEAGE_COLUMNS", "LandingFileError", "ROW_ERROR", "empty_landing_table", "read_landed_file"]


def _header(
    text: str, contract: DatasetContract, key: str, findings: list[str]
) -> tuple[list[str], list[str]]:
    """The file's header and the contract's columns it lacks (which land as null)."""
    options = contract.source.csv
    first_line = text[: text.find("\n")] if "\n" in text else text
    first_line = first_line.rstrip("\r")
    if not options.header:
        return contract.column_names, []
    if not first_line.strip():
        raise LandingFileError(f"{key}: line 1 should be the header but is empty")
    try:
        header = next(csv.reader([first_line], delimiter=options.delimiter, quotechar=options.quote_char))
    except csv.Error as exc:
        raise LandingFileError(f"{key}: line 1 (the header) cannot be read as CSV: {exc}") from None
    absent = check_columns(
        header,
        contract,
        key,
        findings,
        what="header",
        detail=f"header: {header}; expected delimiter {options.delimiter!r}"
        + delimiter_hint(first_line, contract),
    )
    check_column_order(header, contract, key, findings)
    return header, absent


def read_landed_file(
    data: bytes,
    file: LandedFile,
    contract: DatasetContract,
    loaded_at: dt.datetime,
    findings: list[str] | None = None,
) -> pa.Table:
    """The file's rows as strings in contract column order, followed by the lineage columns.

    Whatever the format (CSV, JSON Lines, Parquet; compressed, or members of a zip archive), the
    rows land the same way. What the contract's file checks accepted rather than rejected is
    appended to `findings`.
    """
    use_reusing_pool()
    findings = [] if findings is None else findings
    source = contract.source
    compression = source.compression_of(file.key)
    types = lineage_types(contract)
    if compression == "zip":
        if not source.archived:
            raise LandingFileError(
                f"{file.key}: is a zip archive, but {contract.name!r} does not declare archives "
                "(its glob does not end with .zip): declare `source.compression: zip`"
            )
        parts = [
            (member, read_contents(payload, f"{file.key}: member {member!r}", contract, findings))
            for member, payload in zip_members(data, file.key, source, findings)
        ]
    else:
        parts = [(None, read_contents(decompress(data, compression, file.key), file.key, contract, findings))]
    tables = []
    for member, (table, lines) in parts:
        rows = table.num_rows
        lineage = {
            SOURCE_FILE: pa.repeat(pa.scalar(file.key, pa.string()), rows),
            SOURCE_MEMBER: pa.repeat(pa.scalar(member, pa.string()), rows),
            SOURCE_CHECKSUM: pa.repeat(pa.scalar(file.checksum, pa.string()), rows),
            SOURCE_LINE: pa.array(lines, pa.int64()),
            LOADED_AT: pa.repeat(pa.scalar(loaded_at, LINEAGE_TYPES[LOADED_AT]), rows),
            FILE_DATE: pa.repeat(pa.scalar(file_date_value(contract, file), types[FILE_DATE]), rows),
        }
        columns = {name: table.column(name) for name in contract.column_names}
        columns |= {name: lineage[name] for name in types}
        if ROW_ERROR in table.column_names:
            columns[ROW_ERROR] = table.column(ROW_ERROR)
        tables.append(pa.table(columns))
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def read_contents(
    data: bytes, where: str, contract: DatasetContract, findings: list[str]
) -> tuple[pa.Table, np.ndarray]:
    """One file's (or zip member's) uncompressed bytes: the contract's columns as strings (and
    `_row_error` when the contract quarantines rows) and each row's line (or row) number."""
    quarantine = contract.source.file_checks.policy == "quarantine_rows"
    # (checks for content without copying the file, as `data.strip()` would)
    if not data or data.isspace():
        raise LandingFileError(f"{where}: the file is empty")
    if contract.source.format == "jsonl":
        table, lines = read_json_lines(data, where, contract, findings, quarantine)
    elif contract.source.format == "parquet":
        table, lines = read_parquet(data, where, contract, findings, quarantine)
    else:
        return _read_csv(data, where, contract, findings, quarantine)
    if table.num_rows == 0:
        _header_only(where, contract, findings)
    return table, lines


def _header_only(where: str, contract: DatasetContract, findings: list[str]) -> None:
    if contract.source.file_checks.header_only == "reject":
        raise LandingFileError(
            f"{where}: has a header but no rows, which the contract rejects "
            "(source.file_checks.header_only: reject)"
        )
    findings.append("header only: no rows")


def _read_csv(
    data: bytes, where: str, contract: DatasetContract, findings: list[str], quarantine: bool
) -> tuple[pa.Table, np.ndarray]:
    options = contract.source.csv
    data = check_byte_order_mark(data, contract, where, findings)
    clean = _read_clean_csv(data, where, contract, findings, quarantine)
    if clean is not None:
        return clean
    try:
        text = data.decode(options.encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LandingFileError(
            f"{where}: line {line}, byte {exc.start}: {data[exc.start : exc.start + 1]!r} is not valid "
            f"{options.encoding}; re-export the file in {options.encoding} "
            "or declare its encoding in the contract"
        ) from None
    # A byte-order mark would otherwise become part of the first column's name.
    text = text.removeprefix("\ufeff")
    text, translated = _line_endings(text, where, findings)
    header, absent = _header(text, contract, where, findings)
    utf8 = (
        data
        if options.encoding.lower().replace("-", "") == "utf8"
        and not data.startswith(b"\xef\xbb\xbf")
        and not translated
        else text.encode()
    )
    # From here on only the UTF-8 bytes are read (the blank-line search too): `text` is not kept.
    del text
    end_of_file = len(utf8)
    # Without a quote character in the file no field was quoted, so no value can hold a line break.
    quoted = utf8.find(options.quote_char.encode()) >= 0
    if not utf8.endswith(b"\n"):
        # Otherwise a quote left open on the last line would end quietly at the end of the file.
        # (The one copy of the whole file left, and only for a file without a final line break.)
        utf8 += b"\n"

    bad_rows: list[str] = []
    invalid: list[pacsv.InvalidRow] = []

    def reject_row(row: pacsv.InvalidRow) -> str:
        invalid.append(row)
        problem = f"{row.actual_columns} fields, expected {row.expected_columns}: {row.text[:80]!r}"
        bad_rows.append(
            f"line {row.number}: {problem}" if row.number is not None and row.number >= 0 else problem
        )
        return "skip"

    try:
        # (zero copy: an io.BytesIO would be read block by block through Python)
        # Only the serial reader tells the invalid-row handler the row's line number.
        table = _read_csv_as_strings(
            pa.BufferReader(utf8), header, options, threads=False, on_invalid=reject_row
        )
    except pa.ArrowInvalid as exc:
        raise LandingFileError(f"{where}: cannot be parsed as CSV: {exc}") from None
    # An open quote in a field before the last one carried the parser past the end of the line and
    # merged two lines into one row with too few fields; say so (whatever the policy: every line
    # number after it would be wrong, as below for a quote left open in the last field).
    open_quote = next((row for row in invalid if _quote_left_open(row.text, options)), None)
    if open_quote is not None:
        first_line_of_row = open_quote.text.split("\n")[0].rstrip("\r")
        where_in_file = f"line {open_quote.number}: " if (open_quote.number or -1) >= 0 else ""
        raise LandingFileError(
            f"{where}: {where_in_file}a quote is not closed (a quoted value runs past the end of the line): "
            f"{first_line_of_row[:80]!r}; values cannot contain line breaks"
        )
    if bad_rows and not quarantine:
        shown = "; ".join(bad_rows[:MAX_REPORTED_ROWS])
        raise LandingFileError(f"{where}: {len(bad_rows)} rows have the wrong number of fields: {shown}")

    first_line = 2 if options.header else 1
    every_line = np.arange(first_line, first_line + table.num_rows + len(invalid))
    # without bad rows the lines are just consecutive: skip the set difference (a sort of every line)
    good_lines = np.setdiff1d(every_line, [row.number for row in invalid]) if invalid else every_line
    # The parser still follows an open quote past the end of a line, which would shift every
    # _source_line after it (and, with an unclosed quote, swallow the rest of the file).
    _refuse_values_across_lines(table, header, quoted, good_lines, where)
    # The parser would read a blank line as a row of empty strings, so the file is searched (up to
    # the line break added above) only when a row holds nothing else, or when rows with the wrong
    # number of fields, which the table does not show, could hide one.
    if invalid or _has_empty_row(table, header):
        line = _first_blank_line(utf8, end_of_file)
        if line is not None:
            raise LandingFileError(f"{where}: line {line} is blank; a CSV file cannot have blank lines")
    if table.num_rows == 0 and not invalid:
        _header_only(where, contract, findings)
    lines = good_lines.astype(np.int64, copy=False)
    if quarantine:
        table, lines = _with_flagged_rows(table, lines, invalid, header, options)
        if invalid:
            findings.append(f"{len(invalid)} rows with the wrong number of fields flagged in {ROW_ERROR}")
    for name in absent:
        table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
    return table, lines


def _read_csv_as_strings(
    source: pa.BufferReader,
    header: list[str],
    options: CsvOptions,
    *,
    threads: bool,
    on_invalid: Callable[[pacsv.InvalidRow], str] | None = None,
) -> pa.Table:
    """Every field as a string, as written: "" stays "" (null values are the typing's business)."""
    return pacsv.read_csv(
        source,
        read_options=pacsv.ReadOptions(
            column_names=header, skip_rows=1 if options.header else 0, use_threads=threads
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=options.delimiter,
            quote_char=options.quote_char,
            newlines_in_values=False,
            ignore_empty_lines=False,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _read_clean_csv(
    data: bytes, where: str, contract: DatasetContract, findings: list[str], quarantine: bool
) -> tuple[pa.Table, np.ndarray] | None:
    """`_read_csv` for the common file, on its bytes as they are; None where `_read_csv`'s own path
    must read it (which then finds and words any problem itself).

    The common file is UTF-8 without a byte-order mark, its lines end in "\n" or "\r\n", and every
    row has the header's number of fields. Then nothing is decoded into a Python string or
    copied: Arrow checks the values' UTF-8 as it converts them, and a file without a quote
    character is parsed on all cores (only a quoted value could hold a line break, which blocks
    read in parallel could split unnoticed). Anything else (another encoding, a lone "\r", a
    value that is not UTF-8, a row with the wrong number of fields, which needs the serial
    parser's line numbers) returns None before a finding is recorded.
    """
    options = contract.source.csv
    if options.encoding.lower().replace("-", "").replace("_", "") != "utf8" or data.startswith(
        b"\xef\xbb\xbf"
    ):
        return None
    # (a search stops at the first one, where counting reads every byte)
    if data.find(b"\r") >= 0:
        lone = data.count(b"\r") - data.count(b"\r\n")
        if lone and not (lone == 1 and data.endswith(b"\r")):
            return None
    quoted = data.find(options.quote_char.encode()) >= 0
    if quoted and not data.endswith(b"\n"):
        return None
    end_of_line = data.find(b"\n")
    try:
        first_line = (data if end_of_line < 0 else data[:end_of_line]).decode("utf-8")
    except UnicodeDecodeError:
        return None
    own_findings: list[str] = []
    try:
        header, absent = _header(first_line, contract, where, own_findings)
    except LandingFileError:
        return None
    try:
        table = _read_csv_as_strings(pa.BufferReader(data), header, options, threads=not quoted)
    except pa.ArrowInvalid:
        return None
    findings.extend(own_findings)
    first_line_number = 2 if options.header else 1
    lines = np.arange(first_line_number, first_line_number + table.num_rows, dtype=np.int64)
    _refuse_values_across_lines(table, header, quoted, lines, where)
    if _has_empty_row(table, header):
        line = _first_blank_line(data, len(data))
        if line is not None:
            raise LandingFileError(f"{where}: line {line} is blank; a CSV file cannot have blank lines")
    if table.num_rows == 0:
        _header_only(where, contract, findings)
    if quarantine:
        table = table.append_column(ROW_ERROR, pa.nulls(table.num_rows, pa.string()))
    for name in absent:
        table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
    return table, lines


def _quote_left_open(text: str, options) -> bool:
    """Whether a row the parser refused holds a quote that is not closed by the end of its text."""
    lines = io.StringIO(text, newline="")
    try:
        for _ in csv.reader(lines, delimiter=options.delimiter, quotechar=options.quote_char, strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _line_endings(text: str, where: str, findings: list[str]) -> tuple[str, bool]:
    """The text with its lines ending in "\n" or "\r\n", and whether it had to be rewritten.

    Old Mac exports end every line with a lone "\r": such a file is read with "\n" instead (the
    line numbers, blank-line and open-quote checks count "\n"). A lone "\r" in a file whose lines
    end otherwise is refused: the parser would end a row there, and every line number after it
    would be wrong.
    """
    carriage_returns = text.count("\r")
    if not carriage_returns:
        return text, False
    if "\n" not in text:
        findings.append("carriage-return line endings (old Mac) read as line breaks")
        return text.replace("\r", "\n"), True
    lone = carriage_returns - text.count("\r\n")
    # (one at the very end ends the last line: a line break is added to it anyway)
    if lone and not (lone == 1 and text.endswith("\r")):
        line = text.count("\n", 0, re.search("\r(?!\n)", text).start()) + 1
        raise LandingFileError(
            f"{where}: line {line}: a carriage return (\\r) inside the line; "
            "lines end with \\n or \\r\\n, or (old Mac exports) with \\r throughout the file"
        )
    return text, False


def _first_blank_line(utf8: bytes, end: int) -> int | None:
    """The number of the first blank line ("" or a lone "\\r" between line breaks) in `utf8[:end]`.

    Byte searches instead of a regular expression over a copy of the text; in UTF-8 the bytes
    "\\n" and "\\r" are those characters only.
    """
    if utf8.startswith((b"\n", b"\r\n"), 0, end):
        return 1
    found = [
        position for position in (utf8.find(b"\n\n", 0, end), utf8.find(b"\n\r\n", 0, end)) if position >= 0
    ]
    if not found:
        return None
    # the line break at `position` ends the line before the blank one
    return utf8.count(b"\n", 0, min(found)) + 2


def _has_empty_row(table: pa.Table, names: list[str]) -> bool:
    """Whether a row holds nothing but empty strings (which is how the parser reads a blank line)."""
    empty = None
    for name in names:
        column_empty = pc.equal(pc.binary_length(table.column(name)), 0)
        empty = column_empty if empty is None else pc.and_(empty, column_empty)
        if not pc.any(empty).as_py():
            return False
    return empty is not None


def _may_contain(table: pa.Table, names: list[str], character: bytes) -> bool:
    """Whether a byte may occur in a value of these string columns (searching their data buffers whole).

    A buffer can hold bytes of no value (a slice's neighbours), so True may be a false alarm; False is
    certain.
    """
    for name in names:
        for chunk in table.column(name).chunks:
            if chunk.type not in (pa.string(), pa.large_string()):
                return True
            data = chunk.buffers()[2]
            if data is not None and data.to_pybytes().find(character) >= 0:
                return True
    return False


def _with_flagged_rows(
    table: pa.Table, lines: np.ndarray, invalid: list[pacsv.InvalidRow], header: list[str], options
) -> tuple[pa.Table, np.ndarray]:
    """Good rows plus the rows with the wrong number of fields, back in file order.

    A short row's missing fields are null and a long row keeps its first fields; `_row_error`
    holds the reason and the row's full text, so nothing of it is lost.
    """
    table = table.append_column(ROW_ERROR, pa.nulls(table.num_rows, pa.string()))
    if not invalid:
        return table, lines
    flagged: dict[str, list] = {name: [] for name in header}
    flagged[ROW_ERROR] = []
    for row in invalid:
        fields = next(csv.reader([row.text], delimiter=options.delimiter, quotechar=options.quote_char), [])
        for index, name in enumerate(header):
            flagged[name].append(fields[index] if index < len(fields) else None)
        flagged[ROW_ERROR].append(
            f"line {row.number}: {row.actual_columns} fields, expected {row.expected_columns}; "
            f"text: {row.text!r}"
        )
    merged = pa.concat_tables([table, pa.table(flagged, schema=table.schema)])
    all_lines = np.concatenate([lines, np.array([row.number for row in invalid], dtype=np.int64)])
    order = np.argsort(all_lines, kind="stable")
    return merged.take(pa.array(order)), all_lines[order]


def empty_landing_table(contract: DatasetContract) -> pa.Table:
    quarantine = contract.source.file_checks.policy == "quarantine_rows"
    extra = [pa.field(ROW_ERROR, pa.string())] if quarantine else []
    schema = pa.schema(
        [pa.field(name, pa.string()) for name in contract.column_names]
        + [pa.field(name, type_) for name, type_ in lineage_types(contract).items()]
        + extra
    )
    return schema.empty_table()


def _refuse_values_across_lines(table, header, quoted: bool, line_numbers, where: str) -> None:
    """Only a quoted field can hold a line break (the parser following an open quote past the end
    of a line); one search of the columns' bytes rules it out, the value-by-value search runs only
    to name the row."""
    if not (quoted and _may_contain(table, header, b"\n")):
        return
    spans_lines = functools.reduce(pc.or_, (pc.match_substring(table.column(name), "\n") for name in header))
    index = pc.index(spans_lines, True).as_py()
    if index >= 0:
        raise LandingFileError(
            f"{where}: line {line_numbers[index]}: a quoted value runs past the end of the line "
            f"(is a quote not closed?); values cannot contain line breaks"
        )
