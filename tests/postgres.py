"""A PostgreSQL server of the test session's own, for the shared-gradebook tests.

Debian's server binaries (`apt-get install postgresql`, scripts/system-packages) are
started from a fresh data folder under /var/tmp: trust authentication, listening on
127.0.0.1 on a free port and on a Unix socket in that folder, tuned for speed (no fsync).
PostgreSQL refuses to run as root, so a root test run starts it as the `postgres` user
(or `nobody`), which owns the folder; anyone else runs it as themselves. It is stopped
and its folder removed when the session ends. Missing binaries fail the tests: a shared
gradebook is a feature, not an option of the test machine.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

USER = "grader"  # the server's superuser; trust authentication, so any password passes
INSTALL = "apt-get install postgresql"


def bindir() -> Path | None:
    """The folder of initdb and postgres: pg_config's, else Debian's newest, else PATH's."""
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    if shutil.which("initdb"):  # elsewhere than Debian, the server's binaries are on PATH
        candidates.append(str(Path(shutil.which("initdb")).parent))
    for folder in candidates:
        if folder and (Path(folder) / "initdb").is_file() and (Path(folder) / "postgres").is_file():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> tuple[list[str], int, int]:
    """The command prefix that drops root, and the uid and gid the server runs as."""
    if os.geteuid() != 0:
        return [], os.getuid(), os.getgid()
    try:
        entry = pwd.getpwnam("postgres")
        uid, gid = entry.pw_uid, entry.pw_gid
    except KeyError:
        uid = gid = 65534  # nobody
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"], uid, gid


class Server:
    """A running server; `new_database()` gives the SQLAlchemy URL of an empty database."""

    def __init__(self, folder: Path, port: int, process: subprocess.Popen):
        self.folder, self.port, self.process = folder, port, process
        self._names = itertools.count()

    def url(self, database: str, password: str | None = None) -> str:
        auth = USER if password is None else f"{USER}:{password}"
        return f"postgresql+psycopg://{auth}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres", **kwargs):
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=USER,
            dbname=database,
            connect_timeout=5,
            **kwargs,
        )

    def new_database(self, password: str | None = None) -> str:
        name = f"gradebook_{next(self._names)}"
        with self.connect(autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return self.url(name, password)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown: ends the sessions
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start() -> Server:
    found = bindir()
    if found is None:
        pytest.fail(
            f"PostgreSQL's server binaries (initdb, postgres) are missing: {INSTALL} "
            "(scripts/system-packages --tests installs it)",
            pytrace=False,
        )
    prefix, uid, gid = _run_as()
    folder = Path(tempfile.mkdtemp(prefix="grader-postgres-", dir="/var/tmp"))
    os.chown(folder, uid, gid)
    data = folder / "data"
    env = {"PATH": "/usr/bin:/bin", "LANG": "C", "HOME": str(folder)}
    try:
        subprocess.run(
            [
                *prefix,
                str(found / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            cwd=folder,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        for _ in range(5):  # a free port can be taken between the look and the start
            port = _free_port()
            with open(folder / "server.log", "a") as log:  # the server writes to it
                process = subprocess.Popen(
                    [
                        *prefix,
                        str(found / "postgres"),
                        "-D",
                        str(data),
                        "-p",
                        str(port),
                        "-k",
                        str(folder),
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        "fsync=off",
                        "-c",
                        "synchronous_commit=off",
                        "-c",
                        "full_page_writes=off",
                    ],
                    cwd=folder,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            server = Server(folder, port, process)
            if _ready(server):
                return server
            if process.poll() is None:
                process.kill()
            process.wait()
        raise RuntimeError((folder / "server.log").read_text()[-2000:])
    except BaseException as error:
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(error, subprocess.CalledProcessError):
            pytest.fail(f"initdb failed: {error.stderr}", pytrace=False)
        raise


def _ready(server: Server, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            with server.connect():
                return True
        except psycopg.OperationalError:
            time.sleep(0.1)
    server.process.kill()
    return False


@pytest.fixture(scope="session")
def postgres():
    server = start()
    try:
        yield server
    finally:
        server.stop()
