"""End to end through the running webserver, the way the Dagster UI drives it.

A real `dagster-webserver` is started on loopback against `workspace.yaml`, with its own
LAKEHOUSE_HOME and DAGSTER_HOME. Dagster 1.13's instance without a dagster.yaml uses the
QueuedRunCoordinator, whose runs wait for `dagster-daemon`; the DAGSTER_HOME here therefore has a
dagster.yaml selecting the DefaultRunCoordinator, which hands runs to the launcher at once, so no
daemon is needed. The tests speak GraphQL over HTTP with the same queries and
launch parameters the UI builds (`LaunchAssetExecutionButton` / `LaunchAssetChoosePartitionsDialog`:
the hidden `__ASSET_JOB`, an asset selection plus the selected assets' checks, and for a
partition the tags the partition query returns), then read the Iceberg tables back with plain
pyiceberg.
"""

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOCATION_NAME = "medallion_lakehouse"
REPOSITORY_NAME = "__repository__"
ASSET_JOB = "__ASSET_JOB"
DEMO_START, DEMO_END = "2013-01-01", "2013-01-03"
PARTITION = "2013-01-02"
OTHER_PARTITION = "2013-01-03"  # landed, but never materialised

STARTUP_TIMEOUT_S = 120
RUN_TIMEOUT_S = 300
HTTP_TIMEOUT_S = 60

DATASETS = ("airlines", "airports", "planes", "flights", "weather")
EXPECTED_ASSET_KEYS = {
    *((layer, name) for name in DATASETS for layer in ("landing", "raw", "staging")),
    *(("raw", f"{name}_rejects") for name in DATASETS),
    ("common", "flights"),
    ("output", "carrier_daily_stats"),
    # the demo's extract: a file for consumers (README, "Delivering extracts")
    ("delivery", "carrier_daily_stats_csv"),
}
# raw.<x> and raw.<x>_rejects are one multi-asset that cannot be subset: select both, as with flights.
REFERENCE_SELECTION = [
    key
    for name in ("airlines", "airports")
    for key in (("landing", name), ("raw", name), ("raw", f"{name}_rejects"), ("staging", name))
]
PARTITION_SELECTION = [("landing", "flights"), ("raw", "flights"), ("raw", "flights_rejects")]
TERMINAL_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
# Without this the instance defaults to the QueuedRunCoordinator and runs wait for a daemon.
INSTANCE_YAML = """\
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
telemetry:
  enabled: false
"""


# --------------------------------------------------------------------------------------------
# GraphQL documents (fields as in dagster_graphql's schema)
# --------------------------------------------------------------------------------------------

PYTHON_ERROR = "... on PythonError { message stack }"

WORKSPACE_QUERY = f"""
query Workspace {{
  workspaceOrError {{
    __typename
    ... on Workspace {{
      locationEntries {{
        name
        loadStatus
        locationOrLoadError {{ __typename {PYTHON_ERROR} }}
      }}
    }}
    {PYTHON_ERROR}
  }}
}}
"""

INSTANCE_QUERY = """
query Instance {
  instance {
    runQueuingSupported
    runLauncher { name }
    info
    daemonHealth { allDaemonStatuses { daemonType required healthy } }
  }
}
"""

# What LaunchAssetExecutionButton loads for the assets it is asked to materialise.
ASSET_NODES_QUERY = """
query AssetNodes {
  assetNodes {
    assetKey { path }
    jobNames
    opNames
    isPartitioned
    isMaterializable
    partitionDefinition { type name }
    dependencyKeys { path }
    repository { name location { name } }
    assetChecksOrError {
      __typename
      ... on AssetChecks { checks { name jobNames } }
    }
  }
}
"""

