"""The nycflights13 example end to end, verified by reading Iceberg with plain pyiceberg."""

import datetime as dt
import hashlib
import io
import json
import zipfile

import dagster as dg
import pandas as pd
import pytest

from lakehouse_assets.assets.extracts import build_extract_assets
from lakehouse_assets.assets.factory import build_assets
from lakehouse_assets.cli.demo import DATA, write_demo_landing
from lakehouse_assets.components.defs_folder import contracts_in
from lakehouse_assets.layers.landing import LandingFileError
from resources.landing.local import LocalLandingStorage
from tests.conftest import materialize_partitions

START, END = dt.date(2013, 1, 1), dt.date(2013, 1, 3)
MISSING_AIRPORTS = {"BQN", "SJU", "STT", "PSE"}


@pytest.fixture
def assets():
    return build_assets(contracts_in())


@pytest.fixture
def lakehouse(settings, resources, assets):
    """Demo landing for three days, reference tables and the three days materialised in one run."""
    write_demo_landing(LocalLandingStorage(root=str(settings.landing_dir)), START, END)
    unpartitioned = [key for asset in assets if asset.partitions_def is None for key in asset.keys]
    assert dg.materialize(assets, resources=resources, selection=unpartitioned).success
    partitioned = dg.AssetSelection.all() - dg.AssetSelection.assets(*unpartitioned)
    assert materialize_partitions(assets, resources, str(START), str(END), selection=partitioned).success
    return settings


def source_flights() -> pd.DataFrame:
    with zipfile.ZipFile(DATA / "flights.csv.zip") as archive:
        frame = pd.read_csv(io.BytesIO(archive.read("flights.csv")))
    frame["flight_date"] = pd.to_datetime(frame[["year", "month", "day"]]).dt.date
    return frame[(frame.flight_date >= START) & (frame.flight_date <= END)]


def scan(catalog, identifier: str) -> pd.DataFrame:
    return catalog.load_table(identifier).scan().to_pandas()


def test_every_layer_holds_every_source_row(lakehouse, catalog):
    expected = source_flights().groupby("flight_date").size().to_dict()
    landing = scan(catalog, "landing.flights")
    assert landing.groupby("_file_date").size().to_dict() == expected
    assert len(scan(catalog, "raw.flights")) == sum(expected.values())
    assert len(scan(catalog, "raw.flights_rejects")) == 0
    staged = scan(catalog, "staging.flights")
    assert staged.groupby("flight_date").size().to_dict() == expected
    assert len(scan(catalog, "common.flights")) == sum(expected.values())
    # landing is verbatim text: the source's "NA" survives until raw types it
    assert (landing.dep_time == "NA").sum() == staged.dep_time.isna().sum() > 0
    assert landing._source_line.min() == 2
    assert len(scan(catalog, "staging.airports")) == 1458


def test_common_flights_keeps_flights_whose_destination_is_unknown(lakehouse, catalog):
    common = scan(catalog, "common.flights")
    unknown = common[common.dest_name.isna()]
    assert len(unknown) > 0
    assert set(unknown.dest) <= MISSING_AIRPORTS
    assert common.carrier_name.notna().all()
    assert common.origin_name.notna().all()
    weather = scan(catalog, "staging.weather").set_index(["origin", "time_hour"]).temp
    sample = common.dropna(subset=["origin_temp"]).iloc[0]
    assert weather.loc[(sample.origin, sample.time_hour)] == sample.origin_temp
    assert common.origin_temp.notna().mean() > 0.95


def test_carrier_daily_stats_match_figures_recomputed_from_the_source(lakehouse, catalog):
    source = source_flights()
    expected = (
        source.groupby(["flight_date", "carrier"])
        .agg(
            flights=("flight", "size"),
            cancelled=("dep_time", lambda values: values.isna().sum()),
            avg_dep_delay_min=("dep_delay", "mean"),
            avg_arr_delay_min=("arr_delay", "mean"),
        )
        .reset_index()
        .sort_values(["flight_date", "carrier"], ignore_index=True)
    )
    actual = scan(catalog, "output.carrier_daily_stats").sort_values(
        ["flight_date", "carrier"], ignore_index=True
    )
    assert list(actual.columns) == [
        "flight_date",
        "carrier",
        "carrier_name",
        "flights",
        "cancelled",
        "avg_dep_delay_min",
        "avg_arr_delay_min",
    ]
    pd.testing.assert_frame_equal(
        actual.drop(columns="carrier_name"), expected, check_dtype=False, check_exact=False, rtol=1e-9
    )
    assert actual.loc[actual.carrier == "UA", "carrier_name"].iloc[0] == "United Air Lines Inc."


