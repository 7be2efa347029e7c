"""Starting real writer processes together and collecting what they report."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# generous: 16 processes importing Dagster on a shared 2-core machine take minutes, and a process
# killed here reads as a failure of the test
WORKER_TIMEOUT_S = 600


def catalog_properties(settings, **extra: str) -> dict[str, str]:
    """The product's catalog (SQLite under home, or `LAKEHOUSE_CATALOG_URI`), optionally through a
    fault-injecting class."""
    properties = {"uri": settings.catalog_uri, "warehouse": settings.warehouse_dir.as_uri()}
    if "py-catalog-impl" not in extra:
        properties["type"] = "sql"
    return properties | extra


def spawn(command: str, args: dict) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.workers", command, json.dumps(args)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def collect(processes: list[subprocess.Popen]) -> list[tuple[int, dict | None, str]]:
    """(exit code, reported JSON or None, stderr tail) of every process, waiting boundedly."""
    results = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=WORKER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        lines = [line for line in out.splitlines() if line.startswith("{")]
        results.append((process.returncode, json.loads(lines[-1]) if lines else None, err[-3000:]))
    return results
