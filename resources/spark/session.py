"""The Spark session, started only when a partition is large enough to need it.

Local (`local[*]`, modest memory) by default; a cluster master, a Spark Connect remote and extra
Spark configuration come from configuration alone. `pyspark` is imported on first use, never
when the code location loads. A session whose Python workers are not this process's (a remote or
a cluster) is sent the product's code first (`resources.spark.artifacts`).
"""

import contextlib
import os
import sys
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

# Partition values and `mapInArrow` timestamps in UTC, and Arrow between Spark and Python. Spark
# itself writes no files (the executors write through pyarrow), so it needs no writer settings.
REQUIRED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
LOCAL_DEFAULTS = {
    "spark.driver.memory": "2g",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


# The tags of the steps this thread runs (innermost last), each with the sessions that carry them
# (Spark tags are per thread).
_step = threading.local()
_sessions: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _tag(session: Any) -> None:
    stack = getattr(_step, "stack", None)
    if not stack:
        return
    tags, tagged = stack[-1]
    if session in tagged:
        return
    for tag in tags:
        with contextlib.suppress(Exception):  # a stopped session runs no jobs to tag
            session.addTag(tag)
    tagged.add(session)


@contextlib.contextmanager
def spark_job_tags(*tags: str) -> Iterator[None]:
    """Every Spark job this thread starts meanwhile carries `tags`, on the sessions open now and
    those started meanwhile: the server's listeners and event log name the step each job ran for,
    and `SparkSession.interruptTag` cancels a step's jobs. Starts no session, imports no pyspark.

    Each use removes exactly its own tags and entry, whenever it ends: a step's generator that
    was abandoned is closed when it is collected, possibly inside a later step."""
    tags = tuple(tag.replace(",", ";") for tag in tags if tag)
    entry = (tags, weakref.WeakSet())
    if not hasattr(_step, "stack"):
        _step.stack = []
    stack = _step.stack
    stack.append(entry)
    try:
        for session in list(_sessions):
            _tag(session)
        yield
    finally:
        for session in list(entry[1]):
            for tag in tags:
                with contextlib.suppress(Exception):  # a stopped session has no tags to remove
                    session.removeTag(tag)
        for index, item in enumerate(stack):
            if item is entry:
                del stack[index]
                break


class SparkResource(dg.ConfigurableResource):
    """Where Spark runs: `master` (default local[*]) or `remote` (Spark Connect), plus extra conf."""

    master: str = "local[*]"
    remote: str | None = None
    app_name: str = "medallion-lakehouse"
    conf: dict[str, str] = {}

    _session: Any = PrivateAttr(default=None)

    def spark_conf(self) -> dict[str, str]:
        conf = {"spark.app.name": self.app_name}
        if self.remote:
            conf["spark.remote"] = self.remote
        else:
            conf["spark.master"] = self.master
            if self.master.startswith("local"):
                conf |= LOCAL_DEFAULTS
                # a local session talks to itself only, over loopback
                conf["spark.driver.host"] = "127.0.0.1"
                conf["spark.driver.bindAddress"] = "127.0.0.1"
                conf["spark.pyspark.python"] = sys.executable
                conf["spark.pyspark.driver.python"] = sys.executable
        return conf | self.conf | REQUIRED_CONF

    def session(self):
        if self._session is None:
            from dagster_pyspark.resources import spark_session_from_config

            # Local workers must import this project exactly as the driver does, even when another
            # library started the process's session first without our settings.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            if self.remote is None and self.master.startswith("local"):
                os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            session = spark_session_from_config(self.spark_conf())
            if self.remote is not None or not self.master.startswith("local"):
                # a cluster's Python workers have the libraries, not this project
                from resources.spark.artifacts import ship_product

                ship_product(session)
            self._session = session
            _sessions.add(session)
        _tag(self._session)
        return self._session
