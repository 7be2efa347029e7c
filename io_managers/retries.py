"""Transient failures around the one commit path: classify, back off, re-plan, try again.

pyiceberg already retries a commit that lost a race (`commit.retry.*` table properties), but it
gives up after its own budget, it does not retry a transaction that a concurrent overwrite made
invalid (ValidationException), and it knows nothing of SQLite's "database is locked" or S3
throttling. This module wraps `commits.commit` in a second, slower loop that re-reads the table and
plans the whole write again, which is safe because every write mode converges:

- overwrite replaces the window with the same rows whatever happened in between;
- upsert merges against the table as it is now;
- append is skipped when a snapshot already carries this run id and slice, so an attempt whose
  outcome was unknown is never applied twice.

Each failed attempt removes the data files it wrote (`commits.removed_unless_committed`). Only an
attempt whose outcome is unknown keeps them, since they may be the table's; if the commit did not
land, the maintenance job's orphan-file removal deletes them once they are older than its safe age.
"""

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException, CommitStateUnknownException, ValidationException
from pyiceberg.table import Table

from io_managers.commit import CommitResult, WriteRequest, commit
from io_managers.empty_input import empty_input_outcome

logger = logging.getLogger(__name__)
T = TypeVar("T")

ATTEMPTS_PROPERTY = "lakehouse.commit.retry.attempts"
MIN_WAIT_PROPERTY = "lakehouse.commit.retry.min-wait-ms"
MAX_WAIT_PROPERTY = "lakehouse.commit.retry.max-wait-ms"

_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
_THROTTLING_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "ServiceUnavailable",
    "InternalError",
    "503",
}


class CommitRetriesExhausted(RuntimeError):
    """A write that kept meeting transient failures; the table holds none of its rows."""


@dataclass(frozen=True)
class RetrySettings:
    """The outer loop: attempts of the whole write, exponential waits with full jitter."""

    attempts: int = 5
    min_wait_s: float = 0.5
    max_wait_s: float = 15.0

    @classmethod
    def from_properties(cls, properties: Mapping[str, str]) -> "RetrySettings":
        default = cls()
        return cls(
            attempts=max(1, int(properties.get(ATTEMPTS_PROPERTY, default.attempts))),
            min_wait_s=max(0, int(properties.get(MIN_WAIT_PROPERTY, default.min_wait_s * 1000))) / 1000,
            max_wait_s=max(0, int(properties.get(MAX_WAIT_PROPERTY, default.max_wait_s * 1000))) / 1000,
        )

    def waits(self) -> Iterator[float]:
        for attempt in range(self.attempts - 1):
            # full jitter spreads writers that failed together so they do not collide again
            yield random.uniform(0, min(self.max_wait_s, self.min_wait_s * 2**attempt))


def is_transient(error: BaseException) -> bool:
    """Failures that a later attempt of the same write can get past."""
    if isinstance(error, CommitFailedException | CommitStateUnknownException | ValidationException):
        return True
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    message = str(error).lower()
    if type(error).__name__ == "OperationalError" and any(text in message for text in _SQLITE_BUSY):
        return True
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        status = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        return code in _THROTTLING_CODES or status in {"429", "503"}
    return False


def retry_transient(operation: Callable[[int], T], settings: RetrySettings, what: str) -> T:
    """Run `operation(attempt)` until it succeeds, a permanent error occurs, or attempts run out."""
    waits = settings.waits()
    for attempt in range(1, settings.attempts + 1):
        try:
            return operation(attempt)
        except Exception as error:
            if not is_transient(error):
                raise
            if attempt == settings.attempts:
                raise CommitRetriesExhausted(
                    f"{what}: gave up after {attempt} attempts of transient failures; last: "
                    f"{type(error).__name__}: {error}. Nothing of this write is visible; re-run it."
                ) from error
            wait = next(waits)
            logger.warning(
                "%s: attempt %s/%s failed (%s: %s), retrying in %.2f s",
                what,
                attempt,
                settings.attempts,
                type(error).__name__,
                error,
                wait,
            )
            time.sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")


def retry_commit(
    table: Table,
    request: WriteRequest,
    write: Callable[[Table], CommitResult],
    settings: RetrySettings | None = None,
) -> CommitResult:
    """Run one engine's whole write, `write(table)`, again from a fresh read after a transient failure."""
    settings = settings or RetrySettings.from_properties(table.properties)

    def attempt(number: int) -> CommitResult:
        if number > 1:
            # Plan against what is committed now: a stale base is what made the last attempt fail.
            table.refresh()
        return write(table)

    what = f"{'.'.join(table.name())} [{request.slice.label}] {request.mode}"
    return retry_transient(attempt, settings, what)


def commit_with_retries(
    table: Table, data: pa.Table, request: WriteRequest, settings: RetrySettings | None = None
) -> CommitResult:
    """The Arrow path: the empty-input policy, then `commits.commit` with transient failures retried."""
    skipped = empty_input_outcome(request, data, table.properties)
    if skipped is not None:
        return skipped
    return retry_commit(table, request, lambda fresh: commit(fresh, data, request), settings)
