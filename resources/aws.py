"""boto3 clients as every AWS-backed resource builds them: default chain, endpoints from the environment.

boto3 itself honours `AWS_ENDPOINT_URL` and the per-service `AWS_ENDPOINT_URL_<SERVICE>` variables;
pyarrow's S3 filesystem (pyiceberg's FileIO) does not read them all, so `endpoint_url` resolves
them the same way for the properties pyiceberg takes.
"""

import functools
import os

import boto3
from botocore.config import Config

# Throttling and transient errors are retried by botocore with exponential backoff and jitter.
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


def endpoint_url(service: str) -> str | None:
    """The endpoint a boto3 client of `service` would use when one is configured, else None."""
    specific = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}")
    return specific or os.environ.get("AWS_ENDPOINT_URL") or None


def region() -> str | None:
    return boto3.session.Session().region_name


@functools.cache
def _client(service: str, max_attempts: int, environment: tuple):
    config = RETRY_CONFIG.merge(Config(retries={"mode": "standard", "max_attempts": max_attempts}))
    return boto3.session.Session().client(service, config=config)


def client(service: str, max_attempts: int = 5):
    """A cached client; a change of the AWS_* environment (tests, re-configuration) builds a new one."""
    environment = tuple(sorted((key, value) for key, value in os.environ.items() if key.startswith("AWS_")))
    return _client(service, max_attempts, environment)
