"""Written answers graded by hand (nbgrader's "Manually graded answer" in markdown).

The tiny course plus one written question worth 2 points, under a `### Question` heading,
its model answer and rubric inside the solution region. First what the build makes of it
(checks, release/, solutions/), then a class of three graded through the whole pipeline,
once for the module, in stages:

    ann  answers the question           pending; graded by hand in formgrader (1.5)
    bob  leaves the release's stub      0, not pending, nothing to grade
    cal  answers the question           pending; graded through nbgrader's API alone (2)

(ann's grade goes through `python -m grader formgrader`'s own HTTP API, as its Manual
Grading page sends it; cal's is a manual_score set in nbgrader's Gradebook.)

then `autograde --force` (the hand grades stay), ann's new submission with another text
(her hand grade is cleared: that answer waits for its grade again), and cal's broken one
(invalid: the tests score 0, his grade given by hand stays and the message names it). All
three get the code exercises right (3 points).
"""

from __future__ import annotations

import csv
import json
import re
import shutil

import nbformat
import pytest
from conftest import (
    MINI,
    build_class_course,
    cell_index,
    copy_notebook,
    nbgrader_cell,
    two_exercise_cells,
    write_notebook,
)
from jupyter_process import start_formgrader
from nbformat.v4 import new_markdown_cell
from nbgrader.api import Gradebook

from grader.config import load_config
from grader.execution.tamper import Checks
from grader.lms.roster import load_roster
from grader.notebooks import cells as nbs
from grader.notebooks.restore import graded_cell_notes, restore_from_release
from grader.notebooks.scoring import is_test_cell, scores
from grader.notebooks.validate import SourceError, check_course
from grader.pipeline.autograde import autograde
from grader.pipeline.build import build, solution_notebook
from grader.pipeline.class_report import class_stats
from grader.pipeline.feedback import generate_feedback
from grader.pipeline.report import table, write_report
from grader.pipeline.synthetic import as_handed_in
from grader.workdir import folder, gradebook

QUESTION = "### Question 1.3: Why a square is never negative (2 points)"
MODEL = (
    "A square multiplies a number by itself, and two factors of the same sign never "
    "give a negative product."
)
RUBRIC = "- 1 point: the two factors have the same sign"
ANSWER = (
    f"**Your answer:**\n\n{nbs.BEGIN_SOLUTION}\n{MODEL}\n\n**Rubric:**\n{RUBRIC}\n"
    f"- 1 point: a product of equal signs is not negative\n{nbs.END_SOLUTION}"
)
STUB = "YOUR ANSWER HERE"  # nbgrader's text stub (ClearSolutions.text_stub)
ANN = "Minus times minus is plus, and plus times plus is plus."
ANN_AGAIN = "Because x * x = |x|^2, and an absolute value is never negative."
CAL = "Equal signs multiply to a non-negative number."
NOTEBOOK = f"source/{MINI}/{MINI}.ipynb"


def question_cells():
    return [
        *two_exercise_cells(),
        new_markdown_cell(f"{QUESTION}\n\nExplain in a sentence or two."),
        nbgrader_cell(ANSWER, "why_square", solution=True, points=2, kind="markdown"),
    ]


# --- the build: checks, release/, solutions/ -----------------------------------------------


def problems_with(root, cells) -> list[str]:
    write_notebook(root / NOTEBOOK, cells)
    return check_course(load_config(root))


def test_a_written_question_passes_the_checks(mini_course):
    assert problems_with(mini_course.root, question_cells()) == []