# ConfigFetch.tsx CONFIG_PARTITION_FOR_ASSET_JOB_QUERY: the run config and tags of one partition.
PARTITION_CONFIG_QUERY = f"""
query ConfigPartitionForAssetJobQuery(
  $repositoryName: String!
  $repositoryLocationName: String!
  $jobName: String!
  $partitionName: String!
  $assetKeys: [AssetKeyInput!]!
) {{
  pipelineOrError(
    params: {{
      pipelineName: $jobName
      repositoryName: $repositoryName
      repositoryLocationName: $repositoryLocationName
    }}
  ) {{
    __typename
    ... on Pipeline {{
      partition(partitionName: $partitionName, selectedAssetKeys: $assetKeys) {{
        name
        runConfigOrError {{ __typename ... on PartitionRunConfig {{ yaml }} {PYTHON_ERROR} }}
        tagsOrError {{ __typename ... on PartitionTags {{ results {{ key value }} }} {PYTHON_ERROR} }}
      }}
    }}
    ... on Error {{ message }}
  }}
}}
"""

LAUNCH_MUTATION = f"""
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {{
  launchPipelineExecution(executionParams: $executionParams) {{
    __typename
    ... on LaunchRunSuccess {{
      run {{
        runId
        status
        jobName
        tags {{ key value }}
        assetSelection {{ path }}
        assetCheckSelection {{ name assetKey {{ path }} }}
      }}
    }}
    ... on PipelineConfigValidationInvalid {{ errors {{ message path reason }} }}
    ... on InvalidStepError {{ invalidStepKey }}
    ... on InvalidOutputError {{ stepKey invalidOutputName }}
    ... on Error {{ message }}
    {PYTHON_ERROR}
  }}
}}
"""

RUN_QUERY = f"""
query Run($runId: ID!) {{
  runOrError(runId: $runId) {{
    __typename
    ... on Run {{ runId status stepStats {{ stepKey status }} }}
    ... on Error {{ message }}
    {PYTHON_ERROR}
  }}
}}
"""

RUN_LOGS_QUERY = f"""
query RunLogs($runId: ID!) {{
  logsForRun(runId: $runId, limit: 2000) {{
    __typename
    ... on EventConnection {{
      events {{
        __typename
        ... on MessageEvent {{ message level stepKey }}
        ... on ErrorEvent {{ error {{ message stack }} }}
      }}
    }}
    ... on Error {{ message }}
    {PYTHON_ERROR}
  }}
}}
"""

ASSET_MATERIALIZATIONS_QUERY = """
query AssetMaterializations($assetKey: AssetKeyInput!, $partitions: [String!]) {
  assetOrError(assetKey: $assetKey) {
    __typename
    ... on Asset {
      assetMaterializations(partitions: $partitions, limit: 1) {
        runId
        partition
        metadataEntries {
          label
          ... on IntMetadataEntry { intValue }
          ... on TextMetadataEntry { text }
        }
      }
      definition {
        assetChecksOrError {
          ... on AssetChecks {
            checks {
              name
              executionForLatestMaterialization {
                runId
                status
                partition
                evaluation {
                  success
                  metadataEntries { label ... on IntMetadataEntry { intValue } }
                }
              }
            }
          }
        }
      }
    }
    ... on Error { message }
  }
}
"""


# --------------------------------------------------------------------------------------------
# The webserver under test
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 80) -> str:
    if not path.exists():
        return "(no output file)"
    text = path.read_text(errors="replace").splitlines()
    # drop Dagster's beta/preview warnings (two lines each), which every process start repeats
    kept = [
        line
        for index, line in enumerate(text)
        if not ("Warning:" in line and "site-packages/dagster" in line)
        and not (line.strip() == "return fn(*args, **kwargs)" and index and "Warning:" in text[index - 1])
    ]
    return "\n".join(kept[-lines:])


