"""A dataset contract's `source`: where its files are, their format and compression, and how they
name partitions."""

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from checks.rule_models import FileChecks
from lakehouse_assets.contracts.base import StrictModel


class CsvOptions(StrictModel):
    delimiter: str = ","
    encoding: str = "utf-8"
    header: bool = True
    quote_char: str = '"'
    null_values: list[str] = Field(default_factory=lambda: [""])

    @field_validator("delimiter", "quote_char")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError("must be exactly one character")
        return value


SourceFormat = Literal["csv", "jsonl", "parquet"]
Compression = Literal["infer", "none", "gzip", "bz2", "zstd", "zip"]
# What `compression: infer` reads from the end of a file's (or a zip member's) name.
COMPRESSION_SUFFIXES = {
    ".gz": "gzip",
    ".gzip": "gzip",
    ".bz2": "bz2",
    ".zst": "zstd",
    ".zstd": "zstd",
    ".zip": "zip",
}
_JSON_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")


def inferred_compression(name: str) -> str:
    """What the end of a file's (or zip member's) name says about its compression; `none` when nothing."""
    lowered = name.lower()
    return next((kind for suffix, kind in COMPRESSION_SUFFIXES.items() if lowered.endswith(suffix)), "none")


class ZipOptions(StrictModel):
    members: str = Field(
        default="*",
        description="glob (fnmatch) on member paths inside the archive; the others are left alone",
    )


class JsonLinesOptions(StrictModel):
    """How a JSON Lines record becomes the contract's columns.

    A column reads the top-level field of its own name unless `paths` names a dotted path into
    nested objects (`payload.reading.kwh`). A value that is an object or a list lands as its JSON
    text; a number keeps the text the file wrote (`1.50` stays `1.50`).
    """

    paths: dict[str, str] = Field(default_factory=dict, description="column -> dotted path into the record")

    @field_validator("paths")
    @classmethod
    def _dotted(cls, value: dict[str, str]) -> dict[str, str]:
        for column, path in value.items():
            if not _JSON_PATH.match(path):
                raise ValueError(f"{column}: {path!r} is not a dotted path such as `payload.reading.kwh`")
        return value


class PartitionFrom(StrictModel):
    """Where a file's rows carry their own partition value: one column, or several joined by "-"."""

    column: str | None = None
    columns: list[str] = Field(default_factory=list, description="joined with '-' before parsing")
    format: str = Field(default="%Y-%m-%d", description="strptime format of the (joined) value")

    @model_validator(mode="after")
    def _one_source(self) -> "PartitionFrom":
        if (self.column is None) == (not self.columns):
            raise ValueError("declare exactly one of `column` or `columns`")
        return self

    @property
    def source_columns(self) -> list[str]:
        return [self.column] if self.column is not None else list(self.columns)


class Source(StrictModel):
    glob: str = Field(description="files of this dataset, relative to the landing zone")
    format: SourceFormat = Field(default="csv", description="csv, jsonl (JSON Lines) or parquet")
    compression: Compression = Field(
        default="infer",
        description="infer: from the name's extension (.gz, .bz2, .zst, .zip); none: bytes as they are",
    )
    zip: ZipOptions = Field(default_factory=ZipOptions)
    csv: CsvOptions = Field(default_factory=CsvOptions)
    jsonl: JsonLinesOptions = Field(default_factory=JsonLinesOptions)
    file_date_pattern: str | None = Field(
        default=None,
        description="regex on the file name with a named group `date`: YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH",
    )
    partition_from: PartitionFrom | None = Field(
        default=None,
        description="rows carry their partition value: a file may fill many partitions, whatever its name",
    )
    file_checks: FileChecks = Field(default_factory=FileChecks)

    @field_validator("file_date_pattern")
    @classmethod
    def _has_date_group(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        if "date" not in compiled.groupindex:
            raise ValueError(
                "needs a named group `(?P<date>...)` that captures YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH"
            )
        return value

    def compression_of(self, name: str) -> str:
        """How a file of this name is compressed: none, gzip, bz2, zstd or zip."""
        return inferred_compression(name) if self.compression == "infer" else self.compression

    @property
    def archived(self) -> bool:
        """Whether rows come from members of zip archives (and so carry `_source_member`)."""
        return self.compression == "zip" or (
            self.compression == "infer" and self.glob.lower().endswith(".zip")
        )

    def named_time_text(self, file_name: str) -> str | None:
        """What the pattern's `date` group captures in a file name, or None when the name does not match."""
        if self.file_date_pattern is None:
            return None
        match = re.search(self.file_date_pattern, file_name)
        return None if match is None else match.group("date")
