"""Schedules for the partitioned jobs: one run per tick, for the partition that has just closed.

Each job (one per partitions definition, see `jobs.py`) gets a schedule matching its granularity:
`<job>_hourly` at minute MM of every hour, `<job>_daily` every day at HH:MM, `<job>_monthly` on
the first of every month at HH:MM. The time zone, the time of day and the lag are configuration
(`ScheduleSettings`, read once by `resources.settings`):

- `LAKEHOUSE_SCHEDULE_TIMEZONE` (default `UTC`): an IANA name such as `America/New_York`. Ticks
  follow the wall clock there, so across a DST change the run still starts at the same local time
  (on the spring-forward night a 02:30 tick runs at 03:00; on the fall-back night it runs once).
- `LAKEHOUSE_SCHEDULE_TIME` (default `02:00`): local time of the tick (hourly: its minute).
- `LAKEHOUSE_SCHEDULE_LAG_DAYS` (default 1): which partition the run targets, counted back from
  the tick's own: 1 is yesterday (last hour, last month), 2 leaves one more for late files.

The partition is computed from the tick's local time in the *partitions'* time zone (their
contract's `timezone`), never from UTC arithmetic, so a 23- or 25-hour day moves neither the
target nor the number of runs.
"""

import datetime as dt
import zoneinfo
from typing import Protocol

import dagster as dg

from lakehouse_assets.automation.jobs import partitioned_jobs
from resources.settings import ScheduleSettings


class Job(Protocol):
    """A `dg.JobDefinition`, or a job from `dg.define_asset_job` (whose class Dagster keeps private)."""

    @property
    def name(self) -> str: ...


CADENCES = {"hour": "hourly", "day": "daily", "month": "monthly"}


def target_partition(
    scheduled_at: dt.datetime, timezone: str, lag_days: int, granularity: str = "day"
) -> str:
    """The partition key a tick at `scheduled_at` runs: its local hour, date or month in `timezone`,
    minus the lag (in hours, days or months)."""
    zone = zoneinfo.ZoneInfo(timezone)
    local = scheduled_at.astimezone(zone)
    if granularity == "hour":
        hour = local.replace(minute=0, second=0, microsecond=0)
        # back in absolute time: an hour before 03:00 on a spring-forward night is 01:00
        target = (hour.astimezone(dt.UTC) - dt.timedelta(hours=lag_days)).astimezone(zone)
        return target.strftime("%Y-%m-%d-%H:%M")
    if granularity == "month":
        months = local.year * 12 + local.month - 1 - lag_days
        return f"{months // 12:04d}-{months % 12 + 1:02d}-01"
    return (local.date() - dt.timedelta(days=lag_days)).isoformat()


def _cron(granularity: str, at: dt.time) -> str:
    if granularity == "hour":
        return f"{at.minute} * * * *"
    if granularity == "month":
        return f"{at.minute} {at.hour} 1 * *"
    return f"{at.minute} {at.hour} * * *"


def _when(granularity: str, at: dt.time, timezone: str) -> str:
    if granularity == "hour":
        return f"Every hour at minute {at.minute:02d} ({timezone})"
    if granularity == "month":
        return f"On the first of every month at {at:%H:%M} {timezone}"
    return f"Every day at {at:%H:%M} {timezone}"


def build_daily_schedule(
    job: Job,
    *,
    timezone: str = "UTC",
    at: dt.time = dt.time(2, 0),
    lag_days: int = 1,
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.STOPPED,
    granularity: str = "day",
    partitions_timezone: str | None = None,
) -> dg.ScheduleDefinition:
    """The schedule of a job whose partitions are days, or hours or months (`granularity`), in
    `partitions_timezone` (by default the schedule's own zone)."""
    zoneinfo.ZoneInfo(timezone)  # an unknown zone fails when the code location loads, not at 02:00
    if lag_days < 0:
        raise ValueError(f"the schedule lag must be 0 days or more, got {lag_days}")
    local_zone = partitions_timezone or timezone
    zoneinfo.ZoneInfo(local_zone)
    unit = granularity

    @dg.schedule(
        name=f"{job.name}_{CADENCES[granularity]}",
        job=job,
        cron_schedule=_cron(granularity, at),
        execution_timezone=timezone,
        default_status=default_status,
        description=(
            f"{_when(granularity, at, timezone)}: {job.name} for the local {unit} ({local_zone}) "
            f"{lag_days} {unit}(s) before."
        ),
    )
    def daily_schedule(context: dg.ScheduleEvaluationContext):
        partition_key = target_partition(context.scheduled_execution_time, local_zone, lag_days, granularity)
        repository = context.repository_def
        partitions = repository.get_job(job.name).partitions_def if repository else None
        if partitions is not None and not partitions.has_partition_key(partition_key):
            return dg.SkipReason(f"{partition_key} is not a partition of {job.name}")
        # The run key makes the daemon launch one run per partition even if a tick is evaluated twice.
        return dg.RunRequest(run_key=partition_key, partition_key=partition_key)

    return daily_schedule


def build_schedules(contracts: list, schedule: ScheduleSettings) -> list[dg.ScheduleDefinition]:
    """One schedule per partitioned job (`jobs.partitioned_jobs`), at its partitions' cadence."""
    return [
        build_daily_schedule(
            job,
            timezone=schedule.timezone,
            at=schedule.time,
            lag_days=schedule.lag_days,
            granularity=partitioning.granularity,
            partitions_timezone=partitioning.timezone,
        )
        for job, partitioning in partitioned_jobs(contracts)
    ]
