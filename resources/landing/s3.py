"""The landing zone on S3: objects under `s3://bucket/prefix`, addressed by keys relative to the prefix."""

import fnmatch
import functools
import logging
from collections.abc import Callable

from pydantic import Field

from resources.aws import client
from resources.landing.local import ARCHIVE_PREFIX, LandedFile, LandingStorage, _is_landed

logger = logging.getLogger(__name__)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/a/b` -> ("bucket", "a/b/"); the prefix is empty or ends with a slash."""
    if not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _literal_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard: the listing never has to leave it."""
    for index, character in enumerate(pattern):
        if character in "*?[":
            return pattern[:index]
    return pattern


def key_problem(key: str) -> str | None:
    """Why an object key must not be used: S3 treats `..` literally, but the key names archive
    copies, local paths and partitions downstream, where it would climb out of the zone."""
    if key.startswith("/") or ".." in key.split("/"):
        return "a key with a '..' segment or an absolute path is refused"
    return None


def _object_key(root: str, key: str) -> str:
    problem = key_problem(key)
    if problem:
        raise PermissionError(f"{key!r}: {problem}")
    return root + key


class S3LandingStorage(LandingStorage):
    """Objects under an S3 prefix. The checksum is the object's ETag (the MD5 of a single-part upload)."""

    uri: str = Field(description="s3://bucket/prefix of the landing zone")

    @property
    def _location(self) -> tuple[str, str]:
        return split_s3_uri(self.uri)

    def scan(self, pattern: str) -> tuple[list[LandedFile], dict[str, str]]:
        bucket, root = self._location
        paginator = client("s3").get_paginator("list_objects_v2")
        found, refused = [], {}
        # list_objects_v2 returns at most 1000 keys a page: the paginator follows the continuation tokens
        for page in paginator.paginate(Bucket=bucket, Prefix=root + _literal_prefix(pattern)):
            for item in page.get("Contents", ()):
                key = item["Key"].removeprefix(root)
                if _is_landed(key) and not key.endswith("/") and fnmatch.fnmatchcase(key, pattern):
                    if problem := key_problem(key):
                        logger.warning("landing zone %s: refused %r: %s", self.uri, key, problem)
                        refused[key] = f"{key}: {problem}"
                        continue
                    found.append(
                        LandedFile(
                            key=key,
                            size=item["Size"],
                            checksum=item["ETag"].strip('"'),
                            last_modified=item["LastModified"],
                        )
                    )
        return sorted(found, key=lambda file: file.key), refused

    def exists(self, key: str) -> bool:
        # botocore, like boto3 in `resources.aws`, is imported when S3 is used, not on load
        from botocore.exceptions import ClientError

        bucket, root = self._location
        try:
            client("s3").head_object(Bucket=bucket, Key=_object_key(root, key))
        except ClientError as error:
            if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def read_bytes(self, key: str) -> bytes:
        bucket, root = self._location
        return _read_object(bucket, root, key)

    def reader(self) -> Callable[[str], bytes]:
        # executors build their own client from their environment's default credential chain
        return functools.partial(_read_object, *self._location)

    def write_bytes(self, key: str, data: bytes) -> None:
        # a PUT is atomic: a reader sees the old object or the new one, never half of it
        bucket, root = self._location
        client("s3").put_object(Bucket=bucket, Key=_object_key(root, key), Body=data)

    def archive(self, key: str) -> str:
        bucket, root = self._location
        s3 = client("s3")
        s3.copy_object(
            Bucket=bucket,
            Key=f"{root}{ARCHIVE_PREFIX}{key}",
            CopySource={"Bucket": bucket, "Key": _object_key(root, key)},
        )
        s3.delete_object(Bucket=bucket, Key=root + key)
        return f"{ARCHIVE_PREFIX}{key}"

    def describe(self) -> str:
        return self.uri


def _read_object(bucket: str, root: str, key: str) -> bytes:
    return client("s3").get_object(Bucket=bucket, Key=_object_key(root, key))["Body"].read()
