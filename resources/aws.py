"""boto3 clients as every AWS-backed resource builds them: default chain, endpoints from the environment.

boto3 itself honours `AWS_ENDPOINT_URL` and the per-service `AWS_ENDPOINT_URL_<SERVICE>` variables;
pyarrow's S3 filesystem (pyiceberg's FileIO) does not read them all, so `endpoint_url` resolves
them the same way for the properties pyiceberg takes.

boto3 is imported here only, when the first client is built or the region looked up: resources
that use AWS are defined when the code location loads, which must not import boto3.
"""

import functools
import os

# Throttling and transient errors are retried by botocore with exponential backoff and jitter.
RETRY_MODE = "standard"
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30


def endpoint_url(service: str) -> str | None:
    """The endpoint a boto3 client of `service` would use when one is configured, else None."""
    specific = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}")
    return specific or os.environ.get("AWS_ENDPOINT_URL") or None


def region() -> str | None:
    import boto3

    return boto3.session.Session().region_name


@functools.cache
def _client(service: str, max_attempts: int, environment: tuple):
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": RETRY_MODE, "max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
    )
    return boto3.session.Session().client(service, config=config)


def client(service: str, max_attempts: int = 5):
    """A cached client; a change of the AWS_* environment (tests, re-configuration) builds a new one."""
    environment = tuple(sorted((key, value) for key, value in os.environ.items() if key.startswith("AWS_")))
    return _client(service, max_attempts, environment)
