"""Bad source notebooks get an error that names the notebook and the cell."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import MINI, mini_cells, nbgrader_cell, write_notebook
from nbformat.v4 import new_output

from grader.config import load_config
from grader.notebooks.validate import check_course

NOTEBOOK = f"source/{MINI}/{MINI}.ipynb"


def problems_with(course, cells):
    write_notebook(course.root / NOTEBOOK, cells)
    return check_course(load_config(course.root))


def test_the_mini_course_is_fine(mini_course):
    assert check_course(mini_course) == []


def test_outputs_are_reported_with_notebook_and_cell(mini_course):
    cells = mini_cells()
    cells[1].outputs = [new_output("stream", name="stdout", text="hi\n")]
    cells[1].execution_count = 3
    [problem] = problems_with(mini_course, cells)
    assert NOTEBOOK in problem and "cell 2" in problem and "outputs" in problem


def test_graded_cell_without_grade_id(mini_course):
    cells = mini_cells()
    cells[4].metadata["nbgrader"]["grade_id"] = ""
    problems = problems_with(mini_course, cells)
    assert any("cell 5" in p and "without a grade id" in p for p in problems), problems


def test_two_cells_with_one_grade_id(mini_course):
    cells = mini_cells()
    cells[4].metadata["nbgrader"]["grade_id"] = "square"
    [problem] = problems_with(mini_course, cells)
    assert "cell 5" in problem and "cell 4" in problem and "'square' is used twice" in problem


def test_solution_cell_without_delimiters(mini_course):
    cells = mini_cells()
    cells[3] = nbgrader_cell("def square(x):\n    return x * x", "square", solution=True)
    [problem] = problems_with(mini_course, cells)
    assert "cell 4" in problem and "BEGIN SOLUTION" in problem


def test_unpaired_hidden_test_delimiters(mini_course):
    cells = mini_cells()
    cells[4].source = cells[4].source.replace("### END HIDDEN TESTS", "")
    [problem] = problems_with(mini_course, cells)
    assert "cell 5" in problem and "pair up" in problem


def test_heading_points_must_match_test_points(mini_course):
    cells = mini_cells()
    cells[2].source = "### Exercise 1.1: Square (3 points)"
    [problem] = problems_with(mini_course, cells)
    assert "cell 3" in problem and "announces 3 points" in problem and "carry 2" in problem


def test_assignment_folder_without_notebook(mini_course):
    (mini_course.root / "source" / "02_networks").mkdir()
    [problem] = check_course(mini_course)
    assert "source/02_networks/" in problem and "no notebook" in problem


def test_notebook_named_unlike_its_folder(mini_course):
    (mini_course.root / NOTEBOOK).rename(mini_course.root / f"source/{MINI}/other.ipynb")
    [problem] = check_course(mini_course)
    assert "other.ipynb" in problem and f"{MINI}.ipynb" in problem


def test_unknown_assignment_folder(mini_course):
    write_notebook(mini_course.root / "source/99_extra/99_extra.ipynb", mini_cells())
    [problem] = check_course(mini_course)
    assert "99_extra" in problem and "ASSIGNMENTS" in problem


def test_notebook_that_is_not_json(mini_course):
    (mini_course.root / NOTEBOOK).write_text("{ not json")
    [problem] = check_course(mini_course)
    assert NOTEBOOK in problem and "not a readable notebook" in problem


def test_every_problem_is_reported_at_once(mini_course):
    cells = mini_cells()
    cells[1].execution_count = 1
    cells[4].metadata["nbgrader"]["grade_id"] = "square"
    assert len(problems_with(mini_course, cells)) == 2


@pytest.mark.parametrize("verb", [["build"], ["build", "--check"]])
def test_cli_refuses_to_build_and_says_why(mini_course, verb):
    cells = mini_cells()
    cells[1].execution_count = 1
    write_notebook(mini_course.root / NOTEBOOK, cells)
    result = subprocess.run(
        [sys.executable, "-m", "grader", "--root", str(mini_course.root), *verb],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "nothing was built" in result.stderr and "cell 2" in result.stderr
    assert not (mini_course.root / "release").exists()
