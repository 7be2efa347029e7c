"""Where the product keeps its state, chosen by environment variables only.

`LAKEHOUSE_ENV=local` (the default) keeps everything under `LAKEHOUSE_HOME`: the SQLite Iceberg
catalog, the warehouse, the landing zone and the outbox. `aws` is the seam for the AWS deployment.
"""

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUPPORTED_ENVIRONMENTS = ("local", "aws")


@dataclass(frozen=True)
class Settings:
    env: str
    home: Path

    @property
    def catalog_uri(self) -> str:
        return f"sqlite:///{self.home / 'catalog.db'}"

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"


def load_settings() -> Settings:
    env = os.environ.get("LAKEHOUSE_ENV", "local")
    if env not in SUPPORTED_ENVIRONMENTS:
        raise ValueError(f"LAKEHOUSE_ENV={env!r} is not one of {', '.join(SUPPORTED_ENVIRONMENTS)}")
    home = Path(os.environ.get("LAKEHOUSE_HOME", PROJECT_ROOT / ".lakehouse")).resolve()
    return Settings(env=env, home=home)
