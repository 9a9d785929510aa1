"""Regrading: one student's submissions only, and after a test was fixed, everyone, with
the grades that changed listed."""

from __future__ import annotations

import csv
import subprocess
import sys

import nbformat
import pytest
from conftest import MINI, build_class_course, copy_grading
from nbgrader.api import Gradebook
from nbgrader.utils import compute_checksum

from grader.config import REPO_ROOT
from grader.errors import GraderError
from grader.pipeline.autograde import autograde
from grader.pipeline.synthetic import as_handed_in
from grader.workdir import folder, gradebook

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]


@pytest.fixture(scope="module")
def graded_once(tmp_path_factory, workers):
    """(course, grading folder) of ada (right) and cat (cube wrong), graded once for the module."""
    tmp_path = tmp_path_factory.mktemp("regrade")
    repo = build_class_course(tmp_path / "course")
    course = folder.prepare(repo, tmp_path / "grading")
    right = as_handed_in(nbformat.read(str(repo.root / "source" / MINI / f"{MINI}.ipynb"), 4))
    wrong = nbformat.reads(nbformat.writes(right), 4)
    for cell in wrong.cells:
        cell.source = cell.source.replace("return x ** 3", "return x * x")
    for student, nb in {"ada": right, "cat": wrong}.items():
        nbformat.write(nb, str(tmp_path / f"{student}.ipynb"))
        folder.submit(course, student, MINI, tmp_path / f"{student}.ipynb")
    autograde(course, cell_timeout=30, progress=False, executor=workers(course))
    return repo, course.root


@pytest.fixture
def graded_class(graded_once, tmp_path):
    """A copy of the graded class, for a test that grades it again."""
    repo, grading = graded_once
    return copy_grading(repo, grading, tmp_path / "grading")


def points(course) -> dict[tuple[str, str], float]:
    return {(g.student, g.grade_id): g.points for g in gradebook.grades(course)}


def test_one_student_is_graded_again_and_nobody_else(graded_class, capsys, workers):
    outcomes = autograde(
        graded_class,
        students=["cat"],
        force=True,
        cell_timeout=30,
        progress=False,
        executor=workers(graded_class),
    )
    assert [o.student for o in outcomes] == ["cat"]
    assert "changed" not in capsys.readouterr().out  # the same notebook, the same grades


def test_an_unknown_student_is_named(graded_class):
    with pytest.raises(GraderError, match="'bob'"):
        autograde(graded_class, students=["bob"], progress=False)


def test_a_fixed_test_regrades_everyone_and_lists_what_changed(graded_class, capsys):
    before = points(graded_class)
    assert before[("cat", "test_cube")] == 0 and before[("ada", "test_cube")] == 1
    # The instructor finds test_cube too strict and fixes it in the gradebook's copy (as
    # regenerating the assignment would): a new source, so a new checksum.
    release = nbformat.read(str(graded_class.root / "release" / MINI / f"{MINI}.ipynb"), 4)
    [fixed] = [
        c for c in release.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_cube"
    ]
    fixed.source = '"""Check that cube returns a number."""\nassert cube(2) > 0'
    with Gradebook(gradebook.db_url(graded_class), graded_class.course_id) as gb:
        cell = gb.find_source_cell("test_cube", MINI, MINI)
        cell.source, cell.checksum = fixed.source, compute_checksum(fixed)
        gb.db.commit()
    capsys.readouterr()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "--root",
            str(graded_class.config_file.parent),
            "--workdir",
            str(graded_class.root),
            "autograde",
            "--force",
            "--timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 grade(s) changed" in result.stdout, result.stdout
    assert "cat 01_perceptron test_cube: 0 -> 1 (+1)" in result.stdout
    with open(graded_class.root / "reports" / "changed-grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["student"], r["grade_id"], r["before"], r["after"], r["change"]) for r in rows] == [
        ("cat", "test_cube", "0.0", "1.0", "1.0")
    ]
    assert points(graded_class)[("cat", "test_cube")] == 1
