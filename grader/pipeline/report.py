"""`python -m grader report`: grades as CSV files, a terminal table and a picture.

    totals.csv         one row per student: a column per assignment (final score: points
                       less the late penalty), total, maximum, and the points pending (of
                       written answers not graded by hand yet, in none of the scores)
    questions.csv      one row per student, assignment and grade id: points ("pending" for
                       a written answer not graded by hand yet), max points
    submissions.csv    one row per student and assignment: status and message, then when it
                       was handed in, its due date, how late, and raw score, late penalty,
                       final score and points pending
    scores.png         mean score fraction of every exercise, and the distribution of totals
    class-report.html  what the class got wrong: per exercise the shares of full, partial and
                       no marks and the failure messages met most often
                       (grader.pipeline.class_report)
    canvas-grades.csv  with a roster: the final scores as Canvas's gradebook imports them
    moodle-grades.csv  with a roster: the final scores as Moodle's CSV grade import takes them

A written answer is graded by hand (formgrader). Until it is, it is pending: it counts in no
score, every report says so ("3/5 + 2 pending"), and the LMS uploads leave that assignment's
cell blank for the student (a blank changes nothing in the LMS), so that no score goes out
as final while part of it is still to be graded.

Before it reads the gradebook, report applies the due dates and the late policy of
nbgrader_config.py to every late submission (grader.workdir.late), so its penalties are those of
the configuration as it is now.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from nbgrader.api import Gradebook

from grader.config import GradingFolder
from grader.lms import formats as lms
from grader.lms.roster import Roster
from grader.workdir.gradebook import db_url, grades, max_points
from grader.workdir.late import apply_penalties, days_started
from grader.workdir.status import is_current, read_status

NOTHING_SUBMITTED = "nothing submitted"
PENDING = "pending"  # a written answer's points until it is graded by hand
Sums = dict[tuple[str, str | None], float]  # (student, assignment or None for all) -> sum


@dataclass(frozen=True)
class Lateness:
    """A graded submission's time against its due date (the student's extension included),
    and the penalty nbgrader's AssignLatePenalties stored for it."""

    submitted: dt.datetime | None  # naive UTC, as nbgrader keeps it
    due: dt.datetime | None
    seconds_late: float = 0.0
    penalty: float = 0.0


@dataclass
class Report:
    """The class's grades as the report files show them. Made whole by `gather`, then read
    many times: the sums per student are indexed on first use, so `points`, `late` and
    `pending` stay as they were made."""

    assignments: list[str]
    students: list[str]
    points: dict  # (student, assignment, grade id) -> points
    maximum: dict  # (assignment, grade id) -> max points
    statuses: dict  # (student, assignment) -> (status, message)
    unsafe: set = field(default_factory=set)  # (student, assignment) graded without sandbox
    late: dict = field(default_factory=dict)  # (student, assignment) -> Lateness
    uploads: list = field(default_factory=list)  # the LMS files written
    not_on_roster: list = field(default_factory=list)  # graded students the roster lacks
    no_canvas_id: list = field(default_factory=list)  # roster students without an lms_id
    pending: set = field(default_factory=set)  # (student, assignment, grade id) to grade by hand
    held: list = field(default_factory=list)  # (student, assignment) left blank in the uploads

    def total(self, student: str, assignment: str | None = None) -> float:
        """The student's points, of one assignment or of all (pending answers count 0)."""
        return self._points_by.get((student, assignment), 0.0)

    def max_total(self, assignment: str | None = None) -> float:
        return sum(m for (a, _), m in self.maximum.items() if assignment in (None, a))

    def penalty(self, student: str, assignment: str | None = None) -> float:
        return self._penalty_by.get((student, assignment), 0.0)

    def final(self, student: str, assignment: str | None = None) -> float:
        """Points less the late penalty (pending answers count in neither)."""
        return self.total(student, assignment) - self.penalty(student, assignment)

    def pending_points(self, student: str, assignment: str | None = None) -> float:
        """The points of the student's written answers still to be graded by hand."""
        return self._pending_by.get((student, assignment), 0.0)

    def upload_score(self, student: str, assignment: str) -> float | None:
        """What the LMS gets: the final score; 0 for nothing submitted; None (a blank cell,
        which changes nothing) for work collected but not graded yet, and for work with a
        written answer still to be graded by hand (its score is not final)."""
        status, message = self.statuses.get((student, assignment), ("missing", NOTHING_SUBMITTED))
        if status == "missing":
            return 0.0 if message == NOTHING_SUBMITTED else None
        if self.pending_points(student, assignment):
            return None
        return self.final(student, assignment)

    @cached_property
    def _points_by(self) -> Sums:
        return _sums((s, a, p) for (s, a, _), p in self.points.items())

    @cached_property
    def _penalty_by(self) -> Sums:
        return _sums((s, a, late.penalty) for (s, a), late in self.late.items())

    @cached_property
    def _pending_by(self) -> Sums:
        return _sums((s, a, self.maximum[a, g]) for s, a, g in self.pending)


