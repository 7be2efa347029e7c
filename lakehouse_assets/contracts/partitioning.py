"""A contract's `partitioning`: granularity, range and time zone, and the times file names carry."""

import datetime as dt
import re
import zoneinfo
from typing import Annotated

from pydantic import AfterValidator, ByteSize, Field, model_validator

from io_managers.table_spec import Granularity
from lakehouse_assets.contracts.base import StrictModel

NAMED_TIME_FORMATS = {"month": "YYYY-MM", "day": "YYYY-MM-DD", "hour": "YYYY-MM-DDTHH"}
_PRECISION_RANK = {"hour": 0, "day": 1, "month": 2}
_NAMED_TIME = re.compile(
    r"(?P<year>\d{4})-?(?P<month>\d{2})(?:-?(?P<day>\d{2})(?:[T _-]?(?P<hour>\d{2})(?::?00)?)?)?"
)
PARTITION_KEY_FORMATS = {"hour": "%Y-%m-%d-%H:%M", "day": "%Y-%m-%d", "month": "%Y-%m-%d"}


def precise_enough(precision: str, granularity: str) -> bool:
    """Whether a moment named to `precision` lies in one partition of `granularity`."""
    return _PRECISION_RANK[precision] <= _PRECISION_RANK[granularity]


def named_time(text: str) -> tuple[dt.datetime, str] | None:
    """The (naive) moment a file name writes and its precision: month, day or hour; None when not one.

    The forms are ISO 8601's: `2024-03`, `2024-03-05`, `2024-03-05T07` (also `2024-03-05 07`,
    `2024-03-05_07`, `2024-03-05-07`, `...T07:00`) and the same without hyphens.
    """
    match = _NAMED_TIME.fullmatch(text)
    if match is None:
        return None
    day, hour = match.group("day"), match.group("hour")
    try:
        moment = dt.datetime(
            int(match.group("year")), int(match.group("month")), int(day or 1), int(hour or 0)
        )
    except ValueError:
        return None
    return moment, "hour" if hour else "day" if day else "month"


def _check_time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; expected an IANA name such as UTC or America/New_York"
        ) from None
    return value


TimeZone = Annotated[str, AfterValidator(_check_time_zone)]


def check_range(granularity: str, start: dt.date | None, end: dt.date | None) -> None:
    if start is not None and end is not None and end <= start:
        raise ValueError(f"end {end} must come after start {start} (end is exclusive)")
    if granularity == "month":
        for name, value in (("start", start), ("end", end)):
            if value is not None and value.day != 1:
                raise ValueError(
                    f"{name} {value}: month partitions start and end on the first day of a month"
                )


def partitions_between(granularity: str, start: dt.date, end: dt.date) -> int:
    """How many partitions [start, end) holds (hours counted as 24 a day)."""
    if granularity == "month":
        return (end.year * 12 + end.month) - (start.year * 12 + start.month)
    days = (end - start).days
    return days * 24 if granularity == "hour" else days


class ModelPartitioning(StrictModel):
    """A model's partitions: its column, and the time partitions of its partitioned inputs.

    The range, granularity and time zone come from the inputs (a model partition reads the same
    window of each input); declared here, they must equal the inputs'. A model without partitioned
    inputs declares them itself.
    """

    column: str
    granularity: Granularity | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    timezone: TimeZone | None = None
    # A run of a backfill writes its whole window in one commit per table and costs a process start
    # and a share of Dagster's event log: the count is a trade of speed against how much one bad
    # partition holds back (automation/policies.py).
    backfill_partitions_per_run: int | None = Field(
        default=None,
        ge=1,
        description="partitions a backfill puts in one run; the environment's days when absent",
    )

    @model_validator(mode="after")
    def _consistent_range(self) -> "ModelPartitioning":
        check_range(self.granularity or "day", self.start, self.end)
        return self


class Partitioning(ModelPartitioning):
    """A table's time partitions: Dagster's partitions definition and Iceberg's transform both follow it.

    `start` and `end` (exclusive) are local dates in `timezone`; partitions are that zone's hours,
    days or months.
    """

    column: str
    granularity: Granularity = "day"
    start: dt.date
    end: dt.date | None = Field(default=None, description="exclusive; open-ended when absent")
    timezone: TimeZone = Field(default="UTC", description="IANA time zone the partitions' times are in")
    partition_size: ByteSize | None = Field(
        default=None,
        description="landed bytes of one partition, roughly (`90 KB`, `2 MiB`): sizes a backfill's runs",
    )

    @model_validator(mode="after")
    def _one_run_size(self) -> "Partitioning":
        if self.partition_size is not None and self.backfill_partitions_per_run is not None:
            raise ValueError(
                "declare one of partitioning.partition_size (runs sized by the data) and "
                "partitioning.backfill_partitions_per_run (a fixed count), not both"
            )
        if self.partition_size is not None and self.partition_size < 1:
            raise ValueError("partitioning.partition_size must be at least 1 byte (for example `90 KB`)")
        return self

    def partitions_per_run(self, run_bytes: int) -> int | None:
        """Partitions per backfill run: the declared count, or as many partitions of `partition_size`
        as `run_bytes` holds (at least one, at most the whole range); None when neither is declared."""
        if self.backfill_partitions_per_run is not None:
            return self.backfill_partitions_per_run
        if self.partition_size is None:
            return None
        count = max(1, run_bytes // self.partition_size)
        if self.end is not None:
            count = min(count, partitions_between(self.granularity, self.start, self.end))
        return count

    @property
    def definition(self) -> tuple[str, dt.date, dt.date | None, str]:
        """What Dagster's partitions definition is made of: tables equal in it share partition keys."""
        return (self.granularity, self.start, self.end, self.timezone)

    def describe(self) -> str:
        end = self.end or "open-ended"
        zone = "" if self.timezone == "UTC" else f" {self.timezone}"
        return f"{self.granularity} partitions [{self.start}, {end}){zone}"

    def local(self, moment: dt.datetime) -> dt.datetime:
        """A naive moment in the partitions' time zone, made aware."""
        return moment.replace(tzinfo=zoneinfo.ZoneInfo(self.timezone))

    def contains(self, moment: dt.datetime) -> bool:
        """Whether an aware moment lies in [start, end) of the partitions' local dates."""
        start = self.local(dt.datetime.combine(self.start, dt.time()))
        end = self.local(dt.datetime.combine(self.end, dt.time())) if self.end else None
        return start <= moment and (end is None or moment < end)

    def partition_key(self, moment: dt.datetime) -> str:
        """The key of the partition an aware moment lies in, as Dagster writes it."""
        local = moment.astimezone(zoneinfo.ZoneInfo(self.timezone))
        if self.granularity == "hour":
            local = local.replace(minute=0, second=0, microsecond=0)
        elif self.granularity == "month":
            local = local.replace(day=1)
        return local.strftime(PARTITION_KEY_FORMATS[self.granularity])