@dataclass
class Webserver:
    url: str
    home: Path
    dagster_home: Path
    process: subprocess.Popen
    stdout_path: Path
    stderr_path: Path
    client: httpx.Client

    def diagnostics(self) -> str:
        state = "running" if self.process.poll() is None else f"exited with {self.process.returncode}"
        return (
            f"\n--- webserver ({state}) stderr, last lines ---\n{_tail(self.stderr_path)}"
            f"\n--- webserver stdout, last lines ---\n{_tail(self.stdout_path, 30)}"
        )

    def gql(self, query: str, variables: dict | None = None) -> dict:
        try:
            response = self.client.post(
                f"{self.url}/graphql", json={"query": query, "variables": variables or {}}
            )
        except httpx.HTTPError as exc:
            pytest.fail(f"GraphQL request failed: {exc!r}{self.diagnostics()}")
        if response.status_code != 200:
            pytest.fail(f"GraphQL HTTP {response.status_code}: {response.text[:2000]}{self.diagnostics()}")
        body = response.json()
        if body.get("errors"):
            pytest.fail(f"GraphQL errors: {body['errors']}{self.diagnostics()}")
        return body["data"]


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the webserver, then make sure nothing it started (code server, run workers) lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    # The webserver was started in its own session, so its process group holds only its children.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _wait_until_ready(server: Webserver) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_problem = "never answered"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"dagster-webserver exited early ({server.process.returncode}){server.diagnostics()}")
        try:
            response = server.client.get(f"{server.url}/server_info", timeout=5)
            if response.status_code == 200:
                data = server.client.post(
                    f"{server.url}/graphql", json={"query": WORKSPACE_QUERY}, timeout=HTTP_TIMEOUT_S
                ).json()["data"]["workspaceOrError"]
                entries = {entry["name"]: entry for entry in data.get("locationEntries", [])}
                entry = entries.get(LOCATION_NAME)
                if entry and entry["loadStatus"] == "LOADED":
                    location = entry["locationOrLoadError"]
                    if location["__typename"] == "PythonError":
                        pytest.fail(f"code location failed to load: {location}{server.diagnostics()}")
                    assert location["__typename"] == "RepositoryLocation", location
                    return
                last_problem = f"workspace not loaded yet: {data}"
            else:
                last_problem = f"/server_info answered {response.status_code}"
        except httpx.HTTPError as exc:
            last_problem = repr(exc)
        time.sleep(1)
    pytest.fail(f"webserver not ready after {STARTUP_TIMEOUT_S}s: {last_problem}{server.diagnostics()}")


