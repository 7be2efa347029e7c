"""boto3 clients as every AWS-backed resource builds them: region, credentials and endpoints from
boto3's default chain (`AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, the shared
config, a role), which this module never reads itself.

pyarrow's S3 filesystem (pyiceberg's FileIO) does not resolve endpoints the way boto3 does, so
`endpoint_url` asks a boto3 client which endpoint it uses, for the properties pyiceberg takes.

boto3 is imported here only, when the first client is built or the region looked up: resources
that use AWS are defined when the code location loads, which must not import boto3 locally.
"""

import functools

# Throttling and transient errors are retried by botocore with exponential backoff and jitter.
RETRY_MODE = "standard"
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30


def endpoint_url(service: str) -> str:
    """The endpoint a boto3 client of `service` uses: the configured one, else the region's."""
    return client(service).meta.endpoint_url


def region() -> str | None:
    import boto3

    return boto3.session.Session().region_name


@functools.cache
def client(service: str, max_attempts: int = 5):
    """One client per service and retry budget for the process: building one costs ~0.1 s, and
    boto3 clients are safe to share between threads. A test that changes the AWS_* variables
    calls `reset_clients()` so that the next client resolves them again."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": RETRY_MODE, "max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
    )
    return boto3.session.Session().client(service, config=config)


def reset_clients() -> None:
    client.cache_clear()
