"""What every part of a contract shares: its error, a model that refuses unknown fields, column types."""

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

COLUMN_TYPES = ("string", "int", "long", "double", "boolean", "date", "timestamp", "timestamptz")
DECIMAL_TYPE = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")


class ContractError(ValueError):
    """A contract that cannot be used; the message names the file, the field and the problem."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_type(value: str) -> str:
    if value in COLUMN_TYPES or DECIMAL_TYPE.match(value):
        return value
    raise ValueError(f"unknown type {value!r}; expected one of {', '.join(COLUMN_TYPES)} or decimal(p,s)")


# The JSON schema says the same for editors and `dg check yaml`, which validate without Python.
ColumnType = Annotated[
    str,
    AfterValidator(_check_type),
    WithJsonSchema(
        {"type": "string", "anyOf": [{"enum": list(COLUMN_TYPES)}, {"pattern": DECIMAL_TYPE.pattern}]}
    ),
]


class Column(StrictModel):
    name: str
    type: ColumnType = "string"
    nullable: bool = True
    description: str = ""
    pii: bool = False
    format: str | None = Field(default=None, description="strptime format for date/timestamp parsing")
    allow_non_finite: bool = Field(
        default=False,
        description="double only: an explicit inf, -inf or nan spelling is that value, not a reject",
    )

    @model_validator(mode="after")
    def _non_finite_needs_a_double(self) -> "Column":
        if self.allow_non_finite and self.type != "double":
            raise ValueError(f"column {self.name!r}: allow_non_finite applies to double columns only")
        return self
