"""Transient failures around the one commit path: classify, back off, re-plan, try again.

pyiceberg already retries a commit that lost a race (`commit.retry.*` table properties), but it
gives up after its own budget, it does not retry a transaction that a concurrent overwrite made
invalid (ValidationException), and it knows nothing of SQLite's "database is locked" or S3
throttling. This module wraps `commits.commit` in a second, slower loop (tenacity's, as pyiceberg's
own is; which failures are transient is ours to say, `is_transient`) that re-reads the table and
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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException, CommitStateUnknownException, ValidationException
from pyiceberg.table import Table
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

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

    @property
    def wait(self) -> wait_random_exponential:
        # Full jitter (a wait drawn from 0 up to the exponential bound) spreads writers that failed
        # together so they do not collide again.
        return wait_random_exponential(multiplier=self.min_wait_s, max=self.max_wait_s)

    def waits(self) -> Iterator[float]:
        """The waits one write may draw, after each failed attempt but the last."""
        for attempt in range(1, self.attempts):
            state = RetryCallState(None, None, (), {})
            state.attempt_number = attempt
            yield self.wait(state)


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

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception()
        logger.warning(
            "%s: attempt %s/%s failed (%s: %s), retrying in %.2f s",
            what,
            state.attempt_number,
            settings.attempts,
            type(error).__name__,
            error,
            state.upcoming_sleep,
        )

    def give_up(state: RetryCallState) -> NoReturn:
        error = state.outcome.exception()
        raise CommitRetriesExhausted(
            f"{what}: gave up after {state.attempt_number} attempts of transient failures; last: "
            f"{type(error).__name__}: {error}. Nothing of this write is visible; re-run it."
        ) from error

    # A permanent error is not retried: tenacity raises it as it was.
    for attempt in Retrying(
        stop=stop_after_attempt(settings.attempts),
        wait=settings.wait,
        retry=retry_if_exception(is_transient),
        before_sleep=log_retry,
        retry_error_callback=give_up,
    ):
        with attempt:
            return operation(attempt.retry_state.attempt_number)
    raise AssertionError("unreachable: an attempt returns or the loop raises")


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
