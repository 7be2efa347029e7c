"""Eight processes create the same namespace and table at the same moment: one table, no error."""

from tests.reliability.harness import catalog_properties, collect, spawn

PROCESSES = 8


def test_concurrent_creators_all_get_the_one_table(settings, catalog, tmp_path, record_property):
    go = tmp_path / "go"
    args = {"catalog": catalog_properties(settings.home), "table": "fresh.created", "go": str(go)}
    processes = [spawn("create", args) for _ in range(PROCESSES)]
    go.touch()
    results = collect(processes)

    assert [code for code, _, _ in results] == [0] * PROCESSES, [err for _, _, err in results if err]
    uuids = {report["table_uuid"] for _, report, _ in results}
    assert uuids == {str(catalog.load_table("fresh.created").metadata.table_uuid)}
    assert catalog.list_tables("fresh") == [("fresh", "created")]
    record_property("reliability.create_race", f"{PROCESSES} creators, 1 table")
