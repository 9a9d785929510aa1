"""Shared fixtures: the real course, and a tiny course built in a temporary folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from postgres import postgres  # noqa: F401 (a session's PostgreSQL server, on request)

from grader.config import REPO_ROOT, load_config
from grader.workdir import gradebook

MINI = "01_perceptron"  # the tiny course reuses a real assignment id of nbgrader_config.py


def nbgrader_cell(source: str, grade_id: str, *, solution=False, points=None, kind="code"):
    """A cell with nbgrader metadata, as the create-assignment toolbar writes it."""
    cell = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
    cell.metadata["nbgrader"] = {
        "grade": points is not None,
        "grade_id": grade_id,
        "locked": not solution,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        cell.metadata["nbgrader"]["points"] = points
    return cell


def mini_cells():
    """One exercise worth 2 points: a solution cell and a test cell with a hidden test."""
    return [
        new_markdown_cell("# A tiny assignment"),
        new_code_cell("import numpy as np"),
        new_markdown_cell("### Exercise 1.1: Square (2 points)"),
        nbgrader_cell(
            'def square(x):\n    """Return x squared."""\n'
            "    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
            "square",
            solution=True,
        ),
        nbgrader_cell(
            '"""Check that square squares."""\nassert square(3) == 9, "square(3) should be 9"\n'
            '### BEGIN HIDDEN TESTS\nassert square(-2) == 4, "square(-2) should be 4"\n'
            "### END HIDDEN TESTS",
            "test_square",
            points=2,
        ),
        new_code_cell("print(square(4))"),
    ]


def write_notebook(path: Path, cells) -> Path:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def mini_course(tmp_path):
    """A course root in tmp_path with the repo's nbgrader_config.py and one tiny notebook."""
    shutil.copy(REPO_ROOT / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    write_notebook(tmp_path / "source" / MINI / f"{MINI}.ipynb", mini_cells())
    return load_config(tmp_path)


@pytest.fixture(scope="session")
def repo_course():
    return load_config(REPO_ROOT)


def two_exercise_cells():
    """The tiny assignment plus a second exercise (1 point), so partial credit shows."""
    return mini_cells() + [
        new_markdown_cell("### Exercise 1.2: Cube (1 point)"),
        nbgrader_cell(
            'def cube(x):\n    """Return x cubed."""\n'
            "    ### BEGIN SOLUTION\n    return x ** 3\n    ### END SOLUTION",
            "cube",
            solution=True,
        ),
        nbgrader_cell(
            '"""Check that cube cubes."""\nassert cube(2) == 8, "cube(2) should be 8"',
            "test_cube",
            points=1,
        ),
    ]


def build_class_course(root: Path, cells=None):
    """A built course (release/ made) in `root`: the two-exercise one unless `cells`."""
    from grader.pipeline.build import build

    root.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    write_notebook(root / "source" / MINI / f"{MINI}.ipynb", cells or two_exercise_cells())
    course = load_config(root)
    build(course, solutions=False)
    return course


@pytest.fixture
def class_course(tmp_path):
    return build_class_course(tmp_path / "course")


# --- editing a student's notebook, for the hostile suites ---------------------------------


def copy_notebook(nb):
    return nbformat.reads(nbformat.writes(nb), as_version=4)


def cell_index(nb, grade_id: str) -> int:
    """Position of the cell with nbgrader grade id `grade_id`."""
    return next(
        i
        for i, c in enumerate(nb.cells)
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id
    )


def with_cells_after(nb, grade_id: str, *sources: str):
    """`nb` with new code cells (a student may add cells) right after the cell `grade_id`."""
    nb = copy_notebook(nb)
    at = cell_index(nb, grade_id) + 1
    nb.cells[at:at] = [new_code_cell(s) for s in sources]
    return nb


def answered(nb, grade_id: str, right: str, wrong: str):
    """`nb` with the answer in cell `grade_id` replaced by a wrong one."""
    nb = copy_notebook(nb)
    cell = nb.cells[cell_index(nb, grade_id)]
    assert right in cell.source
    cell.source = cell.source.replace(right, wrong)
    return nb


# --- a grading folder of the tiny course, made once per module, copied per test ------------


@pytest.fixture(scope="module")
def prepared_grading(tmp_path_factory):
    """(course, grading folder) made with nbgrader (slow: ~5 s), once per test module."""
    root = tmp_path_factory.mktemp("grading")
    repo = build_class_course(root / "course")
    return repo, gradebook.prepare(repo, root / "grading").root


@pytest.fixture
def copied_grading(prepared_grading, tmp_path):
    """A fresh copy of the module's grading folder."""
    repo, template = prepared_grading
    shutil.copytree(template, tmp_path / "grading")
    return gradebook.open_workdir(repo, tmp_path / "grading")
