"""Shared fixtures: the real course, and a tiny course built in a temporary folder."""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from browser import chromium  # noqa: F401 (Debian's Chromium, on request)
from filelock import FileLock
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from postgres import postgres  # noqa: F401 (a session's PostgreSQL server, on request)
from shared_workers import workers  # noqa: F401 (grading workers the tests share)

from grader.config import REPO_ROOT, CourseConfig, GradingFolder, load_config
from grader.workdir import folder

MINI = "01_perceptron"  # the tiny course reuses a real assignment id of nbgrader_config.py
# How the demo class of the tiny course is graded (tests read its timeouts in messages).
# Its cells take milliseconds; ivy's busy loop burns a core for the whole timeout, in each
# of the five runs that grade the class.
DEMO_JOBS, DEMO_CELL_TIMEOUT = 2, 3


# The files that take longest, longest first (measured: `pytest --durations`), so that no long
# file is left to run alone at the end while the other xdist worker idles. `make test` hands
# out whole files (--dist loadfile) in this order (--no-loadscope-reorder), two per worker to
# begin with: the first two build the run's shared fixtures, one each, at the same time
# (test_solutions_run.py graded_reference, test_grader_integrity.py graded_demo).
SLOWEST_FIRST = [
    "test_solutions_run.py",
    "test_grader_integrity.py",
    "test_template_kernel.py",
    "test_messages.py",
    "test_grader_sandbox.py",
    "test_grader_dask.py",
    "test_lab_browser.py",
    "test_gradebook_postgres.py",
    "test_manual_grading.py",
    "test_hostile.py",
    "test_hostile_scoring.py",
    "test_feedback_course.py",
    "test_lms_grading.py",
    "test_grader_regrade.py",
    "test_courselab.py",
    "test_class_report.py",
    "test_grader_demo.py",
    "test_grader_cli.py",
    "test_tamper.py",
    "test_feedback_hostile.py",
    "test_template_preload.py",
    "test_course_training.py",
    "test_similarity.py",
    "test_feedback_redaction.py",
]


def pytest_collection_modifyitems(config, items):
    """The slowest files first, the rest as collected (a stable sort keeps each file's order)."""
    missing = [name for name in SLOWEST_FIRST if not (Path(__file__).parent / name).exists()]
    if missing:  # a renamed file would silently lose its place
        raise pytest.UsageError(f"conftest.py's SLOWEST_FIRST names no test file {missing}")
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


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


def square_cells():
    """Exercise 1.1's heading and solution cell (`square`), without its tests."""
    return [
        new_markdown_cell("### Exercise 1.1: Square (2 points)"),
        nbgrader_cell(
            'def square(x):\n    """Return x squared."""\n'
            "    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
            "square",
            solution=True,
        ),
    ]


