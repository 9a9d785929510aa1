"""The build makes release/ with nbgrader and executed solutions/, the same every time."""

from __future__ import annotations

import pytest
from conftest import MINI

from grader.notebooks import cells as nbs
from grader.pipeline.build import build


def cell_with_id(nb, grade_id):
    return next(c for c in nb.cells if nbs.nbgrader_meta(c).get("grade_id") == grade_id)


def test_release_has_stubs_and_no_hidden_tests(mini_course):
    build(mini_course, solutions=False)
    nb = nbs.read(mini_course.root / "release" / MINI / f"{MINI}.ipynb")
    answer = cell_with_id(nb, "square").source
    assert 'raise NotImplementedError("Exercise 1.1 (`square`) is not answered yet")' in answer
    assert "x * x" not in answer
    assert 'def square(x):\n    """Return x squared."""' in answer
    test = cell_with_id(nb, "test_square").source
    assert "square(3) == 9" in test and "square(-2)" not in test and "HIDDEN" not in test


@pytest.mark.slow
def test_solutions_keep_answers_drop_delimiters_and_hidden_tests_and_are_executed(mini_course):
    build(mini_course, release=False)
    nb = nbs.read(mini_course.root / "solutions" / MINI / f"{MINI}.ipynb")
    answer = cell_with_id(nb, "square").source
    assert "return x * x" in answer and "SOLUTION" not in answer
    test = cell_with_id(nb, "test_square").source
    assert "square(3) == 9" in test and "square(-2)" not in test and "HIDDEN" not in test
    assert nb.cells[-1].outputs[0]["text"] == "16\n"
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")
    assert all("execution" not in c.metadata for c in nb.cells)
    assert nb.metadata["language_info"] == {"name": "python"}


@pytest.mark.slow
def test_building_twice_changes_nothing(mini_course):
    build(mini_course)
    paths = sorted((mini_course.root / "release").rglob("*.ipynb")) + sorted(
        (mini_course.root / "solutions").rglob("*.ipynb")
    )
    first = {p: p.read_bytes() for p in paths}
    build(mini_course)
    assert {p: p.read_bytes() for p in paths} == first


def test_the_in_process_alembic_head_is_what_the_alembic_command_says():
    # grader.process replaces nbgrader's `alembic heads` subprocess (5 s per new gradebook) with
    # the same question asked in-process; a new gradebook must record the same version.
    import subprocess

    from nbgrader.dbutil import _temp_alembic_ini

    from grader.process import alembic_head

    with _temp_alembic_ini("sqlite:////tmp/gradebook.db") as ini:
        output = subprocess.check_output(["alembic", "-c", ini, "heads"], text=True)
    assert alembic_head() == output.split()[0], "the gradebook would record a wrong version"
