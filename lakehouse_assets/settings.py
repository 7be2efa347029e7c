"""Where the product keeps its state, chosen by environment variables only.

`LAKEHOUSE_ENV=local` (the default) keeps everything under `LAKEHOUSE_HOME`: the SQLite Iceberg
catalog, the warehouse, the landing zone and the outbox. `aws` is the seam for the AWS deployment.
Spark: `LAKEHOUSE_SPARK_THRESHOLD_BYTES` (partitions at least this large run on Spark; 0 sends all),
`LAKEHOUSE_SPARK_MASTER`, `LAKEHOUSE_SPARK_REMOTE` (Spark Connect) and `LAKEHOUSE_SPARK_CONF` (JSON).
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUPPORTED_ENVIRONMENTS = ("local", "aws")


@dataclass(frozen=True)
class Settings:
    env: str
    home: Path
    spark_threshold_bytes: int | None = None
    spark_master: str = "local[*]"
    spark_remote: str | None = None
    spark_conf: dict = field(default_factory=dict)

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
    threshold = os.environ.get("LAKEHOUSE_SPARK_THRESHOLD_BYTES")
    try:
        spark_conf = json.loads(os.environ.get("LAKEHOUSE_SPARK_CONF", "{}"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"LAKEHOUSE_SPARK_CONF is not a JSON object of Spark settings: {exc}") from None
    return Settings(
        env=env,
        home=home,
        spark_threshold_bytes=int(threshold) if threshold else None,
        spark_master=os.environ.get("LAKEHOUSE_SPARK_MASTER", "local[*]"),
        spark_remote=os.environ.get("LAKEHOUSE_SPARK_REMOTE") or None,
        spark_conf={str(key): str(value) for key, value in spark_conf.items()},
    )
