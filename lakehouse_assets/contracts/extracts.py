"""A contract's `extracts`: files of its table delivered to consumers, one per partition.

    extracts:
      - name: carrier_stats_csv                  # the asset `delivery/carrier_stats_csv`
        format: csv                               # csv | parquet | jsonl
        csv: {delimiter: ";", quoting: minimal, header: true, encoding: utf-8}
        columns: [flight_date, carrier, flights]  # which columns, in this order (default: all)
        rename: {carrier: carrier_code}           # column -> name in the file
        filter:                                   # rows kept: every condition holds
          - {column: flights, op: ge, value: 10}
        path: carrier_stats/{date}/carrier_daily_stats.csv
        recipients: [ops@example.com]             # who the "output generated" e-mail goes to

The filter is the model steps' `filter` (a column, an operator, a value), never an expression
that runs code. The path is relative to the exports root and names the partition with
placeholders; two partitions never share a file.
"""

import datetime as dt
import re
import string
from typing import Literal

from pydantic import Field, field_validator, model_validator

from lakehouse_assets.contracts.base import StrictModel
from lakehouse_assets.contracts.steps import Filter

EXTRACT_NAME = r"^[a-z][a-z0-9_]*$"
# what each placeholder writes for the moment a partition starts (in the partitions' time zone)
PLACEHOLDERS = {
    "partition": None,  # the partition as the granularity writes it (below)
    "date": "%Y-%m-%d",
    "year": "%Y",
    "month": "%m",
    "day": "%d",
    "hour": "%H",
}
PARTITION_FORMATS = {"hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d", "month": "%Y-%m"}
# the placeholders that, together, tell the partitions of a granularity apart (any one set will do)
_DISTINCT = {
    "month": ({"partition"}, {"date"}, {"year", "month"}),
    "day": ({"partition"}, {"date"}, {"year", "month", "day"}),
    "hour": ({"partition"}, {"date", "hour"}, {"year", "month", "day", "hour"}),
}
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_.={}/ -]+$")


class CsvDialect(StrictModel):
    """How the CSV file is written (Python's `csv` module)."""

    delimiter: str = Field(default=",", min_length=1, max_length=1)
    # minimal: only values that need it; all: every value; nonnumeric: every non-number; none: never
    # (a value holding the delimiter, a quote or a line break then fails the extract)
    quoting: Literal["minimal", "all", "nonnumeric", "none"] = "minimal"
    quotechar: str = Field(default='"', min_length=1, max_length=1)
    header: bool = True
    encoding: str = Field(default="utf-8", description="a Python codec: utf-8, utf-8-sig, latin-1, cp1252")
    line_terminator: Literal["\n", "\r\n"] = "\r\n"
    null: str = Field(default="", description="what a missing value is written as")

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}; expected a Python codec such as utf-8") from None
        return value


class Extract(StrictModel):
    name: str = Field(pattern=EXTRACT_NAME, description="the asset `delivery/<name>`; unique")
    description: str = ""
    format: Literal["csv", "parquet", "jsonl"] = "csv"
    csv: CsvDialect = Field(default_factory=CsvDialect)
    columns: list[str] = Field(default_factory=list, description="columns, in order; empty: all")
    rename: dict[str, str] = Field(default_factory=dict, description="column -> its name in the file")
    filter: list[Filter] = Field(default_factory=list, description="rows kept: every condition holds")
    path: str = Field(description="relative to the exports root, with placeholders for the partition")
    recipients: list[str] = Field(default_factory=list, description="the e-mail's; empty: the team's")

    @field_validator("path")
    @classmethod
    def _relative_path(cls, value: str) -> str:
        if not _SAFE_PATH.match(value) or value.startswith("/") or value.endswith("/"):
            raise ValueError(
                f"{value!r} is not a relative file path of letters, digits, `_.=- /` and placeholders"
            )
        if any(part in ("", ".", "..") for part in value.split("/")):
            raise ValueError(f"{value!r}: empty, `.` or `..` path segments are refused")
        unknown = sorted(set(placeholders(value)) - set(PLACEHOLDERS))
        if unknown:
            raise ValueError(
                f"{value!r}: unknown placeholders {unknown}; expected some of {list(PLACEHOLDERS)}"
            )
        if value.rsplit("/", 1)[-1].endswith(".manifest.json"):
            raise ValueError(f"{value!r}: `.manifest.json` names the manifest written beside each file")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "Extract":
        if self.columns and len(set(self.columns)) != len(self.columns):
            raise ValueError(f"extract {self.name}: columns are listed twice in {self.columns}")
        unselected = [name for name in self.rename if self.columns and name not in self.columns]
        if unselected:
            raise ValueError(f"extract {self.name}: rename names columns not in `columns`: {unselected}")
        return self

    def column_sources(self, columns: list[str]) -> dict[str, str]:
        """Each column of the file -> the column of the table (with `columns`) it is, in file order."""
        return {self.rename.get(name, name): name for name in (self.columns or columns)}

    def output_names(self, columns: list[str]) -> list[str]:
        """The file's column names for the table's `columns`."""
        return [self.rename.get(name, name) for name in (self.columns or columns)]

    def check_columns(self, available: list[str], table: str) -> None:
        """Every column the extract names must be one of the table's `available` columns."""
        named = [*self.columns, *self.rename, *(condition.column for condition in self.filter)]
        unknown = sorted({name for name in named if name not in available})
        if unknown:
            raise ValueError(f"extract {self.name}: {unknown} are not columns of {table} (have {available})")
        names = self.output_names(available)
        doubled = sorted({name for name in names if names.count(name) > 1})
        if doubled:
            raise ValueError(f"extract {self.name}: the file would have the columns {doubled} twice")

    def check_partitions(self, granularity: str | None) -> None:
        """The path names each partition apart (an unpartitioned table has one file: no placeholders)."""
        used = set(placeholders(self.path))
        if granularity is None:
            if used:
                raise ValueError(
                    f"extract {self.name}: the table is not partitioned, so the path takes no "
                    f"placeholders (has {sorted(used)})"
                )
            return
        if not any(needed <= used for needed in _DISTINCT[granularity]):
            options = " or ".join("+".join(sorted(needed)) for needed in _DISTINCT[granularity])
            raise ValueError(
                f"extract {self.name}: {granularity} partitions need placeholders {options} in the "
                f"path, so that each partition has its own file (path is {self.path!r})"
            )

    def file_path(self, start: dt.datetime | None, granularity: str | None) -> str:
        """The path of the partition starting at `start` (local time), or of the whole table."""
        if start is None:
            return self.path
        values = {
            name: start.strftime(PARTITION_FORMATS[granularity] if fmt is None else fmt)
            for name, fmt in PLACEHOLDERS.items()
        }
        return self.path.format(**values)


def placeholders(pattern: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(pattern) if field is not None]
