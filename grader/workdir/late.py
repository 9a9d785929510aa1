"""Due dates and the late policy, through nbgrader's own machinery.

nbgrader 0.9 keeps an assignment's due date in its gradebook (`Assignment.duedate`, naive
UTC), which `nbgrader db assignment add NAME --duedate="2026-11-27 09:00:00 Europe/Berlin"`
and formgrader set (`c.CourseDirectory.db_assignments`, which once did it from the config,
is gone since nbgrader 0.6). A submission is late by its timestamp minus that due date plus
the student's extension (`SubmittedAssignment.total_seconds_late`), and nbgrader's
`AssignLatePenalties` preprocessor, run by autograde, asks the plugin named in
`c.AssignLatePenalties.plugin_class` for the penalty of each late notebook and stores it in
the gradebook (`SubmittedNotebook.late_submission_penalty`).

The course writes its due dates once, in nbgrader_config.py:

    DUEDATES = {"01_perceptron": "2026-11-27 09:00:00 Europe/Berlin", ...}
    c.AssignLatePenalties.plugin_class = "grader.workdir.late.LatePolicy"
    c.LatePolicy.penalty_per_day = 0.1  # a tenth of the score for each day started
    c.LatePolicy.cutoff_days = 7        # more than 7 days late: the score is 0

`sync_duedates` writes DUEDATES into the gradebook as `nbgrader db assignment add` would
(collect and report call it), so nbgrader's own tools (formgrader, `nbgrader export`) show
the same due dates; an assignment missing from DUEDATES keeps the gradebook's.
`apply_penalties` runs AssignLatePenalties again for every late submission, and for every
one that has a penalty (report calls it), so that a changed due date or policy needs no
regrading.
"""

from __future__ import annotations

import datetime as dt
import logging
import math

import nbformat
from nbgrader.api import Gradebook
from nbgrader.plugins import BasePlugin
from nbgrader.preprocessors import AssignLatePenalties
from nbgrader.utils import parse_utc
from traitlets import Float

from grader.config import CourseConfig, GradingFolder
from grader.errors import GraderError
from grader.workdir.gradebook import coursedir_config, db_url

DAY = 24 * 3600
LOG = logging.getLogger("grader.workdir.late")
LOG.setLevel(logging.ERROR)  # nbgrader warns about every late submission; the report says it


class LatePolicy(BasePlugin):
    """A penalty for each day started after the due date, and a cut-off after which the
    score is 0. nbgrader gives a plugin the notebook's score, not its maximum, so the
    penalty is a fraction of the score earned."""

    penalty_per_day = Float(
        0.0,
        min=0.0,
        max=1.0,
        help="Fraction of the notebook's score taken off for each day (24 h) started after "
        "the due date: 0.1 takes 10 % for 1 s to 24 h late, 20 % for 24 h to 48 h.",
    ).tag(config=True)
    cutoff_days = Float(
        None,
        allow_none=True,
        min=0.0,
        help="Work more than this many days late scores 0 (None: no cut-off).",
    ).tag(config=True)

    def late_submission_penalty(
        self, student_id: str, score: float, total_seconds_late: float
    ) -> float:
        return penalty(score, total_seconds_late, self.penalty_per_day, self.cutoff_days)


def penalty(score: float, seconds_late: float, per_day: float, cutoff_days: float | None) -> float:
    """The points `LatePolicy` takes off `score` for work `seconds_late` late."""
    if seconds_late <= 0 or score <= 0:
        return 0.0
    if cutoff_days is not None and seconds_late > cutoff_days * DAY:
        return float(score)
    return min(float(score), score * per_day * days_started(seconds_late))


def days_started(seconds_late: float) -> int:
    return math.ceil(seconds_late / DAY) if seconds_late > 0 else 0


def duedates(course: CourseConfig) -> dict[str, dt.datetime]:
    """DUEDATES of nbgrader_config.py as naive UTC datetimes, as nbgrader stores them."""
    parsed = {}
    for assignment, text in course.duedates.items():
        if assignment not in course.assignments:
            raise GraderError(
                f"DUEDATES in {course.config_file.name} names {assignment!r}, which is not "
                f"one of the ASSIGNMENTS {course.assignments}"
            )
        try:
            parsed[assignment] = (
                parse_utc(text) if isinstance(text, str) else parse_utc(_aware(text))
            )
        except (ValueError, OverflowError, TypeError):
            raise GraderError(
                f"DUEDATES[{assignment!r}] in {course.config_file.name} is not a date: {text!r};"
                " write it as '2026-11-27 09:00:00 Europe/Berlin' (no zone: UTC)"
            ) from None
    return parsed


def _aware(value) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise TypeError(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def sync_duedates(course: CourseConfig, gb: Gradebook) -> dict[str, dt.datetime | None]:
    """Write DUEDATES into the gradebook for the assignments it knows, as
    `nbgrader db assignment add NAME --duedate=...` does; every known assignment's due date
    after that (naive UTC, None for none)."""
    wanted = duedates(course)
    effective = {}
    for assignment in gb.assignments:
        if assignment.name in wanted and assignment.duedate != wanted[assignment.name]:
            gb.update_or_create_assignment(assignment.name, duedate=wanted[assignment.name])
        effective[assignment.name] = wanted.get(assignment.name, assignment.duedate)
    return effective


def apply_penalties(course: GradingFolder) -> None:
    """Due dates into the gradebook, then nbgrader's AssignLatePenalties (with the plugin
    of the configuration) for every submission in it."""
    with Gradebook(db_url(course), course.course_id) as gb:
        sync_duedates(course, gb)
        # Only late work gets a penalty; one stored earlier is reset if no longer late.
        todo = [
            (s.assignment.name, s.student.id, [n.name for n in s.notebooks])
            for a in gb.assignments
            for s in a.submissions
            if s.total_seconds_late > 0 or any(n.late_submission_penalty for n in s.notebooks)
        ]
    if not todo:
        return
    config = coursedir_config(course)
    blank = nbformat.v4.new_notebook()
    for assignment, student, notebooks in todo:
        for notebook in notebooks:
            resources = {
                "nbgrader": {
                    "student": student,
                    "assignment": assignment,
                    "notebook": notebook,
                    "db_url": db_url(course),
                }
            }
            AssignLatePenalties(config=config, log=LOG).preprocess(blank, resources)
