"""The defs folder: one folder per dataset (`defs/datasets/<name>/`) and per model
(`defs/models/<layer>_<name>/`), each with the `defs.yaml` of its component.

`load_defs_folder` is how the code location loads them; `contracts_in` reads the same files into
plain contracts for code that wants the contracts without Dagster (tests, benchmarks).
"""

import functools
import importlib
import warnings
from pathlib import Path
from typing import NamedTuple

import dagster as dg
import yaml

from lakehouse_assets.components.contract_components import FOLDER_BUILD, Dataset, FolderBuild, Model
from lakehouse_assets.contracts.base import ContractError
from lakehouse_assets.contracts.contract import (
    Contract,
    DatasetContract,
    ModelContract,
    check_together,
    contract_from,
)
from resources.settings import DEFAULT_PANDAS_DAYS_PER_RUN

# pyproject's [tool.dg.project] names the same module for `dg`
DEFS_MODULE = "lakehouse_assets.defs"
DEFS_DIR = Path(__file__).resolve().parent.parent / "defs"
COMPONENT_FILE = "defs.yaml"
CONTRACTS_BY_TYPE = {Dataset.__name__: DatasetContract, Model.__name__: ModelContract}


class _ComponentFileLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """libyaml's parser when PyYAML has it, reading dates as strings as Dagster reads `defs.yaml`
    (the contract parses them either way)."""


_ComponentFileLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _files(defs_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Every file of the folder with its modification time and size: what the definitions are built from."""
    return tuple(
        (str(path), stat.st_mtime_ns, stat.st_size)
        for path in sorted(defs_dir.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
        for stat in (path.stat(),)
    )


class DefsFolder(NamedTuple):
    """What the folder defines: the components' definitions, and their contracts (jobs and schedules
    are built per partitions definition across all of them)."""

    definitions: dg.Definitions
    contracts: tuple[Contract, ...]


@functools.cache
def _load(
    defs_module: str,
    files: tuple[tuple[str, int, int], ...],
    arrivals: dg.DefaultSensorStatus,
    pandas_days_per_run: int,
) -> DefsFolder:
    # Dagster calls `defs()` twice per load of the code location (once to resolve the lazy
    # definitions, once to build the repository); the second call reuses what the first parsed and
    # built, as long as no file of the folder and no setting the assets use changed in between.
    module = importlib.import_module(defs_module)
    # Dagster marks the code references it adds (each definition -> its defs.yaml) beta.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        # `load_from_defs_folder` without its two slow steps: reading pyproject.toml with tomlkit
        # for the module's name, and importing every component library installed to list their
        # types in the UI (dagster-aws's imports boto3 and SQLAlchemy: 3 s on every load).
        tree = dg.ComponentTree.from_module(
            defs_module=module, project_root=Path(module.__path__[0]).parent.parent
        )
        components = [component for kind in (Dataset, Model) for component in tree.get_all_components(kind)]
        # a model takes its partitions from its inputs, which only the whole folder knows
        resolved = check_together(
            [component.contract for component in components], [component.path for component in components]
        )
        token = FOLDER_BUILD.set(FolderBuild.of(arrivals, pandas_days_per_run, resolved))
        try:
            definitions = tree.build_defs(tree.defs_module_path)
        finally:
            FOLDER_BUILD.reset(token)
    return DefsFolder(definitions, tuple(resolved))


def load_folder(
    arrivals: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    defs_module: str | None = None,
    pandas_days_per_run: int = DEFAULT_PANDAS_DAYS_PER_RUN,
) -> DefsFolder:
    """Every component of the folder; `arrivals` is how the arrival sensors start."""
    defs_module = defs_module or DEFS_MODULE
    defs_dir = Path(importlib.import_module(defs_module).__path__[0])
    return _load(defs_module, _files(defs_dir), arrivals, pandas_days_per_run)


def load_defs_folder(
    arrivals: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED, defs_module: str | None = None
) -> dg.Definitions:
    """The definitions of every component in the folder."""
    return load_folder(arrivals, defs_module).definitions


def contract_in(path: Path) -> Contract:
    """The contract a component's `defs.yaml` holds, with the errors `load_contract` gives."""
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_ComponentFileLoader)
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: not valid YAML: {exc}") from exc
    type_name = document.get("type", "") if isinstance(document, dict) else ""
    model = CONTRACTS_BY_TYPE.get(type_name.rpartition(".")[2])
    if model is None:
        raise ContractError(f"{path}: `type` {type_name!r} is not one of {sorted(CONTRACTS_BY_TYPE)}")
    return contract_from(document.get("attributes"), path, model)


def contracts_in(defs_dir: Path | None = None) -> list[Contract]:
    """The contracts of every component in the folder: the demo's by default."""
    paths = sorted((defs_dir or DEFS_DIR).rglob(COMPONENT_FILE))
    return check_together([contract_in(path) for path in paths], paths)
