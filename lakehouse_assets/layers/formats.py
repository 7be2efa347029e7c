"""Landing's readers beyond plain CSV: compressed streams, zip archives, JSON Lines and Parquet.

Each reader returns what `landing.read_contents` returns for CSV: the contract's columns as
strings (null where the file has no value) and each row's line or row number, so lineage, raw's
typing and the Spark path are the same for every format. A file that cannot be read fails naming
the file and the place (line, row group, member, byte) instead of raising the library's error.
"""

import fnmatch
import io
import json
import re
import zipfile
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse_assets.contracts.columns import ROW_ERROR
from lakehouse_assets.contracts.contract import DatasetContract
from lakehouse_assets.contracts.source import Source, inferred_compression
from lakehouse_assets.layers.file_checks import LandingFileError, check_columns

# Decompressed in slices of this size, so a corrupt stream is reported with how far it read.
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


def decompress(data: bytes, compression: str, where: str) -> bytes:
    """The content of a gzip, bz2 or zstd stream (through Arrow's codecs); `data` itself for none."""
    if compression == "none":
        return data
    stream = pa.CompressedInputStream(pa.BufferReader(data), compression)
    chunks: list[bytes] = []
    try:
        while chunk := stream.read(_CHUNK):
            chunks.append(chunk)
    except (OSError, pa.ArrowException) as exc:
        done = b"".join(chunks)
        line = done.count(b"\n") + 1
        raise LandingFileError(
            f"{where}: the {compression} stream is truncated or corrupt after {len(done)} bytes of "
            f"content (in line {line}): {exc}; re-deliver the file"
        ) from None
    return b"".join(chunks)


def unsafe_member(name: str) -> bool:
    """Whether a member name points outside the archive's own tree (absolute, a drive, or `..`)."""
    parts = re.split(r"[\\/]", name)
    return name.startswith(("/", "\\")) or bool(_DRIVE.match(name)) or ".." in parts


def zip_members(data: bytes, key: str, source: Source, findings: list[str]) -> list[tuple[str, bytes]]:
    """The (name, uncompressed content) of each member matching `source.zip.members`, in name order.

    Any member whose name leaves the archive's tree rejects the whole archive: such an archive was
    not made by an export, and its names must not become lineage.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise LandingFileError(f"{key}: is not a readable zip archive: {exc}") from None
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        unsafe = [info.filename for info in infos if unsafe_member(info.filename)]
        if unsafe:
            raise LandingFileError(
                f"{key}: members {unsafe} point outside the archive (an absolute path or `..`); "
                "the archive is rejected"
            )
        pattern = source.zip.members
        chosen = sorted(
            (info for info in infos if fnmatch.fnmatchcase(info.filename, pattern)), key=lambda i: i.filename
        )
        if not chosen:
            raise LandingFileError(
                f"{key}: no member matches {pattern!r} (source.zip.members); members: "
                f"{[info.filename for info in infos][:20]}"
            )
        skipped = len(infos) - len(chosen)
        if skipped:
            findings.append(f"{skipped} members not matching {pattern!r} left alone")
        members = []
        for info in chosen:
            where = f"{key}: member {info.filename!r}"
            try:
                content = archive.read(info)
            except (
                zipfile.BadZipFile,
                zlib.error,
                OSError,
                ValueError,
                EOFError,
                NotImplementedError,
            ) as exc:
                raise LandingFileError(f"{where}: cannot be extracted: {exc}") from None
            inner = inferred_compression(info.filename)
            if inner == "zip":
                raise LandingFileError(
                    f"{where}: is itself a zip archive; archives inside archives are not read"
                )
            members.append((info.filename, decompress(content, inner, where)))
    return members


class _Number(str):
    """A JSON number as the file wrote it (`1.50` stays `1.50`, a 30-digit integer stays exact)."""


def _json_text(value) -> str:
    """A parsed JSON value written back as JSON, numbers as the file wrote them."""
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_json_text(v)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(_json_text(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _landed_text(value) -> str:
    """A JSON value as landing keeps it: strings and numbers as their text, objects and lists as JSON."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return _json_text(value)


_MISSING = object()


