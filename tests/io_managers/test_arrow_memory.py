import os
import subprocess
import sys

import pytest

SCRIPT = """
import pyarrow as pa
from io_managers.arrow_memory import use_reusing_pool
print(use_reusing_pool(), pa.default_memory_pool().backend_name, use_reusing_pool())
"""


def _run(pool: str | None) -> list[str]:
    env = {key: value for key, value in os.environ.items() if key != "ARROW_DEFAULT_MEMORY_POOL"}
    if pool is not None:
        env["ARROW_DEFAULT_MEMORY_POOL"] = pool
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    return result.stdout.split()


def test_a_mimalloc_default_becomes_jemalloc_once_per_process():
    import pyarrow as pa

    if "jemalloc" not in pa.supported_memory_backends() or "mimalloc" not in pa.supported_memory_backends():
        pytest.fail(f"this pyarrow build lacks a pool the product expects: {pa.supported_memory_backends()}")
    assert _run("mimalloc") == ["jemalloc", "jemalloc", "jemalloc"]


def test_a_pool_chosen_otherwise_stays():
    assert _run("system") == ["system", "system", "system"]


def test_the_landing_read_allocates_from_the_reusing_pool():
    script = """
import datetime as dt
import pyarrow as pa
from lakehouse_assets.components.defs_folder import DEFS_DIR, contract_in
from lakehouse_assets.layers.landing import read_landed_file
from resources.landing.local import LandedFile
contract = contract_in(DEFS_DIR / "datasets" / "flights" / "defs.yaml")
header = ",".join(contract.column_names)
data = (header + "\\n" + "," * (len(contract.column_names) - 1) + "\\n").encode()
before = pa.default_memory_pool().backend_name
file = LandedFile(key="flights/flights_2013-01-01.csv", size=len(data), checksum="0")
rows = read_landed_file(data, file, contract, dt.datetime.now(dt.UTC)).num_rows
print(before, pa.default_memory_pool().backend_name, rows)
"""
    env = {key: value for key, value in os.environ.items() if key != "ARROW_DEFAULT_MEMORY_POOL"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.split() == ["mimalloc", "jemalloc", "1"]
