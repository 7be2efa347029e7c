"""What a write with no rows does, per write mode.

An empty frame is a normal outcome (a day without files, a filter that keeps nothing), so each
mode has a stated answer instead of whatever the engine happens to do:

- append: nothing to add, so no commit at all (pyiceberg would otherwise record an empty snapshot).
- upsert: no key to insert or replace, so no commit; the partition keeps its rows.
- overwrite: the window is declared to hold no rows. By default it is cleared in one commit, which
  keeps re-materialisation idempotent; the table property `lakehouse.empty-overwrite` can say
  `keep` (leave the window as it is) or `fail` (refuse, for tables where empty means broken).
"""

from collections.abc import Mapping

import pyarrow as pa

from io_managers.commit import CommitResult, WriteRequest

EMPTY_OVERWRITE_PROPERTY = "lakehouse.empty-overwrite"
EMPTY_OVERWRITE_CHOICES = ("clear", "keep", "fail")


class EmptyInputError(ValueError):
    """An overwrite with no rows on a table whose policy is `fail`."""


def empty_input_outcome(
    request: WriteRequest, data: pa.Table, table_properties: Mapping[str, str]
) -> CommitResult | None:
    """The result to report without committing, or None when the write should go ahead."""
    if data.num_rows:
        return None
    if request.mode in ("append", "upsert"):
        return CommitResult(
            request.mode, 0, 0, None, skipped_reason=f"empty input: nothing to {request.mode}"
        )
    choice = table_properties.get(EMPTY_OVERWRITE_PROPERTY, "clear")
    if choice not in EMPTY_OVERWRITE_CHOICES:
        raise EmptyInputError(
            f"table property {EMPTY_OVERWRITE_PROPERTY}={choice!r}; "
            f"expected one of {', '.join(EMPTY_OVERWRITE_CHOICES)}"
        )
    if choice == "keep":
        return CommitResult("overwrite", 0, 0, None, skipped_reason="empty input: window kept as it was")
    if choice == "fail":
        raise EmptyInputError(
            f"no rows to overwrite {request.slice.label} with, and {EMPTY_OVERWRITE_PROPERTY}=fail; "
            "nothing was written"
        )
    return None
