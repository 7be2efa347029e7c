"""The columns the layers add to a contract's own, and the names column types have in asset metadata.

Plain names and strings, importable without pyarrow: the asset definitions use them when the code
location loads, which must not pay for the data stack. `landing.py` and `raw.py` fill these columns
when a step runs (`landing.LINEAGE_TYPES` holds their Arrow types, derived from these names).
"""

from lakehouse_assets.contracts.base import DECIMAL_TYPE

SOURCE_FILE = "_source_file"
SOURCE_MEMBER = "_source_member"
SOURCE_CHECKSUM = "_source_checksum"
SOURCE_LINE = "_source_line"
LOADED_AT = "_loaded_at"
FILE_DATE = "_file_date"
LINEAGE_COLUMNS = (SOURCE_FILE, SOURCE_CHECKSUM, SOURCE_LINE, LOADED_AT, FILE_DATE)
# as contract type names; `landing.LINEAGE_TYPES` is `arrow_type` of each
LINEAGE_COLUMN_TYPES = {
    SOURCE_FILE: "string",
    SOURCE_CHECKSUM: "string",
    SOURCE_LINE: "long",
    LOADED_AT: "timestamptz",
    FILE_DATE: "date",
}
LINEAGE_DESCRIPTIONS = {
    SOURCE_FILE: "Key of the landed file, relative to the landing zone",
    SOURCE_CHECKSUM: "MD5 of the landed file (the S3 etag of a single-part upload)",
    SOURCE_LINE: "Line of the row in its file (the header is line 1)",
    LOADED_AT: "When the landing materialisation read the file (UTC)",
    FILE_DATE: "Partition date taken from the file name",
}
# An hour's partitions need a timestamp to partition by: there `_file_date` is the named hour, in UTC.
FILE_HOUR_TYPE = "timestamptz"
FILE_HOUR_DESCRIPTION = "Partition hour taken from the file name (UTC)"


# Only for datasets delivered in zip archives (`Source.archived`): `_source_file` stays the key of
# the archive, so every other dataset's lineage columns are the five above.
SOURCE_MEMBER_DESCRIPTION = "Member of the zip archive `_source_file` the row came from"
# `_source_line` of the formats without a header line
SOURCE_LINE_DESCRIPTIONS = {
    "jsonl": "Line of the record in its file (the first line is 1)",
    "parquet": "Row of the record in its file (the first row is 1)",
}


def lineage_column_types(partitioning, source=None) -> dict[str, str]:
    """`LINEAGE_COLUMN_TYPES` for a dataset with these partitions (or None) and this source, in order."""
    types = LINEAGE_COLUMN_TYPES
    if partitioning is not None and partitioning.granularity == "hour":
        types = types | {FILE_DATE: FILE_HOUR_TYPE}
    if source is not None and source.archived:
        types = {SOURCE_FILE: types[SOURCE_FILE], SOURCE_MEMBER: "string"} | types
    return types


def lineage_descriptions(partitioning, source=None) -> dict[str, str]:
    descriptions = LINEAGE_DESCRIPTIONS
    if partitioning is not None and partitioning.granularity == "hour":
        descriptions = descriptions | {FILE_DATE: FILE_HOUR_DESCRIPTION}
    if source is not None:
        if source.format in SOURCE_LINE_DESCRIPTIONS:
            descriptions = descriptions | {SOURCE_LINE: SOURCE_LINE_DESCRIPTIONS[source.format]}
        if source.archived:
            descriptions = descriptions | {SOURCE_MEMBER: SOURCE_MEMBER_DESCRIPTION}
    return descriptions


# Only with `source.file_checks.policy: quarantine_rows`: why landing could not split the row
# (wrong number of fields) and its full text. Raw moves such rows to its rejects, so they are counted.
ROW_ERROR = "_row_error"
ROW_ERROR_DESCRIPTION = "Why the row could not be read as the contract's columns, with its full text"

REJECT_COLUMNS = "_reject_columns"
REJECT_REASON = "_reject_reason"
REJECT_DESCRIPTIONS = {
    REJECT_COLUMNS: "Columns whose value could not be typed, comma-separated",
    REJECT_REASON: "Why the row was quarantined, one clause per column",
}

# How Arrow spells each contract type (`str(arrow_types.arrow_type(name))`), which the column schema shows.
_ARROW_TYPE_NAMES = {
    "string": "string",
    "int": "int32",
    "long": "int64",
    "double": "double",
    "boolean": "bool",
    "date": "date32[day]",
    "timestamp": "timestamp[us]",
    "timestamptz": "timestamp[us, tz=UTC]",
}


def type_label(type_name: str) -> str:
    """A contract column type as the asset's column schema shows it: Arrow's name of the type."""
    decimal = DECIMAL_TYPE.match(type_name)
    if decimal:
        return f"decimal128({int(decimal.group(1))}, {int(decimal.group(2))})"
    return _ARROW_TYPE_NAMES[type_name]
