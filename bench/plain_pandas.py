"""Case 4 baseline: the example's transformations as a plain pandas script (no Dagster, no Iceberg).

The same layers as the product, written as someone would without it: every landed file read as
strings with its lineage, typed by the contract (rows that fail go to a rejects frame), trimmed,
dated and de-duplicated, the lookups joined and the daily carrier figures aggregated; every layer
written as one Parquet file per table, and the daily carrier figures delivered as one CSV a day
(the contract's extract). Contracts are read as plain YAML, so the types are the
product's.

    python bench/plain_pandas.py LANDING_DIR OUT_DIR --start 2013-01-01 --end 2013-12-31
"""

import argparse
import datetime as dt
import hashlib
import json
import re
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

CONTRACTS = Path(__file__).resolve().parent.parent / "lakehouse_assets" / "defs" / "datasets"
DELIVERY_COLUMNS = [
    "flight_date",
    "carrier_code",
    "carrier_name",
    "flights",
    "cancelled",
    "avg_departure_delay_min",
    "avg_arrival_delay_min",
]
PANDAS_TYPES = {"int": "Int32", "long": "Int64", "double": "float64", "boolean": "boolean"}


def contract(name: str) -> dict:
    return yaml.safe_load((CONTRACTS / name / "defs.yaml").read_text())["attributes"]


