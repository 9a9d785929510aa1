"""The late policy as nbgrader's plugin, the due dates of nbgrader_config.py, and the LMS
grade files cell by cell. Fast: nothing is graded."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from conftest import MINI
from nbgrader.api import Gradebook
from nbgrader.preprocessors import AssignLatePenalties
from traitlets.config import Config

from grader.errors import GraderError
from grader.lms import formats as lms
from grader.lms.roster import parse_roster
from grader.pipeline.collect import scan
from grader.workdir import gradebook
from grader.workdir.late import DAY, LatePolicy, apply_penalties, duedates, penalty

HOUR = 3600


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, 0.0),  # on time
        (-5 * HOUR, 0.0),
        (1, 1.0),  # 1 s late: the first day started
        (DAY, 1.0),
        (DAY + 1, 2.0),  # the second day started
        (26 * HOUR, 2.0),
        (7 * DAY, 7.0),  # at the cut-off: still 7 days
        (7 * DAY + 1, 10.0),  # past it: the whole score
        (30 * DAY, 10.0),
    ],
)
def test_penalty_per_day_started_and_the_cut_off(seconds, expected):
    assert penalty(10.0, seconds, per_day=0.1, cutoff_days=7) == pytest.approx(expected)


def test_penalty_never_exceeds_the_score_and_none_without_points():
    assert penalty(4.0, 20 * DAY, per_day=0.1, cutoff_days=None) == 4.0
    assert penalty(0.0, 3 * DAY, per_day=0.1, cutoff_days=7) == 0.0


def test_nbgrader_finds_the_plugin_by_its_configured_name():
    config = Config()
    config.AssignLatePenalties.plugin_class = "grader.workdir.late.LatePolicy"
    config.LatePolicy.penalty_per_day = 0.25
    config.LatePolicy.cutoff_days = 2.0
    preprocessor = AssignLatePenalties(config=config)
    preprocessor.init_plugin()
    plugin = preprocessor.plugin_inst
    assert isinstance(plugin, LatePolicy)
    assert plugin.late_submission_penalty("ada", 8.0, 30 * HOUR) == 4.0
    assert plugin.late_submission_penalty("ada", 8.0, 2 * DAY + 1) == 8.0


def test_the_course_configures_the_policy(repo_course):
    assert repo_course.config.AssignLatePenalties.plugin_class == "grader.workdir.late.LatePolicy"
    assert isinstance(repo_course.duedates, dict)
    duedates(repo_course)  # the course's due dates read


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        (
            {"99_other": "2026-11-27 09:00:00"},
            "names '99_other', which is not one of the ASSIGNMENTS",
        ),
        ({MINI: "the day after tomorrow"}, "is not a date: 'the day after tomorrow'"),
    ],
)
def test_bad_due_dates_stop_collect_before_it_writes(prepared_grading, tmp_path, dates, message):
    repo, _ = prepared_grading
    repo.duedates = dates
    try:
        with pytest.raises(GraderError, match=message) as error:
            scan(repo, tmp_path)
    finally:
        repo.duedates = {}
    assert "\n" not in str(error.value)


def test_due_dates_with_a_zone_are_stored_in_utc(prepared_grading):
    repo, _ = prepared_grading
    repo.duedates = {MINI: "2026-11-27 09:00:00 Europe/Berlin"}
    try:
        assert duedates(repo) == {MINI: dt.datetime(2026, 11, 27, 8, 0)}
    finally:
        repo.duedates = {}


def test_penalties_follow_the_due_date_in_the_gradebook(copied_grading):
    """report's apply_penalties: a submission late in nbgrader's terms gets the plugin's
    penalty; moved on time again, it loses it."""
    course = copied_grading
    url = gradebook.db_url(course)
    with Gradebook(url, course.course_id) as gb:
        gb.update_or_create_student("ada")
        gb.update_or_create_submission(MINI, "ada", timestamp="2026-11-29 10:00:00 UTC")
        notebook = gb.find_submission_notebook(MINI, MINI, "ada")
        for grade in notebook.grades:
            grade.auto_score = grade.max_score  # 3 points
        gb.db.commit()

    def stored():
        with Gradebook(url, course.course_id) as gb:
            submission = gb.find_submission(MINI, "ada")
            return submission.late_submission_penalty, gb.find_assignment(MINI).duedate

    course.duedates = {MINI: "2026-11-27 09:00:00 UTC"}  # 2 days 1 h late: 3 days started
    apply_penalties(course)
    assert stored() == (pytest.approx(0.9), dt.datetime(2026, 11, 27, 9))
    course.duedates = {MINI: "2026-11-30 09:00:00 UTC"}
    apply_penalties(course)
    assert stored() == (0, dt.datetime(2026, 11, 30, 9))


ROSTER = parse_roster(
    "student_id,name,email,lms_id,section\n"
    "ada,Ada Lovelace,ada@x.org,1001,Lab A\n"
    'bob,"Babbage, Charles",bob@x.org,1002,\n'
    "cid,Cid Moreau,cid@x.org,,\n"
)


def test_canvas_grade_file_cell_by_cell():
    finals = {
        ("ada", "01_perceptron"): 2.345,
        ("ada", "02_networks"): 10.0,
        ("bob", "01_perceptron"): None,
        ("bob", "02_networks"): 0.0,
        ("cid", "01_perceptron"): 1.0,
        ("cid", "02_networks"): 1.0,
    }
    text = lms.canvas_csv(
        ROSTER,
        ["01_perceptron", "02_networks"],
        {"01_perceptron": 7.5, "02_networks": 12},
        finals,
        {"01_perceptron": 4242},
    )
    table = list(csv.reader(io.StringIO(text)))
    assert table == [
        [
            "Student",
            "ID",
            "SIS User ID",
            "SIS Login ID",
            "Section",
            "01_perceptron (4242)",
            "02_networks",
        ],
        ["Points Possible", "", "", "", "", "7.5", "12"],
        ["Ada Lovelace", "1001", "", "", "Lab A", "2.35", "10"],  # two decimals, as Canvas
        ["Babbage, Charles", "1002", "", "", "", "", "0"],  # blank: not graded yet
    ]  # cid has no Canvas user id: left out, never matched by name


def test_moodle_grade_file_cell_by_cell():
    finals = {("ada", MINI): 2.4, ("bob", MINI): None, ("cid", MINI): 0.0}
    table = list(csv.reader(io.StringIO(lms.moodle_csv(ROSTER, [MINI], finals))))
    assert table == [
        ["Email address", "ID number", MINI],
        ["ada@x.org", "ada", "2.4"],
        ["bob@x.org", "bob", ""],
        ["cid@x.org", "cid", "0"],
    ]