def read_json_lines(
    data: bytes, where: str, contract: DatasetContract, findings: list[str], quarantine: bool
) -> tuple[pa.Table, np.ndarray]:
    """One object per line; each column from its declared path (`source.jsonl.paths`) or its name.

    Python's json module rather than Arrow's JSON reader: Arrow types each field by its first value
    and refuses a file where a field is a number on one line and text on the next (raw's job is to
    quarantine that row), and it cannot give a number's own text or an object's JSON.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        if contract.source.file_checks.byte_order_mark == "reject":
            raise LandingFileError(
                f"{where}: starts with a UTF-8 byte-order mark, which the contract rejects "
                "(source.file_checks.byte_order_mark: reject)"
            )
        findings.append("UTF-8 byte-order mark stripped")
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LandingFileError(
            f"{where}: line {line}, byte {exc.start}: "
            f"{data[exc.start : exc.start + 1]!r} is not valid UTF-8 (JSON Lines are UTF-8)"
        ) from None
    paths = {name: contract.source.jsonl.paths.get(name, name).split(".") for name in contract.column_names}
    used_top = {path[0] for path in paths.values()}
    values: dict[str, list] = {name: [] for name in contract.column_names}
    errors: list[str | None] = []
    lines: list[int] = []
    found: set[str] = set()
    extra: dict[str, int] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, parse_float=_Number, parse_int=_Number, parse_constant=_Number)
            problem = (
                None if isinstance(record, dict) else f"is a JSON {type(record).__name__}, not an object"
            )
        except json.JSONDecodeError as exc:
            problem = f"column {exc.colno}: not JSON ({exc.msg})"
        if problem is not None:
            if not quarantine:
                raise LandingFileError(f"{where}: line {number}: {problem}: {line[:80]!r}")
            for column in values.values():
                column.append(None)
            errors.append(f"line {number}: {problem}; text: {line!r}")
            lines.append(number)
            continue
        for key in record:
            if key not in used_top:
                extra.setdefault(key, number)
        for name, path in paths.items():
            value = record
            for part in path:
                value = value.get(part, _MISSING) if isinstance(value, dict) else _MISSING
                if value is _MISSING:
                    break
            if value is not _MISSING:
                found.add(name)
            values[name].append(None if value is _MISSING or value is None else _landed_text(value))
        errors.append(None)
        lines.append(number)
    flagged = len(errors) - errors.count(None)
    if flagged:
        findings.append(f"{flagged} lines that are not JSON objects flagged in {ROW_ERROR}")
    if flagged < len(errors):
        # a field no record of the file has is a missing column, as a CSV header would show it
        present = [name for name in contract.column_names if name in found]
        first_seen = ", ".join(f"{key} on line {line}" for key, line in extra.items())
        check_columns(
            present + list(extra),
            contract,
            where,
            findings,
            what="fields",
            detail=(f"first seen: {first_seen}; " if extra else "")
            + "a column reads the field of its name, or its path in source.jsonl.paths",
        )
    columns = {name: pa.array(column, pa.string()) for name, column in values.items()}
    if quarantine:
        columns[ROW_ERROR] = pa.array(errors, pa.string())
    return pa.table(columns), np.array(lines, dtype=np.int64)


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """A Parquet column's values as landing's text: Arrow's own cast where it has one, JSON for
    nested values (structs, lists, maps)."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_string(column.type):
        return column
    if not pa.types.is_nested(column.type):
        try:
            return pc.cast(column, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return pa.array(
        [
            None if value is None else json.dumps(value, ensure_ascii=False, default=str)
            for value in column.to_pylist()
        ],
        pa.string(),
    )


def read_parquet(
    data: bytes, where: str, contract: DatasetContract, findings: list[str], quarantine: bool
) -> tuple[pa.Table, np.ndarray]:
    """The file's own values as text, by column name; raw casts them to the contract's types.

    Read row group by row group, so a damaged file is reported with the row group and its rows.
    """
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise LandingFileError(f"{where}: is not a Parquet file (or its footer is damaged): {exc}") from None
    names = parquet.schema_arrow.names
    absent = check_columns(names, contract, where, findings, what="schema", detail=f"Parquet schema: {names}")
    wanted = [name for name in contract.column_names if name in names]
    groups = []
    first_row = 0
    for index in range(parquet.num_row_groups):
        rows = parquet.metadata.row_group(index).num_rows
        try:
            groups.append(parquet.read_row_group(index, columns=wanted))
        except (pa.ArrowException, OSError) as exc:
            raise LandingFileError(
                f"{where}: row group {index} (rows {first_row + 1}-{first_row + rows}) cannot be read: {exc}"
            ) from None
        first_row += rows
    table = pa.concat_tables(groups) if groups else parquet.schema_arrow.empty_table().select(wanted)
    columns = {name: _as_text(table.column(name)) for name in wanted}
    columns |= {name: pa.nulls(table.num_rows, pa.string()) for name in absent}
    columns = {name: columns[name] for name in contract.column_names}
    if quarantine:
        columns[ROW_ERROR] = pa.nulls(table.num_rows, pa.string())
    return pa.table(columns), np.arange(1, table.num_rows + 1, dtype=np.int64)
