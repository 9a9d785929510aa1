"""Instructor tooling on top of nbgrader: build the course, grade submissions, report."""

import os
import sys

# nbgrader runs other console scripts (alembic) by name: make sure the ones installed
# beside this Python are found even when the virtual environment is not activated.
_scripts = os.path.dirname(sys.executable)
if _scripts not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _scripts + os.pathsep + os.environ.get("PATH", "")

# nbgrader 0.9 trips SQLAlchemy 2's autoflush warnings on every new submission; they are
# about nbgrader's session handling, not the grades, and would bury the grader's output.
import warnings  # noqa: E402

warnings.filterwarnings("ignore", message=r"Object of type <Submitted", module="nbgrader")

# jsonschema (under nbformat) imports rfc3987_syntax, which compiles an Earley grammar at
# import: 2.8 s of CPU in every process that reads a notebook, paid again by every grading
# worker (python-jsonschema/jsonschema#1392). It only checks the "iri" string format,
# which no notebook schema uses; without it jsonschema skips that format.
sys.modules.setdefault("rfc3987_syntax", None)
