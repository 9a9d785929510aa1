"""The committed release/ and solutions/ are what the build makes of source/."""

from __future__ import annotations

import shutil

import pytest

from grader.config import REPO_ROOT, load_config, with_root
from grader.notebooks import cells as nbs
from grader.notebooks.validate import check_course, source_assignments
from grader.pipeline.build import generate_release, solution_notebook

ASSIGNMENTS = source_assignments(load_config(REPO_ROOT))


def summary(nb):
    """What must agree: each cell's type, source, nbgrader metadata and tags (the release's
    `raises-exception`, grader/notebooks/stubs.py)."""
    return [
        (c.cell_type, c.source, nbs.nbgrader_meta(c), c.metadata.get("tags", [])) for c in nb.cells
    ]


def first_difference(expected, actual, what):
    for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
        if want != got:
            return f"{what}: cell {index + 1} differs from what the build makes; run `make build`"
    return f"{what}: {len(actual)} cells instead of {len(expected)}; run `make build`"


def test_every_configured_assignment_present_is_checked():
    assert ASSIGNMENTS, "source/ holds no assignment"
    assert check_course(load_config(REPO_ROOT)) == []


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_has_no_outputs(assignment):
    nb = nbs.read(REPO_ROOT / "source" / assignment / f"{assignment}.ipynb")
    dirty = [
        i + 1
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count)
    ]
    assert not dirty, f"source/{assignment}: cells {dirty} carry outputs; clear them"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_generated_from_source(assignment, tmp_path):
    shutil.copy(REPO_ROOT / "nbgrader_config.py", tmp_path)
    shutil.copytree(REPO_ROOT / "source" / assignment, tmp_path / "source" / assignment)
    course = with_root(load_config(REPO_ROOT), tmp_path)
    generate_release(course, assignment)
    fresh = nbs.read(tmp_path / "release" / assignment / f"{assignment}.ipynb")
    committed = nbs.read(REPO_ROOT / "release" / assignment / f"{assignment}.ipynb")
    expected, actual = summary(fresh), summary(committed)
    assert actual == expected, first_difference(expected, actual, f"release/{assignment}")
    assert not any(c.get("outputs") for c in committed.cells)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_are_generated_from_source_and_executed(assignment):
    fresh = solution_notebook(REPO_ROOT / "source" / assignment / f"{assignment}.ipynb")
    committed = nbs.read(REPO_ROOT / "solutions" / assignment / f"{assignment}.ipynb")
    expected, actual = summary(fresh), summary(committed)
    assert actual == expected, first_difference(expected, actual, f"solutions/{assignment}")
    code = [c for c in committed.cells if c.cell_type == "code" and c.source.strip()]
    assert all(c.execution_count for c in code), (
        f"solutions/{assignment} was not executed; run `make build`"
    )
    assert any("image/png" in out.get("data", {}) for c in code for out in c.outputs), (
        f"solutions/{assignment} has no plots"
    )
