"""Raw and its rejects are a pair: the rejects are committed first, raw last, both marked with the run.

A run killed between the two commits (emulated here by committing the rejects of a run that never
commits raw; tests/reliability/test_torn_pair.py kills a real process there) leaves a torn pair
that every read of raw refuses, naming the table, the partition and the runs, until raw is re-run.
"""

import datetime as dt

import dagster as dg
import pytest

from io_managers.commit import WriteRequest, commit, mark_pair
from io_managers.pairs import (
    PAIR_ID_PROPERTY,
    PAIR_PARTNER_PROPERTY,
    PAIR_ROLE_PROPERTY,
    PAIR_ROWS_PROPERTY,
    SLICE_END_PROPERTY,
    SLICE_START_PROPERTY,
    PairMarker,
)
from io_managers.slices import TableSlice
from io_managers.table_spec import PairSpec, TableSpec
from lakehouse_assets.assets.factory import build_assets
from tests.conftest import materialize_partitions
from tests.lakehouse_assets.layers.test_spark_equivalence import EVENT_FILES, EVENTS, _catalog, _resources

RAW, REJECTS = "raw.events", "raw.events_rejects"
KILLED_RUN = "killed-run-0001"
LANDING_AND_RAW = [
    dg.AssetKey(["landing", "events"]),
    dg.AssetKey(["raw", "events"]),
    dg.AssetKey(["raw", "events_rejects"]),
]
RAW_STEP = LANDING_AND_RAW[1:]
STAGING = [dg.AssetKey(["staging", "events"])]


def _land(home) -> None:
    for key, text in EVENT_FILES.items():
        (home / "landing" / key).parent.mkdir(parents=True, exist_ok=True)
        (home / "landing" / key).write_text(text)


def _day(day: str) -> TableSlice:
    start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    return TableSlice("_file_date", start, start + dt.timedelta(days=1))


def _marked(table, pair_id: str) -> list:
    return [
        snapshot
        for snapshot in table.metadata.snapshots
        if snapshot.summary.additional_properties.get(PAIR_ID_PROPERTY) == pair_id
    ]


def _kill_between_commits(catalog, day: str) -> None:
    """What a run killed between its two commits leaves: its rejects commit of the slice, no raw one."""
    rejects = catalog.load_table(REJECTS)
    table_slice = _day(day)
    rows = rejects.scan(
        row_filter=table_slice.row_filter(rejects.schema().find_field("_file_date").field_type)
    )
    request = WriteRequest("overwrite", table_slice, KILLED_RUN, pair=PairMarker(KILLED_RUN, "first", RAW))
    result = commit(rejects, rows.to_arrow(), request)
    if result.snapshot_id is None:  # (no rows to delete or add: the IO manager commits the marker alone)
        mark_pair(rejects, request, result)


def _failure_text(result) -> str:
    texts = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error is not None:
                texts.append(error.message)
                error = error.cause
    return "\n".join(texts)


@pytest.mark.parametrize("engine", ["pandas", "spark"])
def test_raw_commits_its_rejects_first_then_raw_both_carrying_the_runs_marker(tmp_path, engine):
    home = tmp_path / engine
    _land(home)
    resources = _resources(home, 1 << 40 if engine == "pandas" else 0)
    assets = build_assets([EVENTS])
    result = materialize_partitions(assets, resources, "2024-03-09", selection=LANDING_AND_RAW)
    assert result.success
    assert {
        event.materialization.metadata["engine"].value
        for event in result.get_asset_materialization_events()
        if event.asset_key.path[0] == "raw"
    } == {engine}
    catalog = _catalog(home)
    raw, rejects = catalog.load_table(RAW), catalog.load_table(REJECTS)
    (raw_commit,) = {s.snapshot_id: s for s in _marked(raw, result.run_id)}.values() or [None]
    rejects_commits = _marked(rejects, result.run_id)
    assert rejects_commits
    for snapshot, role, partner, rows in (
        (raw_commit, "last", REJECTS, "3"),
        (rejects_commits[-1], "first", RAW, "1"),
    ):
        properties = snapshot.summary.additional_properties
        assert properties[PAIR_ROLE_PROPERTY] == role
        assert properties[PAIR_PARTNER_PROPERTY] == partner
        assert properties[PAIR_ROWS_PROPERTY] == rows
        assert properties[SLICE_START_PROPERTY] == "2024-03-09T00:00:00+00:00"
        assert properties[SLICE_END_PROPERTY] == "2024-03-10T00:00:00+00:00"
    # the fixed order: raw, the table readers consume, is committed last
    assert max(s.timestamp_ms for s in rejects_commits) <= raw_commit.timestamp_ms

    # and a read on this engine refuses the slice once the pair is torn
    _kill_between_commits(catalog, "2024-03-09")
    refused = dg.materialize(
        assets, resources=resources, partition_key="2024-03-09", selection=STAGING, raise_on_error=False
    )
    assert not refused.success
    assert f"Run {KILLED_RUN} was killed between its two commits" in _failure_text(refused)


