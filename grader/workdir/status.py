"""The grading folder's status store: one JSON file per submission, status/STUDENT/ASSIGNMENT.json.

It says how the last autograde of a submission ended (`Status`), with a message, the
submission's timestamp when it was graded, and whether a sandbox ran it. `autograde`
writes it; `report`, `feedback` and the class report read it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, get_args

from grader.config import GradingFolder

Status = Literal["graded", "timeout", "crashed", "invalid", "missing"]
STATUSES: tuple[Status, ...] = get_args(Status)


@dataclass
class Outcome:
    student: str
    assignment: str
    status: Status
    message: str = ""
    timestamp: str | None = None
    sandboxed: bool = True  # False: graded with --unsafe, the kernel had the grader's rights


def status_path(course: GradingFolder, student: str, assignment: str) -> Path:
    return course.root / "status" / student / f"{assignment}.json"


def read_status(course: GradingFolder, student: str, assignment: str) -> Outcome | None:
    path = status_path(course, student, assignment)
    if not path.exists():
        return None
    return Outcome(**json.loads(path.read_text()))


def write_status(course: GradingFolder, outcome: Outcome) -> None:
    path = status_path(course, outcome.student, outcome.assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(outcome)))
    tmp.replace(path)  # atomic: a killed run leaves the old status or the new one


def submissions(course: GradingFolder, assignments: list[str]) -> list[tuple[str, str]]:
    """(student, assignment) of every submission folder of the named assignments."""
    root = course.root / "submitted"
    found = []
    for student_dir in sorted(p for p in root.glob("*") if p.is_dir()):
        for assignment in assignments:
            if (student_dir / assignment).is_dir():
                found.append((student_dir.name, assignment))
    return found


def submitted_timestamp(course: GradingFolder, student: str, assignment: str) -> str | None:
    stamp = course.root / "submitted" / student / assignment / "timestamp.txt"
    return stamp.read_text().strip() if stamp.exists() else None


def is_current(course: GradingFolder, student: str, assignment: str) -> bool:
    """Whether the submission was graded at its current timestamp (a resubmission, or one
    never graded, is not): autograde skips those unless forced; reports flag the others."""
    outcome = read_status(course, student, assignment)
    return outcome is not None and outcome.timestamp == submitted_timestamp(
        course, student, assignment
    )
