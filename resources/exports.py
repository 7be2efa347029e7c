"""Where extracts are delivered: `LAKEHOUSE_HOME/exports` locally, `LAKEHOUSE_EXPORTS_URI` on AWS.

A consumer may pick a file up the moment it appears, so a file is never visible half written:
locally it is written to a hidden temporary file beside its target (`.<name>.<random>.tmp`, on
the same file system), flushed to disk and renamed over the target, which POSIX makes atomic (a
reader opens the old file or the new one); on S3 it is one PUT, and S3 shows an object only once
its upload is complete. Writing a path again replaces it whole.
"""

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

import dagster as dg
from pydantic import Field

from resources.aws import client
from resources.landing.s3 import key_problem, split_s3_uri

TEMPORARY_SUFFIX = ".tmp"


def _checked(path: str) -> str:
    problem = key_problem(path)
    if problem or not path:
        raise PermissionError(f"{path!r}: {problem or 'an empty path is refused'}")
    return path


class ExportStorage(dg.ConfigurableResource):
    """Writes whole files under one root, addressed by paths relative to it."""

    def put(self, path: str, chunks: bytes | Iterable[bytes]) -> str:
        """Write `chunks` as the file at `path`, replacing any earlier one at once; its URI."""
        raise NotImplementedError

    def get(self, path: str) -> bytes | None:
        """The file at `path`, or None when there is none."""
        raise NotImplementedError

    def uri(self, path: str) -> str:
        raise NotImplementedError


class LocalExportStorage(ExportStorage):
    root: str = Field(description="the exports directory")

    def _target(self, path: str) -> Path:
        return Path(self.root) / _checked(path)

    def uri(self, path: str) -> str:
        return self._target(path).as_uri()

    def put(self, path: str, chunks: bytes | Iterable[bytes]) -> str:
        target = self._target(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # hidden and not the target's suffix: consumers that glob `*.csv` never see it
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}{TEMPORARY_SUFFIX}")
        try:
            with open(temporary, "wb") as handle:
                for chunk in [chunks] if isinstance(chunks, bytes) else chunks:
                    handle.write(chunk)
                    # written through as it comes: the temporary file shows how far a writer got
                    handle.flush()
                # on disk before the rename: a crash after it cannot leave the name on an empty file
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        # the rename itself is durable once the directory is
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return target.as_uri()

    def get(self, path: str) -> bytes | None:
        try:
            return self._target(path).read_bytes()
        except FileNotFoundError:
            return None


class S3ExportStorage(ExportStorage):
    uri_prefix: str = Field(description="s3://bucket/prefix of the exports")

    def _location(self, path: str) -> tuple[str, str]:
        bucket, prefix = split_s3_uri(self.uri_prefix)
        return bucket, prefix + _checked(path)

    def uri(self, path: str) -> str:
        bucket, key = self._location(path)
        return f"s3://{bucket}/{key}"

    def put(self, path: str, chunks: bytes | Iterable[bytes]) -> str:
        bucket, key = self._location(path)
        body = chunks if isinstance(chunks, bytes) else b"".join(chunks)
        # one PUT, never a multipart upload: the object appears complete or not at all
        client("s3").put_object(Bucket=bucket, Key=key, Body=body)
        return f"s3://{bucket}/{key}"

    def get(self, path: str) -> bytes | None:
        from botocore.exceptions import ClientError

        bucket, key = self._location(path)
        try:
            return client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