def test_staging_refuses_a_torn_slice_naming_table_partition_and_runs_and_a_rerun_of_raw_repairs_it(
    tmp_path,
):
    home = tmp_path / "home"
    _land(home)
    resources = _resources(home, 1 << 40)
    assets = build_assets([EVENTS])
    # one run over a range: its pair covers four days
    first = materialize_partitions(assets, resources, "2024-03-09", "2024-03-12", selection=LANDING_AND_RAW)
    assert first.success
    catalog = _catalog(home)
    _kill_between_commits(catalog, "2024-03-09")

    # a day the torn commit does not touch reads as before
    assert materialize_partitions(assets, resources, "2024-03-11", selection=STAGING).success
    refused = dg.materialize(
        assets,
        resources=resources,
        partition_key="2024-03-09",
        selection=STAGING,
        raise_on_error=False,
    )
    assert not refused.success
    message = _failure_text(refused)
    assert f"refusing to read {RAW}: its pair {REJECTS} + {RAW} is torn" in message
    assert f"- partition 2024-03-09: run {KILLED_RUN} committed {REJECTS} at " in message
    assert "(1 row for 2024-03-09) but never raw.events, which still holds" in message
    assert f"run {first.run_id}'s commit at " in message
    assert "(6 rows for 2024-03-09..2024-03-12)" in message
    assert f"Run {KILLED_RUN} was killed between its two commits" in message
    assert f"Re-run {RAW} for partition 2024-03-09" in message
    assert catalog.load_table("staging.events").scan(row_filter="event_date = '2024-03-09'").count() == 0

    # a range read that includes the torn day is refused for that day only
    ranged = dg.materialize(
        assets,
        resources=resources,
        tags={
            "dagster/asset_partition_range_start": "2024-03-09",
            "dagster/asset_partition_range_end": "2024-03-12",
        },
        selection=STAGING,
        raise_on_error=False,
    )
    assert not ranged.success
    assert "- partition 2024-03-09: " in _failure_text(ranged)
    assert "- partition 2024-03-10" not in _failure_text(ranged)

    # the repair: raw re-run for the partition
    assert materialize_partitions(assets, resources, "2024-03-09", selection=RAW_STEP).success
    repaired = materialize_partitions(assets, resources, "2024-03-09", selection=STAGING)
    assert repaired.success
    assert catalog.load_table("staging.events").scan(row_filter="event_date = '2024-03-09'").count() == 3


def test_a_raw_write_that_commits_no_rows_still_marks_the_pair(tmp_path):
    """An append of no rows commits nothing; its pair's marker still goes in, or raw would look torn."""
    contract = EVENTS.model_copy(
        update={"write_modes": EVENTS.write_modes.model_copy(update={"raw": "append"})}
    )
    home = tmp_path / "home"
    _land(home)
    resources = _resources(home, 1 << 40)
    assets = build_assets([contract])
    # 2024-03-11 has a file without rows: nothing to append
    result = materialize_partitions(assets, resources, "2024-03-11")
    assert result.success
    (marker,) = _marked(_catalog(home).load_table(RAW), result.run_id)
    assert marker.summary.additional_properties[PAIR_ROWS_PROPERTY] == "0"
    assert marker.summary.additional_properties["total-records"] == "0"


def test_a_pairs_last_table_cannot_be_committed_before_its_first(tmp_path):
    pair = PairSpec(first="raw.things_rejects", last="raw.things")

    def spec(table: str) -> dict:
        return TableSpec(layer="raw", table=table, pair=pair).to_metadata()

    @dg.multi_asset(
        outs={
            "typed": dg.AssetOut(key=["raw", "things"], metadata=spec("things")),
            "rejects": dg.AssetOut(key=["raw", "things_rejects"], metadata=spec("things_rejects")),
        }
    )
    def wrong_order():
        import pyarrow as pa

        yield dg.Output(pa.table({"x": [1]}), output_name="typed")
        yield dg.Output(pa.table({"x": [2]}), output_name="rejects")

    resources = _resources(tmp_path / "home", 1 << 40)
    with pytest.raises(RuntimeError, match="raw.things is committed after raw.things_rejects"):
        dg.materialize([wrong_order], resources=resources)
