"""Eight processes create the same namespace and table at the same moment: one table, no error."""

import pytest

from tests.reliability.harness import catalog_properties, collect, spawn

PROCESSES = 8
ROUNDS = 2


@pytest.mark.parametrize("catalog_db", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_concurrent_creators_all_get_the_one_table(
    round_, catalog_db, settings, catalog, tmp_path, record_property
):
    # a fresh namespace every round: the namespace insert races as well as the table's
    namespace = f"fresh{round_}"
    go = tmp_path / "go"
    args = {"catalog": catalog_properties(settings), "table": f"{namespace}.created", "go": str(go)}
    processes = [spawn("create", args) for _ in range(PROCESSES)]
    go.touch()
    results = collect(processes)

    assert [code for code, _, _ in results] == [0] * PROCESSES, [err for _, _, err in results if err]
    uuids = {report["table_uuid"] for _, report, _ in results}
    assert uuids == {str(catalog.load_table(f"{namespace}.created").metadata.table_uuid)}
    assert catalog.list_tables(namespace) == [(namespace, "created")]
    record_property(
        f"reliability.{catalog_db}.create_race_{round_}", f"{PROCESSES} creators, 1 namespace, 1 table"
    )
