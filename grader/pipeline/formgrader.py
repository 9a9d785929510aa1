"""`python -m grader formgrader` (`make formgrader`): nbgrader's formgrader on the grading folder.

The instructor's JupyterLab, for grading the written answers by hand (Manual Grading: the
submissions whose answers wait for a grade) and the manual review of a surprising score in
nbgrader's own UI (submissions, each graded cell with its output, manual grades and
comments). A grade given there is a manual score in the gradebook, which `report` and
`feedback` read (grader.pipeline.report: pending until then). It starts in
the grading folder (an nbgrader course root: submitted/, autograded/, feedback/ and the
gradebook) with a Jupyter configuration made for the run in a private temporary folder,
first on JUPYTER_CONFIG_PATH:

- nbgrader_config.py loads the course's nbgrader_config.py, then sets the course root to the
  grading folder and the gradebook to the grader's (gradebook.db there, or --db's URL), so
  formgrader reads and writes what `python -m grader` does, and never a gradebook.db in the
  repository (which is what it did when started in the repository's root);
  It also makes formgrader escape the markup of submissions (nbconvert's SanitizeHTML):
  nbgrader's formgrade page shows a markdown cell's HTML as it is, so a submission's
  <script> or onerror= would run in the instructor's Jupyter session;
- formgrader on, the student's parts off: the assignment exchange and the course list (no
  exchange here), and the course's Validate extension (courselab).

The browser opens on formgrader's Manual Grading; JupyterLab is at /lab (Nbgrader > Formgrader
there). nbgrader's exchange (Release, Collect) stays off: submissions come in through
`python -m grader collect`, which trusts nothing a submission carries.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from grader.config import CONFIG_FILE, GradingFolder
from grader.workdir import gradebook

SERVER_EXTENSIONS = {
    "nbgrader.server_extensions.formgrader": True,
    "nbgrader.server_extensions.validate_assignment": True,
    "nbgrader.server_extensions.assignment_list": False,
    "nbgrader.server_extensions.course_list": False,
    "courselab.validate": False,
}
DISABLED_LAB_PLUGINS = {
    "@jupyter/nbgrader:assignment-list": True,
    "@jupyter/nbgrader:course-list": True,
    "@jupyterlab/apputils-extension:announcements": True,
}


def write_config(folder: Path, course: GradingFolder) -> None:
    """The run's Jupyter configuration: see the module's docstring."""
    (folder / CONFIG_FILE).write_text(
        '"""Written by `python -m grader formgrader` for one run: the course\'s configuration,\n'
        'on the grading folder and its gradebook."""\n\n'
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(course.config_file)!r})  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(course.root)!r}\n"
        f"c.CourseDirectory.db_url = {gradebook.db_url(course)!r}\n"
        "# Formgrader shows a submission through nbconvert's HTMLExporter, which passes the\n"
        "# HTML of a markdown cell or an output through as it is: a submission's script would\n"
        "# run in the instructor's Jupyter session. nbconvert's SanitizeHTML escapes it first.\n"
        'c.HTMLExporter.preprocessors = ["nbconvert.preprocessors.sanitize.SanitizeHTML"]\n'
        "c.HTMLExporter.sanitize_html = True\n"
    )
    (folder / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": SERVER_EXTENSIONS}}, indent=2)
    )
    (folder / "labconfig").mkdir()
    (folder / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": DISABLED_LAB_PLUGINS}, indent=2)
    )


# `python -m jupyterlab`, its process set up as the grader's are (grader.process): nbformat
# without rfc3987_syntax (2.8 s of CPU at each start), nbgrader's alembic check in-process.
SERVER = (
    "import runpy; from grader.process import setup_process; setup_process(); "
    "runpy.run_module('jupyterlab', run_name='__main__', alter_sys=True)"
)


def formgrader(course: GradingFolder, lab_args: list[str]) -> int:
    """Run JupyterLab with formgrader on an open grading folder until it stops."""
    lab_args = lab_args[1:] if lab_args[:1] == ["--"] else lab_args
    with tempfile.TemporaryDirectory(prefix="grader-formgrader-") as folder:
        write_config(Path(folder), course)
        env = dict(os.environ)
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
            [folder] + [p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p]
        )
        # nbgrader runs the alembic command; keep this environment's scripts first on PATH.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        command = [
            sys.executable,
            "-c",
            SERVER,
            f"--ServerApp.root_dir={course.root}",
            "--LabApp.default_url=/formgrader/gradebook",
            *lab_args,
        ]
        print(f"Formgrader on {course.root} (gradebook: {gradebook.describe(course)})", flush=True)
        # In the grading folder: nbgrader also reads an nbgrader_config.py where it starts.
        server = subprocess.Popen(command, cwd=course.root, env=env)
        # Stopped, this process stops the server too (an orphaned one would keep the port).
        previous = signal.signal(signal.SIGTERM, lambda *_: server.terminate())
        try:
            while True:
                try:
                    return server.wait()
                except KeyboardInterrupt:  # the server got the same Ctrl-C: it asks, then stops
                    continue
        finally:
            signal.signal(signal.SIGTERM, previous)
