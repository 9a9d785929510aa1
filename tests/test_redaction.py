"""The feedback page's rules for hidden tests, one at a time, on outputs made here (no
kernel): which lines are hidden, printed output (strict: any line holding a hidden line
goes), an error's message (only a line that quotes a hidden line as source goes), a
traceback (cut to the message, the student's own line quoted from the page), and what
`defang` keeps of a submission's metadata and outputs.

tests/test_feedback_redaction.py checks the same rules on a graded class, end to end.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from conftest import nbgrader_cell
from nbformat.v4 import new_code_cell, new_notebook
from nbgrader.preprocessors import ClearHiddenTests

from grader.notebooks import cells as nbs
from grader.notebooks.defang import defang
from grader.notebooks.redaction import (
    FAILURE,
    REDACTED,
    HideHiddenTests,
    _redact,
    _redact_message,
    hidden_lines,
)

VISIBLE = 'assert double(1) == 2, "double(1) should be 2"'
HIDDEN_CALL = "assert_close(double(np.array([-1.0, 3.0])), [-2.0, 6.0],"
TOLERANCE = "rtol=1e-10, atol=0,"  # a hidden line that a failure's sentence may hold too
TEST_SOURCE = "\n".join(
    [
        '"""Check that double doubles."""',
        VISIBLE,
        nbs.BEGIN_HIDDEN,
        HIDDEN_CALL,
        f"    {TOLERANCE}",
        ")",
        nbs.END_HIDDEN,
    ]
)


def graded_test(outputs=(), count=None) -> nbformat.NotebookNode:
    cell = nbgrader_cell(TEST_SOURCE, "test_double", points=1)
    cell.outputs, cell.execution_count = list(outputs), count
    return cell


def hide(*cells) -> list:
    """The cells after HideHiddenTests."""
    nb, _ = HideHiddenTests().preprocess(new_notebook(cells=list(cells)), {})
    return nb.cells


def error(ename: str, evalue: str, traceback=()) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=list(traceback))


def plain(lines: list[str]) -> list[str]:
    return [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in lines]


# --- which lines are hidden ------------------------------------------------------------------


def test_the_hidden_lines_are_the_hidden_region_and_its_delimiters():
    nb = new_notebook(cells=[graded_test()])
    # Not the visible test, not `)` (under 8 characters, it would match everywhere).
    assert hidden_lines(nb) == {nbs.BEGIN_HIDDEN, HIDDEN_CALL, TOLERANCE, nbs.END_HIDDEN}


@pytest.mark.parametrize(
    "source",
    [
        TEST_SOURCE,
        "x = 1\n# BEGIN HIDDEN TESTS\nsecret = 1\n#END HIDDEN TESTS\ny = 2",
        "x = 1\n    ### BEGIN HIDDEN TESTS (edge cases)\nsecret = 1\n    ### END HIDDEN TESTS",
        "x = 1\nsecret = 1  # no region\nEND HIDDEN TESTS, a stray delimiter\ny = 2",
    ],
)
def test_the_hidden_lines_are_what_nbgrader_removes(source):
    cell = new_code_cell(source)
    ClearHiddenTests(enforce_metadata=False)._remove_hidden_test_region(cell)
    kept = cell.source.split("\n")
    assert nbs.hidden_test_lines(source) == [
        line for line in source.split("\n") if line not in kept
    ]


# --- printed output: strict ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["stream", "text/plain", "text/html", "text/markdown", "text/latex"]
)
def test_printed_output_loses_every_line_that_holds_a_hidden_line_anywhere(kind):
    text = f"my function saw {TOLERANCE} in its caller\nand nothing else"
    if kind == "stream":
        output = nbformat.v4.new_output("stream", name="stdout", text=text)
    else:
        output = nbformat.v4.new_output("display_data", data={kind: text})
    [cell] = hide(graded_test([output]))
    shown = cell.outputs[0].text if kind == "stream" else cell.outputs[0].data[kind]
    assert shown == f"{REDACTED}\nand nothing else"


def test_printed_output_without_a_hidden_line_is_left_as_it_is():
    text = "double(1) is 2\nrtol is a tolerance"
    assert _redact(text, {HIDDEN_CALL, TOLERANCE}) == text


# --- an error's message: only where it quotes a hidden line ------------------------------


@pytest.mark.parametrize(
    "evalue",
    [
        HIDDEN_CALL,  # the line alone
        f"    {HIDDEN_CALL}  was my caller",  # at the start of a line
        f"my caller: {HIDDEN_CALL}",  # at the end of a line
        repr([f"    {HIDDEN_CALL}\n"]),  # inspect's code_context, in quotes
        f'FrameInfo(code_context="{HIDDEN_CALL}", index=0)',
        f"first line of prose\n    {TOLERANCE}",  # the quoting line only
    ],
)
def test_a_message_loses_each_line_that_quotes_a_hidden_line(evalue):
    [cell] = hide(graded_test([error("ValueError", evalue)]))
    shown = cell.outputs[0].evalue + "\n" + "\n".join(cell.outputs[0].traceback)
    assert HIDDEN_CALL not in shown and TOLERANCE not in shown, shown
    assert REDACTED in cell.outputs[0].evalue
    if evalue.startswith("first line of prose\n"):
        assert cell.outputs[0].evalue == f"first line of prose\n{REDACTED}"


def test_an_error_name_that_quotes_a_hidden_line_loses_it():
    [cell] = hide(graded_test([error(HIDDEN_CALL, "boom")]))
    assert cell.outputs[0].ename == REDACTED
    assert HIDDEN_CALL not in "\n".join(cell.outputs[0].traceback)


def test_a_sentence_that_merely_holds_a_hidden_line_stays():
    evalue = f"double is off by 1e-07, more than the test allows: {TOLERANCE} see the hint above"
    assert _redact(evalue, {TOLERANCE}) != evalue, "the printed-output rule would remove it"
    assert _redact_message(evalue, {TOLERANCE}) == evalue
    [cell] = hide(graded_test([error("AssertionError", evalue)]))
    assert cell.outputs[0].evalue == evalue
    assert plain(cell.outputs[0].traceback) == [f"AssertionError: {evalue}"]


def test_the_failure_summary_is_made_of_the_redacted_message():
    [cell] = hide(graded_test([error("ValueError", f"{HIDDEN_CALL}\nwrong")]))
    assert cell.metadata[FAILURE] == f"ValueError: {REDACTED}"


# --- tracebacks: the message, after the student's own line from the page -----------------


def frame(count: int, line: int, where: str = "", quoted: str = "") -> str:
    """An IPython traceback entry of a frame in a cell, colored as IPython colors it."""
    where = f", in \x1b[36m{where}\x1b[39m\x1b[34m(x)\x1b[39m" if where else ""
    return (
        f"\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[{count}]\x1b[39m\x1b[32m, line "
        f"{line}\x1b[39m{where}\n\x1b[32m----> \x1b[39m\x1b[32m{line}\x1b[39m {quoted}\n"
    )


def test_a_traceback_is_cut_down_to_the_message():
    mine = new_code_cell("import lib\nlib.run()")
    mine.execution_count = 3
    mine.outputs = [
        error(
            "ValueError",
            "boom",
            [
                "\x1b[31mValueError\x1b[39m   Traceback (most recent call last)",
                "File /srv/lib.py:12, in run\n     11 # a secret of the library\n---> 12 boom()",
                "\x1b[31mValueError\x1b[39m: boom",
            ],
        )
    ]
    [cell] = hide(mine)
    assert plain(cell.outputs[0].traceback) == ["ValueError: boom"]


def test_the_students_line_is_quoted_from_the_page_not_from_the_traceback():
    solution = nbgrader_cell("def f(x):\n    return x / 0", "f", solution=True)
    solution.execution_count = 2
    caller = new_code_cell("f(1)")
    caller.execution_count = 3
    trace = [frame(3, 1, quoted="FORGED"), frame(2, 2, "f", quoted="FORGED TOO")]
    caller.outputs = [error("ZeroDivisionError", "division by zero", trace)]
    # From a test cell: its own frame is never the one shown.
    test = graded_test([error("AssertionError", "wrong", [frame(4, 4, quoted=HIDDEN_CALL)])], 4)
    _, caller, test = hide(solution, caller, test)
    assert plain(caller.outputs[0].traceback) == [
        "Cell In[2], line 2, in f",
        "----> 2     return x / 0",
        "ZeroDivisionError: division by zero",
    ]
    assert plain(test.outputs[0].traceback) == ["AssertionError: wrong"]


def test_a_test_cell_shows_its_source_without_the_hidden_region():
    [cell] = hide(graded_test())
    assert cell.source.split("\n") == ['"""Check that double doubles."""', VISIBLE]


# --- defang: nothing of the submission's own but what the page needs ---------------------


def test_defang_keeps_only_nbgraders_fields_of_their_types():
    cell = nbgrader_cell("assert True", "test_double", points=2)
    cell.metadata.nbgrader.update(pending=True, score=99, solution="yes", points=2)
    cell.metadata[FAILURE] = "a sentence of the student's"
    cell.metadata["tags"] = ["raises-exception"]
    forged = nbgrader_cell("x = 1", '"><script>alert(1)</script>', points=1)
    nb = defang(new_notebook(cells=[cell, forged]))
    assert nb.cells[0].metadata == {
        "nbgrader": {
            "grade": True,
            "solution": False,
            "locked": True,
            "task": False,
            "grade_id": "test_double",
            "points": 2,
        }
    }
    assert nb.cells[1].metadata.nbgrader.grade_id == "unnamed"


def test_defang_keeps_only_outputs_of_allowed_types():
    cell = new_code_cell("show()")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"text/html": "<b>hi</b>", "application/javascript": "alert(1)"},
        ),
        nbformat.v4.new_output("display_data", data={"application/javascript": "alert(1)"}),
        nbformat.from_dict({"output_type": "weird", "text": "?"}),
        nbformat.from_dict(
            {"output_type": "error", "ename": "E", "evalue": "m", "traceback": ["a", 1, None]}
        ),
    ]
    [cell] = defang({"cells": [cell]}).cells  # as read from JSON: no schema checked
    html, script, weird, failure = cell.outputs
    assert html.data == {"text/html": "<b>hi</b>"}
    assert script.data == {"text/plain": "[an output of type application/javascript, not shown]"}
    assert weird == {
        "output_type": "stream",
        "name": "stdout",
        "text": "[an output of unknown type, not shown]",
    }
    assert failure.traceback == ["a"]
