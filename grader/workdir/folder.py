"""The grading folder: an nbgrader course root of its own, made and opened here.

    grading/                  (--workdir, GRADER_WORKDIR; grader.config.default_workdir)
      source/<assignment>/    a copy of the course's source (autograde copies files from it)
      release/<assignment>/   generated with the gradebook, which records every graded cell
      submitted/<student>/<assignment>/<assignment>.ipynb, timestamp.txt
      autograded/ feedback/   nbgrader's folders
      status/<student>/<assignment>.json   how the grader's run of each submission ended
      reports/                CSV files and plots
      gradebook.db            nbgrader's SQLite gradebook, unless one is chosen by URL

The gradebook itself (where it is, whether it is this course's, what it holds) is
grader.workdir.gradebook.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from grader.config import DB_NAME, WORKDIR_ENV, CourseConfig, GradingFolder, default_workdir
from grader.errors import GraderError
from grader.notebooks.validate import source_assignments
from grader.pipeline.build import generate_release
from grader.workdir.gradebook import (
    check_can_create,
    check_course_id,
    db_url,
    describe,
    exists,
    registered_assignments,
)


def _folder(repo: CourseConfig, workdir: Path) -> GradingFolder:
    course = GradingFolder.at(repo, workdir)
    # nbgrader's apps, given this configuration, open the grader's gradebook.
    course.config.CourseDirectory.db_url = db_url(course)
    return course


def prepare(
    repo: CourseConfig, workdir: Path, assignments: list[str] | None = None
) -> GradingFolder:
    """Create (or extend) a grading folder with the assignments registered in its gradebook.

    An assignment already in the gradebook is left alone: regenerating it would be refused
    by nbgrader once submissions exist, and grading must use the notebooks students got.
    A shared gradebook may know an assignment that this machine's grading folder lacks:
    its source/ and release/ are made here without touching the gradebook.
    """
    workdir = Path(workdir).resolve()
    course = _folder(repo, workdir)
    check_course_id(course)
    check_can_create(course)
    known = registered_assignments(course) if exists(course) else set()
    workdir.mkdir(parents=True, exist_ok=True)
    for assignment in assignments or source_assignments(repo):
        target = workdir / "source" / assignment
        if assignment in known and target.exists():
            continue
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(
            repo.root / "source" / assignment,
            target,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints"),
        )
        # Known to a shared gradebook, new to this folder: a release of its own, nothing recorded.
        generate_release(course, assignment, db_url=None if assignment in known else db_url(course))
    return course


def open_workdir(repo: CourseConfig, workdir: Path | str | None) -> GradingFolder:
    """An existing grading folder (the default one without `workdir`), checked to belong to
    this course."""
    workdir = Path(workdir or default_workdir(repo)).resolve()
    course = _folder(repo, workdir)
    if course.db is None and not (workdir / DB_NAME).exists():
        raise GraderError(
            f"no grading folder at {workdir} (no {DB_NAME}); run `python -m grader collect PATH` "
            f"first, or point --workdir / {WORKDIR_ENV} at your grading folder (and --db at "
            "its gradebook if that is on a server)"
        )
    check_course_id(course)
    if not workdir.is_dir() or not exists(course):
        missing = (
            f"no folder {workdir}"
            if not workdir.is_dir()
            else (f"the gradebook {describe(course)} is empty")
        )
        raise GraderError(
            f"no grading folder at {workdir} ({missing}); run `python -m grader collect PATH` "
            f"with this --db first, or point --workdir / {WORKDIR_ENV} at your grading folder"
        )
    return course


def check_assignments(course: GradingFolder, assignments: list[str]) -> list[str]:
    """The named assignments (all registered ones by default), each known to the gradebook."""
    known = registered_assignments(course)
    unknown = [a for a in assignments if a not in known]
    if unknown:
        raise GraderError(f"unknown assignment {unknown[0]!r}; this gradebook has {sorted(known)}")
    return assignments or [a for a in course.assignments if a in known]


def submit(course: GradingFolder, student: str, assignment: str, notebook: Path) -> Path:
    """Place a student's notebook where nbgrader looks for it."""
    target = course.root / "submitted" / student / assignment / f"{assignment}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(notebook, target)
    return target
