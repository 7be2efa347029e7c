"""The landing zone: where source files arrive. A local folder by default, S3 on AWS."""

import datetime as dt
import fnmatch
import functools
import hashlib
import logging
import os
import stat as stat_module
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

logger = logging.getLogger(__name__)


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
        return self.scan(pattern)[0]

    def scan(self, pattern: str) -> tuple[list[LandedFile], dict[str, str]]:
        """The files `list_files` returns, and the matching entries refused (key -> why): names the
        zone's writers control must never make landing read from outside the zone."""
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

    def scan(self, pattern: str) -> tuple[list[LandedFile], dict[str, str]]:
        """Files whose key matches the glob, sorted by key; the checksum is the MD5 S3 reports as etag.

        Only regular files are read. Every symbolic link is refused, not only those leaving the zone:
        one pointing inside names a file that is listed under its own key already (it would land
        twice), and a link can be re-pointed between listing and reading.
        """
        if not self._root.exists():
            return [], {}
        found, refused = [], {}
        for path in sorted(self._root.rglob("*")):
            key = path.relative_to(self._root).as_posix()
            if not (_is_landed(key) and fnmatch.fnmatchcase(key, pattern)):
                continue
            if path.is_dir() and not path.is_symlink():
                continue
            problem = _refusal(self.root, key)
            if problem:
                logger.warning("landing zone %s: refused %r: %s", self.root, key, problem)
                refused[key] = f"{key}: {problem}"
                continue
            stat = path.stat()
            modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
            found.append(LandedFile(key=key, size=stat.st_size, checksum=_md5(path), last_modified=modified))
        return found, refused

    def exists(self, key: str) -> bool:
        return _refusal(self.root, key) is None

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


def _refusal(root: str, key: str) -> str | None:
    """Why the entry at `key` must not be read, or None for a regular file inside the zone."""
    zone = Path(root).resolve()
    path = Path(root) / key
    if Path(key).is_absolute() or ".." in Path(key).parts:
        return "the key leaves the landing zone"
    if path.is_symlink():
        return f"a symbolic link (to {os.readlink(path)}) is not read"
    # a folder on the way may itself be a link elsewhere
    if not path.resolve().is_relative_to(zone):
        return f"its real path {path.resolve()} lies outside the landing zone"
    try:
        regular = stat_module.S_ISREG(path.lstat().st_mode)
    except FileNotFoundError:
        return "no such file"
    return None if regular else "not a regular file"


def _read_under(root: str, key: str) -> bytes:
    problem = _refusal(root, key)
    if problem:
        raise PermissionError(f"{key!r} in the landing zone {root}: {problem}")
    # O_NOFOLLOW: a file swapped for a link after the check above is not followed either
    descriptor = os.open(Path(root) / key, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(descriptor, "rb") as handle:
        return handle.read()


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
