"""Which stretches of a slice a pair leaves torn, from the two tables' marked commits alone."""

import datetime as dt

from io_managers.pairs import PairCommit, torn_between, torn_pair_message
from io_managers.slices import TableSlice

UTC = dt.UTC


def day(number: int) -> dt.datetime:
    return dt.datetime(2024, 3, 1, tzinfo=UTC) + dt.timedelta(days=number - 1)


def days(first: int, last: int) -> TableSlice:
    return TableSlice("_file_date", day(first), day(last + 1))


def marked(pair_id: str, first: int, last: int, sequence: int, rows: int | None = 1) -> PairCommit:
    return PairCommit(pair_id, day(first), day(last + 1), sequence, 1_709_971_200_000 + sequence, rows)


def whole_table(pair_id: str, sequence: int) -> PairCommit:
    return PairCommit(
        pair_id, dt.datetime.min.replace(tzinfo=UTC), dt.datetime.max.replace(tzinfo=UTC), sequence, 0, 5
    )


def labels(stretches) -> list[tuple[str, str, str | None]]:
    return [(s.slice.label, s.first.pair_id, s.last.pair_id if s.last else None) for s in stretches]


def test_both_tables_last_written_by_one_run_is_whole():
    first = [marked("a", 1, 1, 1), marked("b", 1, 1, 2)]
    last = [marked("a", 1, 1, 1), marked("b", 1, 1, 2)]
    assert torn_between(first, last, days(1, 1)) == []


def test_a_first_commit_without_its_last_is_torn_and_names_both_runs():
    first = [marked("a", 1, 1, 1), marked("killed", 1, 1, 2)]
    last = [marked("a", 1, 1, 1)]
    assert labels(torn_between(first, last, days(1, 1))) == [("2024-03-01", "killed", "a")]


def test_the_first_write_of_a_partition_killed_before_raw_is_torn():
    assert labels(torn_between([marked("killed", 2, 2, 1)], [], days(2, 2))) == [
        ("2024-03-02", "killed", None)
    ]


def test_only_the_stretches_the_torn_commit_covers_are_torn_and_neighbours_merge():
    # a month written in one run, then a three-day run killed between its commits
    first = [marked("month", 1, 31, 1), marked("killed", 10, 12, 2)]
    last = [marked("month", 1, 31, 1)]
    assert labels(torn_between(first, last, days(1, 31))) == [("2024-03-10..2024-03-12", "killed", "month")]
    assert torn_between(first, last, days(13, 13)) == []
    assert labels(torn_between(first, last, days(11, 20))) == [("2024-03-11..2024-03-12", "killed", "month")]


def test_a_later_whole_pair_over_part_of_the_torn_stretch_repairs_that_part_only():
    first = [marked("month", 1, 31, 1), marked("killed", 10, 12, 2), marked("redo", 11, 11, 3)]
    last = [marked("month", 1, 31, 1), marked("redo", 11, 11, 2)]
    assert labels(torn_between(first, last, days(1, 31))) == [
        ("2024-03-10", "killed", "month"),
        ("2024-03-12", "killed", "month"),
    ]


def test_a_first_table_whose_history_expired_is_not_torn():
    # the rejects' commits expired; raw's (always the later of a pair) remain
    assert torn_between([], [marked("a", 1, 1, 1)], days(1, 1)) == []


def test_an_unpartitioned_pair():
    assert torn_between([whole_table("a", 1)], [whole_table("a", 1)], TableSlice()) == []
    (stretch,) = torn_between(
        [whole_table("a", 1), whole_table("killed", 2)], [whole_table("a", 1)], TableSlice()
    )
    assert (stretch.slice.label, stretch.first.pair_id) == ("whole table", "killed")


def test_the_message_says_which_table_partition_and_runs_and_what_to_do():
    first = [marked("a", 1, 3, 1, rows=4), marked("killed", 2, 2, 2, rows=1)]
    last = [marked("a", 1, 3, 1, rows=900)]
    message = torn_pair_message(
        "raw.flights", "raw.flights_rejects", "raw.flights", torn_between(first, last, days(2, 2))
    )
    assert (
        message.splitlines()[0]
        == "refusing to read raw.flights: its pair raw.flights_rejects + raw.flights is torn"
    )
    assert (
        "- partition 2024-03-02: run killed committed raw.flights_rejects at 2024-03-09T08:00:00+00:00"
        in message
    )
    assert "(1 row for 2024-03-02)" in message
    assert "but never raw.flights, which still holds run a's commit at" in message
    assert "(900 rows for 2024-03-01..2024-03-03)" in message
    assert message.endswith(
        "Run killed was killed between its two commits. Re-run raw.flights for partition 2024-03-02: "
        "its step writes both tables again, which repairs the pair."
    )
