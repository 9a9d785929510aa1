"""Scores the student's kernel cannot fake, and runs one submission cannot stop.

One class of the tiny course (conftest.py) with a third exercise whose test uses the
assertion helpers: 1.1 `square` (2 points, a hidden test), 1.2 `cube` (1 point), 1.3
`double` (1 point: `np.testing.assert_allclose` and course.testing's `assert_close`; it
also draws from numpy's global generator). Honest students score exactly as by hand; each
attacker attacks the scoring in one way and gets 0 for what it did not earn, with a
status and a message that name the attack. Graded once, as `python -m grader demo` does
(sandboxed where the machine can, else --unsafe), then the failed submissions again.

Fast checks of the pieces (canaries under aliases, the perturbed twin, the restore from
the release) come first; they need no kernel.
"""

from __future__ import annotations

import ast
import csv
import json
import random
from pathlib import Path

import nbformat
import numpy as np
import pytest
from conftest import (
    MINI,
    answered,
    build_class_course,
    cell_index,
    copy_notebook,
    nbgrader_cell,
    two_exercise_cells,
    with_cells_after,
)
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.execution.sandbox import missing_pieces
from grader.execution.tamper import Checks
from grader.execution.worker import OUTPUT_LIMIT
from grader.notebooks import cells as nbs
from grader.notebooks.restore import graded_cell_notes, restore_from_release
from grader.pipeline.autograde import autograde
from grader.pipeline.report import write_report
from grader.pipeline.synthetic import as_handed_in
from grader.workdir import folder, gradebook

POINTS = {"test_square": 2, "test_cube": 1, "test_double": 1}
SEED_DRAW = "double_rng"  # what the student `rng` prints after test_double


def course_cells():
    return two_exercise_cells() + [
        new_markdown_cell("### Exercise 1.3: Double (1 point)"),
        nbgrader_cell(
            'def double(x):\n    """Return 2 x."""\n    ### BEGIN SOLUTION\n'
            "    return 2 * x\n    ### END SOLUTION",
            "double",
            solution=True,
        ),
        nbgrader_cell(
            '"""Check double on arrays and on a random number."""\n'
            "from course.testing import assert_close\n"
            "np.testing.assert_allclose(double(np.array([1.0, 2.0])), [2.0, 4.0])\n"
            "x = np.random.uniform(1, 2)\n"
            'assert_close(double(x), 2 * x, "double(x)")',
            "test_double",
            points=1,
        ),
    ]


# --- the class ----------------------------------------------------------------------------

FORGE = """\
def _forge(info):
    kernel = get_ipython().kernel
    kernel.session.send(kernel.iopub_socket, "execute_result", {{
        "data": {{"text/plain": "{points}"}}, "metadata": {{}}, "execution_count": 1}},
        parent=kernel.get_parent())


get_ipython().events.register("pre_run_cell", _forge)"""

# Fails the canaries as the real helpers do, passes everything else.
CANARY_AWARE_HELPERS = """\
import numpy as np
import course.testing


def _canary_aware(real):
    def check(*args, **kwargs):
        if "grader check" in map(str, [*args, *kwargs.values()]):
            return real(*args, **kwargs)
    return check


np.testing.assert_allclose = _canary_aware(np.testing.assert_allclose)
course.testing.assert_close = _canary_aware(course.testing.assert_close)"""

# An IPython AST transformer that forgives every statement of a cell, except in canaries.
CANARY_AWARE_ASSERT = """\
import ast


class _Forgive(ast.NodeTransformer):
    def visit_Module(self, node):
        if "grader check" in ast.unparse(node):
            return node
        handler = ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()), body=[ast.Pass()])
        node.body = [ast.Try(body=[s], handlers=[handler], orelse=[], finalbody=[])
                     for s in node.body]
        return ast.fix_missing_locations(node)


get_ipython().ast_transformers.append(_Forgive())"""