def _answer_cell(cells):
    return cells[cell_index(nbformat.v4.new_notebook(cells=cells), "why_square")]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # under an exercise heading instead of a question heading
        (lambda cells: cells.pop(-2), "under the exercise heading"),
        # the question heading's points are not the answer's
        (
            lambda cells: setattr(cells[-2], "source", QUESTION.replace("(2", "(3")),
            "announces 3 points but its written answers carry 2",
        ),
        # no rubric
        (
            lambda cells: setattr(
                cells[-1], "source", ANSWER.split("**Rubric:**")[0] + nbs.END_SOLUTION
            ),
            "has no rubric",
        ),
        # a rubric line and nothing before it
        (lambda cells: setattr(cells[-1], "source", ANSWER.replace(MODEL, "")), "no model answer"),
        # no solution region at all: nbgrader would replace the whole cell
        (lambda cells: setattr(cells[-1], "source", MODEL), "BEGIN SOLUTION"),
        # the rubric after the region reaches the students
        (lambda cells: setattr(cells[-1], "source", ANSWER + f"\nRubric: {RUBRIC}"), "outside"),
        # the heading inside the cell the students edit
        (
            lambda cells: setattr(cells[-1], "source", f"{QUESTION}\n\n{ANSWER}"),
            "heading is inside the written answer",
        ),
        # graded but not a solution cell
        (
            lambda cells: cells[-1].metadata.nbgrader.update(solution=False, locked=True),
            "but not both",
        ),
        # a test cell under the question heading
        (
            lambda cells: cells.append(nbgrader_cell("assert True", "test_more", points=1)),
            "a test cell under the question heading",
        ),
    ],
)
def test_a_badly_written_question_is_named(mini_course, change, expected):
    cells = question_cells()
    change(cells)
    problems = problems_with(mini_course.root, cells)
    assert any(expected in p for p in problems), problems


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The course with the question, release/ and solutions/ (not executed) built."""
    root = tmp_path_factory.mktemp("built") / "course"
    course = build_class_course(root, question_cells())
    build(course, solutions=True, release=False, execute_solutions=False)
    return course


def _notebook(course, folder):
    return nbformat.read(str(course.root / folder / MINI / f"{MINI}.ipynb"), 4)


def test_the_release_shows_the_stub_and_neither_model_answer_nor_rubric(built):
    release = _notebook(built, "release")
    assert _answer_cell(release.cells).source == f"**Your answer:**\n\n{STUB}"
    text = json.dumps(release.dict())
    assert MODEL not in text and RUBRIC not in text and "Rubric" not in text
    meta = _answer_cell(release.cells).metadata.nbgrader
    assert meta["grade"] and meta["solution"] and not meta["locked"] and meta["points"] == 2


def test_solutions_show_the_model_answer_without_the_rubric(built):
    answer = _answer_cell(_notebook(built, "solutions").cells)
    assert answer.source == f"**Your answer:**\n\n{MODEL}"
    assert answer.source == _answer_cell(solution_notebook(built.root / NOTEBOOK).cells).source


def test_a_release_that_would_show_the_model_answer_is_refused(tmp_path):
    cells = question_cells()
    cells[-2].source += f"\n\nHint: {MODEL}"  # the question quotes the model answer
    with pytest.raises(SourceError, match="model answer or rubric"):
        build_class_course(tmp_path / "course", cells)


# --- the grader's own logic on a written answer, without running anything ------------------


def test_restore_keeps_the_written_answer_and_notes_nothing(built):
    release = _notebook(built, "release")
    handed_in = copy_notebook(release)
    handed_in.cells[cell_index(handed_in, "why_square")].source = ANN
    assert graded_cell_notes(handed_in, {"test_square", "test_cube", "why_square"}, release) == []
    restored = restore_from_release(handed_in, release)
    cell = restored.cells[cell_index(restored, "why_square")]
    assert cell.source == ANN and cell.cell_type == "markdown"
    assert cell.metadata.nbgrader == _answer_cell(release.cells).metadata.nbgrader


def test_a_deleted_written_answer_comes_back_as_the_stub(built):
    release = _notebook(built, "release")
    handed_in = copy_notebook(release)
    del handed_in.cells[cell_index(handed_in, "why_square")]
    [note] = graded_cell_notes(handed_in, {"test_square", "test_cube", "why_square"}, release)
    assert "why_square" in note and "restored" in note
    restored = restore_from_release(handed_in, release)
    assert restored.cells[cell_index(restored, "why_square")].source.endswith(STUB)


def test_the_worker_gives_a_written_answer_no_points_and_no_checks(built):
    release = _notebook(built, "release")
    answered = copy_notebook(release)
    answered.cells[cell_index(answered, "why_square")].source = ANN
    assert scores(answered)["why_square"] == [None, 2.0]  # a person's to grade
    assert scores(release)["why_square"] == [0, 2.0]  # the stub: nbgrader's 0
    cell = answered.cells[cell_index(answered, "why_square")]
    assert not is_test_cell(cell)
    assert Checks(answered).twin(cell.source, __import__("random").Random(0)) is None


# --- graded: pending, graded by hand, regraded, resubmitted ---------------------------------


def _submission(course, answer: str | None):
    nb = as_handed_in(nbformat.read(str(course.root / NOTEBOOK), 4))
    release = _notebook(course, "release")
    cell = nb.cells[cell_index(nb, "why_square")]
    cell.source = answer if answer is not None else _answer_cell(release.cells).source
    return nb


def _snapshot(course, name: str, roster) -> dict:
    """Everything a stage shows: the gradebook's rows, the reports, feedback pages, the
    autograded answers."""
    out = course.root / name
    report, _ = write_report(course, out, roster=roster)
    generate_feedback(course)
    with Gradebook(gradebook.db_url(course), course.course_id) as gb:
        rows = {
            s: (g.auto_score, g.manual_score, g.needs_manual_grade)
            for s in ("ann", "bob", "cal")
            for g in [gb.find_grade("why_square", MINI, MINI, s)]
        }
    answers = {}
    for student in ("ann", "bob", "cal"):
        nb = nbformat.read(str(course.root / "autograded" / student / MINI / f"{MINI}.ipynb"), 4)
        answers[student] = nb.cells[cell_index(nb, "why_square")].source
    return {
        "report": report,
        "table": table(report),
        "rows": rows,
        "answers": answers,
        "feedback": {
            s: (course.root / "feedback" / s / MINI / f"{MINI}.html").read_text()
            for s in ("ann", "bob", "cal")
        },
        **{
            name: list(csv.DictReader(open(out / name, encoding="utf-8")))
            for name in (
                "totals.csv",
                "questions.csv",
                "submissions.csv",
                "canvas-grades.csv",
                "moodle-grades.csv",
            )
        },
        "class": class_stats(course, report),
    }


@pytest.fixture(scope="module")
def stages(tmp_path_factory, workers):
    root = tmp_path_factory.mktemp("manual")
    repo = build_class_course(root / "course", question_cells())
    course = folder.prepare(repo, root / "grading")
    roster_csv = root / "roster.csv"
    roster_csv.write_text(
        "student_id,name,email,lms_id\nann,Ann A,ann@example.org,101\n"
        "bob,Bob B,bob@example.org,102\ncal,Cal C,cal@example.org,103\n"
    )
    roster = load_roster(roster_csv, repo.assignments)
    for student, answer in {"ann": ANN, "bob": None, "cal": CAL}.items():
        nbformat.write(_submission(repo, answer), str(root / f"{student}.ipynb"))
        folder.submit(course, student, MINI, root / f"{student}.ipynb")
    found = {}
    shared = workers(course)
    outcomes = autograde(course, cell_timeout=30, progress=False, executor=shared)
    found["outcomes"] = {o.student: o for o in outcomes}
    found["autograded"] = _snapshot(course, "reports-autograded", roster)
    # ann graded in formgrader (its Manual Grading page's request), cal through the API alone
    with Gradebook(gradebook.db_url(course), course.course_id) as gb:
        ann_grade = gb.find_grade("why_square", MINI, MINI, "ann").id
    server = start_formgrader(repo.root, course.root, tmp_path_factory.mktemp("fg-home"))
    try:
        found["formgrader_list"] = {
            s["student"]: s["needs_manual_grade"]
            for s in server.call("GET", f"formgrader/api/submissions/{MINI}")
        }
        found["formgrader_put"] = server.call(
            "PUT", f"formgrader/api/grade/{ann_grade}", {"manual_score": 1.5, "extra_credit": None}
        )
    finally:
        server.stop()
    with Gradebook(gradebook.db_url(course), course.course_id) as gb:
        gb.find_grade("why_square", MINI, MINI, "cal").manual_score = 2
        gb.db.commit()
    found["by_hand"] = _snapshot(course, "reports-by-hand", roster)
    regraded = autograde(course, cell_timeout=30, progress=False, force=True, executor=shared)
    found["forced_outcomes"] = {o.student: o for o in regraded}
    found["forced"] = _snapshot(course, "reports-forced", roster)
    nbformat.write(_submission(repo, ANN_AGAIN), str(root / "ann.ipynb"))
    folder.submit(course, "ann", MINI, root / "ann.ipynb")
    [again] = autograde(
        course, students=["ann"], force=True, cell_timeout=30, progress=False, executor=shared
    )
    found["resubmitted_outcome"] = again
    found["resubmitted"] = _snapshot(course, "reports-resubmitted", roster)
    # cal hands in a broken file: invalid, 0 for the tests, the grade given by hand stays
    (course.root / "submitted" / "cal" / MINI / f"{MINI}.ipynb").write_text("{not json")
    [broken] = autograde(course, students=["cal"], force=True, progress=False, executor=shared)
    found["broken_outcome"] = broken
    with Gradebook(gradebook.db_url(course), course.course_id) as gb:
        found["broken"] = {
            g.name: (g.auto_score, g.manual_score, g.needs_manual_grade)
            for g in gb.find_submission_notebook(MINI, MINI, "cal").grades
        }
    yield found
    shutil.rmtree(root, ignore_errors=True)


def _by(rows, *keys):
    return {tuple(r[k] for k in keys): r for r in rows}


def _written_points(stage) -> dict[str, str]:
    """The points of the written question in the stage's questions.csv, by student."""
    return {
        r["student"]: r["points"] for r in stage["questions.csv"] if r["grade_id"] == "why_square"
    }