def land(spec: dict, paths: list[Path], landing: Path, loaded_at: pd.Timestamp) -> pd.DataFrame:
    frames = []
    pattern = re.compile(spec["source"].get("file_date_pattern") or "$^")
    for path in paths:
        data = path.read_bytes()
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
        match = pattern.search(path.name)
        frame["_source_file"] = path.relative_to(landing).as_posix()
        frame["_source_checksum"] = hashlib.md5(data, usedforsecurity=False).hexdigest()
        frame["_source_line"] = range(2, len(frame) + 2)
        frame["_loaded_at"] = loaded_at
        frame["_file_date"] = dt.date.fromisoformat(match.group("date")) if match else None
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def type_rows(spec: dict, landed: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    null_values = spec["source"].get("csv", {}).get("null_values", [""])
    typed = landed.copy()
    failed = pd.Series(False, index=landed.index)
    reasons = pd.Series("", index=landed.index)
    for column in spec["columns"]:
        name, type_ = column["name"], column["type"]
        present = ~landed[name].isin(null_values)
        values = landed[name].where(present)
        if type_ in ("int", "long", "double"):
            result = pd.to_numeric(values, errors="coerce")
            if type_ != "double":
                result = result.astype(PANDAS_TYPES[type_])
        elif type_ == "timestamptz":
            result = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
        else:
            result = values
        bad = present & result.isna()
        if not column.get("nullable", True):
            bad |= ~present
        failed |= bad
        reasons = reasons.where(~bad, reasons + f"{name}; ")
        typed[name] = result
    rejects = landed[failed].assign(_reject_reason=reasons[failed])
    return typed[~failed].reset_index(drop=True), rejects


def stage(spec: dict, raw: pd.DataFrame) -> pd.DataFrame:
    frame = raw
    for step in spec.get("staging", []):
        if "trim" in step:
            frame = frame.assign(**{name: frame[name].str.strip() for name in step["trim"]})
        elif "rename" in step:
            frame = frame.rename(columns=step["rename"])
        elif "derive_date" in step:
            parts = step["derive_date"]
            number = (
                frame[parts["year"]].astype("Int64") * 10000
                + frame[parts["month"]] * 100
                + frame[parts["day"]]
            )
            frame = frame.assign(
                **{parts["column"]: pd.to_datetime(number.astype(str), format="%Y%m%d").dt.date}
            )
        elif "deduplicate" in step:
            keys = step["deduplicate"]["keys"]
            order = [*keys, step["deduplicate"]["latest_by"], "_source_file", "_source_line"]
            frame = frame.sort_values(order).drop_duplicates(keys, keep="last").reset_index(drop=True)
    return frame


def lookup(frame: pd.DataFrame, reference: pd.DataFrame, match: dict, columns: dict) -> pd.DataFrame:
    right = (
        reference[[*match.values(), *columns]].drop_duplicates(list(match.values())).rename(columns=columns)
    )
    right = right.rename(columns={value: f"__key_{key}" for key, value in match.items()})
    joined = frame.merge(right, how="left", left_on=list(match), right_on=[f"__key_{key}" for key in match])
    return joined.drop(columns=[f"__key_{key}" for key in match])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("landing", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--start", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--end", type=dt.date.fromisoformat, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    loaded_at = pd.Timestamp.now(tz="UTC")
    days = {args.start + dt.timedelta(days=offset) for offset in range((args.end - args.start).days + 1)}
    staged, rows = {}, {}
    for name in ("airlines", "airports", "planes", "flights", "weather"):
        spec = contract(name)
        paths = sorted(args.landing.glob(spec["source"]["glob"]))
        if spec.get("partitioning"):
            pattern = re.compile(spec["source"]["file_date_pattern"])
            paths = [
                path
                for path in paths
                if dt.date.fromisoformat(pattern.search(path.name).group("date")) in days
            ]
        landed = land(spec, paths, args.landing, loaded_at)
        raw, rejects = type_rows(spec, landed)
        staged[name] = stage(spec, raw)
        for layer, frame in (
            ("landing", landed),
            ("raw", raw),
            ("raw_rejects", rejects),
            ("staging", staged[name]),
        ):
            directory = args.out / layer
            directory.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(directory / f"{name}.parquet", index=False)
        rows[name] = {
            "landing": len(landed),
            "raw": len(raw),
            "rejects": len(rejects),
            "staging": len(staged[name]),
        }

    flights = staged["flights"]
    flights = lookup(flights, staged["airlines"], {"carrier": "carrier"}, {"name": "carrier_name"})
    flights = lookup(flights, staged["airports"], {"origin": "faa"}, {"name": "origin_name"})
    flights = lookup(flights, staged["airports"], {"dest": "faa"}, {"name": "dest_name"})
    flights = lookup(
        flights,
        staged["weather"],
        {"origin": "origin", "time_hour": "time_hour"},
        {
            "temp": "origin_temp",
            "wind_speed": "origin_wind_speed",
            "precip": "origin_precip",
            "visib": "origin_visib",
        },
    )
    (args.out / "common").mkdir(parents=True, exist_ok=True)
    flights.to_parquet(args.out / "common" / "flights.parquet", index=False)
    stats = (
        flights.groupby(["flight_date", "carrier", "carrier_name"], dropna=False)
        .agg(
            flights=("carrier", "size"),
            departed=("dep_time", "count"),
            avg_dep_delay_min=("dep_delay", "mean"),
            avg_arr_delay_min=("arr_delay", "mean"),
        )
        .reset_index()
    )
    stats["cancelled"] = stats["flights"] - stats["departed"]
    stats = stats.drop(columns="departed").sort_values(["flight_date", "carrier"])
    (args.out / "output").mkdir(parents=True, exist_ok=True)
    stats.to_parquet(args.out / "output" / "carrier_daily_stats.parquet", index=False)
    # the example's delivery: one CSV a day for the reporting team, as the contract's extract
    delivery = stats.rename(
        columns={
            "carrier": "carrier_code",
            "avg_dep_delay_min": "avg_departure_delay_min",
            "avg_arr_delay_min": "avg_arrival_delay_min",
        }
    )[DELIVERY_COLUMNS]
    for day, rows_of_day in delivery.groupby("flight_date"):
        directory = args.out / "exports" / "carrier_stats" / str(day)
        directory.mkdir(parents=True, exist_ok=True)
        rows_of_day.to_csv(directory / "carrier_daily_stats.csv", sep=";", index=False)
    rows["common_flights"], rows["carrier_daily_stats"] = len(flights), len(stats)
    sys.stdout.write(
        json.dumps({"seconds": time.perf_counter() - started, "rows": rows, "cpu_s": time.process_time()})
        + "\n"
    )


if __name__ == "__main__":
    main()