def cube_cells():
    """Exercise 1.2 (1 point): its heading, solution cell (`cube`) and a visible test."""
    return [
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


def mini_cells():
    """One exercise worth 2 points: a solution cell and a test cell with a hidden test."""
    return [
        new_markdown_cell("# A tiny assignment"),
        new_code_cell("import numpy as np"),
        *square_cells(),
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
    return mini_cells() + cube_cells()


def build_class_course(root: Path, cells=None):
    """A built course (release/ made) in `root`: the two-exercise one unless `cells`; a copy
    of the one this test process built (timestamps kept)."""
    shutil.copytree(built_course(json.dumps(cells or two_exercise_cells())), root)
    return load_config(root)


@functools.cache
def built_course(cells: str) -> Path:
    """The tiny course of these cells (JSON), built once per test process: some 40 tests
    build one, and nbgrader's generate_assignment takes 0.2 s of CPU each time."""
    from grader.pipeline.build import build

    root = Path(tempfile.mkdtemp(prefix="built-course-")) / "course"
    atexit.register(shutil.rmtree, root.parent, True)
    root.mkdir()
    shutil.copy(REPO_ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    write_notebook(root / "source" / MINI / f"{MINI}.ipynb", nbformat.from_dict(json.loads(cells)))
    build(load_config(root), solutions=False)
    return root


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
    return repo, folder.prepare(repo, root / "grading").root


@pytest.fixture
def copied_grading(prepared_grading, tmp_path):
    """A fresh copy of the module's grading folder."""
    repo, template = prepared_grading
    shutil.copytree(template, tmp_path / "grading")
    return folder.open_workdir(repo, tmp_path / "grading")


# --- artefacts made once per run and shared by every test and every xdist worker -----------


def shared_folder(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """A folder that `make(folder)` fills once per test run, for every xdist worker.

    pytest-xdist runs one session per worker, so a session fixture alone would make it once
    per worker; the first worker to ask makes it under a file lock in the run's own temporary
    folder and the others wait for it (pytest-xdist's documented pattern). Tests treat it as
    read only: one that changes it works on a copy.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's folder, above each worker's own
    path = base / "shared" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    done = path.with_name(f"{name}.done")
    with FileLock(path.with_name(f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(path, ignore_errors=True)  # a worker that failed to make it
            path.mkdir()
            make(path)
            done.touch()
    return path


@dataclass
class Demo:
    repo: CourseConfig  # the tiny course, built by the demo
    course: GradingFolder  # its grading folder, graded as `python -m grader demo` does


@pytest.fixture(scope="session")
def graded_demo(tmp_path_factory) -> Demo:
    """The tiny course's synthetic class through the whole demo (build, collect, autograde,
    feedback, reports), once per run: the end-to-end suites read it, and the tests that grade
    again do it on a copy (copy_grading)."""
    from grader.pipeline.demo import run_demo

    def make(path: Path) -> None:
        # Not built here: run_demo builds release/ itself.
        root = path / "course"
        root.mkdir()
        shutil.copy(REPO_ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
        write_notebook(root / "source" / MINI / f"{MINI}.ipynb", two_exercise_cells())
        # Workers of its own, their logs in the grading folder: the template comparison
        # (test_template_kernel.py) reads there that every kernel was forked.
        run_demo(
            load_config(root),
            path / "grading",
            jobs=DEMO_JOBS,
            cell_timeout=DEMO_CELL_TIMEOUT,
            progress=False,
        )

    path = shared_folder(tmp_path_factory, "demo", make)
    repo = load_config(path / "course")
    return Demo(repo, folder.open_workdir(repo, path / "grading"))


def copy_grading(repo: CourseConfig, grading: Path, to: Path) -> GradingFolder:
    """A grading folder copied (timestamps kept) and opened, for a test that changes it."""
    shutil.copytree(grading, to)
    return folder.open_workdir(repo, to)


REFERENCE, UNTOUCHED = "reference", "untouched"  # the two students of graded_reference


@pytest.fixture(scope="session")
def graded_reference(tmp_path_factory) -> GradingFolder:
    """The grading folder in which every real notebook is executed once per run.

    Student `reference` hands in every assignment's reference solution (source/ without
    delimiters and hidden tests: the cells of solutions/), student `untouched` every release
    notebook as it is; both graded by the grader, sandboxed, with the course's own timeouts.
    The round trip (test_roundtrip.py), the check that every solution cell runs
    (test_solutions_run.py), the template comparison (test_template_kernel.py) and the
    untouched notebooks' messages (test_messages.py) all read this one run. That the grader
    scores as plain nbgrader does is test_grader_demo.py's, on a class of every kind of
    submission.
    """
    from grader.notebooks import cells as nbs
    from grader.notebooks.validate import source_assignments
    from grader.pipeline.autograde import autograde
    from grader.pipeline.synthetic import as_handed_in

    repo = load_config(REPO_ROOT)

    def make(path: Path) -> None:
        assignments = source_assignments(repo)
        course = folder.prepare(repo, path / "grading", assignments)
        for assignment in assignments:
            notebook = f"{assignment}/{assignment}.ipynb"
            handed_in = path / "handed-in" / notebook
            handed_in.parent.mkdir(parents=True)
            nbs.write(as_handed_in(nbs.read(REPO_ROOT / "source" / notebook)), handed_in)
            folder.submit(course, REFERENCE, assignment, handed_in)
            folder.submit(course, UNTOUCHED, assignment, REPO_ROOT / "release" / notebook)
        autograde(course, assignments, jobs=2, progress=False)

    path = shared_folder(tmp_path_factory, "reference", make)
    return folder.open_workdir(repo, path / "grading")
