"""output.carrier_daily_stats: written in Python to show that a model can be code, not only steps."""

import narwhals as nw


def build(flights: nw.DataFrame) -> nw.DataFrame:
    """One row per flight date and carrier.

    A flight without a departure time was cancelled; the delay averages skip flights that lack the
    value (cancelled or diverted), which is what `mean` does with nulls.
    """
    return (
        flights.group_by("flight_date", "carrier", "carrier_name")
        .agg(
            nw.len().alias("flights"),
            nw.col("dep_time").count().alias("departed"),
            nw.col("dep_delay").mean().alias("avg_dep_delay_min"),
            nw.col("arr_delay").mean().alias("avg_arr_delay_min"),
        )
        .with_columns(
            nw.col("flights").cast(nw.Int64),
            (nw.col("flights") - nw.col("departed")).cast(nw.Int64).alias("cancelled"),
        )
        .select(
            "flight_date",
            "carrier",
            "carrier_name",
            "flights",
            "cancelled",
            "avg_dep_delay_min",
            "avg_arr_delay_min",
        )
        .sort("flight_date", "carrier")
    )
