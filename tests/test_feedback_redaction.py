"""What a feedback page keeps of outputs: the sentence of a failure, never hidden-test source
or a path of the grading machine.

First the rules on their own (no kernel): which text counts as quoting a hidden test in a
message and in printed output, what a traceback is cut down to, which paths are shortened,
how formulas become MathML. Then one class of a tiny course graded through the grader:
its hidden test shares a line (`rtol=1e-10,`) with numpy's failure message, as the
course's hidden tests do, and a student whose functions print and raise their caller's
source, as a snooping submission does.
"""

from __future__ import annotations

import html
import re

import nbformat
import pytest
from conftest import (
    MINI,
    build_class_course,
    cell_index,
    nbgrader_cell,
    with_cells_after,
)
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.config import REPO_ROOT
from grader.execution.sandbox import missing_pieces
from grader.notebooks import cells as nbs
from grader.notebooks.redaction import (
    REDACTED,
    HideHiddenTests,
    _redact,
    hidden_lines,
    scrub_paths,
)
from grader.pipeline.autograde import autograde
from grader.pipeline.feedback import generate_feedback, latex_output, mathml
from grader.workdir import folder

TOLERANCE = "rtol=1e-10,"  # a hidden line that numpy's failure message also holds


# --- the rules, without a kernel -----------------------------------------------------------


def graded_cell(source: str, outputs=(), count=None) -> nbformat.NotebookNode:
    cell = nbgrader_cell(source, "test_f", points=1)
    cell.outputs, cell.execution_count = list(outputs), count
    return cell


HIDDEN_SOURCE = (
    '"""Check that f doubles."""\nfrom course.testing import assert_close\n'
    'assert_close(f(1), 2, "f(1)", hint="f(1) should be 2")\n### BEGIN HIDDEN TESTS\n'
    'assert_close(\n    f(np.array([-1.0, 3.0])), [-2.0, 6.0], "f(np.array([-1.0, 3.0]))",\n'
    f"    {TOLERANCE}\n"
    '    hint="f should double every entry of an array",\n)\n### END HIDDEN TESTS'
)
HIDDEN_CALL = 'f(np.array([-1.0, 3.0])), [-2.0, 6.0], "f(np.array([-1.0, 3.0]))",'


def hide(cells) -> list:
    """The cells' outputs after HideHiddenTests."""
    nb = new_notebook(cells=cells)
    nb, _ = HideHiddenTests().preprocess(nb, {})
    return [cell.get("outputs", []) for cell in nb.cells]


