"""The grading work folder: an nbgrader course root of its own.

    grading/                  (--workdir, GRADER_WORKDIR)
      source/<assignment>/    a copy of the course's source (autograde copies files from it)
      release/<assignment>/   generated with the gradebook, which records every graded cell
      submitted/<student>/<assignment>/<assignment>.ipynb, timestamp.txt
      autograded/ feedback/   nbgrader's folders
      status/<student>/<assignment>.json   how the grader's run of each submission ended
      reports/                CSV files and plots
      gradebook.db            nbgrader's SQLite gradebook
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import Course, Gradebook
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory

from grader.build import generate_release
from grader.course_config import CourseConfig, with_root
from grader.errors import GraderError
from grader.execute import quiet_environment
from grader.validate import source_assignments

DB_NAME = "gradebook.db"


@dataclass(frozen=True, order=True)
class Grade:
    """One graded cell of one student's submission."""

    student: str
    assignment: str
    grade_id: str
    points: float
    max_points: float


def default_workdir(course: CourseConfig) -> Path:
    return Path(os.environ.get("GRADER_WORKDIR") or course.root / "grading")


def db_url(course: CourseConfig) -> str:
    return f"sqlite:///{course.root / DB_NAME}"


def coursedir_config(course: CourseConfig):
    """nbgrader's configuration for a grading course: its root and its gradebook."""
    config = copy.deepcopy(course.config)
    config.CourseDirectory.db_url = db_url(course)
    return config


def prepare(repo: CourseConfig, workdir: Path, assignments: list[str] | None = None):
    """Create (or extend) a grading folder with the assignments registered in its gradebook.

    An assignment already in the gradebook is left alone: regenerating it would be refused
    by nbgrader once submissions exist, and grading must use the notebooks students got.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    course = with_root(repo, workdir)
    course.config.CourseDirectory.db_url = db_url(course)
    check_course_id(course)
    known = registered_assignments(course) if (workdir / DB_NAME).exists() else set()
    for assignment in assignments or source_assignments(repo):
        if assignment in known:
            continue
        target = workdir / "source" / assignment
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(
            repo.root / "source" / assignment,
            target,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints"),
        )
        generate_release(course, assignment, db_url=db_url(course))
    return course


def open_workdir(repo: CourseConfig, workdir: Path | str | None) -> CourseConfig:
    """An existing grading folder, checked to belong to this course."""
    workdir = Path(workdir or default_workdir(repo)).resolve()
    if not (workdir / DB_NAME).exists():
        raise GraderError(
            f"no grading folder at {workdir} (no {DB_NAME}); run `python -m grader collect PATH` "
            "first, or point --workdir / GRADER_WORKDIR at your grading folder"
        )
    course = with_root(repo, workdir)
    course.config.CourseDirectory.db_url = db_url(course)
    check_course_id(course)
    return course


def check_course_id(course: CourseConfig) -> None:
    """Refuse a gradebook written for another course (nbgrader would mix the two)."""
    path = course.root / DB_NAME
    if not path.exists():
        return
    try:
        # rw, not ro: a run killed mid-write leaves a journal that only a writable
        # connection rolls back (read only, SQLite refuses the file); rw creates nothing.
        with sqlite3.connect(f"file:{path}?mode=rw", uri=True) as db:
            ids = [row[0] for row in db.execute(f"SELECT id FROM {Course.__tablename__}")]
    except sqlite3.DatabaseError as error:
        raise GraderError(
            f"{path} is not an nbgrader gradebook ({error}); move it away or choose another "
            "--workdir"
        ) from None
    # nbgrader's preprocessors open the gradebook without a course id, which adds
    # 'default_course'; any other id is a different course.
    others = [i for i in ids if i not in (course.course_id, "default_course")]
    if others:
        raise GraderError(
            f"{path} belongs to course {others[0]!r}, not {course.course_id!r}; "
            "choose another --workdir for this course"
        )


def registered_assignments(course: CourseConfig) -> set[str]:
    with Gradebook(db_url(course), course.course_id) as gb:
        return {a.name for a in gb.assignments}


def check_assignments(course: CourseConfig, assignments: list[str]) -> list[str]:
    """The named assignments (all registered ones by default), each known to the gradebook."""
    known = registered_assignments(course)
    unknown = [a for a in assignments if a not in known]
    if unknown:
        raise GraderError(
            f"unknown assignment {unknown[0]!r}; this gradebook has {sorted(known)}"
        )
    return assignments or [a for a in course.assignments if a in known]


def submit(course: CourseConfig, student: str, assignment: str, notebook: Path) -> Path:
    """Place a student's notebook where nbgrader looks for it."""
    target = course.root / "submitted" / student / assignment / f"{assignment}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(notebook, target)
    return target


def autograde(
    course: CourseConfig, assignment: str, student: str, cell_timeout: int | None = None
) -> None:
    """Plain sequential `nbgrader autograde` of one submission (the reference behaviour)."""
    config = coursedir_config(course)
    if cell_timeout is not None:
        config.Execute.timeout = cell_timeout
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    coursedir.student_id = student
    app = Autograde(coursedir=coursedir, config=config)
    app.force = True
    app.create_student = True
    app.log.setLevel(logging.CRITICAL)
    with quiet_environment():
        app.start()


def grades(course: CourseConfig) -> list[Grade]:
    """Every graded cell of every submission in the gradebook."""
    rows = []
    with Gradebook(db_url(course), course.course_id) as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        rows.append(
                            Grade(
                                student=submission.student.id,
                                assignment=assignment.name,
                                grade_id=grade.name,
                                points=float(grade.score),
                                max_points=float(grade.max_score),
                            )
                        )
    return rows


def max_points(course: CourseConfig) -> dict[tuple[str, str], float]:
    """(assignment, grade id) -> points, for every graded cell of every assignment."""
    out = {}
    with Gradebook(db_url(course), course.course_id) as gb:
        for assignment in gb.assignments:
            for notebook in assignment.notebooks:
                for cell in notebook.grade_cells:
                    out[assignment.name, cell.name] = float(cell.max_score)
    return out