@pytest.mark.slow
@pytest.mark.sandbox
def test_an_answered_question_is_left_for_a_person(stages):
    stage = stages["autograded"]
    assert stage["rows"]["ann"] == (None, None, True)  # nbgrader: needs a manual grade
    assert stage["rows"]["bob"] == (0, None, False)  # the stub: 0, nothing to grade
    for student in ("ann", "bob", "cal"):
        outcome = stages["outcomes"][student]
        assert (outcome.status, outcome.message) == ("graded", ""), outcome  # no tampering


@pytest.mark.slow
@pytest.mark.sandbox
def test_the_students_text_is_what_the_grader_keeps(stages):
    assert stages["autograded"]["answers"] == {
        "ann": ANN,
        "bob": f"**Your answer:**\n\n{STUB}",
        "cal": CAL,
    }
    assert stages["forced"]["answers"]["ann"] == ANN
    assert stages["resubmitted"]["answers"]["ann"] == ANN_AGAIN


@pytest.mark.slow
@pytest.mark.sandbox
def test_every_report_shows_the_question_pending_until_graded(stages):
    stage = stages["autograded"]
    # bob left it unanswered: 0, not pending
    assert _written_points(stage) == {"ann": "pending", "bob": "0", "cal": "pending"}
    questions = _by(stage["questions.csv"], "student", "grade_id")
    assert questions["ann", "test_square"]["points"] == "2"
    totals = _by(stage["totals.csv"], "student")
    assert (totals["ann",][MINI], totals["ann",]["max"], totals["ann",]["pending"]) == (
        "3",
        "5",
        "2",
    )
    assert (totals["bob",][MINI], totals["bob",]["pending"]) == ("3", "0")
    submissions = _by(stage["submissions.csv"], "student")
    assert (submissions["ann",]["final"], submissions["ann",]["pending"]) == ("3", "2")
    assert submissions["bob",]["pending"] == "0"
    lines = {line.split()[0]: line for line in stage["table"].splitlines()[2:]}
    assert "3/5 + 2 pending" in lines["ann"] and "pending" not in lines["bob"]
    assert stage["report"].pending == {("ann", MINI, "why_square"), ("cal", MINI, "why_square")}


