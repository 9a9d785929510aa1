"""The student's JupyterLab of the course: `python -m courselab` (`make lab`).

    __init__.py   skip_rfc3987_syntax: what a process that reads notebooks calls first
    __main__.py   starts JupyterLab on the course folder with the configuration in jupyter/
    jupyter/      a Jupyter configuration folder (put first on JUPYTER_CONFIG_PATH): nbgrader's
                  Validate stays, the instructor's parts of nbgrader (assignment exchange,
                  course list, formgrader, create assignment) are switched off
    validate.py   the server side of Validate: the course's configuration, a summary
    check.py      what Validate runs: the notebook executed and scored as the grader does it
    contents.py   the lab's file view: release/ and solutions/, opened without changes

It ships in the student bundle beside `course`; nothing here knows an answer or a hidden test.
"""

from __future__ import annotations

import sys


def skip_rfc3987_syntax() -> None:
    """jsonschema (under nbformat) imports rfc3987_syntax, which compiles an Earley grammar at
    import: 2.8 s of CPU in every process that reads a notebook, a lab server and a grading
    worker alike (python-jsonschema/jsonschema#1392). It only checks the "iri" string format,
    which no notebook schema uses; without it jsonschema skips that format. Only effective
    before jsonschema is imported. Here, not in grader: courselab ships without grader, whose
    processes call it through grader.process.setup_process."""
    # None in sys.modules makes `import rfc3987_syntax` raise ImportError, as if not installed;
    # typeshed does not allow it.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
