"""The sensor that evaluates the models' automation conditions (`conditions.py`), declared in code.

Dagster creates `default_automation_condition_sensor` on its own only when no sensor is declared,
and since 1.13 creates it STOPPED: on a fresh deployment nothing would ever request a common or
output partition after an arrival. Declaring it here lets the code say where it runs:

- on AWS it runs from the start, like the arrival sensors: an arrival that does not reach the
  outputs is the failure this product exists to prevent;
- locally it runs too. It only reacts to materialisations someone made (the arrival sensors are
  off locally, so nothing starts by itself), and `dagster dev` users expect a materialised staging
  slice to move common and output along, as the README's walkthrough shows.
"""

import dagster as dg

AUTOMATION_SENSOR = "lakehouse_automation"


def build_automation_sensor(status: dg.DefaultSensorStatus) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        # every asset: those without a condition are ignored, new model contracts are covered
        target=dg.AssetSelection.all(),
        default_status=status,
        description="Requests common and output partitions whose inputs changed and passed their checks.",
    )