def _sums(values: Iterable[tuple[str, str, float]]) -> Sums:
    """(student, assignment, value)s summed per (student, assignment) and per (student, None)."""
    sums: Sums = defaultdict(float)
    for student, assignment, value in values:
        sums[student, assignment] += value
        sums[student, None] += value
    return sums


def gather(course: GradingFolder) -> Report:
    """Read the gradebook (once the configured due dates and late policy are applied to it)
    and the status of every submission."""
    apply_penalties(course)
    maximum = max_points(course)
    assignments = [a for a in course.assignments if any(k[0] == a for k in maximum)]
    late = {}
    with Gradebook(db_url(course), course.course_id) as gb:
        students = sorted(s.id for s in gb.students)
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                late[submission.student.id, assignment.name] = Lateness(
                    submission.timestamp,
                    submission.duedate,
                    float(submission.total_seconds_late),
                    float(submission.late_submission_penalty or 0.0),
                )
    points = {}
    for assignment, grade_id in maximum:
        for student in students:
            points[student, assignment, grade_id] = 0.0  # missing work scores 0
    pending = set()
    for grade in grades(course):
        points[grade.student, grade.assignment, grade.grade_id] = grade.points
        if grade.pending:
            pending.add((grade.student, grade.assignment, grade.grade_id))
    statuses, unsafe = {}, set()
    for student in students:
        for assignment in assignments:
            outcome = read_status(course, student, assignment)
            if not (course.root / "submitted" / student / assignment).is_dir():
                statuses[student, assignment] = ("missing", NOTHING_SUBMITTED)
            elif outcome is None:
                statuses[student, assignment] = ("missing", "collected but not autograded yet")
            elif not is_current(course, student, assignment):
                statuses[student, assignment] = (
                    "missing",
                    "a newer submission is collected but not graded yet",
                )
            else:
                statuses[student, assignment] = (outcome.status, outcome.message)
                if not outcome.sandboxed:
                    unsafe.add((student, assignment))
    late = {key: value for key, value in late.items() if key in statuses}
    # A submission not (yet) autograded has nothing pending: it is not graded at all.
    pending = {
        (s, a, g) for s, a, g in pending if statuses.get((s, a), ("missing",))[0] != "missing"
    }
    return Report(assignments, students, points, maximum, statuses, unsafe, late, pending=pending)


