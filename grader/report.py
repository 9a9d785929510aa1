"""`python -m grader report`: grades as CSV files, a terminal table and a picture.

    totals.csv       one row per student: a column per assignment, total, maximum
    questions.csv    one row per student, assignment and grade id: points, max points
    submissions.csv  one row per student and assignment: status and message
    scores.png       mean score fraction of every exercise, and the distribution of totals
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook

from grader.autograde import read_status, submitted_timestamp
from grader.course_config import CourseConfig
from grader.gradebook import db_url, grades, max_points


@dataclass
class Report:
    assignments: list[str]
    students: list[str]
    points: dict  # (student, assignment, grade id) -> points
    maximum: dict  # (assignment, grade id) -> max points
    statuses: dict  # (student, assignment) -> (status, message)
    unsafe: set = field(default_factory=set)  # (student, assignment) graded without sandbox

    def total(self, student: str, assignment: str | None = None) -> float:
        return sum(
            p for (s, a, _), p in self.points.items()
            if s == student and (assignment is None or a == assignment)
        )

    def max_total(self, assignment: str | None = None) -> float:
        return sum(m for (a, _), m in self.maximum.items() if assignment in (None, a))


def gather(course: CourseConfig) -> Report:
    """Read the gradebook and the status of every submission."""
    maximum = max_points(course)
    assignments = [a for a in course.assignments if any(k[0] == a for k in maximum)]
    with Gradebook(db_url(course), course.course_id) as gb:
        students = sorted(s.id for s in gb.students)
    points = {}
    for (assignment, grade_id) in maximum:
        for student in students:
            points[student, assignment, grade_id] = 0.0  # missing work scores 0
    for grade in grades(course):
        points[grade.student, grade.assignment, grade.grade_id] = grade.points
    statuses, unsafe = {}, set()
    for student in students:
        for assignment in assignments:
            outcome = read_status(course, student, assignment)
            submitted = (course.root / "submitted" / student / assignment).is_dir()
            if outcome is not None and submitted:
                if outcome.timestamp != submitted_timestamp(course, student, assignment):
                    statuses[student, assignment] = (
                        "missing", "a newer submission is collected but not graded yet"
                    )
                else:
                    statuses[student, assignment] = (outcome.status, outcome.message)
                    if not outcome.sandboxed:
                        unsafe.add((student, assignment))
            elif submitted:
                statuses[student, assignment] = ("missing", "collected but not autograded yet")
            else:
                statuses[student, assignment] = ("missing", "nothing submitted")
    return Report(assignments, students, points, maximum, statuses, unsafe)


def write_report(course: CourseConfig, out: Path | None = None) -> tuple[Report, Path]:
    out = Path(out) if out else course.root / "reports"
    out.mkdir(parents=True, exist_ok=True)
    report = gather(course)
    with open(out / "totals.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *report.assignments, "total", "max"])
        for student in report.students:
            writer.writerow([
                student,
                *(_num(report.total(student, a)) for a in report.assignments),
                _num(report.total(student)),
                _num(report.max_total()),
            ])
    with open(out / "questions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "assignment", "grade_id", "points", "max_points"])
        for (student, assignment, grade_id), points in sorted(report.points.items()):
            writer.writerow([
                student, assignment, grade_id, _num(points),
                _num(report.maximum[assignment, grade_id]),
            ])
    with open(out / "submissions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "assignment", "status", "message", "sandboxed"])
        for (student, assignment), (status, message) in sorted(report.statuses.items()):
            ran = status != "missing" and (student, assignment) not in report.unsafe
            sandboxed = "no (--unsafe)" if (student, assignment) in report.unsafe else (
                "yes" if ran else "")
            writer.writerow([student, assignment, status, message, sandboxed])
    plot_scores(report, out / "scores.png")
    return report, out


def _num(x: float) -> str:
    return f"{x:g}"


def table(report: Report) -> str:
    """Points per student and assignment, the total, and any submission that did not grade."""
    header = ["student", *report.assignments, "total"]
    rows = []
    for student in report.students:
        cells = [student]
        for assignment in report.assignments:
            status, _ = report.statuses[student, assignment]
            mark = "" if status == "graded" else f" ({status})"
            if (student, assignment) in report.unsafe:
                mark += " (unsafe)"
            cells.append(
                f"{_num(report.total(student, assignment))}/"
                f"{_num(report.max_total(assignment))}{mark}"
            )
        cells.append(f"{_num(report.total(student))}/{_num(report.max_total())}")
        rows.append(cells)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*cells) for cells in rows]
    return "\n".join(lines)


def plot_scores(report: Report, path: Path) -> None:
    """Which exercises were hardest (mean score fraction), and how totals spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fractions = defaultdict(list)
    for (_, assignment, grade_id), points in report.points.items():
        fractions[f"{assignment}: {grade_id}"].append(
            points / report.maximum[assignment, grade_id]
        )
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
    right.hist(totals, bins=min(20, max(5, len(totals))), range=(0, report.max_total() or 1),
               color="tab:orange", edgecolor="white")
    right.set_xlabel(f"total points (of {_num(report.max_total())})")
    right.set_ylabel("students")
    right.set_title("Distribution of totals")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
