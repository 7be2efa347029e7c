"""The landing zone: where source files arrive. A local folder by default."""

import fnmatch
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg


@dataclass(frozen=True)
class LandedFile:
    """One arrived object: its key relative to the landing zone, its size and a content checksum."""

    key: str
    size: int
    checksum: str

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


class LocalLandingStorage(dg.ConfigurableResource):
    """A folder whose files are addressed by keys relative to it, like objects under an S3 prefix."""

    root: str

    @property
    def _root(self) -> Path:
        return Path(self.root)

    def list_files(self, pattern: str) -> list[LandedFile]:
        """Files whose key matches the glob, sorted by key; the checksum is the MD5 S3 reports as etag."""
        if not self._root.exists():
            return []
        found = []
        for path in sorted(self._root.rglob("*")):
            key = path.relative_to(self._root).as_posix()
            if path.is_file() and fnmatch.fnmatchcase(key, pattern):
                found.append(LandedFile(key=key, size=path.stat().st_size, checksum=_md5(path)))
        return found

    def exists(self, key: str) -> bool:
        return (self._root / key).is_file()

    def read_bytes(self, key: str) -> bytes:
        return _read_under(self.root, key)

    def reader(self) -> Callable[[str], bytes]:
        """`read_bytes` as a picklable function, for Spark tasks that read files on the executors."""
        return functools.partial(_read_under, self.root)

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_bytes(data)
        # a reader never sees a half-written file
        temporary.replace(path)


def _read_under(root: str, key: str) -> bytes:
    return (Path(root) / key).read_bytes()


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