@pytest.fixture(scope="module")
def webserver(tmp_path_factory) -> Iterator[Webserver]:
    base = tmp_path_factory.mktemp("webserver")
    home = base / "lakehouse"
    dagster_home = base / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(INSTANCE_YAML)
    env = os.environ.copy()
    env.update(
        LAKEHOUSE_HOME=str(home),
        LAKEHOUSE_ENV="local",
        DAGSTER_HOME=str(dagster_home),
        PYTHONUNBUFFERED="1",
    )

    landed = subprocess.run(
        [str(BIN / "lakehouse"), "demo-landing", "--start", DEMO_START, "--end", DEMO_END],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert landed.returncode == 0, f"lakehouse demo-landing failed:\n{landed.stdout}\n{landed.stderr}"
    assert (home / "landing" / "flights" / f"flights_{PARTITION}.csv").is_file(), landed.stdout

    port = _free_port()
    stdout_path, stderr_path = base / "webserver.out", base / "webserver.err"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [
                str(BIN / "dagster-webserver"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                str(PROJECT_ROOT / "workspace.yaml"),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    client = httpx.Client(timeout=HTTP_TIMEOUT_S, trust_env=False)
    server = Webserver(
        url=f"http://127.0.0.1:{port}",
        home=home,
        dagster_home=dagster_home,
        process=process,
        stdout_path=stdout_path,
        stderr_path=stderr_path,
        client=client,
    )
    try:
        _wait_until_ready(server)
        yield server
    finally:
        client.close()
        _stop(process)


# --------------------------------------------------------------------------------------------
# What the UI does
# --------------------------------------------------------------------------------------------


def _asset_nodes(server: Webserver) -> dict[tuple[str, ...], dict]:
    nodes = server.gql(ASSET_NODES_QUERY)["assetNodes"]
    return {tuple(node["assetKey"]["path"]): node for node in nodes}


def _execution_params(nodes: list[dict], tags: list[dict], run_config_yaml: str = "{}") -> dict:
    """executionParamsForAssetJob: the asset job, the assets, and the checks of those assets in it."""
    checks = [
        {"name": check["name"], "assetKey": {"path": node["assetKey"]["path"]}}
        for node in nodes
        if node["assetChecksOrError"]["__typename"] == "AssetChecks"
        for check in node["assetChecksOrError"]["checks"]
        if not check["jobNames"] or ASSET_JOB in check["jobNames"]
    ]
    return {
        "mode": "default",
        "executionMetadata": {"tags": tags},
        "runConfigData": run_config_yaml,
        "selector": {
            "repositoryLocationName": LOCATION_NAME,
            "repositoryName": REPOSITORY_NAME,
            "pipelineName": ASSET_JOB,
            "assetSelection": [{"path": node["assetKey"]["path"]} for node in nodes],
            "assetCheckSelection": checks,
        },
    }


def _launch(server: Webserver, execution_params: dict) -> dict:
    result = server.gql(LAUNCH_MUTATION, {"executionParams": execution_params})["launchPipelineExecution"]
    if result["__typename"] != "LaunchRunSuccess":
        pytest.fail(f"launch failed: {result}{server.diagnostics()}")
    return result["run"]


def _run_failure_report(server: Webserver, run_id: str) -> str:
    logs = server.gql(RUN_LOGS_QUERY, {"runId": run_id})["logsForRun"]
    lines = []
    for event in logs.get("events", []):
        if event.get("error") or event.get("level") in ("ERROR", "CRITICAL"):
            lines.append(f"[{event['__typename']} {event.get('stepKey')}] {event.get('message')}")
            if event.get("error"):
                lines.append(event["error"]["message"] + "".join(event["error"]["stack"] or []))
    return "\n".join(lines) or f"(no error events; logsForRun answered {logs.get('__typename')})"


def _wait_for_success(server: Webserver, run_id: str) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    run = None
    while time.monotonic() < deadline:
        run = server.gql(RUN_QUERY, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        if run["status"] in TERMINAL_STATUSES:
            break
        time.sleep(1)
    else:
        pytest.fail(
            f"run {run_id} not finished after {RUN_TIMEOUT_S}s (last: {run})\n"
            f"{_run_failure_report(server, run_id)}{server.diagnostics()}"
        )
    if run["status"] != "SUCCESS":
        pytest.fail(
            f"run {run_id} ended {run['status']}; steps: {run['stepStats']}\n"
            f"{_run_failure_report(server, run_id)}{server.diagnostics()}"
        )
    return run


def _latest_materialization(server: Webserver, key: tuple[str, ...], partition: str | None) -> dict:
    variables = {"assetKey": {"path": list(key)}, "partitions": [partition] if partition else None}
    asset = server.gql(ASSET_MATERIALIZATIONS_QUERY, variables)["assetOrError"]
    assert asset["__typename"] == "Asset", asset
    return asset


def _metadata(materialization: dict) -> dict:
    return {
        entry["label"]: entry.get("intValue", entry.get("text"))
        for entry in materialization["metadataEntries"]
    }


def _data_lines(path: Path) -> int:
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    return sum(1 for row in rows if row.strip())


def _catalog(home: Path):
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog("lakehouse", uri=f"sqlite:///{home}/catalog.db", warehouse=f"file://{home}/warehouse")


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


def test_instance_launches_runs_without_a_daemon(webserver):
    instance = webserver.gql(INSTANCE_QUERY)["instance"]
    # A QueuedRunCoordinator would need the daemon to dequeue runs; the default one submits directly.
    assert instance["runQueuingSupported"] is False, instance
    assert instance["runLauncher"]["name"] == "DefaultRunLauncher", instance
    assert "class: DefaultRunCoordinator" in instance["info"], instance["info"]


def test_asset_catalog_lists_every_contract_asset(webserver):
    nodes = _asset_nodes(webserver)
    missing, unexpected = EXPECTED_ASSET_KEYS - set(nodes), set(nodes) - EXPECTED_ASSET_KEYS
    assert set(nodes) == EXPECTED_ASSET_KEYS, f"missing {sorted(missing)}, unexpected {sorted(unexpected)}"
    for key, node in nodes.items():
        assert node["repository"]["name"] == REPOSITORY_NAME, (key, node["repository"])
        assert node["repository"]["location"]["name"] == LOCATION_NAME, (key, node["repository"])
        assert ASSET_JOB in node["jobNames"], (key, node["jobNames"])
        assert node["isMaterializable"], key
        reference = key[1].split("_rejects")[0] in ("airlines", "airports", "planes")
        assert node["isPartitioned"] is not reference, (key, node["partitionDefinition"])
    # raw and its rejects come out of one multi-asset (one op), which carries the reconciliation check
    assert nodes[("raw", "flights")]["opNames"] == nodes[("raw", "flights_rejects")]["opNames"]
    assert nodes[("raw", "flights")]["dependencyKeys"] == [{"path": ["landing", "flights"]}]
    checks = nodes[("raw", "flights")]["assetChecksOrError"]
    assert checks["__typename"] == "AssetChecks", checks
    assert [check["name"] for check in checks["checks"]] == ["landing_rows_reconcile"]


def test_materialise_reference_assets(webserver):
    nodes = _asset_nodes(webserver)
    selected = [nodes[key] for key in REFERENCE_SELECTION]
    run = _launch(webserver, _execution_params(selected, tags=[]))
    # submitted straight to the launcher: never parked in a queue waiting for a daemon
    assert run["status"] != "QUEUED", run
    assert run["jobName"] == ASSET_JOB
    assert sorted(tuple(key["path"]) for key in run["assetSelection"]) == sorted(REFERENCE_SELECTION)
    assert not any(tag["key"] == "dagster/partition" for tag in run["tags"]), run["tags"]
    _wait_for_success(webserver, run["runId"])

    for key in REFERENCE_SELECTION:
        materializations = _latest_materialization(webserver, key, None)["assetMaterializations"]
        assert materializations, f"{key} has no materialisation after run {run['runId']}"
        assert materializations[0]["runId"] == run["runId"], (key, materializations[0])
        assert materializations[0]["partition"] is None, (key, materializations[0])

    catalog = _catalog(webserver.home)
    for name in ("airlines", "airports"):
        lines = _data_lines(webserver.home / "landing" / "reference" / f"{name}.csv")
        assert lines > 0
        landing = catalog.load_table(f"landing.{name}").scan().to_arrow().num_rows
        raw = catalog.load_table(f"raw.{name}").scan().to_arrow().num_rows
        rejects = catalog.load_table(f"raw.{name}_rejects").scan().to_arrow().num_rows
        staging = catalog.load_table(f"staging.{name}").scan().to_arrow().num_rows
        assert landing == lines, (name, landing, lines)
        assert raw + rejects == lines, (name, raw, rejects, lines)
        assert 0 < staging <= raw, (name, staging, raw)
    # planes was not selected, so it was not written
    assert not catalog.table_exists("landing.planes")


def test_materialise_one_flights_partition(webserver):
    nodes = _asset_nodes(webserver)
    selected = [nodes[key] for key in PARTITION_SELECTION]
    keys = [{"path": list(key)} for key in PARTITION_SELECTION]

    # LaunchAssetChoosePartitionsDialog, "single run": ask for the partition's config and tags first.
    pipeline = webserver.gql(
        PARTITION_CONFIG_QUERY,
        {
            "repositoryName": REPOSITORY_NAME,
            "repositoryLocationName": LOCATION_NAME,
            "jobName": ASSET_JOB,
            "partitionName": PARTITION,
            "assetKeys": keys,
        },
    )["pipelineOrError"]
    assert pipeline["__typename"] == "Pipeline", pipeline
    partition = pipeline["partition"]
    assert partition["tagsOrError"]["__typename"] == "PartitionTags", partition
    assert partition["runConfigOrError"]["__typename"] == "PartitionRunConfig", partition
    tags = partition["tagsOrError"]["results"]
    assert {"key": "dagster/partition", "value": PARTITION} in tags, tags

    run = _launch(webserver, _execution_params(selected, tags, partition["runConfigOrError"]["yaml"]))
    assert run["status"] != "QUEUED", run
    assert {"key": "dagster/partition", "value": PARTITION} in run["tags"], run["tags"]
    assert sorted(tuple(key["path"]) for key in run["assetSelection"]) == sorted(PARTITION_SELECTION)
    assert run["assetCheckSelection"] == [
        {"name": "landing_rows_reconcile", "assetKey": {"path": ["raw", "flights"]}}
    ], run["assetCheckSelection"]
    _wait_for_success(webserver, run["runId"])

    landed_file = webserver.home / "landing" / "flights" / f"flights_{PARTITION}.csv"
    lines = _data_lines(landed_file)
    assert lines > 0, landed_file

    # The UI's view of the partition: each selected asset has its latest materialisation from this run.
    for key in PARTITION_SELECTION:
        asset = _latest_materialization(webserver, key, PARTITION)
        materializations = asset["assetMaterializations"]
        assert materializations, f"{key} has no materialisation for {PARTITION} after run {run['runId']}"
        assert materializations[0]["runId"] == run["runId"], (key, materializations[0])
        assert materializations[0]["partition"] == PARTITION, (key, materializations[0])
        # a day that landed but was not selected stays unmaterialised
        other = _latest_materialization(webserver, key, OTHER_PARTITION)["assetMaterializations"]
        assert other == [], (key, other)

    raw_asset = _latest_materialization(webserver, ("raw", "flights"), PARTITION)
    raw_meta = _metadata(raw_asset["assetMaterializations"][0])
    assert raw_meta.get("slice_row_count") == lines, raw_meta
    check = raw_asset["definition"]["assetChecksOrError"]["checks"][0]
    execution = check["executionForLatestMaterialization"]
    assert execution is not None, check
    assert execution["runId"] == run["runId"], execution
    assert execution["status"] == "SUCCEEDED", execution
    assert execution["evaluation"]["success"] is True, execution

    # And the table itself, read with nothing but pyiceberg.
    from pyiceberg.expressions import EqualTo

    catalog = _catalog(webserver.home)
    raw = catalog.load_table("raw.flights")
    day_rows = raw.scan(row_filter=EqualTo("_file_date", PARTITION)).to_arrow()
    assert day_rows.num_rows == lines, (day_rows.num_rows, lines)
    assert set(day_rows.column("_source_file").to_pylist()) == {f"flights/flights_{PARTITION}.csv"}
    assert set(day_rows.column("day").to_pylist()) == {dt.date.fromisoformat(PARTITION).day}
    # only the selected day was written, although three days landed
    assert raw.scan().to_arrow().num_rows == lines
    rejects = catalog.load_table("raw.flights_rejects").scan(row_filter=EqualTo("_file_date", PARTITION))
    assert rejects.to_arrow().num_rows == 0
    landing = catalog.load_table("landing.flights").scan(row_filter=EqualTo("_file_date", PARTITION))
    assert landing.to_arrow().num_rows == lines
