"""Submissions that replace what the tests call, to pass every test (grader/execution/tamper.py).

A tiny course whose tests use `np.testing.assert_allclose` and course.testing's
`assert_close` (imported by name inside the test cell, as the course's notebooks do). Each
cheater answers wrongly and replaces one of them; the canaries must catch every blanket
replacement (status invalid, every test 0), and must not fire on honest work. A canary
counts as failing only with an AssertionError, so replacing `builtins.AssertionError`
(which course.testing then raises) is caught too. Replacements written to pass the
canaries are test_hostile_scoring.py's.
"""

from __future__ import annotations

import csv
import shutil

import pytest
from conftest import MINI, nbgrader_cell, write_notebook
from nbformat.v4 import new_code_cell, new_markdown_cell

from grader.config import REPO_ROOT, load_config
from grader.notebooks import cells as nbs
from grader.pipeline.autograde import autograde
from grader.pipeline.build import build
from grader.pipeline.report import write_report
from grader.pipeline.synthetic import as_handed_in
from grader.workdir import folder

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

RIGHT, WRONG = "return 2 * x", "return x"
PATCHES = {
    # student -> (code added after the answer, what the message must name)
    "numpy_patch": (
        "import numpy as np\nnp.testing.assert_allclose = lambda *a, **k: None",
        "np.testing.assert_allclose",
    ),
    "module_patch": (
        "import course.testing\ncourse.testing.assert_close = lambda *a, **k: None",
        "assert_close",
    ),
    "builtin_patch": (
        "import builtins\nbuiltins.AssertionError = type('Fine', (Exception,), {})",
        "not an AssertionError",
    ),  # course.testing raises Fine instead
    # Harmless, since the test cell imports the helper afresh, but a cheat all the same.
    "name_patch": ("assert_close = lambda *a, **k: None", "assert_close"),
}


def course_cells():
    return [
        new_markdown_cell("# Doubling"),
        new_code_cell("import numpy as np"),
        new_markdown_cell("### Exercise 1.1: Double (2 points)"),
        nbgrader_cell(
            'def double(x):\n    """Return 2 x."""\n    ### BEGIN SOLUTION\n'
            f"    {RIGHT}\n    ### END SOLUTION",
            "double",
            solution=True,
        ),
        nbgrader_cell(
            '"""Check double on arrays."""\n'
            "np.testing.assert_allclose(double(np.array([1.0, 2.0])), [2.0, 4.0])",
            "test_double_numpy",
            points=1,
        ),
        nbgrader_cell(
            '"""Check double on a number."""\nfrom course.testing import assert_close\n'
            'assert_close(double(3.0), 6.0, "double(3.0)")',
            "test_double_course",
            points=1,
        ),
    ]


def submission(source_nb, answer: str, patch: str | None):
    nb = nbs.read(source_nb)
    cell = next(c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("solution"))
    cell.source = cell.source.replace(RIGHT, answer)
    nb = as_handed_in(nb)
    if patch:
        index = next(
            i
            for i, c in enumerate(nb.cells)
            if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "double"
        )
        nb.cells.insert(index + 1, new_code_cell(patch))
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory, workers):
    root = tmp_path_factory.mktemp("tamper")
    repo_root = root / "course"
    repo_root.mkdir()
    shutil.copy(REPO_ROOT / "nbgrader_config.py", repo_root / "nbgrader_config.py")
    source = write_notebook(repo_root / "source" / MINI / f"{MINI}.ipynb", course_cells())
    repo = load_config(repo_root)
    build(repo, solutions=False)
    course = folder.prepare(repo, root / "grading", [MINI])
    students = {"honest": (RIGHT, None), "wrong": (WRONG, None)}
    students.update({name: (WRONG, patch) for name, (patch, _) in PATCHES.items()})
    for student, (answer, patch) in students.items():
        path = root / "hand-in" / f"{student}.ipynb"
        nbs.write(submission(source, answer, patch), path)
        folder.submit(course, student, MINI, path)
    autograde(course, cell_timeout=30, progress=False, executor=workers(course))
    report, out = write_report(course)
    with open(out / "submissions.csv") as f:
        messages = {row["student"]: row for row in csv.DictReader(f)}
    return report, messages


def test_honest_work_raises_no_alarm(graded):
    report, messages = graded
    assert report.total("honest") == 2, "a right answer must get both points"
    assert messages["honest"]["status"] == "graded" and not messages["honest"]["message"], (
        "the canaries fired on an honest submission"
    )
    assert report.total("wrong") == 0 and messages["wrong"]["status"] == "graded"


@pytest.mark.parametrize("student", PATCHES)
def test_a_replaced_helper_is_detected(graded, student):
    report, messages = graded
    named = PATCHES[student][1]
    row = messages[student]
    assert row["status"] == "invalid", f"{student}: replacing {named} went unnoticed"
    assert "disarmed" in row["message"] and named in row["message"], row["message"]
    assert report.total(student) == 0, f"{student} gained points by replacing {named}"