@pytest.mark.slow
@pytest.mark.sandbox
def test_the_class_report_counts_pending_questions_apart(stages):
    [assignment] = stages["autograded"]["class"].assignments
    exercises = {e.title: e for e in assignment.exercises}
    question = exercises["Question 1.3: Why a square is never negative"]
    assert (question.pending, question.full, question.partial, question.none) == (2, 0, 0, 1)
    assert exercises["Exercise 1.1: Square"].pending == 0
    assert assignment.pending == ["ann", "cal"]
    graded = stages["by_hand"]["class"].assignments[0]
    question = {e.title: e for e in graded.exercises}[question.title]
    assert (question.pending, question.full, question.partial, question.none) == (0, 1, 1, 1)
    assert graded.pending == []


@pytest.mark.slow
@pytest.mark.sandbox
def test_no_upload_sends_a_total_with_a_pending_question_as_final(stages):
    for stage, expected in (
        ("autograded", {"101": "", "102": "3", "103": ""}),
        ("by_hand", {"101": "4.5", "102": "3", "103": "5"}),
    ):
        canvas = {r["ID"]: r for r in stages[stage]["canvas-grades.csv"]}
        assert {i: canvas[i][f"{MINI}"] for i in expected} == expected, stage
        moodle = {r["ID number"]: r[MINI] for r in stages[stage]["moodle-grades.csv"]}
        assert moodle == {"ann": expected["101"], "bob": "3", "cal": expected["103"]}, stage
    assert stages["autograded"]["report"].held == [("ann", MINI), ("cal", MINI)]
    assert stages["by_hand"]["report"].held == []


