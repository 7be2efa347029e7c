"""The built wheel holds every package of the project, and building it warns about nothing.

setuptools discovers the packages (`[tool.setuptools.packages.find]`), so a new subpackage is never
missing from the wheel; this builds the real wheel from a copy of the sources to prove it.
"""

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]

# pip's build environment installs setuptools; with the project's sources, a few seconds
pytestmark = pytest.mark.slow


def _source_packages() -> set[str]:
    """Every folder of the four packages that holds Python code, as a dotted name."""
    return {
        ".".join(path.parent.relative_to(REPO).parts)
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[zipfile.ZipFile, str]:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in PACKAGES:
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path_factory.mktemp("wheels")
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(wheels), str(source)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("*.whl")
    return zipfile.ZipFile(wheel), completed.stdout + completed.stderr


def test_every_package_with_python_code_is_in_the_wheel(built):
    wheel, _ = built
    in_wheel = {
        name.rpartition("/")[0].replace("/", ".") for name in wheel.namelist() if name.endswith(".py")
    }
    assert _source_packages() - in_wheel == set()
    assert {"lakehouse_assets.contracts", "lakehouse_assets.components", "resources.catalog"} <= in_wheel


def test_the_wheel_carries_the_contracts_and_scaffold_templates(built):
    wheel, _ = built
    sources = {
        path.relative_to(REPO).as_posix()
        for pattern in ("lakehouse_assets/defs/**/*.yaml", "lakehouse_assets/components/templates/*.yaml")
        for path in REPO.glob(pattern)
    }
    assert sources and sources <= set(wheel.namelist())


def test_building_the_wheel_warns_about_nothing(built):
    _, output = built
    warnings = [line for line in output.splitlines() if "Warning" in line]
    assert warnings == []
