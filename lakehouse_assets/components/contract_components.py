"""Each contract is a Dagster Component: its `defs.yaml` names the type, and its attributes are
the contract itself (`contracts/contract.py`), validated by the same models with the same messages.

    type: lakehouse_assets.components.Dataset     # or lakehouse_assets.components.Model
    attributes: {name: meters, description: ..., source: ..., columns: ...}

Dagster validates the attributes when the code location loads (`dg check defs`, `dagster dev`)
and names the file, the line and the field of an error; `dg check yaml` and editors validate
against the contract's JSON schema (`dg utils generate-component-schema`) without running it.
`dg scaffold defs lakehouse_assets.components.Dataset datasets/meters` writes a commented skeleton.
"""

import contextvars
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import BaseModel

from lakehouse_assets.assets.extracts import build_extract_assets
from lakehouse_assets.assets.factory import build_assets
from lakehouse_assets.assets.lineage import table_columns
from lakehouse_assets.automation.arrival_sensors import build_arrival_sensor
from lakehouse_assets.contracts.contract import TABLE_NAME, Contract, DatasetContract, ModelContract
from resources.settings import DEFAULT_PANDAS_DAYS_PER_RUN

TEMPLATES = Path(__file__).resolve().parent / "templates"
CONTRACT_NAME = re.compile(TABLE_NAME)


@dataclass(frozen=True)
class FolderBuild:
    """What the components of one load share: settings of the code location, and every contract of
    the folder with the models' partitions resolved from their inputs (a model alone cannot know them)."""

    # on AWS the arrival sensors start with the deployment; locally they are switched on in the UI
    arrivals: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED
    pandas_days_per_run: int = DEFAULT_PANDAS_DAYS_PER_RUN
    # each model by its table (layer, name), with its partitions resolved
    models: Mapping[tuple[str, str], ModelContract] = field(default_factory=dict)
    # every table's columns (`layer.name` -> names), for the models' column lineage
    columns: Mapping[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(
        cls, arrivals: dg.DefaultSensorStatus, pandas_days_per_run: int, contracts: list[Contract]
    ) -> "FolderBuild":
        models = {(c.layer, c.name): c for c in contracts if isinstance(c, ModelContract)}
        return cls(arrivals, pandas_days_per_run, models, table_columns(contracts))

    def model(self, contract: ModelContract) -> ModelContract:
        return self.models.get((contract.layer, contract.name), contract)


# Set by `defs_folder.load_folder` around the build; a load of the folder without it (by `dg` alone,
# not through `definitions.defs`) gets the defaults: sensors stopped, models as they are declared.
FOLDER_BUILD: contextvars.ContextVar[FolderBuild | None] = contextvars.ContextVar(
    "folder_build", default=None
)


def _folder_build() -> FolderBuild:
    return FOLDER_BUILD.get() or FolderBuild()


class _ContractScaffolder(dg.Scaffolder):
    """Writes `defs.yaml` from a commented template, the table named after its folder."""

    template: str

    def names(self, folder: str) -> dict[str, str]:
        return {"name": folder}

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        if request.scaffold_format != "yaml" or request.append:
            raise ValueError("a contract is a YAML file of its own: scaffold it with --format yaml")
        names = self.names(request.target_path.name)
        if not CONTRACT_NAME.match(names["name"]):
            raise ValueError(
                f"{request.target_path}: the folder names the table, and {names['name']!r} does not "
                f"match {CONTRACT_NAME.pattern} (lower case letters, digits and underscores)"
            )
        template = string.Template((TEMPLATES / self.template).read_text(encoding="utf-8"))
        (request.target_path / "defs.yaml").write_text(
            template.substitute(type=request.type_name, **names), encoding="utf-8"
        )


class DatasetScaffolder(_ContractScaffolder):
    template = "dataset.yaml"


class ModelScaffolder(_ContractScaffolder):
    """A model's folder is `<layer>_<name>` (`output_meter_daily`); output when no layer leads."""

    template = "model.yaml"

    def names(self, folder: str) -> dict[str, str]:
        layer, _, name = folder.partition("_")
        if layer in ("common", "output") and name:
            return {"layer": layer, "name": name}
        return {"layer": "output", "name": folder}


def _contract(attributes: Any, context: dg.ComponentLoadContext, kind: str) -> Any:
    if attributes is None:
        raise dg.DagsterInvalidDefinitionError(
            f"{context.path / 'defs.yaml'}: a {kind}'s contract goes under `attributes:`"
        )
    return attributes


@dg.scaffold_with(DatasetScaffolder)
@dataclass(frozen=True)
class Dataset(dg.Component):
    """A dataset contract: one source from its landing files to its staging table.

    Builds the landing, raw (with its rejects) and staging tables, their quality checks and
    audits, the staging table's extracts, and the sensor that runs them when files arrive. The
    attributes are the contract (README, "Adding a dataset").
    """

    contract: DatasetContract
    # the defs.yaml it came from, for errors that involve other contracts
    path: Path | None = None

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return DatasetContract

    @classmethod
    def get_spec(cls) -> dg.ComponentTypeSpec:
        return dg.ComponentTypeSpec(produces=["asset", "asset_check", "sensor"])

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> "Dataset":
        return cls(_contract(attributes, context, "dataset"), context.path / "defs.yaml")

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        build = _folder_build()
        return dg.Definitions(
            assets=[
                *build_assets([self.contract], build.pandas_days_per_run),
                *build_extract_assets([self.contract]),
            ],
            sensors=[build_arrival_sensor(self.contract, default_status=build.arrivals)],
        )


@dg.scaffold_with(ModelScaffolder)
@dataclass(frozen=True)
class Model(dg.Component):
    """A model contract: a common or output table built from other tables.

    Builds the table (declarative steps or a Python `module:function`), its quality checks and,
    when it keeps its input's rows, the audit that reconciles them, and its extracts; it runs
    when its inputs change. The attributes are the contract (README, "Adding a dataset", step 3).
    """

    contract: ModelContract
    path: Path | None = None

    @classmethod
    def get_model_cls(cls) -> type[BaseModel]:
        return ModelContract

    @classmethod
    def get_spec(cls) -> dg.ComponentTypeSpec:
        return dg.ComponentTypeSpec(produces=["asset", "asset_check"])

    @classmethod
    def load(cls, attributes: BaseModel | None, context: dg.ComponentLoadContext) -> "Model":
        return cls(_contract(attributes, context, "model"), context.path / "defs.yaml")

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        build = _folder_build()
        model = build.model(self.contract)
        return dg.Definitions(
            assets=[
                *build_assets([model], build.pandas_days_per_run, build.columns),
                *build_extract_assets([model]),
            ]
        )