def test_the_demo_extract_is_the_days_carrier_stats_as_csv(lakehouse, resources, catalog):
    (extract,) = build_extract_assets(contracts_in())
    assert dg.materialize([extract], resources=resources, partition_key="2013-01-02").success
    path = lakehouse.exports_dir / "carrier_stats/2013-01-02/carrier_daily_stats.csv"
    delivered = pd.read_csv(path, sep=";", parse_dates=["flight_date"])
    stats = scan(catalog, "output.carrier_daily_stats")
    day = stats[stats.flight_date == dt.date(2013, 1, 2)].sort_values("carrier", ignore_index=True)
    renamed = day.rename(
        columns={
            "carrier": "carrier_code",
            "avg_dep_delay_min": "avg_departure_delay_min",
            "avg_arr_delay_min": "avg_arrival_delay_min",
        }
    )
    renamed["flight_date"] = pd.to_datetime(renamed.flight_date)
    pd.testing.assert_frame_equal(delivered, renamed, check_dtype=False)
    manifest = json.loads(path.with_name(path.name + ".manifest.json").read_text())
    assert manifest["rows"] == len(day) > 0
    assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_rematerialising_a_day_leaves_the_same_rows(lakehouse, resources, assets, catalog):
    before = {
        name: len(scan(catalog, name)) for name in ("landing.flights", "staging.flights", "common.flights")
    }
    stats = scan(catalog, "output.carrier_daily_stats").sort_values(
        ["flight_date", "carrier"], ignore_index=True
    )
    partitioned = [key for asset in assets if asset.partitions_def is not None for key in asset.keys]
    assert materialize_partitions(assets, resources, "2013-01-02", selection=partitioned).success
    after = {name: len(scan(catalog, name)) for name in before}
    assert after == before
    again = scan(catalog, "output.carrier_daily_stats").sort_values(
        ["flight_date", "carrier"], ignore_index=True
    )
    pd.testing.assert_frame_equal(again, stats)


def _rewrite_landed(settings, key: str, edit) -> None:
    path = settings.landing_dir / key
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


def test_bad_rows_are_quarantined_and_audited(lakehouse, resources, assets, catalog):
    def corrupt(lines):
        fields = lines[4].split(",")
        fields[3] = "5x7"  # dep_time, line 5
        lines[4] = ",".join(fields)
        fields = lines[9].split(",")
        fields[9] = ""  # carrier is required, line 10
        lines[9] = ",".join(fields)
        return lines

    _rewrite_landed(lakehouse, "flights/flights_2013-01-02.csv", corrupt)
    selection = [
        dg.AssetKey(["landing", "flights"]),
        dg.AssetKey(["raw", "flights"]),
        dg.AssetKey(["raw", "flights_rejects"]),
    ]
    result = materialize_partitions(assets, resources, "2013-01-02", selection=selection)
    rejects = scan(catalog, "raw.flights_rejects").sort_values("_source_line", ignore_index=True)
    assert rejects._source_line.tolist() == [5, 10]
    assert rejects._source_file.unique().tolist() == ["flights/flights_2013-01-02.csv"]
    assert rejects.dep_time[0] == "5x7"
    assert rejects._reject_reason.tolist() == [
        "dep_time: '5x7' is not a valid int",
        "carrier: required value is missing",
    ]
    landing_rows = (scan(catalog, "landing.flights")._file_date == dt.date(2013, 1, 2)).sum()
    raw_rows = (scan(catalog, "raw.flights")._file_date == dt.date(2013, 1, 2)).sum()
    assert raw_rows == landing_rows - 2
    (audit,) = result.get_asset_check_evaluations()
    assert audit.passed
    assert audit.metadata["rejected_rows"].value == 2
    assert audit.metadata["unaccounted_rows"].value == 0


def test_an_unreadable_file_fails_landing_and_changes_nothing(lakehouse, resources, assets, catalog):
    landing = catalog.load_table("landing.flights")
    snapshot = landing.current_snapshot().snapshot_id
    _rewrite_landed(
        lakehouse, "flights/flights_2013-01-03.csv", lambda lines: [lines[0] + ",carrier", *lines[1:]]
    )
    with pytest.raises(
        LandingFileError, match=r"flights/flights_2013-01-03.csv: header .* repeated columns \['carrier'\]"
    ):
        materialize_partitions(
            assets, resources, "2013-01-03", selection=[dg.AssetKey(["landing", "flights"])]
        )
    landing.refresh()
    assert landing.current_snapshot().snapshot_id == snapshot
