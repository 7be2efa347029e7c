"""Arrival sensors, the same cases on S3 (moto's server) and on a local folder.

The environment is chosen by configuration only: each case runs once with `LAKEHOUSE_ENV=local`
and once with `LAKEHOUSE_ENV=aws`, against the resources `build_resources` makes for it.
"""

import datetime as dt
import email
import email.policy
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from lakehouse_assets.assets.factory import build_assets
from lakehouse_assets.automation.arrival_sensors import build_arrival_sensor, target_for
from lakehouse_assets.automation.arrivals import ArrivalCursor
from lakehouse_assets.components.defs_folder import DEFS_DIR, contract_in
from lakehouse_assets.contracts.contract import DatasetContract
from lakehouse_assets.definitions import build_resources
from resources.landing.local import LandedFile
from resources.settings import load_settings
from tests.aws.conftest import configure_aws, create_infrastructure, sent_emails, tick

FLIGHTS = contract_in(DEFS_DIR / "datasets" / "flights" / "defs.yaml")
AIRLINES = contract_in(DEFS_DIR / "datasets" / "airlines" / "defs.yaml")
# many small files a day: the shape that needs more than one page of listing
EVENTS = DatasetContract.model_validate(
    {
        "name": "events",
        "description": "test events, many files a day",
        "source": {
            "glob": "events/*.csv",
            "file_date_pattern": r"events_(?P<date>\d{4}-\d{2}-\d{2})_\d+\.csv$",
        },
        "columns": [{"name": "id"}, {"name": "day"}],
        "partitioning": {"column": "event_day", "start": "2024-01-01"},
        "staging": [{"rename": {"day": "event_day"}}],
    }
)


@dataclass
class Zone:
    """The landing zone of one environment, the resources built for it and a Dagster instance."""

    env: str
    resources: dict
    instance: dg.DagsterInstance
    home: Path
    endpoint: str | None

    @functools.cached_property
    def storage(self):
        """The landing storage as Dagster initialises it (its URI is read from the environment)."""
        with dg.build_sensor_context(resources=self.resources) as context:
            return context.resources.landing_storage

    def put(self, key: str, data: bytes) -> None:
        self.storage.write_bytes(key, data)

    def emails(self) -> list[email.message.EmailMessage]:
        if self.endpoint:
            raw = [item["raw_data"].encode() for item in sent_emails(self.endpoint)]
        else:
            raw = [path.read_bytes() for path in sorted((self.home / "outbox").glob("*.eml"))]
        return [email.message_from_bytes(data, policy=email.policy.default) for data in raw]

    def evaluate(self, contract: DatasetContract, cursor: str | None = None):
        """One tick of a freshly built sensor (a restarted daemon keeps nothing but the cursor)."""
        sensor = build_arrival_sensor(contract)
        definitions = dg.Definitions(
            assets=build_assets([contract]), sensors=[sensor], resources=self.resources
        )
        return tick(sensor, self.instance, definitions, self.resources, cursor)


@pytest.fixture(params=["local", "aws"])
def zone(request, tmp_path, monkeypatch):
    endpoint = None
    if request.param == "aws":
        endpoint = request.getfixturevalue("moto_endpoint")
        configure_aws(monkeypatch, endpoint, tmp_path)
        create_infrastructure()
    else:
        monkeypatch.setenv("LAKEHOUSE_ENV", "local")
        monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path / "lakehouse"))
    settings = load_settings()
    with dg.instance_for_test() as instance:
        yield Zone(request.param, build_resources(settings), instance, settings.home, endpoint)


def flights_file(day: str, rows: str = "2013,1,2,517\n") -> tuple[str, bytes]:
    return f"flights/flights_{day}.csv", f"year,month,day,dep_time\n{rows}".encode()


def test_one_run_per_partition_keyed_by_object_and_etag_and_never_twice(zone):
    for day in ("2013-01-02", "2013-01-03"):
        zone.put(*flights_file(day))
    first = zone.evaluate(FLIGHTS)
    files = {file.key: file for file in zone.storage.list_files(FLIGHTS.source.glob)}
    assert [(r.partition_key, r.run_key) for r in first.run_requests] == [
        (day, f"flights/flights_{day}.csv@{files[f'flights/flights_{day}.csv'].checksum}")
        for day in ("2013-01-02", "2013-01-03")
    ]
    assert zone.evaluate(FLIGHTS, first.cursor).run_requests == []
    # the same bytes uploaded again: a new LastModified, the same object content and etag
    zone.put(*flights_file("2013-01-02"))
    assert zone.evaluate(FLIGHTS, first.cursor).run_requests == []
    subjects = [message["Subject"] for message in zone.emails()]
    expected = "[dev] 2 new file(s) for flights" if zone.env == "aws" else "[local] 2 new file(s) for flights"
    assert subjects == [expected]


def test_a_modified_object_reruns_its_partition_with_a_new_run_key(zone):
    zone.put(*flights_file("2013-01-02"))
    first = zone.evaluate(FLIGHTS)
    zone.put(*flights_file("2013-01-02", rows="2013,1,2,517\n2013,1,2,533\n"))
    (request,) = zone.evaluate(FLIGHTS, first.cursor).run_requests
    assert request.partition_key == "2013-01-02"
    assert request.run_key != first.run_requests[0].run_key
    assert request.run_key.startswith("flights/flights_2013-01-02.csv@")


