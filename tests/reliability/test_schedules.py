"""The daily schedule across DST changes: one tick per local day, each for the previous local date."""

import datetime as dt
import zoneinfo

import dagster as dg
import pytest
from dagster._utils.schedules import cron_string_iterator

from lakehouse_assets.automation.schedules import build_daily_schedule, build_schedules, target_partition
from lakehouse_assets.components.defs_folder import contracts_in
from lakehouse_assets.definitions import defs
from resources.settings import load_settings

NEW_YORK = "America/New_York"


@dg.asset(
    partitions_def=dg.DailyPartitionsDefinition(start_date="2024-01-01"), tags={"partitioning": "daily"}
)
def dated_table() -> None:
    """A stand-in for the dated tables, with partitions through 2024."""


daily_tables_job = dg.define_asset_job(
    "daily_tables", selection=dg.AssetSelection.tag("partitioning", "daily")
)


def _repository(schedule: dg.ScheduleDefinition):
    return dg.Definitions(
        assets=[dated_table], jobs=[daily_tables_job], schedules=[schedule]
    ).get_repository_def()


def _ticks(schedule: dg.ScheduleDefinition, start: dt.datetime, count: int) -> list[dt.datetime]:
    """The tick times the scheduler daemon computes for this schedule (the same iterator it uses)."""
    iterator = cron_string_iterator(start.timestamp(), schedule.cron_schedule, schedule.execution_timezone)
    return [next(iterator) for _ in range(count)]


T0230, T0300, T0130 = dt.time(2, 30), dt.time(3, 0), dt.time(1, 30)


@pytest.mark.parametrize(
    ("at", "start", "local_times"),
    [
        # spring forward on 2024-03-10: 02:30 does not exist that night, the tick runs at 03:00
        (T0230, dt.datetime(2024, 3, 8, tzinfo=dt.UTC), [T0230, T0230, T0300, T0230, T0230]),
        # fall back on 2024-11-03: 01:30 happens twice, the tick runs once
        (T0130, dt.datetime(2024, 11, 1, tzinfo=dt.UTC), [T0130] * 5),
    ],
)
def test_one_tick_per_local_day_targeting_the_previous_date_across_dst(
    at, start, local_times, record_property
):
    schedule = build_daily_schedule(daily_tables_job, timezone=NEW_YORK, at=at, lag_days=1)
    ticks = _ticks(schedule, start, 5)
    local = [tick.astimezone(zoneinfo.ZoneInfo(NEW_YORK)) for tick in ticks]
    local_dates = [moment.date() for moment in local]
    assert local_dates == [local_dates[0] + dt.timedelta(days=n) for n in range(5)]
    assert [moment.time() for moment in local] == local_times

    repository, requests = _repository(schedule), []
    for tick in ticks:
        context = dg.build_schedule_context(scheduled_execution_time=tick, repository_def=repository)
        (request,) = schedule.evaluate_tick(context).run_requests
        requests.append(request)
    keys = [request.partition_key for request in requests]
    assert keys == [str(day - dt.timedelta(days=1)) for day in local_dates]
    assert [request.run_key for request in requests] == keys
    record_property(f"reliability.dst_{start:%m}", f"5 ticks across DST, partitions {keys[0]}..{keys[-1]}")


def test_lag_and_time_zone_move_the_target_date():
    late_evening = dt.datetime(2024, 3, 10, 3, 30, tzinfo=dt.UTC)  # 23:30 on 9 March in New York
    assert target_partition(late_evening, "UTC", 1) == "2024-03-09"
    assert target_partition(late_evening, NEW_YORK, 1) == "2024-03-08"
    assert target_partition(late_evening, NEW_YORK, 2) == "2024-03-07"


def test_the_code_location_schedule_skips_dates_outside_the_partitions(settings, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_SCHEDULE_TIMEZONE", NEW_YORK)
    (schedule,) = build_schedules(contracts_in(), load_settings().schedule)
    assert schedule.execution_timezone == NEW_YORK
    repository = defs().get_repository_def()
    inside = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2013, 1, 3, 7, tzinfo=dt.UTC), repository_def=repository
    )
    (request,) = schedule.evaluate_tick(inside).run_requests
    assert request.partition_key == "2013-01-02"
    outside = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2030, 1, 3, 7, tzinfo=dt.UTC), repository_def=repository
    )
    result = schedule.evaluate_tick(outside)
    assert not result.run_requests
    assert "2030-01-02 is not a partition of daily_tables" in result.skip_message


def test_an_unknown_time_zone_fails_at_load():
    with pytest.raises(zoneinfo.ZoneInfoNotFoundError):
        build_daily_schedule(daily_tables_job, timezone="Mars/Olympus_Mons")