@pytest.mark.slow
@pytest.mark.sandbox
def test_feedback_says_pending_then_shows_the_grade(stages):
    before, after = stages["autograded"]["feedback"], stages["by_hand"]["feedback"]
    assert "Score: pending / 2.0" in before["ann"] and "+ 2.0 pending" in before["ann"]
    assert ANN in before["ann"]
    assert "Score: pending" not in before["bob"] and "Score: 0.0 / 2.0" in before["bob"]
    assert "pending" not in after["ann"]
    assert "Score: 1.5 / 2.0" in after["ann"] and "(Score: 4.5 / 5.0)" in after["ann"]
    assert "Score: 2.0 / 2.0" in after["cal"]


@pytest.mark.slow
@pytest.mark.sandbox
def test_formgrader_lists_the_answers_to_grade_and_takes_a_grade(stages):
    assert stages["formgrader_list"] == {"ann": True, "bob": False, "cal": True}
    put = stages["formgrader_put"]
    assert (put["manual_score"], put["needs_manual_grade"]) == (1.5, False)


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_grade_by_hand_changes_the_total_and_ends_pending(stages):
    stage = stages["by_hand"]
    # cal's grade is a manual_score set in the gradebook alone: that is enough
    assert _written_points(stage) == {"ann": "1.5", "bob": "0", "cal": "2"}
    totals = _by(stage["totals.csv"], "student")
    assert [(totals[s,][MINI], totals[s,]["pending"]) for s in ("ann", "bob", "cal")] == [
        ("4.5", "0"),
        ("3", "0"),
        ("5", "0"),
    ]
    assert "pending" not in stage["table"]
    assert stage["report"].pending == set()


@pytest.mark.slow
@pytest.mark.sandbox
def test_autograde_force_keeps_the_grades_given_by_hand(stages):
    stage = stages["forced"]
    assert stage["rows"]["ann"] == (None, 1.5, False)  # stands, and is not flagged again
    assert stage["rows"]["cal"] == (None, 2, False)
    assert stage["rows"]["bob"] == (0, None, False)
    for student in ("ann", "bob", "cal"):
        outcome = stages["forced_outcomes"][student]
        assert (outcome.status, outcome.message) == ("graded", ""), outcome
    totals = _by(stage["totals.csv"], "student")
    assert [totals[s,][MINI] for s in ("ann", "bob", "cal")] == ["4.5", "3", "5"]
    assert stage["report"].pending == set()


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_new_answer_waits_for_a_new_grade(stages):
    outcome = stages["resubmitted_outcome"]
    assert outcome.status == "graded"
    assert re.search(
        r"changed since they were graded by hand.*why_square \(was 1\.5\)", outcome.message
    ), outcome.message
    stage = stages["resubmitted"]
    assert stage["rows"]["ann"] == (None, None, True)
    assert stage["rows"]["cal"] == (None, 2, False)  # nobody else's grade moved
    totals = _by(stage["totals.csv"], "student")
    assert (totals["ann",][MINI], totals["ann",]["pending"]) == ("3", "2")
    assert "Score: pending / 2.0" in stage["feedback"]["ann"]


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_submission_that_cannot_run_keeps_the_grade_given_by_hand(stages):
    outcome = stages["broken_outcome"]
    assert outcome.status == "invalid"
    assert "the grade(s) given by hand stay: why_square" in outcome.message, outcome.message
    assert stages["broken"] == {
        "test_square": (0, None, False),
        "test_cube": (0, None, False),
        "why_square": (0, 2, False),
    }
