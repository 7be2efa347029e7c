"""How common and output tables follow their inputs: declarative automation.

An arrival run takes one dataset from landing to staging (see `sensors.py`). A model table (common,
output) joins several datasets, so it must wait until every input partition exists and then follow
each change of any of them; that is what Dagster's `eager` condition expresses, evaluated by the
automation condition sensor (on by default in Dagster+ and in `dagster dev`'s daemon):

- a model partition is requested when an input was updated (or the partition is missing) since it
  was last requested, no input partition is missing and nothing upstream is still running;
- unlike plain `eager`, not only the latest day: files for any day can arrive (late deliveries,
  corrections), and a changed reference table re-runs the dated model partitions that exist.
"""

import dagster as dg


def follow_inputs() -> dg.AutomationCondition:
    return (
        dg.AutomationCondition.eager()
        .without(dg.AutomationCondition.in_latest_time_window())
        .with_label("eager, any partition")
    )
