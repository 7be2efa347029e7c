"""Daily schedules for the partitioned jobs: one run per tick, for the day that has just closed.

The time zone, the time of day and the lag are configuration (`ScheduleSettings`, read once by
`resources.settings`):

- `LAKEHOUSE_SCHEDULE_TIMEZONE` (default `UTC`): an IANA name such as `America/New_York`. Ticks
  follow the wall clock there, so across a DST change the run still starts at the same local time
  (on the spring-forward night a 02:30 tick runs at 03:00; on the fall-back night it runs once).
- `LAKEHOUSE_SCHEDULE_TIME` (default `02:00`): local time of the tick.
- `LAKEHOUSE_SCHEDULE_LAG_DAYS` (default 1): which local date the run targets; 1 is yesterday,
  2 leaves a day more for late files.

The partition is computed from the tick's *local* date, never from UTC arithmetic, so a 23- or
25-hour day moves neither the target nor the number of runs.
"""

import datetime as dt
import zoneinfo
from typing import Protocol

import dagster as dg

from lakehouse_assets.automation.jobs import daily_tables_job
from resources.settings import ScheduleSettings


class Job(Protocol):
    """A `dg.JobDefinition`, or a job from `dg.define_asset_job` (whose class Dagster keeps private)."""

    @property
    def name(self) -> str: ...


def target_partition(scheduled_at: dt.datetime, timezone: str, lag_days: int) -> str:
    """The daily partition key a tick at `scheduled_at` runs: its local date minus the lag."""
    local_date = scheduled_at.astimezone(zoneinfo.ZoneInfo(timezone)).date()
    return (local_date - dt.timedelta(days=lag_days)).isoformat()


def build_daily_schedule(
    job: Job,
    *,
    timezone: str = "UTC",
    at: dt.time = dt.time(2, 0),
    lag_days: int = 1,
    default_status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.STOPPED,
) -> dg.ScheduleDefinition:
    zoneinfo.ZoneInfo(timezone)  # an unknown zone fails when the code location loads, not at 02:00
    if lag_days < 0:
        raise ValueError(f"the schedule lag must be 0 days or more, got {lag_days}")

    @dg.schedule(
        name=f"{job.name}_daily",
        job=job,
        cron_schedule=f"{at.minute} {at.hour} * * *",
        execution_timezone=timezone,
        default_status=default_status,
        description=(
            f"Every day at {at:%H:%M} {timezone}: {job.name} for the local date {lag_days} day(s) before."
        ),
    )
    def daily_schedule(context: dg.ScheduleEvaluationContext):
        partition_key = target_partition(context.scheduled_execution_time, timezone, lag_days)
        repository = context.repository_def
        partitions = repository.get_job(job.name).partitions_def if repository else None
        if partitions is not None and not partitions.has_partition_key(partition_key):
            return dg.SkipReason(f"{partition_key} is not a partition of {job.name}")
        # The run key makes the daemon launch one run per partition even if a tick is evaluated twice.
        return dg.RunRequest(run_key=partition_key, partition_key=partition_key)

    return daily_schedule


def build_schedules(schedule: ScheduleSettings) -> list[dg.ScheduleDefinition]:
    return [
        build_daily_schedule(
            daily_tables_job, timezone=schedule.timezone, at=schedule.time, lag_days=schedule.lag_days
        )
    ]
