"""The landing zone: where source files arrive. A local folder by default, S3 on AWS."""

import datetime as dt
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
    # when the object was last written (S3 LastModified, a file's mtime); sensors' watermark
    last_modified: dt.datetime | None = None

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


ARCHIVE_PREFIX = "_archive/"


class LandingStorage(dg.ConfigurableResource):
    """What assets and sensors need from a landing zone; keys are relative to the zone's root."""

    def list_files(self, pattern: str) -> list[LandedFile]:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def read_bytes(self, key: str) -> bytes:
        raise NotImplementedError

    def reader(self) -> Callable[[str], bytes]:
        """`read_bytes` as a picklable function, for Spark tasks that read files on the executors."""
        raise NotImplementedError

    def write_bytes(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def archive(self, key: str) -> str:
        """Move a processed file under `_archive/`, out of every dataset's glob; returns its new key."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class LocalLandingStorage(LandingStorage):
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
            if _is_landed(key) and path.is_file() and fnmatch.fnmatchcase(key, pattern):
                stat = path.stat()
                modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
                found.append(
                    LandedFile(key=key, size=stat.st_size, checksum=_md5(path), last_modified=modified)
                )
        return found

    def exists(self, key: str) -> bool:
        return (self._root / key).is_file()

    def read_bytes(self, key: str) -> bytes:
        return _read_under(self.root, key)

    def reader(self) -> Callable[[str], bytes]:
        return functools.partial(_read_under, self.root)

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_bytes(data)
        # a reader never sees a half-written file
        temporary.replace(path)

    def archive(self, key: str) -> str:
        target = self._root / ARCHIVE_PREFIX / key
        target.parent.mkdir(parents=True, exist_ok=True)
        (self._root / key).replace(target)
        return f"{ARCHIVE_PREFIX}{key}"

    def describe(self) -> str:
        return str(self._root)


def _is_landed(key: str) -> bool:
    # archived files and half-written temporary files (".name.tmp") are not arrivals
    return not key.startswith(ARCHIVE_PREFIX) and not key.rsplit("/", 1)[-1].startswith(".")


def _read_under(root: str, key: str) -> bytes:
    return (Path(root) / key).read_bytes()


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
