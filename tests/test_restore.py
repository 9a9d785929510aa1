"""A submission put back in the shape of its release, and the notes on what the student did
to its graded and locked cells (grader.notebooks.restore), on small notebooks made here.

tests/test_hostile_scoring.py and tests/test_manual_grading.py grade such submissions end to
end; these take one change at a time, without a kernel.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from conftest import cell_index, copy_notebook, nbgrader_cell
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.notebooks import cells as nbs
from grader.notebooks.restore import graded_cell_notes, restore_from_release

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
GRADED = {"test_f", "test_g"}  # what the gradebook lists as graded


def release_notebook() -> nbformat.NotebookNode:
    """A title, a locked set-up cell, and two exercises: a solution cell and a test each."""
    return new_notebook(
        cells=[
            new_markdown_cell("# Title"),
            nbgrader_cell("import math", "setup"),
            nbgrader_cell("def f(x):\n    raise NotImplementedError()", "f", solution=True),
            nbgrader_cell("assert f(1) == 1", "test_f", points=2),
            nbgrader_cell("def g(x):\n    raise NotImplementedError()", "g", solution=True),
            nbgrader_cell("assert g(1) == 2", "test_g", points=1),
        ],
        metadata={"kernelspec": dict(KERNELSPEC)},
    )


def shape(nb) -> list[tuple]:
    """Each cell as (type, grade id, source)."""
    return [(c.cell_type, nbs.nbgrader_meta(c).get("grade_id"), c.source) for c in nb.cells]


def notes_and_restored(student, release=None):
    release = release or release_notebook()
    return graded_cell_notes(student, GRADED, release), restore_from_release(student, release)


def note_starting(notes: list[str], start: str) -> str:
    found = [note for note in notes if note.startswith(start)]
    assert len(found) == 1, notes
    return found[0]


def test_an_untouched_submission_comes_back_as_it_is_with_no_note():
    release = release_notebook()
    notes, restored = notes_and_restored(copy_notebook(release), release)
    assert notes == []
    assert shape(restored) == shape(release)


@pytest.mark.parametrize("deleted", ["test_f", "setup"])
def test_a_deleted_graded_or_locked_cell_comes_back_and_is_noted(deleted):
    release = release_notebook()
    student = copy_notebook(release)
    del student.cells[cell_index(student, deleted)]
    notes, restored = notes_and_restored(student, release)
    assert shape(restored) == shape(release)
    note = note_starting(notes, "graded cell(s) deleted or stripped of their metadata")
    assert note.endswith(f": {deleted}"), note


def test_a_cell_stripped_of_its_metadata_counts_as_deleted_and_stays_as_the_students():
    release = release_notebook()
    student = copy_notebook(release)
    del student.cells[cell_index(student, "test_f")].metadata["nbgrader"]
    notes, restored = notes_and_restored(student, release)
    assert "test_f" in note_starting(notes, "graded cell(s) deleted or stripped")
    # The release's test where it belongs, the stripped copy after `f` as a plain cell.
    assert shape(restored)[2:5] == [
        ("code", "f", "def f(x):\n    raise NotImplementedError()"),
        ("code", None, "assert f(1) == 1"),
        ("code", "test_f", "assert f(1) == 1"),
    ]


def test_a_deleted_solution_cell_does_not_come_back_as_its_stub():
    release = release_notebook()
    student = copy_notebook(release)
    student.cells[cell_index(student, "g")] = new_code_cell(
        "def g(x):\n    return 2 * x"
    )  # no metadata
    notes, restored = notes_and_restored(student, release)
    assert notes == []  # a solution cell is the student's: nothing graded was lost
    assert "g" not in [grade_id for _, grade_id, _ in shape(restored)]
    assert ("code", None, "def g(x):\n    return 2 * x") in shape(restored)


def test_a_duplicated_grade_id_counts_once_and_the_copy_becomes_plain():
    release = release_notebook()
    student = copy_notebook(release)
    pasted = copy_notebook(student).cells[cell_index(student, "test_g")]
    pasted.source, pasted.id = "pass  # the copy", "pasted"
    student.cells.insert(cell_index(student, "test_g") + 1, pasted)
    notes, restored = notes_and_restored(student, release)
    assert note_starting(notes, "duplicated grade id(s)") == (
        "duplicated grade id(s), counted once: test_g"
    )
    assert [grade_id for _, grade_id, _ in shape(restored)].count("test_g") == 1
    [plain] = [c for c in restored.cells if c.source == "pass  # the copy"]
    assert "nbgrader" not in plain.metadata


def test_a_cell_claiming_an_unknown_grade_id_becomes_a_plain_cell():
    release = release_notebook()
    student = copy_notebook(release)
    student.cells.append(nbgrader_cell("assert True", "bonus", points=100))
    notes, restored = notes_and_restored(student, release)
    assert note_starting(notes, "cell(s) claiming grade ids") == (
        "cell(s) claiming grade ids the assignment lacks, made plain: bonus"
    )
    assert shape(restored)[-1] == ("code", None, "assert True")
    assert "nbgrader" not in restored.cells[-1].metadata


def test_an_edited_locked_cell_is_restored_and_noted():
    release = release_notebook()
    student = copy_notebook(release)
    student.cells[cell_index(student, "setup")].source = "import math\nmath.pi = 3"
    student.cells[cell_index(student, "test_f")].source = "assert True"
    notes, restored = notes_and_restored(student, release)
    assert note_starting(notes, "locked cell(s) edited") == (
        "locked cell(s) edited, restored from the source: setup, test_f"
    )
    assert shape(restored) == shape(release)


def points(cell):
    cell.metadata.nbgrader["points"] = 100


def grade_flag(cell):
    cell.metadata.nbgrader["grade"] = False


def tags(cell):
    cell.metadata["tags"] = ["skip-execution"]


def cell_type(cell):
    cell.cell_type = "markdown"
    del cell["outputs"], cell["execution_count"]


def solution(cell):
    cell.metadata.nbgrader["solution"] = True


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (points, "points"),
        (grade_flag, "grade flag"),
        (tags, "tags"),
        (cell_type, "cell type markdown"),
        (solution, "solution"),
    ],
)
def test_changed_metadata_of_a_test_is_restored_and_named(change, named):
    release = release_notebook()
    student = copy_notebook(release)
    change(student.cells[cell_index(student, "test_f")])
    notes, restored = notes_and_restored(student, release)
    note = note_starting(notes, "graded cell(s) with changed metadata")
    assert note.endswith(f": test_f ({named})"), note
    test = restored.cells[cell_index(restored, "test_f")]
    original = release.cells[cell_index(release, "test_f")]
    assert (test.cell_type, test.metadata, test.source) == (
        original.cell_type,
        original.metadata,
        original.source,
    )


def test_a_solution_cell_keeps_the_students_source_under_the_releases_metadata():
    release = release_notebook()
    student = copy_notebook(release)
    answer = student.cells[cell_index(student, "f")]
    answer.source = "def f(x):\n    return x"
    answer.metadata.nbgrader["locked"] = True
    answer.metadata["tags"] = ["raises-exception"]
    notes, restored = notes_and_restored(student, release)
    assert note_starting(notes, "graded cell(s) with changed metadata").endswith(
        ": f (locked, tags)"
    )
    cell = restored.cells[cell_index(restored, "f")]
    assert cell.source == "def f(x):\n    return x"
    assert cell.metadata == release.cells[cell_index(release, "f")].metadata


def test_outputs_are_dropped():
    release = release_notebook()
    student = copy_notebook(release)
    test = student.cells[cell_index(student, "test_f")]
    test.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"})]
    test.execution_count = 7
    mine = new_code_cell("print(1)")
    mine.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    student.cells.append(mine)
    _, restored = notes_and_restored(student, release)
    assert all(c.outputs == [] and c.execution_count is None for c in code_cells(restored))


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_moved_cells_are_put_back_and_only_those_out_of_order_are_named():
    release = release_notebook()
    student = copy_notebook(release)
    student.cells.insert(1, student.cells.pop(cell_index(student, "test_g")))  # to the top
    notes, restored = notes_and_restored(student, release)
    assert note_starting(notes, "graded cell(s) moved") == (
        "graded cell(s) moved, put back in place: test_g"
    )
    assert shape(restored) == shape(release)


def test_a_swap_names_one_of_the_two():
    release = release_notebook()
    student = copy_notebook(release)
    f, test_f = cell_index(student, "f"), cell_index(student, "test_f")
    student.cells[f], student.cells[test_f] = student.cells[test_f], student.cells[f]
    notes, restored = notes_and_restored(student, release)
    note = note_starting(notes, "graded cell(s) moved")
    assert note.split(": ")[1] in ("f", "test_f"), note
    assert shape(restored) == shape(release)


def test_the_students_cells_stay_after_the_cell_they_followed():
    release = release_notebook()
    student = copy_notebook(release)
    student.cells.insert(0, new_markdown_cell("my notes, first"))
    student.cells.insert(cell_index(student, "f") + 1, new_code_cell("print(f(1))"))
    student.cells.append(new_code_cell("print('the end')"))
    # `g` and the helper after it moved up, above `f`: both go back below test_f.
    student.cells.insert(cell_index(student, "g") + 1, new_code_cell("def helper(): pass"))
    g = cell_index(student, "g")
    moved = student.cells[g : g + 2]
    del student.cells[g : g + 2]
    student.cells[cell_index(student, "f") : cell_index(student, "f")] = moved
    _, restored = notes_and_restored(student, release)
    assert [(grade_id or source) for _, grade_id, source in shape(restored)] == [
        "my notes, first",
        "# Title",
        "setup",
        "f",
        "print(f(1))",
        "test_f",
        "g",
        "def helper(): pass",
        "test_g",
        "print('the end')",
    ]


def test_cell_ids_are_made_unique_and_valid_and_the_releases_stay():
    release = release_notebook()
    student = copy_notebook(release)
    test_f_id = release.cells[cell_index(release, "test_f")].id
    clash = new_code_cell("x = 1")
    clash.id = test_f_id  # before test_f: the release's cell keeps the id all the same
    twin = new_code_cell("y = 2")
    twin.id = "twin"
    twin_again = new_code_cell("z = 3")
    twin_again.id = "twin"
    bad = new_code_cell("w = 4")
    bad.id = "not a valid id!" + "x" * 80
    student.cells[cell_index(student, "f") : cell_index(student, "f")] = [
        clash,
        twin,
        twin_again,
        bad,
    ]
    _, restored = notes_and_restored(student, release)
    ids = [c.id for c in restored.cells]
    assert len(set(ids)) == len(ids), ids
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", i) for i in ids), ids
    assert restored.cells[cell_index(restored, "test_f")].id == test_f_id
    assert [c.id for c in restored.cells if c.source == "y = 2"] == ["twin"]
    nbformat.validate(restored)


def test_notebook_metadata_comes_from_the_release():
    release = release_notebook()
    student = copy_notebook(release)
    student.metadata = {
        "kernelspec": {"name": "evil", "display_name": "E", "language": "python"},
        "extra": {"anything": True},
    }
    _, restored = notes_and_restored(student, release)
    assert restored.metadata == release.metadata
    assert (restored.nbformat, restored.nbformat_minor) == (
        release.nbformat,
        release.nbformat_minor,
    )