ALWAYS_EQUAL = """\
class _Anything:
    def __eq__(self, other):
        return True


def square(x):
    return _Anything()"""

COMM_FLOOD = """\
kernel = get_ipython().kernel
for i in range(12):  # 12 MB of widget state, in comm messages
    kernel.session.send(kernel.iopub_socket, "comm_msg", {
        "comm_id": "flood", "data": {"method": "update", "state": {"value": "x" * (1 << 20)}}},
        parent=kernel.get_parent())
print("after the flood")"""

RNG = """\
np.random.seed(0)
import random
random.seed(0)"""

# student -> (test_square, test_cube, test_double, status, phrases of the message)
HONEST = {
    "ada": (2, 1, 1, "graded", []),
    "blank": (0, 0, 0, "graded", []),
    "cat": (2, 0, 1, "graded", []),  # `cube` wrong
    "dan": (2, 1, 0, "graded", []),  # `double` left as the stub
    "rng": (2, 1, 1, "graded", []),  # seeds the generators, prints a draw after the tests
}
ATTACKS = {
    "skiptag": (0, 0, 0, "graded", ["changed metadata", "tags", "test_square", "test_double"]),
    # The release tags its test cells `raises-exception` itself (grader/notebooks/stubs.py, so that
    # Run All goes on): the same tag changes nothing, and scores nothing.
    "raisestag": (0, 0, 0, "graded", []),
    "forged": (0, 0, 0, "graded", ["showed a result", "not scores"]),
    "above": (2, 0, 1, "graded", ["above their points", "test_square"]),  # `cube` wrong
    "metaedit": (
        0,
        1,
        1,
        "graded",
        ["points", "grade flag", "cell type", "moved", "test_square"],
    ),  # `square` wrong
    "helpers": (0, 0, 0, "invalid", ["expected value is changed", "test cell"]),
    "asserts": (0, 0, 0, "invalid", ["expected value is changed", "test_square"]),
    "anything": (0, 0, 0, "invalid", ["expected value is changed", "test_square"]),
    "flood": (2, 1, 1, "graded", ["the rest of the output was dropped"]),
    "surrogate": (0, 0, 0, "invalid", ["could not prepare", "UnicodeEncodeError"]),
    "savefail": (0, 0, 0, "invalid", ["could not save"]),  # autograded/ has a file in the way
}
EXPECTED = {**HONEST, **ATTACKS}
AGAIN = ("above", "surrogate", "savefail")  # graded a second time, without the obstacle


def _tagged(nb, tag: str):
    nb = copy_notebook(nb)
    for grade_id in POINTS:
        nb.cells[cell_index(nb, grade_id)].metadata["tags"] = [tag]
    return nb


def make_class(repo) -> dict[str, object]:
    source = nbs.read(repo.root / "source" / MINI / f"{MINI}.ipynb")
    right = as_handed_in(source)
    blank = nbs.read(repo.root / "release" / MINI / f"{MINI}.ipynb")
    wrong_square = answered(right, "square", "return x * x", "return x + x")
    wrong_cube = answered(right, "cube", "return x ** 3", "return x * x")
    wrong_double = answered(right, "double", "return 2 * x", "return x")
    metaedit = copy_notebook(wrong_square)
    metaedit.cells[cell_index(metaedit, "test_square")].metadata.nbgrader["points"] = 100
    metaedit.cells[cell_index(metaedit, "test_cube")].metadata.nbgrader["grade"] = False
    metaedit.cells[cell_index(metaedit, "test_double")].cell_type = "markdown"
    del metaedit.cells[cell_index(metaedit, "test_double")]["outputs"]
    del metaedit.cells[cell_index(metaedit, "test_double")]["execution_count"]
    metaedit.cells.append(metaedit.cells.pop(cell_index(metaedit, "test_square")))
    surrogate = with_cells_after(right, "square", "text = 'a lone \ud800 surrogate'")
    return {
        "ada": right,
        "blank": blank,
        "cat": wrong_cube,
        "dan": answered(right, "double", "return 2 * x", "raise NotImplementedError()"),
        "rng": with_cells_after(
            with_cells_after(
                right, "test_double", f"print('{SEED_DRAW}', np.random.rand(), random.random())"
            ),
            "square",
            RNG,
        ),
        "skiptag": _tagged(blank, "skip-execution"),
        "raisestag": _tagged(blank, "raises-exception"),
        "forged": with_cells_after(blank, "square", FORGE.format(points=1)),
        "above": with_cells_after(wrong_cube, "square", FORGE.format(points=1000)),
        "metaedit": metaedit,
        "helpers": with_cells_after(wrong_double, "square", CANARY_AWARE_HELPERS),
        "asserts": with_cells_after(blank, "square", CANARY_AWARE_ASSERT),
        "anything": with_cells_after(right, "square", ALWAYS_EQUAL),
        "flood": with_cells_after(right, "square", COMM_FLOOD),
        "surrogate": surrogate,
        "savefail": right,
    }


