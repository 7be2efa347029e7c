"""The maintenance job compacts crowded partitions as part of its pass, and reports it."""

import datetime as dt

from lakehouse_assets.automation.maintenance import table_maintenance_job
from resources.catalog.resource import IcebergCatalogResource
from tests.lakehouse_assets.cli.tables import appended_table
from tests.reliability.harness import catalog_properties
from tests.reliability.test_maintenance import maintenance_report


def _run(settings, **config):
    resource = IcebergCatalogResource(properties=catalog_properties(settings))
    return table_maintenance_job.execute_in_process(
        resources={"catalog": resource}, run_config={"ops": {"maintain_tables": {"config": config}}}
    )


def test_the_maintenance_job_compacts_crowded_partitions_of_every_table(settings, catalog):
    appended_table(catalog, "staging.readings", {dt.date(2024, 1, 1): 5, dt.date(2024, 1, 2): 2})
    result = _run(settings)
    assert result.success
    report = maintenance_report(result)["staging.readings"]
    assert (report["partitions_compacted"], report["files_removed"], report["files_added"]) == (1, 5, 1)
    table = catalog.load_table("staging.readings")
    assert len(list(table.scan().plan_files())) == 3
    assert table.scan().count() == 35


def test_compaction_can_be_switched_off_and_tables_chosen(settings, catalog):
    appended_table(catalog, "staging.readings", {dt.date(2024, 1, 1): 5})
    appended_table(catalog, "staging.others", {dt.date(2024, 1, 1): 5})
    report = maintenance_report(_run(settings, compact=False))
    assert report["staging.readings"]["compaction_skipped"] == "switched off"
    report = maintenance_report(_run(settings, tables=["staging.others"], compaction_min_files=5))
    assert list(report) == ["staging.others"] and report["staging.others"]["files_removed"] == 5
