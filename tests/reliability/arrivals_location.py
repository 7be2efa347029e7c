"""A code location whose sensor requests one run per arrived file version (key + etag).

It stands in for lakehouse_assets/automation/arrival_sensors.py to prove the guarantee the real
sensor relies on: Dagster's daemon launches one run per run key, however often it is asked.
"""

import hashlib
import os
from pathlib import Path

import dagster as dg


@dg.op
def load_arrival() -> None:
    """The work is beside the point here: what counts is how many runs are launched."""


@dg.job
def arrival_job():
    load_arrival()


@dg.sensor(job=arrival_job, minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING)
def arrivals(context: dg.SensorEvaluationContext):
    # No cursor on purpose: every tick re-lists everything, as after a lost cursor or a
    # restarted daemon, so only the run key stands between an arrival and a second run.
    for path in sorted(Path(os.environ["ARRIVALS_DIR"]).glob("*.csv")):
        etag = hashlib.md5(path.read_bytes()).hexdigest()
        yield dg.RunRequest(run_key=f"{path.name}:{etag}", tags={"arrival": path.name})


defs = dg.Definitions(jobs=[arrival_job], sensors=[arrivals])