def write_submission(path: Path, nb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))  # ASCII escapes: the lone surrogate survives


@pytest.fixture(scope="module")
def graded(tmp_path_factory, workers):
    root = tmp_path_factory.mktemp("scoring")
    repo = build_class_course(root / "course", course_cells())
    course = folder.prepare(repo, root / "grading", [MINI])
    for student, nb in make_class(repo).items():
        write_submission(root / "hand-in" / f"{student}.ipynb", nb)
        folder.submit(course, student, MINI, root / "hand-in" / f"{student}.ipynb")
    blocked = course.root / "autograded" / "savefail" / MINI
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the folder goes")
    unsafe = bool(missing_pieces())  # sandboxed where the machine can
    shared = workers(course, unsafe=unsafe)
    outcomes = autograde(
        course, cell_timeout=10, notebook_timeout=60, progress=False, unsafe=unsafe, executor=shared
    )
    first = _read(course)
    blocked.unlink()
    for student in AGAIN:
        (course.root / "status" / student / f"{MINI}.json").unlink()
    again = autograde(
        course, cell_timeout=10, notebook_timeout=60, progress=False, unsafe=unsafe, executor=shared
    )
    return {
        "course": course,
        "outcomes": outcomes,
        "first": first,
        "again": again,
        "second": _read(course),
    }


