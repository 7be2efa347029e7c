"""The product's code, shipped to a Spark session whose Python workers do not have it installed.

The Spark path runs this project's own functions on the executors (`mapInArrow` of
`read_landed_file`, `type_landing_rows`, the Parquet writer): cloudpickle sends them by reference,
so the workers must import `lakehouse_assets`, `checks`, `io_managers` and `resources`. A cluster's
workers have the libraries (pyarrow, pandas, narwhals, ...) but not the product, so the packages
go to each session as one zip on the workers' `sys.path`: a Spark Connect artifact
(`addArtifacts(..., pyfile=True)`) or, on a classic cluster, `addPyFile`.

The archive is built once per content: its name is the hash of the files it holds, so a session
that already has it is not sent it again, and a changed file gives a new archive (a Connect
session refuses a second artifact of the same name with other bytes).
"""

import hashlib
import importlib
import tempfile
import zipfile
from pathlib import Path
from typing import Any

PACKAGES = ("lakehouse_assets", "checks", "io_managers", "resources")
# a fixed time in every entry, so the same files always make the same bytes
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_shipped: set[tuple[str, str]] = set()


def _sources() -> list[tuple[str, Path]]:
    """(name inside the archive, file) for every module and data file of the product's packages."""
    files = []
    for package in PACKAGES:
        root = Path(importlib.import_module(package).__path__[0])
        files += [
            (f"{package}/{path.relative_to(root).as_posix()}", path)
            for path in root.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        ]
    return sorted(files)


def product_archive(directory: Path | None = None) -> Path:
    """The zip of the product's packages, built only when no archive of the same content exists."""
    sources = [(name, path.read_bytes()) for name, path in _sources()]
    digest = hashlib.sha256()
    for name, data in sources:
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    directory = directory or Path(tempfile.gettempdir()) / "lakehouse-spark-artifacts"
    archive = directory / f"lakehouse_product_{digest.hexdigest()[:20]}.zip"
    if not archive.exists():
        directory.mkdir(parents=True, exist_ok=True)
        # written aside and renamed: a concurrent step never ships half an archive
        partial = archive.with_suffix(f".{id(sources)}.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
            for name, data in sources:
                out.writestr(zipfile.ZipInfo(name, ZIP_TIME), data, zipfile.ZIP_DEFLATED)
        partial.replace(archive)
    return archive


def is_connect_session(spark: Any) -> bool:
    return type(spark).__module__.startswith("pyspark.sql.connect")


def ship_product(spark: Any) -> Path:
    """Make the product importable on the session's Python workers, once per session and content."""
    archive = product_archive()
    if is_connect_session(spark):
        key = (spark.session_id, archive.name)
        if key not in _shipped:
            spark.addArtifacts(str(archive), pyfile=True)
            _shipped.add(key)
    else:
        context = spark.sparkContext
        key = (context.applicationId, archive.name)
        if key not in _shipped:
            context.addPyFile(str(archive))
            _shipped.add(key)
    return archive
