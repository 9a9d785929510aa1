"""Preparing this process for nbgrader, once, by the entry point that starts it.

Importing grader changes nothing outside it: each entry point (the command line, a grading
worker, a benchmark, the test session) calls `setup_process()` itself, first, before anything
imports nbformat.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import TYPE_CHECKING

from courselab import skip_rfc3987_syntax

if TYPE_CHECKING:
    from sqlalchemy import Engine


def setup_process() -> None:
    """Make this process fit to run nbgrader: its console scripts found, its gradebook
    warnings silenced, notebooks read without rfc3987_syntax, gradebooks made without a
    subprocess, one database engine per gradebook. Calling it again changes nothing."""
    skip_rfc3987_syntax()
    find_console_scripts()
    # nbgrader 0.9 trips SQLAlchemy 2's autoflush warnings on every new submission; they are
    # about nbgrader's session handling, not the grades, and would bury the grader's output.
    warnings.filterwarnings("ignore", message=r"Object of type <Submitted", module="nbgrader")
    alembic_head_in_process()
    one_engine_per_gradebook()


def find_console_scripts() -> None:
    """nbgrader runs other console scripts (alembic) by name: make sure the ones installed
    beside this Python are found even when the virtual environment is not activated."""
    scripts = os.path.dirname(sys.executable)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")


def alembic_head() -> str:
    """What nbgrader's get_alembic_version returns, read in this process: nbgrader runs
    `alembic heads` as a command for every new gradebook, which imports nbgrader anew and
    takes 5 s (a build makes one gradebook per assignment)."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    config = AlembicConfig()
    config.set_main_option("script_location", ALEMBIC_DIR)
    head = ScriptDirectory.from_config(config).get_current_head()
    if head is None:
        raise RuntimeError(f"no alembic revision in {ALEMBIC_DIR}")
    return head


def alembic_head_in_process() -> None:
    """nbgrader's get_alembic_version replaced by `alembic_head` (nbgrader offers no setting
    for it; one of the two places the grader replaces a function of a library)."""
    import nbgrader.api

    nbgrader.api.get_alembic_version = alembic_head


def one_engine_per_gradebook() -> None:
    """nbgrader's Gradebook made to share one SQLAlchemy engine per database URL (nbgrader
    offers no setting for it; the other place the grader replaces a library's function).

    nbgrader makes a new engine for each Gradebook it opens, six per submission graded, and
    an engine's cache of compiled statements goes with it: the grader's main process compiled
    the same queries again and again, 40% of its CPU time in autograde (the demo class: 2.3 s
    of CPU, 1.4 s with engines shared). Gradebook.close() disposes of the engine's
    connections, as before; the engine and its cache stay for the next Gradebook."""
    import nbgrader.api
    from sqlalchemy import create_engine

    if getattr(nbgrader.api.create_engine, "shared_engines", None) is not None:
        return  # set up already
    engines: dict[tuple, Engine] = {}

    def shared_engine(url, **options) -> Engine:
        key = (str(url), tuple(sorted(options.items())))
        if key not in engines:
            engines[key] = create_engine(url, **options)
        return engines[key]

    shared_engine.shared_engines = engines  # type: ignore[attr-defined]
    nbgrader.api.create_engine = shared_engine
