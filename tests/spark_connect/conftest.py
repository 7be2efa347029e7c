"""One real Spark Connect server per test process, started on loopback and stopped at the end.

Its Python workers have the libraries but not the product (checked before any test uses it), and
the AWS variables of a cluster pointed at the tests' moto server: the executors read the landing
zone and write the warehouse with their own credentials, as a cluster's would.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pyspark
import pytest

from resources.spark.artifacts import is_connect_session
from resources.spark.session import SparkResource
from tests.aws.conftest import moto_endpoint  # noqa: F401 (a fixture the server's workers use)
from tests.spark_connect.server import ConnectServer, java_descendants, start_server, worker_imports


@pytest.fixture(scope="session")
def spark_connect(moto_endpoint) -> ConnectServer:  # noqa: F811
    # its own directory, not pytest's numbered ones, which other pytest processes may rotate away
    directory = Path(tempfile.mkdtemp(prefix="lakehouse-spark-connect-"))
    _stop_classic_session()
    server = start_server(directory, {"AWS_ENDPOINT_URL": moto_endpoint})
    try:
        found = worker_imports(server.url, "lakehouse_assets")
        assert found.startswith("ModuleNotFoundError"), found
        assert str(server.python) in found
        yield server
    finally:
        _close_connect_sessions()
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _stop_classic_session() -> None:
    """A classic session that an earlier test file of this worker left running makes pyspark refuse
    every Connect session (SESSION_ALREADY_EXIST); later files build their own classic sessions."""
    from pyspark.sql import SparkSession

    if pyspark.SparkContext._active_spark_context is not None:
        (SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()).stop()


def _close_connect_sessions() -> None:
    """Close this process's Connect clients while their server still listens: at exit, an open
    client would release its session against a stopped server, retrying for minutes."""
    from pyspark.sql.connect.session import SparkSession

    for session in {SparkSession.getActiveSession(), SparkSession._get_default_session()} - {None}:
        session.stop()


@pytest.fixture
def spark_resource(spark_connect, record_property) -> SparkResource:
    """The product's Spark over Connect; the test fails if a JVM started in this process meanwhile."""
    had_context = pyspark.SparkContext._active_spark_context is not None
    before = java_descendants(exclude=spark_connect.process.pid)
    record_property("spark_connect.startup_s", round(spark_connect.startup_s, 1))
    resource = SparkResource(remote=spark_connect.url)
    try:
        yield resource
        assert is_connect_session(resource.session())
        assert java_descendants(exclude=spark_connect.process.pid) <= before
        if not had_context:
            assert pyspark.SparkContext._active_spark_context is None
    finally:
        # Starting a Connect session marks the whole process as Connect-only (pyspark sets
        # SPARK_CONNECT_MODE_ENABLED); later tests in this worker build classic local sessions.
        os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
