"""The class report (reports/class-report.html): its numbers against hand-worked ones, no
hidden test and no active content from a submission in it, and the page in Chromium.

A tiny course of two exercises, the first with two test cells (so that partial marks exist),
is graded once for this module, for real (sandbox, workers, nbgrader's gradebook), with one
submission of each kind:

    student  Exercise 1.1 (square, 2 points)            Exercise 1.2 (cube, 1 point)
    ada      right                                      right
    bob      x * abs(x): the hidden test fails          right
    cat      x + x: both tests fail                     x * x: fails
    dan      the untouched stub                         right
    eve      right                                      raises a ValueError of hostile HTML
    mal      quotes the hidden test in its error        right
    fay      loops asleep (timeout): square undefined   right
    gus      right                                      the kernel dies (crashed)
    hal      not JSON (invalid)
    ivy      in the gradebook, nothing submitted (missing)
"""

from __future__ import annotations

import html
import re
from collections import Counter

import nbformat
import pytest
from conftest import MINI, build_class_course, cube_cells, nbgrader_cell, square_cells
from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader.api import Gradebook

from grader.cli import main
from grader.notebooks.sanitize import CSP
from grader.pipeline.autograde import autograde
from grader.pipeline.class_report import (
    AssignmentStats,
    ClassStats,
    Exercise,
    Message,
    class_stats,
    headline,
    histogram_counts,
    render,
)
from grader.pipeline.report import gather
from grader.workdir import folder, gradebook

HOSTILE = (
    "</td></table><script>window.__pwned=1;document.title='PWNED'</script>"
    '<img src=x onerror="window.__pwned=2">'
)
HIDDEN = 'assert square(-2) == 4, "square(-2) should be 4"'


def course_cells():
    return [
        new_markdown_cell("# Squares and cubes"),
        new_code_cell("import numpy as np"),
        *square_cells(),
        nbgrader_cell(
            '"""Check that square(3) is 9."""\nassert square(3) == 9, "square(3) should be 9"',
            "test_square",
            points=1,
        ),
        nbgrader_cell(
            '"""Check that square handles 0 and negative numbers."""\n'
            'assert square(0) == 0, "square(0) should be 0"\n'
            f"### BEGIN HIDDEN TESTS\n{HIDDEN}\n### END HIDDEN TESTS",
            "test_square_negative",
            points=1,
        ),
        *cube_cells(),
    ]