def error(ename: str, evalue: str, traceback=()) -> dict:
    return nbformat.from_dict(
        {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": list(traceback)}
    )


def stream(text: str) -> dict:
    return nbformat.from_dict({"output_type": "stream", "name": "stdout", "text": text})


def test_a_failure_sentence_stays_though_a_hidden_line_is_in_it():
    sentences = [
        # course.testing's sentence of a near miss of the hidden check: the tolerance, which
        # the hidden test holds on a line of its own, decides
        "f should double every entry of an array: f(np.array([-1.0, 3.0])) is 6.0000001 at "
        "index [1], expected 6 (a difference of 1e-07, more than the test allows: "
        "rtol=1e-10, atol=0); 1 of 2 entries differ.",
        # numpy's report, on lines of their own
        "\nNot equal to tolerance rtol=1e-10, atol=0\nf should double every entry of an "
        "array\nMismatched elements: 1 / 2 (50%)\n ACTUAL: array([-2.,  7.])\n"
        " DESIRED: array([-2.,  6.])",
    ]
    for evalue in sentences:
        assert _redact(evalue, {TOLERANCE}) != evalue, "the check is vacuous"
        [outputs] = hide([graded_cell(HIDDEN_SOURCE, [error("AssertionError", evalue)])])
        assert outputs[0].evalue == evalue
        text = strip_ansi("\n".join(outputs[0].traceback))
        assert text == f"AssertionError: {evalue.strip()}", text


def test_a_message_that_quotes_hidden_source_loses_those_lines():
    """The ways a tested function can put its caller's source in an error message, as
    inspect and linecache give it."""
    line = f"    {HIDDEN_CALL}\n"
    whole = HIDDEN_SOURCE.replace("### BEGIN HIDDEN TESTS\n", "").replace(
        "### END HIDDEN TESTS", ""
    )
    messages = {
        "code_context": repr([line]),
        "a line": f"called from: {line}",
        "a line first": f"{line.strip()} was my caller",
        "the cell": whole,
        "a FrameInfo": f"FrameInfo(frame=<frame>, code_context=[{line!r}], index=0)",
    }
    for name, evalue in messages.items():
        [outputs] = hide([graded_cell(HIDDEN_SOURCE, [error("ValueError", evalue)])])
        shown = outputs[0].evalue + "\n".join(outputs[0].traceback)
        for hidden in (HIDDEN_CALL, TOLERANCE, 'hint="f should double'):
            assert hidden not in shown, (name, shown)
        assert REDACTED in shown, name


def test_printed_output_loses_every_line_with_a_hidden_line():
    printed = f"f was called with {TOLERANCE} in it\nand nothing here\n{HIDDEN_CALL}\n"
    [outputs] = hide([graded_cell(HIDDEN_SOURCE, [stream(printed)])])
    assert outputs[0].text == f"{REDACTED}\nand nothing here\n{REDACTED}\n"


def frame(count: int, line: int, where: str = "", quoted: str = "") -> str:
    """An IPython traceback entry of a frame in a cell, colored as IPython colors it."""
    where = f", in \x1b[36m{where}\x1b[39m\x1b[34m(x)\x1b[39m" if where else ""
    return (
        f"\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[{count}]\x1b[39m\x1b[32m, line "
        f"{line}\x1b[39m{where}\n\x1b[32m----> \x1b[39m\x1b[32m{line}\x1b[39m {quoted}\n"
    )


LIBRARY = (
    "\x1b[36mFile \x1b[39m\x1b[32m/srv/grader/.venv/lib/python3.11/site-packages/numpy/"
    "_core/fromnumeric.py:57\x1b[39m, in \x1b[36m_wrapfunc\x1b[39m\n    return bound()\n"
)


def test_a_traceback_keeps_the_students_own_line_and_the_message():
    solution = nbgrader_cell("def f(x):\n    return np.sum(x, axis=x)", "f", solution=True)
    solution.execution_count = 2
    demo = new_code_cell("import numpy as np\nf(np.ones(3))")
    demo.execution_count = 3
    header = [
        "\x1b[31m-----\x1b[39m",
        "\x1b[31mTypeError\x1b[39m   Traceback (most recent call last)",
    ]
    evalue = "'numpy.ndarray' object cannot be interpreted as an integer"
    # The traceback quotes lines of its own, which the page ignores.
    demo.outputs = [
        error(
            "TypeError",
            evalue,
            [
                *header,
                frame(3, 2, quoted="anything"),
                frame(2, 2, "f", "quoted text"),
                LIBRARY,
                f"\x1b[31mTypeError\x1b[39m: {evalue}",
            ],
        )
    ]
    # Called from a test cell: that frame (a test cell's) is never the one shown.
    test = graded_cell(
        HIDDEN_SOURCE,
        [
            error(
                "TypeError",
                evalue,
                [*header, frame(4, 3, quoted=HIDDEN_CALL), frame(2, 2, "f"), LIBRARY],
            )
        ],
        count=4,
    )
    hidden_only = graded_cell(
        HIDDEN_SOURCE,
        [error("AssertionError", "wrong", [*header, frame(4, 7, quoted=HIDDEN_CALL)])],
        count=4,
    )
    _, demo_out, test_out, hidden_out = hide([solution, demo, test, hidden_only])
    student_line = ["Cell In[2], line 2, in f", "----> 2     return np.sum(x, axis=x)"]
    sentence = f"TypeError: {evalue}"
    assert [strip_ansi(t) for t in demo_out[0].traceback] == [*student_line, sentence]
    assert [strip_ansi(t) for t in test_out[0].traceback] == [*student_line, sentence]
    assert [strip_ansi(t) for t in hidden_out[0].traceback] == ["AssertionError: wrong"]
    # A frame of a cell that is not there, or a line it does not have: the message alone.
    for entry in (frame(9, 1, quoted="x"), frame(2, 7, "f", "x")):
        _, outputs = hide([solution, graded_cell("pass", [error("E", "m", [entry])], count=5)])
        assert [strip_ansi(t) for t in outputs[0].traceback] == ["E: m"]


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.mark.parametrize(
    ("printed", "shown"),
    [
        (
            "/srv/grader/.venv/lib/python3.11/site-packages/torch/nn/modules/loss.py:610: "
            "UserWarning: Using a target size",
            "torch/nn/modules/loss.py:610: UserWarning: Using a target size",
        ),
        (
            "/tmp/ipykernel_4242/1234567.py:3: RuntimeWarning: overflow encountered in exp",
            "[cell]:3: RuntimeWarning: overflow encountered in exp",
        ),
        (
            "[Errno 2] No such file or directory: '/submission/data/x.csv'",
            "[Errno 2] No such file or directory: 'data/x.csv'",
        ),
        ("working in /submission", "working in ."),
        (
            "/usr/lib/python3.11/json/decoder.py:355: in raw_decode",
            "json/decoder.py:355: in raw_decode",
        ),
        (f"{REPO_ROOT}/course/testing.py", "course/testing.py"),
        (
            "cache at /tmp/matplotlib-x1y2/fontlist.json and /home/grader/.config",
            "cache at .../fontlist.json and .../.config",
        ),
        ("<td>/srv/data/x.csv</td> --out=/srv/out", "<td>.../x.csv</td> --out=.../out"),
        # Not paths: a URL, a fraction, a date, a unit, closing tags, base64, a lone folder.
        (
            "see https://example.org/a/b, 1/2 of 2024/01/02 km/h </div></b> iVBO+/Rw/x== /tmp",
            "see https://example.org/a/b, 1/2 of 2024/01/02 km/h </div></b> iVBO+/Rw/x== /tmp",
        ),
    ],
)
def test_paths_of_the_grading_machine_are_shortened(printed, shown):
    assert scrub_paths(printed) == shown


def test_formulas_become_mathml_and_nothing_else_comes_with_them():
    fraction = mathml(r"\frac{1}{1 + e^{-z}}", "block")
    assert fraction.startswith('<math display="block">') and "<mfrac>" in fraction
    assert "xmlns" not in fraction  # HTML needs none; add_anchor's XML parser would misread it
    hostile = mathml(r"\text{<script>alert(1)</script><img src=x onerror=alert(1)>} x", "inline")
    assert "<script" not in hostile and "onerror" not in hostile and "<img" not in hostile
    unreadable = mathml(r"\frac{1}{", "inline")
    assert unreadable == r"<code>$\frac{1}{$</code>"
    latex = latex_output(r"Loss: $\displaystyle \sum_i x_i^2$ <b>bold</b>")
    assert latex.startswith('Loss: <math display="inline">') and "&lt;b&gt;" in latex


# --- a class graded through the grader ---------------------------------------------------

CELLS = [
    new_markdown_cell("# A tiny assignment"),
    new_code_cell("import numpy as np"),
    new_markdown_cell("### Exercise 1.1: Double $f(x) = 2x$ (1 point)"),
    nbgrader_cell(
        'def f(x):\n    """Return 2 x."""\n    ### BEGIN SOLUTION\n    return 2 * x\n'
        "    ### END SOLUTION",
        "f",
        solution=True,
    ),
    graded_cell(HIDDEN_SOURCE),
]

# A student who wants the hidden tests: f prints its caller's line (as inspect gives it),
# the caller's whole cell (linecache) and the caller's frame; on arrays it raises an error
# whose message is the caller's cell.
SNOOP = """import inspect
import linecache


def f(x):
    caller = inspect.stack()[1]
    print(caller.code_context)
    print("".join(linecache.getlines(caller.filename)))
    print(caller)
    if np.ndim(x):
        raise ValueError("".join(linecache.getlines(caller.filename)))
    return 2 * x"""

# An honest student, a little off (within the visible test's tolerance, not the hidden
# one's), with cells that fail or warn as students' cells do: their tracebacks and warnings
# name files of the grading machine.
WRONG = 'def f(x):\n    """Return 2 x."""\n    return 2 * x * (1 + 1e-8)'
SCRATCH = [
    "import os\nprint(os.getcwd())",
    "import warnings\nwarnings.warn('f is slow')",
    "f(np.ones(3)) @ np.ones(4)",
    "open('missing.csv')",
]


@pytest.fixture(scope="module")
def pages(tmp_path_factory, workers):
    root = tmp_path_factory.mktemp("redaction")
    repo = build_class_course(root / "course", CELLS)
    course = folder.prepare(repo, root / "grading", [MINI])
    release = nbs.read(repo.root / "release" / MINI / f"{MINI}.ipynb")
    students = {
        "snoop": with_cells_after(release, "test_f", "print(f(3))"),
        "wrong": with_cells_after(release, "f", *SCRATCH),
    }
    for nb, answer in zip(students.values(), [SNOOP, WRONG], strict=True):
        nb.cells[cell_index(nb, "f")].source = answer
    for student, nb in students.items():
        path = root / "hand-in" / f"{student}.ipynb"
        path.parent.mkdir(exist_ok=True)
        nbs.write(nb, path)
        folder.submit(course, student, MINI, path)
    unsafe = bool(missing_pieces())
    outcomes = autograde(
        course,
        [MINI],
        cell_timeout=30,
        progress=False,
        unsafe=unsafe,
        executor=workers(course, unsafe=unsafe),
    )
    assert {(o.student, o.status) for o in outcomes} == {(s, "graded") for s in students}, outcomes
    written = generate_feedback(course, [MINI], jobs=1)
    return {"course": course, "pages": {p.parent.parent.name: p.read_text() for p in written}}


def page_text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", "", page))


@pytest.mark.slow
def test_the_failure_sentence_shows_though_a_hidden_test_shares_its_line(pages):
    course = pages["course"]
    nb = nbs.read(course.root / "autograded" / "wrong" / MINI / f"{MINI}.ipynb")
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_f")
    [failure] = [o for o in test.outputs if o.output_type == "error"]
    # The failure came from the hidden check, and its message holds a hidden line: the rule
    # for printed output would remove it.
    assert failure.evalue.startswith("f should double every entry of an array: "), failure
    assert "rtol=1e-10, atol=0" in failure.evalue, failure.evalue
    assert _redact(failure.evalue, hidden_lines(nb)) != failure.evalue
    text = page_text(pages["pages"]["wrong"])
    sentence = " ".join(f"{failure.ename}: {failure.evalue}".split())
    assert sentence in " ".join(text.split()), text
    assert REDACTED not in text
    assert "test_f (Score: 0.0 / 1.0)" in " ".join(text.split())
    assert "<math" in pages["pages"]["wrong"]  # the heading's formula


@pytest.mark.slow
def test_the_snoops_page_shows_no_hidden_line(pages):
    course = pages["course"]
    autograded = nbs.read(course.root / "autograded" / "snoop" / MINI / f"{MINI}.ipynb")
    printed = "\n".join(
        o.get("text", "") + o.get("evalue", "")
        for c in autograded.cells
        for o in c.get("outputs", [])
    )
    # What a student does not see in the release: `assert_close(` is in the visible test too.
    release = nbs.read(course.root / "release" / MINI / f"{MINI}.ipynb")
    public = "\n".join(cell.source for cell in release.cells)
    hidden = {h for h in hidden_lines(autograded) if h not in public}
    leaked = {h for h in hidden if h in printed}
    assert HIDDEN_CALL in leaked and TOLERANCE in leaked, "the snoop printed nothing hidden"
    text = page_text(pages["pages"]["snoop"])
    assert not {h for h in hidden if h in text}, text
    assert REDACTED in text and "HIDDEN TESTS" not in text
    assert "ValueError" in text  # the error itself shows, without the source it carried


@pytest.mark.slow
def test_tracebacks_are_cut_to_the_line_and_no_path_of_the_machine_shows(pages):
    text = page_text(pages["pages"]["wrong"])
    for shown in (
        "Cell In[",
        "----> 1 f(np.ones(3)) @ np.ones(4)",
        "ValueError: matmul:",
        "FileNotFoundError: [Errno 2] No such file or directory: 'missing.csv'",
        "UserWarning: f is slow",
    ):
        assert shown in text, shown
    for path in (
        "/tmp",
        "ipykernel",
        "site-packages",
        "/submission",
        str(REPO_ROOT),
        "Traceback (most recent call last)",
        "File /",
    ):
        assert path not in text, path
