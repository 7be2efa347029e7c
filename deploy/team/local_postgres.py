"""A PostgreSQL cluster of its own for the team deployment: `make team-dev` and the tests start it.

Debian's server binaries (`/usr/lib/postgresql/<version>/bin`), a cluster in a directory the
caller names, listening on 127.0.0.1 only (no Unix socket), with a password login for one role,
`lakehouse`. PostgreSQL refuses to run as root, so under root the server runs as the `postgres`
system user the Debian package creates (`runuser`); every other user runs it as itself.

    python deploy/team/local_postgres.py start ROOT [--port N] [--databases a,b]
        prints `export NAME=value` lines (DAGSTER_PG_*, LAKEHOUSE_CATALOG_URI) for `eval`
    python deploy/team/local_postgres.py stop ROOT

ROOT holds `data/` (the cluster, owned by the server's user), `password` and `server.log`.
Starting an existing cluster reuses its port and password. No import of the product: the Makefile
runs this before anything else, the tests import it.
"""

import argparse
import contextlib
import dataclasses
import glob
import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROLE = "lakehouse"
SERVER_USER = "postgres"
# Dagster's daemon, webserver and run workers plus a catalog engine per step process
MAX_CONNECTIONS = 300
START_TIMEOUT_S = 60


@dataclasses.dataclass(frozen=True)
class Cluster:
    root: Path
    port: int
    password: str
    host: str = "127.0.0.1"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{ROLE}:{self.password}@{self.host}:{self.port}/{database}"

    def environment(self, dagster_db: str = "dagster", catalog_db: str = "lakehouse") -> dict[str, str]:
        """The variables deploy/team/dagster.yaml and the product's settings read."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": ROLE,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": dagster_db,
            "LAKEHOUSE_CATALOG_URI": self.url(catalog_db),
        }


def bin_dir() -> Path:
    """The newest installed server's binaries (Debian keeps them off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(Path(path).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise FileNotFoundError("no PostgreSQL server binaries: apt-get install postgresql")


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser"):
        return ["runuser", "-u", SERVER_USER, "--"]
    entry = pwd.getpwnam(SERVER_USER)
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--"]


def _run(*command: str) -> str:
    # cwd "/": the server's user may not be allowed into the caller's directory
    completed = subprocess.run(
        [*_as_server_user(), *command],
        cwd="/",
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{completed.stdout}{completed.stderr}")
    return completed.stdout


def _give_to_server_user(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVER_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _initdb(root: Path, port: int, password: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    # the server's user must get through ROOT to data/, without reading the password file
    root.chmod(0o711)
    (root / "password").write_text(password)
    (root / "password").chmod(0o600)
    root.joinpath("data").mkdir(mode=0o700)
    _give_to_server_user(root / "data")
    # initdb wants an empty data directory, so the password it reads sits beside it
    pwfile = root / ".pwfile"
    pwfile.write_text(password)
    pwfile.chmod(0o600)
    _give_to_server_user(pwfile)
    try:
        _run(
            str(bin_dir() / "initdb"),
            f"--pgdata={root / 'data'}",
            f"--username={ROLE}",
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        )
    finally:
        pwfile.unlink(missing_ok=True)
    settings = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(port),
        "unix_socket_directories": "''",
        "max_connections": str(MAX_CONNECTIONS),
    }
    with (root / "data" / "postgresql.conf").open("a") as conf:
        conf.write("\n# deploy/team/local_postgres.py: loopback only, TCP only\n")
        conf.writelines(f"{name} = {value}\n" for name, value in settings.items())


def _configured_port(root: Path) -> int:
    ports = re.findall(r"^port = (\d+)$", (root / "data" / "postgresql.conf").read_text(), re.MULTILINE)
    return int(ports[-1])


def _wait_for_login(cluster: Cluster) -> None:
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            psycopg.connect(cluster.url("postgres", driver="postgresql"), connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def start(root: Path, port: int | None = None) -> Cluster:
    """Initialise the cluster under `root` if it is new, then start it (a running one is kept)."""
    root = Path(root).resolve()
    if not (root / "data" / "PG_VERSION").exists():
        _initdb(root, port or free_port(), secrets.token_urlsafe(24))
    cluster = Cluster(root=root, port=_configured_port(root), password=(root / "password").read_text())
    if not is_running(root):
        log = root / "server.log"
        log.touch()
        _give_to_server_user(log)
        _run(
            str(bin_dir() / "pg_ctl"),
            f"--pgdata={cluster.data}",
            f"--log={log}",
            f"--timeout={START_TIMEOUT_S}",
            "--wait",
            "start",
        )
    _wait_for_login(cluster)
    return cluster


def is_running(root: Path) -> bool:
    data = Path(root).resolve() / "data"
    completed = subprocess.run(
        [*_as_server_user(), str(bin_dir() / "pg_ctl"), f"--pgdata={data}", "status"],
        cwd="/",
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return completed.returncode == 0


def stop(root: Path) -> None:
    if is_running(root):
        _run(str(bin_dir() / "pg_ctl"), f"--pgdata={Path(root).resolve() / 'data'}", "--mode=fast", "stop")


def create_database(cluster: Cluster, name: str) -> None:
    """Create database `name` owned by the role, unless it exists."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(cluster.url("postgres", driver="postgresql"), autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(cluster: Cluster, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(cluster.url("postgres", driver="postgresql"), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop"])
    parser.add_argument("root", type=Path)
    parser.add_argument("--port", type=int, help="for a new cluster; default: a free one")
    parser.add_argument("--databases", default="dagster,lakehouse", help="created if missing")
    args = parser.parse_args(argv)
    if args.command == "stop":
        stop(args.root)
        return
    began = time.monotonic()
    cluster = start(args.root, args.port)
    for name in filter(None, args.databases.split(",")):
        create_database(cluster, name)
    took = time.monotonic() - began
    print(f"# PostgreSQL on {cluster.host}:{cluster.port}, ready in {took:.1f} s", file=sys.stderr)
    for name, value in cluster.environment().items():
        print(f"export {name}={shlex.quote(value)}")


if __name__ == "__main__":
    main()
