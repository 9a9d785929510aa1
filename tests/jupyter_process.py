"""A Jupyter server (the student's lab, formgrader) in a process of its own, for the tests
that speak to it over its HTTP API or open it in a browser.

Its user folders (config, data, runtime, IPython) are in a folder of the test's, so that
neither the user's nor another test's settings reach it, and it listens on a free port of
127.0.0.1 with a token of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from grader.config import REPO_ROOT

START_S = 90  # 2 shared cores, another test worker beside


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterServer:
    """A Jupyter server started from `argv`, its user folders in `home`; it answers once made."""

    def __init__(self, argv: list[str], home: Path, cwd: Path = REPO_ROOT):
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / "server.log"
        env = {
            **os.environ,
            **{
                name: str(home / name.lower())
                for name in (
                    "JUPYTER_CONFIG_DIR",
                    "JUPYTER_DATA_DIR",
                    "JUPYTER_RUNTIME_DIR",
                    "IPYTHONDIR",
                )
            },
        }
        argv = [
            *argv,
            "--no-browser",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
        ]
        if os.geteuid() == 0:
            argv.append("--allow-root")  # as a student would pass it through LAB_ARGS
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server stopped: {self.log.read_text()[-3000:]}")
            try:
                self.get("api/status")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        self.stop()
        pytest.fail(f"the server did not answer in {START_S} s: {self.log.read_text()[-3000:]}")

    def request(self, method: str, path: str, body=None):
        """(status, answer as JSON or text) of a request for `path`, `body` sent as JSON."""
        request = urllib.request.Request(  # noqa: S310 (our own server, http://127.0.0.1)
            f"{self.url}/{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (as above)
                status, text = answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def get(self, path: str):
        """(status, answer as JSON or text) of GET `path`."""
        return self.request("GET", path)

    def call(self, method: str, path: str, body=None):
        """The JSON answer of a request that must succeed."""
        status, answer = self.request(method, path, body)
        assert 200 <= status < 300, f"{method} {path}: {status} {answer}"
        return answer

    def page(self, path: str) -> str:
        return f"{self.url}/{path}?token={self.token}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_formgrader(repo_root: Path, workdir: Path, home: Path) -> JupyterServer:
    """`python -m grader formgrader` on the grading folder `workdir` of the course at
    `repo_root`."""
    return JupyterServer(
        [
            sys.executable,
            "-m",
            "grader",
            "--root",
            str(repo_root),
            "formgrader",
            "--workdir",
            str(workdir),
            "--",
        ],
        home,
    )
