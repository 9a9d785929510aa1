"""Importing grader changes nothing outside it; grader.process.setup_process() prepares a
process for nbgrader, and the entry points call it (the command line before anything imports
nbformat). Each check runs in a fresh Python, since the test session's own is set up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from grader.config import REPO_ROOT

SCRIPTS = str(Path(sys.executable).parent)
PATH = "/usr/bin:/bin"  # without the scripts beside this Python

# Prints what setup_process would change, as JSON, after running `body`.
PROBE = """
import json, os, sys, warnings

{body}

import nbgrader.api

print(json.dumps({{
    "path": os.environ["PATH"],
    "filters": [repr(f) for f in warnings.filters if "Submitted" in repr(f)],
    "rfc3987_syntax": type(sys.modules.get("rfc3987_syntax", "absent")).__name__,
    "alembic": nbgrader.api.get_alembic_version.__module__,
    "engine": nbgrader.api.create_engine.__module__,
    "jsonschema_before": {jsonschema_before},
}}))
"""


def probe(body: str, jsonschema_before: str = "None") -> dict:
    code = PROBE.format(body=textwrap.dedent(body), jsonschema_before=jsonschema_before)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PATH": PATH},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_every_module_of_grader_changes_nothing_outside_it():
    found = probe(
        """
        import importlib, pkgutil

        # Who adds a warnings filter (libraries do, on import): no module of grader.
        callers = []
        for name in ("filterwarnings", "simplefilter"):
            def record(*args, _original=getattr(warnings, name), **kwargs):
                callers.append(sys._getframe(1).f_globals.get("__name__") or "")
                return _original(*args, **kwargs)
            setattr(warnings, name, record)

        import grader

        names = [
            name
            for _, name, _ in pkgutil.walk_packages(grader.__path__, "grader.")
            if not name.endswith(".__main__")  # runs the command line or a worker
        ]
        for name in names:
            importlib.import_module(name)
        assert "grader.pipeline.build" in names and "grader.execution.worker" in names
        assert callers, "the probe saw no library add a filter"
        assert not [c for c in callers if c.split(".")[0] == "grader"], callers
        """
    )
    assert found == {
        "path": PATH,
        "filters": [],
        # jsonschema imported the real module: nobody put None in its place
        "rfc3987_syntax": "module",
        "alembic": "nbgrader.api",
        "engine": "sqlalchemy.engine.create",
        "jsonschema_before": None,
    }


def test_the_command_line_sets_up_its_process_once_before_anything_reads_a_notebook():
    found = probe(
        """
        import grader.cli
        from grader.process import setup_process

        jsonschema_before = "jsonschema" in sys.modules
        try:
            grader.cli.main(["--help"])
        except SystemExit:
            pass
        setup_process()  # again: changes nothing more
        import nbformat
        """,
        jsonschema_before="jsonschema_before",
    )
    assert found["jsonschema_before"] is False, "importing grader.cli reads notebooks"
    assert found["path"].split(os.pathsep) == [SCRIPTS, *PATH.split(os.pathsep)]
    assert len(found["filters"]) == 1, found["filters"]
    assert found["rfc3987_syntax"] == "NoneType"  # nbformat came after: jsonschema went without
    assert found["alembic"] == "grader.process"
    assert found["engine"] == "grader.process"


def test_a_grading_worker_sets_up_its_process_before_its_imports():
    found = probe(
        """
        import runpy

        sys.argv = ["grader.execution", "--no-such-option"]
        try:
            runpy.run_module("grader.execution", run_name="__main__")  # as pool starts it
        except SystemExit:
            pass
        assert "grader.execution.worker" in sys.modules
        """
    )
    assert found["path"].split(os.pathsep)[0] == SCRIPTS
    assert len(found["filters"]) == 1
    assert found["rfc3987_syntax"] == "NoneType", "the worker read notebooks before set-up"
    assert found["alembic"] == "grader.process"


def test_gradebooks_of_one_database_share_its_engine_and_compiled_statements(tmp_path):
    """One engine per database URL (setup_process, which the test session has run): its
    cache of compiled statements outlives each Gradebook; what one wrote, the next reads."""
    from nbgrader.api import Gradebook

    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url, "course") as gb:
        gb.add_student("ada")
        engine = gb.engine
        compiled = len(engine._compiled_cache)
    assert compiled > 0
    with Gradebook(url, "course") as gb:
        assert gb.engine is engine
        assert [s.id for s in gb.students] == ["ada"]
    with Gradebook(url, "course") as gb:
        [_ for _ in gb.students]
        assert len(engine._compiled_cache) == compiled + 1  # the student query, once
    other = f"sqlite:///{tmp_path / 'other.db'}"
    with Gradebook(other, "course") as gb:
        assert gb.engine is not engine and gb.students == []