def write_report(
    course: GradingFolder, out: Path | None = None, roster: Roster | None = None
) -> tuple[Report, Path]:
    """The CSV files and the plot in `out` (default reports/ in the grading folder); with a
    `roster`, the LMS uploads too."""
    out = Path(out) if out else course.root / "reports"
    out.mkdir(parents=True, exist_ok=True)
    report = gather(course)
    with open(out / "totals.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *report.assignments, "total", "max", "pending"])
        for student in report.students:
            writer.writerow(
                [
                    student,
                    *(_num(report.final(student, a)) for a in report.assignments),
                    _num(report.final(student)),
                    _num(report.max_total()),
                    _num(report.pending_points(student)),
                ]
            )
    with open(out / "questions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "assignment", "grade_id", "points", "max_points"])
        for key, points in sorted(report.points.items()):
            student, assignment, grade_id = key
            writer.writerow(
                [
                    student,
                    assignment,
                    grade_id,
                    PENDING if key in report.pending else _num(points),
                    _num(report.maximum[assignment, grade_id]),
                ]
            )
    with open(out / "submissions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "student",
                "assignment",
                "status",
                "message",
                "sandboxed",
                "submitted",
                "due",
                "late",
                "raw",
                "penalty",
                "final",
                "pending",
            ]
        )
        for (student, assignment), (status, message) in sorted(report.statuses.items()):
            ran = status != "missing" and (student, assignment) not in report.unsafe
            sandboxed = (
                "no (--unsafe)"
                if (student, assignment) in report.unsafe
                else ("yes" if ran else "")
            )
            late = report.late.get((student, assignment), Lateness(None, None))
            graded = status != "missing" or (student, assignment) in report.late
            writer.writerow(
                [
                    student,
                    assignment,
                    status,
                    message,
                    sandboxed,
                    _time(late.submitted),
                    _time(late.due),
                    _late_by(late.seconds_late),
                    *(
                        (
                            _num(report.total(student, assignment)),
                            _num(late.penalty),
                            _num(report.final(student, assignment)),
                            _num(report.pending_points(student, assignment)),
                        )
                        if graded
                        else ("", "", "", "")
                    ),
                ]
            )
    if roster is not None:
        write_uploads(course, report, roster, out)
    plot_scores(report, out / "scores.png")
    from grader.pipeline.class_report import (
        write_class_report,  # what the class got wrong, one page
    )

    write_class_report(course, report, out / "class-report.html")
    return report, out


def write_uploads(course: GradingFolder, report: Report, roster: Roster, out: Path) -> None:
    """canvas-grades.csv and moodle-grades.csv: every roster student's final scores."""
    maximum = {a: report.max_total(a) for a in report.assignments}
    finals = {
        (s.student_id, a): report.upload_score(s.student_id, a)
        for s in roster.students
        for a in report.assignments
    }
    files = {
        "canvas-grades.csv": lms.canvas_csv(
            roster, report.assignments, maximum, finals, course.canvas_ids
        ),
        "moodle-grades.csv": lms.moodle_csv(roster, report.assignments, finals),
    }
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    report.uploads = list(files)
    report.held = sorted(
        (s.student_id, a)
        for s in roster.students
        for a in report.assignments
        if report.pending_points(s.student_id, a)
    )
    report.not_on_roster = [s for s in report.students if s not in roster]
    report.no_canvas_id = [s.student_id for s in roster.students if not s.lms_id]


def _num(x: float) -> str:
    return f"{round(x, 6):g}"


def _time(stamp: dt.datetime | None) -> str:
    return "" if stamp is None else f"{stamp:%Y-%m-%d %H:%M:%S} UTC"


def _late_by(seconds: float) -> str:
    """How late, and in how many days started (the late policy counts those)."""
    if seconds <= 0:
        return ""
    days = days_started(seconds)
    return f"{dt.timedelta(seconds=round(seconds))} ({days} day{'s' if days > 1 else ''} started)"


def table(report: Report) -> str:
    """Points per student and assignment, the total, and any submission that did not grade;
    "3/5 + 2 pending" where written answers worth 2 points wait to be graded by hand."""
    header = ["student", *report.assignments, "total"]
    rows = []
    for student in report.students:
        cells = [student]
        for assignment in report.assignments:
            status, _ = report.statuses[student, assignment]
            mark = "" if status == "graded" else f" ({status})"
            if (student, assignment) in report.unsafe:
                mark += " (unsafe)"
            if report.penalty(student, assignment):
                mark += f" (late: -{_num(report.penalty(student, assignment))})"
            cells.append(
                f"{_num(report.final(student, assignment))}/"
                f"{_num(report.max_total(assignment))}"
                f"{_pending(report.pending_points(student, assignment))}{mark}"
            )
        cells.append(
            f"{_num(report.final(student))}/{_num(report.max_total())}"
            f"{_pending(report.pending_points(student))}"
        )
        rows.append(cells)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*cells) for cells in rows]
    return "\n".join(lines)


def _pending(points: float) -> str:
    return f" + {_num(points)} {PENDING}" if points else ""


def plot_scores(report: Report, path: Path) -> None:
    """Which exercises were hardest (mean score fraction), and how totals spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fractions = defaultdict(list)
    for key, points in report.points.items():
        _, assignment, grade_id = key
        if key in report.pending:
            continue  # not graded yet: no fraction
        fractions[f"{assignment}: {grade_id}"].append(points / report.maximum[assignment, grade_id])
    labels = sorted(fractions)
    means = [sum(fractions[k]) / len(fractions[k]) for k in labels]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(13, max(4, 0.28 * len(labels) + 1.5)), width_ratios=[3, 2]
    )
    left.barh(labels, means, color="tab:blue")
    left.invert_yaxis()
    left.set_xlim(0, 1)
    left.set_xlabel("mean score fraction")
    left.set_title("Exercises, hardest have the shortest bars")
    left.tick_params(axis="y", labelsize=8)
    totals = [report.total(s) for s in report.students]
    right.hist(
        totals,
        bins=min(20, max(5, len(totals))),
        range=(0, report.max_total() or 1),
        color="tab:orange",
        edgecolor="white",
    )
    right.set_xlabel(f"total points (of {_num(report.max_total())})")
    right.set_ylabel("students")
    right.set_title("Distribution of totals")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