SQUARE, CUBE = "def square(x):\n    {}", "def cube(x):\n    {}"
QUOTE_CALLER = (
    "import inspect\n"
    "def square(x):\n"
    "    if x == -2:  # quote the line that called: the hidden test\n"
    "        raise ValueError(inspect.stack()[1].code_context[0])\n"
    "    return x * x"
)
# fay's loop sleeps: a busy one would burn a core for the whole cell timeout, to no further
# effect on the report (a busy loop's timeout: the demo class's `ivy`, test_grader_demo.py).
LOOP = "import time\nwhile True:\n    time.sleep(0.1)"
ANSWERS = {  # student -> (square cell, cube cell); None: the release's stub
    "ada": (SQUARE.format("return x * x"), CUBE.format("return x ** 3")),
    "bob": (SQUARE.format("return x * abs(x)"), CUBE.format("return x ** 3")),
    "cat": (SQUARE.format("return x + x"), CUBE.format("return x * x")),
    "dan": (None, CUBE.format("return x ** 3")),
    "eve": (SQUARE.format("return x * x"), CUBE.format(f"raise ValueError({HOSTILE!r})")),
    "mal": (QUOTE_CALLER, CUBE.format("return x ** 3")),
    "fay": (LOOP, CUBE.format("return x ** 3")),
    "gus": (SQUARE.format("return x * x"), "import os\nos._exit(1)"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, workers):
    root = tmp_path_factory.mktemp("class_report")
    repo = build_class_course(root / "course", course_cells())
    course = folder.prepare(repo, root / "grading", [MINI])
    release = nbformat.read(str(course.root / "release" / MINI / f"{MINI}.ipynb"), 4)
    for student, (square, cube) in ANSWERS.items():
        nb = nbformat.reads(nbformat.writes(release), 4)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            answer = {"square": square, "cube": cube}.get(grade_id)
            if answer is not None:
                cell.source = answer
        path = root / f"{student}.ipynb"
        nbformat.write(nb, str(path))
        folder.submit(course, student, MINI, path)
    (root / "hal.ipynb").write_text('{"cells": [')
    folder.submit(course, "hal", MINI, root / "hal.ipynb")
    with Gradebook(gradebook.db_url(course), course.course_id) as gb:
        gb.update_or_create_student("ivy")
    # On shared workers (shared_workers.py): nothing in the report depends on which
    # workers graded.
    autograde(
        course, cell_timeout=5, notebook_timeout=120, progress=False, executor=workers(course)
    )
    out = root / "reports"
    code = main(
        ["--root", str(repo.root), "--workdir", str(course.root), "report", "--out", str(out)]
    )
    assert code == 0
    return course, out / "class-report.html"


@pytest.fixture(scope="module")
def stats(graded):
    course, _ = graded
    return class_stats(course, gather(course))


@pytest.mark.slow
@pytest.mark.sandbox
def test_statuses_are_the_planted_ones(stats):
    [a] = stats.assignments
    assert dict(a.statuses) == {"graded": 6, "timeout": 1, "crashed": 1, "invalid": 1, "missing": 1}
    assert [(s, status) for s, status, _ in a.problems] == [
        ("fay", "timeout"),
        ("gus", "crashed"),
        ("hal", "invalid"),
    ]
    messages = {s: m for s, _, m in a.problems}
    assert "ran longer than 5 s" in messages["fay"]
    assert "kernel died" in messages["gus"]
    assert "JSON" in messages["hal"]
    assert a.unread == []


@pytest.mark.slow
@pytest.mark.sandbox
def test_shares_of_full_partial_and_no_marks_are_the_hand_worked_ones(stats):
    [a] = stats.assignments
    square, cube = a.exercises
    assert (square.title, square.grade_ids, square.max_points) == (
        "Exercise 1.1: Square",
        ["test_square", "test_square_negative"],
        2,
    )
    assert (cube.title, cube.grade_ids, cube.max_points) == ("Exercise 1.2: Cube", ["test_cube"], 1)
    # The 8 that ran: square full for ada, eve, gus; partial for bob, mal; none for cat,
    # dan, fay. Cube full for ada, bob, dan, mal, fay; none for cat, eve, gus.
    assert (square.full, square.partial, square.none) == (3, 2, 3)
    assert (cube.full, cube.partial, cube.none) == (5, 0, 3)


@pytest.mark.slow
@pytest.mark.sandbox
def test_messages_are_counted_per_student_and_most_frequent_first(stats):
    [a] = stats.assignments
    square, cube = a.exercises
    got = [(m.students, m.ename, m.text, m.cells) for m in square.messages]
    assert got[0] == (
        2,
        "AssertionError",
        "square(-2) should be 4",
        ["test_square_negative"],
    )  # bob and cat
    assert got[1:3] == [
        (1, "AssertionError", "square(3) should be 9", ["test_square"]),  # cat
        (
            1,
            "NameError",
            "name 'square' is not defined",
            ["test_square", "test_square_negative"],
        ),  # fay, in both cells: one student
    ]
    # dan's stub, whatever it says
    assert (got[3][0], got[3][3]) == (1, ["test_square", "test_square_negative"])
    assert got[3][1] == "NotImplementedError"
    # mal's error quoted the hidden test: what is left of it is the redaction.
    [(students, ename, text, cells)] = got[4:]
    assert (students, ename, cells) == (1, "ValueError", ["test_square_negative"])
    assert "square(-2) == 4" not in text and text
    assert [(m.students, m.ename, m.cells) for m in cube.messages] == [
        (1, "AssertionError", ["test_cube"]),  # cat
        (1, "NotRun", ["test_cube"]),  # gus's kernel died first
        (1, "ValueError", ["test_cube"]),  # eve
    ]
    assert cube.messages[0].text == "cube(2) should be 8"
    assert cube.messages[2].text == headline(HOSTILE)


@pytest.mark.slow
@pytest.mark.sandbox
def test_totals_histograms_are_the_hand_worked_ones(stats):
    [a] = stats.assignments
    assert a.totals == {
        "ada": 3,
        "bob": 2,
        "cat": 0,
        "dan": 1,
        "eve": 2,
        "mal": 2,
        "fay": 1,
        "gus": 2,
    }
    assert histogram_counts(list(a.totals.values()), a.max_total) == [1, 2, 4, 1]
    # Every student of the course, hal (invalid) and ivy (nothing submitted) at 0.
    assert len(stats.totals) == 10
    assert histogram_counts(list(stats.totals.values()), stats.max_total) == [3, 2, 4, 1]


@pytest.mark.slow
@pytest.mark.sandbox
def test_page_shows_the_numbers_and_no_hidden_test(graded):
    _, path = graded
    page = path.read_text()
    text = re.sub(r"<svg.*?</svg>|<[^>]+>", " ", page.split("</head>")[1], flags=re.DOTALL)
    text = " ".join(html.unescape(text).split())
    assert "Exercise 1.1: Square 2 3 (38%) 2 (25%) 3 (38%)" in text
    assert "Exercise 1.2: Cube 1 5 (62%) 0 (0%) 3 (38%)" in text
    assert "2 AssertionError: square(-2) should be 4 test_square_negative" in text
    assert "1 NotImplementedError" in text
    assert "fay timeout" in text and "gus crashed" in text and "hal invalid" in text
    assert "square(-2) == 4" not in page and "HIDDEN TESTS" not in page
    assert "inspect.stack" not in page


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_hostile_message_is_escaped(graded):
    _, path = graded
    page = path.read_text()
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;window.__pwned=1" in page
    assert f'content="{CSP}"' in page.split("</head>")[0]


def test_every_field_is_escaped():
    """Student ids, statuses, titles and messages all pass through the escape."""
    hostile = "<b id=pwned>x</b>"
    exercise = Exercise(
        hostile,
        [hostile],
        2,
        full=1,
        partial=0,
        none=1,
        messages=[Message(hostile, hostile, 1, [hostile])],
    )
    stats = ClassStats(
        hostile,
        2,
        {hostile: 1.0, "b": 2.0},
        2,
        [
            AssignmentStats(
                hostile,
                [exercise],
                {hostile: 1.0},
                2,
                Counter({"graded": 1, "invalid": 1}),
                [(hostile, "invalid", hostile)],
                [hostile],
            )
        ],
    )
    page = render(stats)
    assert "<b id=pwned>" not in page
    assert page.count("&lt;b id=pwned&gt;") >= 8


@pytest.mark.slow
@pytest.mark.sandbox
def test_page_in_chromium_shows_the_histograms_and_runs_no_script(graded, chromium, tmp_path):
    _, path = graded
    page = chromium.new_page()
    seen = {"dialogs": [], "console": [], "requests": []}
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("console", lambda m: seen["console"].append(m.text))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.goto(path.as_uri())
    page.wait_for_timeout(200)
    assert page.evaluate("window.__pwned") is None and not seen["dialogs"]
    assert page.title().startswith("Class report: ") and "PWNED" not in page.title()
    assert page.evaluate("document.scripts.length") == 0
    assert seen["requests"] == [path.as_uri()], seen["requests"]
    histograms = page.locator("svg.histogram")
    assert histograms.count() == 2  # the course's and the assignment's
    for index in range(2):
        box = histograms.nth(index).bounding_box()
        assert box and box["width"] > 300 and box["height"] > 100
    # The assignment's bars: 4 bins, all filled; their heights follow the counts 1, 2, 4, 1.
    bars = histograms.nth(1).locator("rect.bar")
    heights = [bars.nth(i).bounding_box()["height"] for i in range(bars.count())]
    assert len(heights) == 4 and heights[2] == max(heights)
    assert [round(h / heights[0]) for h in heights] == [1, 2, 4, 1]
    body = page.inner_text("body")
    assert "<script>window.__pwned=1" in body  # shown as text, not run
    page.screenshot(path=str(tmp_path / "class-report.png"), full_page=True)
    page.close()
