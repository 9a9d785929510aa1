"""The server side of nbgrader's Validate button in the student's lab.

nbgrader's labextension keeps its button and dialog; this server extension answers the two
routes the button calls, in place of nbgrader's validate_assignment extension (which
jupyter/jupyter_server_config.json switches off). Why not nbgrader's own:

- it reads nbgrader_config.py from the directory the server was started in, so a lab
  started anywhere else validated with nbgrader's defaults; here it is always the course
  folder's (the lab's root: the repository, or the student bundle with its student-safe copy);
- its Validator leaves out the grader's IgnorePattern, so a library warning on stderr
  failed a test cell that the grader passes; courselab.check applies it;
- it runs the notebook inside the server process (changing the server's working directory
  and blocking it for the whole run); here it runs in a process of its own;
- its dialog listed every failing cell's source and traceback. The answer below is in the
  shape that dialog displays ({"success": true, "value": {"failed": [...]}}), made of a
  summary: "N of M tests pass, P of Q points", the first failing sentence per exercise and
  each written answer still blank.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

CONFIG_FILE = "nbgrader_config.py"
LOG = logging.getLogger("courselab")
# Kernels of a validation draw no figures and show no progress bars, as grading kernels.
ENVIRONMENT = {"MPLBACKEND": "Agg", "TQDM_DISABLE": "1"}


def _jupyter_server_extension_points():
    return [{"module": "courselab.validate"}]


def _load_jupyter_server_extension(serverapp):
    root = Path(serverapp.root_dir).resolve()
    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "assignments/validate"), ValidateHandler, {"root": root}),
            (url_path_join(base, "nbgrader_version"), VersionHandler),
        ],
    )
    serverapp.log.info("courselab: Validate runs with %s", root / CONFIG_FILE)


class ValidateHandler(JupyterHandler):
    def initialize(self, root: Path):
        self.root = root

    @web.authenticated
    async def post(self):
        path = self.get_argument("path", None)
        if path is None:
            path = (self.get_json_body() or {}).get("path", "")
        target = (self.root / path).resolve()
        if not target.is_relative_to(self.root):
            raise web.HTTPError(403, "Access denied: path outside the course folder")
        self.finish(json.dumps(await validate(target, self.root / CONFIG_FILE, self.log)))


class VersionHandler(JupyterHandler):
    """The button first checks that the server speaks its nbgrader version."""

    @web.authenticated
    def get(self):
        installed = version("nbgrader")
        if self.get_argument("version") == installed:
            self.finish(json.dumps({"success": True}))
        else:
            self.finish(
                json.dumps(
                    {
                        "success": False,
                        "message": (
                            f"nbgrader's Validate button is version {self.get_argument('version')} "
                            "but "
                            f"the server has nbgrader {installed}; reinstall the course's "
                            "environment."
                        ),
                    }
                )
            )


async def validate(notebook: Path, config: Path, log=LOG) -> dict:
    """Run courselab.check on `notebook` in a process of its own; the dialog's answer."""
    if not config.is_file():
        return {
            "success": False,
            "value": (
                f"{config} is missing, so Validate cannot run with the course's settings. "
                "Start the lab in the course folder with `make lab` or `python -m courselab`."
            ),
        }
    if not notebook.is_file():
        return {"success": False, "value": f"{notebook.name}: no such notebook; save it first."}
    # A thread waits for the process: the server's event loop stays free (and on Windows,
    # Jupyter's selector loop cannot run asyncio's subprocesses).
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "courselab.check", "--json", "--config", str(config), str(notebook)],
        cwd=str(config.parent),
        env={**os.environ, **ENVIRONMENT},
        capture_output=True,
    )
    out, err = done.stdout, done.stderr
    try:
        results = json.loads(out.decode().strip().splitlines()[-1])
    except (IndexError, ValueError):
        lines = err.decode(errors="replace").strip().splitlines() or ["(no message)"]
        log.error("courselab.check failed on %s:\n%s", notebook, "\n".join(lines[-30:]))
        return {"success": False, "value": f"Validate could not run {notebook.name}: {lines[-1]}"}
    return {"success": True, "value": results["dialog"]}
