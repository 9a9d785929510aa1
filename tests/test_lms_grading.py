"""LMS in, LMS out, with deadlines: the synthetic LMS class (grader.pipeline.synthetic.lms_class)
downloaded from Canvas and from Moodle, collected with the roster, autograded, reported,
and every score, late penalty and upload cell worked out by hand.

The tiny course: 3 points (square 2, cube 1). Due 2026-11-27 09:00 UTC; the policy takes a
tenth of the score per day started, and everything after 7 days.

    ada    right, a day early                   3
    blank  the release notebook                  0
    hal    blank, then right (resubmitted)       3
    dan    right, 26 h late: Moodle's date says 2 days started (-0.6), Canvas's LATE
           marker says late but not how late: 1 s, the first day (-0.3)
    eve    right, 8 days late: over the cut-off on Moodle (0); Canvas: the first day (-0.3)
    Sam Stranger, on no roster: listed, never graded
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import shutil

import pytest
from conftest import MINI, build_class_course
from nbgrader.api import Gradebook

from grader.cli import main
from grader.config import GradingFolder, load_config
from grader.execution.sandbox import missing_pieces
from grader.lms.roster import load_roster
from grader.pipeline import synthetic
from grader.pipeline.report import write_report
from grader.workdir import folder, gradebook

pytestmark = pytest.mark.slow

DUE = "2026-11-27 09:00:00 UTC"
CANVAS_ID = 4242
DEADLINES = f"""
DUEDATES = {{"{MINI}": "{DUE}"}}
CANVAS_ASSIGNMENT_IDS = {{"{MINI}": {CANVAS_ID}}}
c.AssignLatePenalties.plugin_class = "grader.workdir.late.LatePolicy"
c.LatePolicy.penalty_per_day = 0.1
c.LatePolicy.cutoff_days = 7
"""
# student -> (raw, penalty, final, days started); only how late is late depends on the LMS
ON_TIME = {"ada": (3, 0, 3, 0), "blank": (0, 0, 0, 0), "hal": (3, 0, 3, 0)}
EXPECTED = {
    "canvas": {**ON_TIME, "dan": (3, 0.3, 2.7, 1), "eve": (3, 0.3, 2.7, 1)},
    "moodle": {**ON_TIME, "dan": (3, 0.6, 2.4, 2), "eve": (3, 3, 0, 8)},
}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("lms")
    build_class_course(root / "course")
    config = root / "course" / "nbgrader_config.py"
    config.write_text(config.read_text() + DEADLINES)
    return load_config(root / "course")


@pytest.fixture(scope="module", params=["canvas", "moodle"])
def graded(request, course):
    """(lms, grading course, collect's output, nbgrader's penalties right after autograde)."""
    lms = request.param
    root = course.root.parent
    work = root / f"grading-{lms}"
    archive = synthetic.make_lms_class(course, [MINI], root / f"{lms}.zip", lms)
    roster = synthetic.write_roster(root / "roster.csv")
    common = ["--root", str(course.root), "--workdir", str(work)]
    unsafe = ["--unsafe"] if missing_pieces() else []  # the synthetic class is our own code
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*common, "collect", str(archive), "--roster", str(roster)]) == 0
    collected = out.getvalue()
    # One grading worker: what is asserted is what the LMS gave in and gets out, and a
    # second worker would cost a start-up of its own for five short notebooks.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main([*common, "autograde", "--jobs", "1", "--timeout", "10", *unsafe]) == 0
    grading = folder.open_workdir(course, work)
    with Gradebook(gradebook.db_url(grading), grading.course_id) as gb:
        after_autograde = {
            s.student.id: s.late_submission_penalty for s in gb.find_assignment(MINI).submissions
        }
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*common, "report"]) == 0  # the roster kept by collect: LMS uploads too
    return lms, grading, collected, after_autograde


def rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def dict_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_raw_score_penalty_and_final_score_as_the_policy_says(graded):
    lms, grading, _, _ = graded
    reports = grading.root / "reports"
    submissions = {r["student"]: r for r in dict_rows(reports / "submissions.csv")}
    assert sorted(submissions) == sorted(EXPECTED[lms])
    for student, (raw, penalty, final, days) in EXPECTED[lms].items():
        row = submissions[student]
        got = (float(row["raw"]), float(row["penalty"]), float(row["final"]))
        assert got == pytest.approx((raw, penalty, final)), student
        assert row["status"] == "graded" and row["due"] == DUE, student
        if days:
            assert row["late"].endswith(f"({days} day{'s' if days > 1 else ''} started)"), student
        else:
            assert row["late"] == "", student
    totals = {r["student"]: r for r in dict_rows(reports / "totals.csv")}
    for student, (_, _, final, _) in EXPECTED[lms].items():
        assert float(totals[student][MINI]) == pytest.approx(final), student


def test_penalties_are_nbgraders_own_from_autograde_on(graded, course):
    """AssignLatePenalties with the configured plugin wrote them when autograde saved the
    grades; the due date is nbgrader's gradebook's."""
    lms, grading, _, after_autograde = graded
    expected = {s: pytest.approx(p) for s, (_, p, _, _) in EXPECTED[lms].items()}
    assert after_autograde == expected
    with Gradebook(gradebook.db_url(grading), grading.course_id) as gb:
        assignment = gb.find_assignment(MINI)
        assert assignment.duedate == dt.datetime(2026, 11, 27, 9)
        dan = gb.find_submission(MINI, "dan")
        late = {"canvas": 1, "moodle": 26 * 3600}[lms]
        assert dan.total_seconds_late == late
        assert gb.find_student("ada").email == "ada@example.edu"
        assert gb.find_student("ada").lms_user_id == "1001"


def test_canvas_upload_has_canvas_gradebook_columns(graded):
    """app/models/gradebook_importer.rb: Student, ID, SIS User ID, SIS Login ID, Section,
    then `title (assignment id)`; a row that starts with "Points Possible"; the student found
    by the ID column (Canvas user id)."""
    lms, grading, _, _ = graded
    table = rows(grading.root / "reports" / "canvas-grades.csv")
    assert table[0] == [
        "Student",
        "ID",
        "SIS User ID",
        "SIS Login ID",
        "Section",
        f"{MINI} ({CANVAS_ID})",
    ]
    assert table[1] == ["Points Possible", "", "", "", "", "3"]
    body = {row[1]: row for row in table[2:]}
    assert len(table) == 2 + len(synthetic.ROSTER)
    for student, name, _, user in synthetic.ROSTER:
        final = EXPECTED[lms][student][2]
        row = body[user]
        assert row[:5] == [name, user, "", "", ""], student
        assert float(row[5]) == pytest.approx(final), student
    assert synthetic.STRANGER[1] not in body
    assert (grading.root / "reports" / "canvas-grades.csv").read_bytes().count(b"\r\n") == len(
        table
    )


def test_moodle_upload_has_an_identifier_column_then_grades(graded):
    """grade/import/csv: map "Email address" (or "ID number") to the user, each grade column
    to its grade item."""
    lms, grading, _, _ = graded
    table = rows(grading.root / "reports" / "moodle-grades.csv")
    assert table[0] == ["Email address", "ID number", MINI]
    assert len(table) == 1 + len(synthetic.ROSTER)
    for (student, _, email, _), row in zip(synthetic.ROSTER, table[1:], strict=True):
        assert row[:2] == [email, student]
        assert float(row[2]) == pytest.approx(EXPECTED[lms][student][2]), student
    assert all(len(row) == 3 for row in table)


def test_the_stranger_is_listed_and_graded_under_no_id(graded):
    lms, grading, collected, _ = graded
    who = {
        "canvas": "Canvas user 1099 (strangersam)",
        "moodle": "Moodle participant 601099 (Sam Stranger)",
    }[lms]
    assert f"not on the roster: {who}" in collected
    listed = dict_rows(grading.root / "reports" / "unknown-identities.csv")
    assert [row["identity"] for row in listed] == [who]
    with Gradebook(gradebook.db_url(grading), grading.course_id) as gb:
        assert sorted(s.id for s in gb.students) == sorted(EXPECTED[lms])
    assert sorted(p.name for p in (grading.root / "submitted").iterdir()) == sorted(EXPECTED[lms])
    if lms == "canvas":
        assert "2 Canvas file(s) marked LATE" in collected


def test_a_changed_due_date_or_policy_needs_no_regrading(graded, course, tmp_path):
    """report applies the configuration as it is now, through AssignLatePenalties."""
    lms, grading, _, _ = graded
    shutil.copytree(grading.root, tmp_path / "copy")
    changed = GradingFolder.at(course, tmp_path / "copy")
    changed.duedates = {MINI: "2026-11-28 09:00:00 UTC"}  # a day later for everyone
    changed.config.LatePolicy.penalty_per_day = 0.2
    report, _ = write_report(
        changed, tmp_path / "out", roster=load_roster(tmp_path / "copy" / "roster.csv")
    )
    dan = {"canvas": 0.0, "moodle": 3 * 0.2}[lms]  # Canvas: counted 1 s late of the old date
    assert report.penalty("dan", MINI) == pytest.approx(dan)
    assert report.final("ada", MINI) == 3
    eve = {"canvas": 0.0, "moodle": 3.0}[lms]  # 7 days x 0.2: more than the score
    assert report.penalty("eve", MINI) == pytest.approx(eve)