def test_a_restarted_sensor_resumes_from_its_cursor(zone):
    zone.put(*flights_file("2013-01-02"))
    first = zone.evaluate(FLIGHTS)
    cursor = first.cursor
    zone.put(*flights_file("2013-01-05"))
    restarted = zone.evaluate(FLIGHTS, cursor)
    assert [request.partition_key for request in restarted.run_requests] == ["2013-01-05"]
    # without a cursor (reset) every file is requested again, with the same run keys, which
    # Dagster refuses to launch twice
    reset = zone.evaluate(FLIGHTS)
    assert [r.run_key for r in reset.run_requests] == [
        first.run_requests[0].run_key,
        restarted.run_requests[0].run_key,
    ]


def test_a_file_matching_no_partition_is_reported_once_and_left_in_place(zone):
    for key in ("flights/flights_latest.csv", "flights/flights_2015-01-01.csv"):
        zone.put(key, b"year,month,day\n")
    zone.put(*flights_file("2013-01-02"))
    first = zone.evaluate(FLIGHTS)
    assert [request.partition_key for request in first.run_requests] == ["2013-01-02"]
    assert zone.evaluate(FLIGHTS, first.cursor).run_requests == []
    unmatched = [m for m in zone.emails() if "match no partition" in m["Subject"]]
    assert len(unmatched) == 1
    assert unmatched[0]["Subject"].endswith("2 file(s) for flights match no partition")
    body = unmatched[0].get_content()
    assert "flights/flights_latest.csv" in body and "flights/flights_2015-01-01.csv" in body
    assert zone.storage.exists("flights/flights_latest.csv")
    assert zone.storage.exists("flights/flights_2015-01-01.csv")


def test_more_than_a_thousand_objects_are_all_seen_and_remembered(zone):
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=offset) for offset in range(11)]
    keys = [f"events/events_{day}_{number:03d}.csv" for day in days for number in range(100)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda key: zone.put(key, f"id,day\n{key},x\n".encode()), keys))
    assert len(zone.storage.list_files(EVENTS.source.glob)) == 1100
    first = zone.evaluate(EVENTS)
    assert [request.partition_key for request in first.run_requests] == [day.isoformat() for day in days]
    assert len(ArrivalCursor.parse(first.cursor).recent) == 1100
    assert zone.evaluate(EVENTS, first.cursor).run_requests == []
    zone.put(keys[550], b"id,day\nchanged,x\n")
    (request,) = zone.evaluate(EVENTS, first.cursor).run_requests
    assert request.partition_key == days[5].isoformat()
    assert request.run_key.startswith(f"{keys[550]}@")


def test_a_changed_reference_file_reruns_the_whole_reference_table(zone):
    zone.put("reference/airlines.csv", b"carrier,name\n9E,Endeavor Air Inc.\n")
    first = zone.evaluate(AIRLINES)
    zone.put("reference/airlines.csv", b"carrier,name\n9E,Endeavor Air Inc.\nAA,American Airlines Inc.\n")
    (request,) = zone.evaluate(AIRLINES, first.cursor).run_requests
    assert request.partition_key is None
    assert request.run_key != first.run_requests[0].run_key
    graph = dg.Definitions(assets=build_assets([AIRLINES]), resources=zone.resources).resolve_asset_graph()
    assert target_for(AIRLINES).resolve(graph) == {
        dg.AssetKey(["landing", "airlines"]),
        dg.AssetKey(["raw", "airlines"]),
        dg.AssetKey(["raw", "airlines_rejects"]),
        dg.AssetKey(["staging", "airlines"]),
    }


def test_an_archived_file_leaves_every_glob_and_keeps_its_bytes(zone):
    key, data = flights_file("2013-01-02")
    zone.put(key, data)
    assert zone.storage.archive(key) == f"_archive/{key}"
    assert not zone.storage.exists(key)
    assert zone.storage.read_bytes(f"_archive/{key}") == data
    assert zone.storage.list_files("*") == []


def test_files_with_equal_timestamps_are_not_skipped(tmp_path, monkeypatch):
    """Local files get their modification times set; the cursor logic is the same for S3 objects."""
    monkeypatch.setenv("LAKEHOUSE_ENV", "local")
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path))
    settings = load_settings()
    with dg.instance_for_test() as instance:
        zone = Zone("local", build_resources(settings), instance, settings.home, None)
        stamp = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC).timestamp()
        zone.put(*flights_file("2013-01-02"))
        os.utime(settings.landing_dir / "flights/flights_2013-01-02.csv", (stamp, stamp))
        first = zone.evaluate(FLIGHTS)
        # written after the tick, stamped with the same second (as S3 does within one second)
        zone.put(*flights_file("2013-01-03"))
        os.utime(settings.landing_dir / "flights/flights_2013-01-03.csv", (stamp, stamp))
        (request,) = zone.evaluate(FLIGHTS, first.cursor).run_requests
        assert request.partition_key == "2013-01-03"


def _file(key: str, etag: str, at: dt.datetime) -> LandedFile:
    return LandedFile(key=key, size=1, checksum=etag, last_modified=at)


def test_the_cursor_forgets_only_objects_older_than_its_grace_window():
    start = dt.datetime(2024, 5, 6, 12, tzinfo=dt.UTC)
    old = _file("a", "1", start)
    new, cursor = ArrivalCursor().advance([old], grace=dt.timedelta(hours=1))
    assert new == [old]
    later = _file("b", "2", start + dt.timedelta(hours=3))
    new, cursor = cursor.advance([old, later], grace=dt.timedelta(hours=1))
    assert new == [later]
    assert cursor.recent == {"b": "2"}
    # "a" left the window: still not new, although the cursor no longer lists it
    same_second = _file("c", "3", later.last_modified)
    new, cursor = ArrivalCursor.parse(cursor.serialize()).advance(
        [old, later, same_second], dt.timedelta(hours=1)
    )
    assert new == [same_second]
