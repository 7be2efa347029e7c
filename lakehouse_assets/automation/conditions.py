"""How common and output tables follow their inputs: declarative automation.

An arrival run takes one dataset from landing to staging (see `sensors.py`). A model table (common,
output) joins several datasets, so it must wait until every input partition exists and then follow
each change of any of them; that is what Dagster's `eager` condition expresses, evaluated by the
automation condition sensor (`automation_sensor.py`, declared in code so it runs where it should):

- a model partition is requested when an input was updated (or the partition is missing) since it
  was last requested, no input partition is missing and nothing upstream is still running;
- unlike plain `eager`, not only the latest day: files for any day can arrive (late deliveries,
  corrections), and a changed reference table re-runs the dated model partitions that exist;
- never from a slice whose blocking checks failed: a run stops downstream steps after a failed
  blocking check, but the table was committed before its audits ran, so without this the next
  automation tick would build the models from the very slice the check rejected. Re-running the
  input (its checks passing) is what releases the models.
"""

import dagster as dg


def inputs_checked() -> dg.AutomationCondition:
    """Dagster's `all_deps_blocking_checks_passed`, except that an input requested on this same tick
    counts as checked: its checks are not yet requested then, so the built-in condition would hold
    an output back one tick behind its common input. In one run, a failed blocking check of the
    input stops the output step anyway."""
    return dg.AutomationCondition.all_deps_match(
        dg.AutomationCondition.all_checks_match(
            dg.AutomationCondition.check_passed() | dg.AutomationCondition.will_be_requested(),
            blocking_only=True,
        )
        | dg.AutomationCondition.will_be_requested()
    ).with_label("all_deps_blocking_checks_passed")


def follow_inputs() -> dg.AutomationCondition:
    return (
        (
            dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
            & inputs_checked()
        )
        # the label is what the UI shows for the whole condition
        .with_label("eager, any partition, inputs' blocking checks passed")
    )