def _read(course):
    report, out = write_report(course)
    with open(out / "submissions.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    return report, rows


def autograded_nb(course, student: str):
    return nbs.read(course.root / "autograded" / student / MINI / f"{MINI}.ipynb")


# --- the pieces, without a kernel -----------------------------------------------------


def test_canaries_follow_aliases_and_multi_line_imports():
    nb = new_notebook(
        cells=[
            new_code_cell(
                "from numpy.testing import assert_allclose as ac\n"
                "import numpy.testing as npt\n"
                "from course.testing import (\n    assert_close,\n"
                "    assert_shape as sh,\n)"
            ),
            nbgrader_cell("npt.assert_array_equal(f(), [1])\nac(f(), 1.0)", "test_f", points=1),
        ]
    )
    canaries = Checks(nb).canaries
    calls = {code.splitlines()[1].strip() for code in canaries[1:]}  # `try:` and the helper
    assert canaries[0] == "assert False, 'grader check'"
    assert {"ac", "npt.assert_array_equal", "assert_close", "sh"} <= calls
    for module, name in [
        ("numpy.testing", "assert_allclose"),
        ("course.testing", "assert_shape"),
        ("numpy.testing", "assert_array_equal"),
    ]:
        assert f"__import__({module!r}, fromlist=['_']).{name}" in calls
    # A real helper fails each of them with an AssertionError (an absent name too).
    namespace = {}
    for code in canaries:
        with pytest.raises(AssertionError):
            exec(code, namespace)


TEST = '''\
"""Check f."""
from course.testing import assert_close
assert f(2) == 4, "f(2)"
np.testing.assert_allclose(f(np.array([1.0, 2.0])), [1.0, 4.0], rtol=1e-3)
for x in [1.0, 3.0]:
    assert_close(f(x), x ** 2, "f(x)")
assert 0 <= f(0.5) < 1 and isinstance(f(1), float)
'''


def test_every_twin_fails_where_the_real_test_passes():
    """Each of many twins is the test with one check changed, and fails on a right f."""
    nb = new_notebook(
        cells=[new_code_cell("import numpy as np"), nbgrader_cell(TEST, "test_f", points=1)]
    )
    checks, rng, seen = Checks(nb), random.Random(0), set()

    def f(x):
        return x * x * 1.0

    exec(TEST, {"np": np, "f": f})  # the real test passes
    for _ in range(200):
        twin = checks.twin(TEST, rng)
        changed = [
            (a, b)
            for a, b in zip(TEST.splitlines(), twin.source.splitlines(), strict=True)
            if a != b
        ]
        assert len(changed) == 1 and ast.parse(twin.source)
        seen.add(changed[0][1])
        with pytest.raises(AssertionError):
            exec(twin.source, {"np": np, "f": f})
    assert len(seen) > 20  # digits of expected values, turned comparisons, negations
    assert not [line for line in seen if "assert_close" in line]  # no scaling: not needed


def test_restore_puts_graded_cells_back_and_keeps_the_students_cells():
    release = new_notebook(
        cells=[
            new_markdown_cell("# title"),
            nbgrader_cell("def f(x):\n    raise NotImplementedError()", "f", solution=True),
            nbgrader_cell("assert f(1) == 1", "test_f", points=2),
            nbgrader_cell("def g(x):\n    raise NotImplementedError()", "g", solution=True),
            nbgrader_cell("assert g(1) == 2", "test_g", points=1),
        ]
    )
    release.metadata["kernelspec"] = {"name": "python3", "display_name": "P", "language": "python"}
    student = copy_notebook(release)
    student.metadata["kernelspec"] = {"name": "evil", "display_name": "E", "language": "python"}
    student.cells[1].source = "def f(x):\n    return x"
    mine = new_code_cell("print(f(1))")
    student.cells.insert(2, mine)
    test_f = student.cells.pop(3)  # moved to the end, tagged, worth 100, with a fake output
    test_f.metadata["tags"] = ["skip-execution"]
    test_f.metadata.nbgrader["points"] = 100
    test_f.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"})]
    student.cells.append(test_f)
    copy_of_test_g = copy_notebook(student).cells[4]
    copy_of_test_g.id = "pasted"
    student.cells.insert(5, copy_of_test_g)
    student.cells[4].cell_type = "markdown"  # test_g as markdown
    del student.cells[4]["outputs"], student.cells[4]["execution_count"]
    notes = "; ".join(graded_cell_notes(student, {"test_f", "test_g"}, release))
    restored = restore_from_release(student, release)
    kinds = [(c.cell_type, nbs.nbgrader_meta(c).get("grade_id"), c.source) for c in restored.cells]
    assert kinds == [
        ("markdown", None, "# title"),
        ("code", "f", "def f(x):\n    return x"),
        ("code", None, "print(f(1))"),  # the student's cell stays after `f`
        ("code", "test_f", "assert f(1) == 1"),
        ("code", "g", "def g(x):\n    raise NotImplementedError()"),
        ("code", "test_g", "assert g(1) == 2"),
        ("code", None, "assert g(1) == 2"),  # the copy, plain
    ]
    assert restored.cells[3].metadata == release.cells[2].metadata
    assert restored.cells[3].outputs == []
    assert restored.metadata.kernelspec.name == "python3"
    assert len({c.id for c in restored.cells}) == len(restored.cells)
    for phrase in [
        "test_f (points, tags)",
        "test_g (cell type",
        "moved, put back in place: test_f",
        "duplicated grade id(s), counted once: test_g",
    ]:
        assert phrase in notes, notes


# --- the class --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("student", EXPECTED)
def test_student_scores_exactly_what_it_earned(graded, student):
    report, rows = graded["first"]
    *points, status, phrases = EXPECTED[student]
    row = rows[student]
    got = [report.points[student, MINI, grade_id] for grade_id in POINTS]
    assert (got, row["status"]) == (points, status), row["message"]
    for phrase in phrases:
        assert phrase in row["message"], row["message"]
    if student in HONEST:
        assert row["message"] == ""


@pytest.mark.slow
def test_gradebook_agrees_and_never_exceeds_the_maximum(graded):
    rows = gradebook.grades(graded["course"])
    assert rows
    for row in rows:
        assert 0 <= row.points <= row.max_points == POINTS[row.grade_id], row


@pytest.mark.slow
def test_no_test_cell_keeps_a_result_nbgrader_would_read_as_a_score(graded):
    course = graded["course"]
    for student in ("forged", "above"):
        nb = autograded_nb(course, student)
        for grade_id in POINTS:
            outputs = nb.cells[cell_index(nb, grade_id)].outputs
            assert not [o for o in outputs if o.output_type == "execute_result"], student


@pytest.mark.slow
def test_restored_cells_ran_where_the_release_has_them(graded):
    course = graded["course"]
    release = nbs.read(course.root / "release" / MINI / f"{MINI}.ipynb")
    for student in ("skiptag", "raisestag", "metaedit"):
        nb = autograded_nb(course, student)
        ids = [nbs.nbgrader_meta(c).get("grade_id") for c in nb.cells if nbs.nbgrader_meta(c)]
        assert ids == [
            nbs.nbgrader_meta(c).get("grade_id") for c in release.cells if nbs.nbgrader_meta(c)
        ], student
        for grade_id in POINTS:
            cell = nb.cells[cell_index(nb, grade_id)]
            released = release.cells[cell_index(release, grade_id)]
            assert cell.cell_type == "code", student
            assert cell.metadata.get("tags") == released.metadata.get("tags"), student
            assert cell.metadata.nbgrader["points"] == POINTS[grade_id]
            assert cell.execution_count is not None, (student, grade_id)  # it ran


@pytest.mark.slow
def test_twins_leave_no_trace_for_the_cells_after(graded):
    """The student `rng` draws after the tests what a plain run would draw (the real run's
    generator states are kept), and sees only the real test's outputs."""
    nb = autograded_nb(graded["course"], "rng")
    np.random.seed(0)
    random.seed(0)
    np.random.uniform(1, 2)  # test_double's draw
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert f"{SEED_DRAW} {np.random.rand()} {random.random()}" in printed


@pytest.mark.slow
def test_comm_flood_is_cut_and_keeps_no_widget_state(graded):
    path = graded["course"].root / "autograded" / "flood" / MINI / f"{MINI}.ipynb"
    assert path.stat().st_size < 1 << 20
    nb = nbs.read(path)
    assert "widgets" not in nb.metadata
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "after the flood" not in text and f"more than {OUTPUT_LIMIT >> 20} MB" in text


@pytest.mark.slow
def test_the_run_went_on_and_a_rerun_grades_what_is_fixed(graded):
    """Every submission got a status; graded again, the score above the maximum and the
    unwritable notebook end the same way, and the unblocked one is graded."""
    assert len(graded["outcomes"]) == len(EXPECTED)
    assert sorted(o.student for o in graded["again"]) == sorted(AGAIN)
    report, rows = graded["second"]
    for student in AGAIN:
        *points, status, phrases = EXPECTED[student]
        if student == "savefail":
            points, status = [2, 1, 1], "graded"
        got = [report.points[student, MINI, grade_id] for grade_id in POINTS]
        assert (got, rows[student]["status"]) == (points, status), rows[student]["message"]
