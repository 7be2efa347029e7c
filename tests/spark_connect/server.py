"""A real Spark Connect server on loopback, as a cluster's endpoint would be: its own JVM, and
Python workers that have the libraries but not this project.

The workers run a bare virtualenv's interpreter with `PYTHONPATH` set to the project venv's
site-packages: the third-party packages import, the project does not (its editable install is a
`.pth` finder, which `PYTHONPATH` does not process, and the server runs in an empty directory).
"""

import os
import socket
import subprocess
import sysconfig
import time
import venv
from dataclasses import dataclass
from pathlib import Path

import pyspark

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
START_TIMEOUT_S = 300
# dummy credentials: the workers' default chain finds them, as a cluster's finds its role
WORKER_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def worker_python(directory: Path) -> Path:
    """A virtualenv of this interpreter's Python with nothing installed in it."""
    venv.create(directory, with_pip=False, clear=True)
    return directory / "bin" / "python"


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ConnectServer:
    url: str
    process: subprocess.Popen
    python: Path
    startup_s: float

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(
    directory: Path, worker_environment: dict[str, str] | None = None, conf: dict[str, str] | None = None
) -> ConnectServer:
    """The server, listening; `worker_environment` adds variables its JVM and Python workers see,
    `conf` Spark settings (such as an event log to count the jobs by)."""
    directory.mkdir(parents=True, exist_ok=True)
    python = worker_python(directory / "worker-venv")
    spark_home = Path(pyspark.__file__).parent
    port = _free_port()
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "LAKEHOUSE_", "PYSPARK_", "SPARK_", "PYTHON"))
    }
    environment |= WORKER_AWS | {
        "AWS_CONFIG_FILE": str(directory / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(directory / "no-aws-credentials"),
        "SPARK_HOME": str(spark_home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": str(python),
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
    }
    environment |= worker_environment or {}
    command = [
        str(spark_home / "bin" / "spark-submit"),
        "--class",
        SERVER_CLASS,
        "--name",
        "lakehouse-tests-connect",
        "--master",
        "local[2]",
        "--driver-memory",
        "2g",
        "--conf",
        "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf",
        f"spark.connect.grpc.binding.port={port}",
        "--conf",
        f"spark.pyspark.python={python}",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        "spark.sql.shuffle.partitions=8",
        *(argument for name, value in (conf or {}).items() for argument in ("--conf", f"{name}={value}")),
        "spark-internal",
    ]
    started = time.monotonic()
    log = (directory / "server.log").open("wb")
    process = subprocess.Popen(
        command, cwd=directory, env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=log
    )
    while not _listening(port):
        if process.poll() is not None or time.monotonic() - started > START_TIMEOUT_S:
            process.kill()
            raise RuntimeError(f"the Spark Connect server did not start; see {directory / 'server.log'}")
        time.sleep(0.25)
    return ConnectServer(f"sc://127.0.0.1:{port}", process, python, time.monotonic() - started)


def java_descendants(exclude: int | None = None) -> set[int]:
    """Java processes started by this process (directly or not), but `exclude` and its children."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, pending = set(), list(children.get(os.getpid(), []))
    while pending:
        pid = pending.pop()
        if pid == exclude:
            continue
        try:
            executable = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            executable = ""
        if Path(executable).name == "java":
            found.add(pid)
        pending += children.get(pid, [])
    return found


def worker_imports(url: str, module: str) -> str:
    """What importing `module` gives in the server's Python worker, on a fresh session with no
    artifacts. The probe is pickled by value (its module is not importable there either)."""
    from pyspark.sql import SparkSession

    namespace = {"__name__": "lakehouse_worker_probe"}
    exec(
        "def probe(batches):\n"
        "    import importlib, sys\n"
        "    import pyarrow as pa\n"
        "    for _ in batches:\n"
        "        try:\n"
        f"            found = 'imported ' + importlib.import_module({module!r}).__name__\n"
        "        except ImportError as error:\n"
        "            found = f'{type(error).__name__}: {error}'\n"
        "        columns = [pa.array([found]), pa.array([sys.executable])]\n"
        "        yield pa.record_batch(columns, names=['found', 'python'])\n",
        namespace,
    )
    session = SparkSession.builder.remote(url).create()
    try:
        row = session.range(1).mapInArrow(namespace["probe"], "found string, python string").first()
    finally:
        session.stop()
    return f"{row['found']} ({row['python']})"
