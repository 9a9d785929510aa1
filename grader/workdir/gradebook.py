"""The grading work folder: an nbgrader course root of its own.

    grading/                  (--workdir, GRADER_WORKDIR)
      source/<assignment>/    a copy of the course's source (autograde copies files from it)
      release/<assignment>/   generated with the gradebook, which records every graded cell
      submitted/<student>/<assignment>/<assignment>.ipynb, timestamp.txt
      autograded/ feedback/   nbgrader's folders
      status/<student>/<assignment>.json   how the grader's run of each submission ended
      reports/                CSV files and plots
      gradebook.db            nbgrader's SQLite gradebook, unless one is chosen by URL

The gradebook is nbgrader's, on any database nbgrader's SQLAlchemy models run on here:
SQLite in the grading folder by default, or a URL (`--db`, or `c.CourseDirectory.db_url`
in nbgrader_config.py) such as postgresql+psycopg://user:password@host:5432/dbname for a
gradebook that several machines and instructors share.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy
from nbgrader.api import Course, Gradebook
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from sqlalchemy.engine import make_url

from grader.config import DB_NAME, CourseConfig, with_root
from grader.errors import GraderError
from grader.execution.execute import quiet_environment
from grader.notebooks.validate import source_assignments
from grader.pipeline.build import generate_release

BACKENDS = ("sqlite", "postgresql")
URL_FORMS = "sqlite:////path/to/gradebook.db or postgresql+psycopg://user:password@host:port/dbname"


@dataclass(frozen=True, order=True)
class Grade:
    """One graded cell of one student's submission."""

    student: str
    assignment: str
    grade_id: str
    points: float  # 0 while pending
    max_points: float
    pending: bool = False  # a written answer waiting to be graded by hand (see `is_pending`)


def graded_by_hand(notebook) -> set[str]:
    """Grade ids of an nbgrader Notebook's (the assignment's, not a submission's) answers
    graded by hand: cells that are both graded and a solution ("Manually graded answer")."""
    return {c.name for c in notebook.grade_cells} & {c.name for c in notebook.solution_cells}


def is_pending(grade) -> bool:
    """Whether an nbgrader Grade of an answer graded by hand still waits for its grade: no
    automatic score (nbgrader gives 0 only to an answer left as the release had it) and no
    manual one. Any manual score ends it, however set (formgrader, nbgrader's API)."""
    return grade.auto_score is None and grade.manual_score is None


def default_workdir(course: CourseConfig) -> Path:
    return Path(os.environ.get("GRADER_WORKDIR") or course.root / "grading")


def db_url(course: CourseConfig) -> str:
    """The gradebook's SQLAlchemy URL: the chosen one, else gradebook.db in the course root."""
    return course.db or f"sqlite:///{course.root / DB_NAME}"


def safe_url(url: str) -> str:
    """`url` as it may be shown: any password replaced by ***."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:  # unparsable: hide whatever stands between "user:" and the last @
        shown = re.sub(r"^((?:[\w+.-]+://)?[^:/@]*:).*@", r"\1***@", url)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", shown, flags=re.IGNORECASE)


def describe(course: CourseConfig) -> str:
    """The gradebook as a person knows it: a file's path, or the URL without password."""
    path = _sqlite_path(db_url(course))
    return str(path) if path is not None else safe_url(db_url(course))


def _sqlite_path(url: str) -> Path | None:
    try:
        parsed = make_url(url)
    except Exception:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database).resolve()


def _fix(course: CourseConfig) -> str:
    return (
        f"correct the gradebook URL (--db, or c.CourseDirectory.db_url in "
        f"{course.config_file.name}): {URL_FORMS}"
    )


def one_line(error: BaseException, url: str) -> str:
    """A driver's message on one line, without the password that the URL may hold."""
    text = " ".join(str(getattr(error, "orig", None) or error).split())
    try:
        password = make_url(url).password
    except Exception:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return text


def _engine(course: CourseConfig) -> sqlalchemy.Engine:
    """An engine for the course's gradebook, or a GraderError that says what to fix."""
    url = db_url(course)
    try:
        parsed = make_url(url)
    except Exception:
        raise GraderError(f"{safe_url(url)!r} is not a database URL; {_fix(course)}") from None
    backend = parsed.get_backend_name()
    if backend not in BACKENDS or (backend == "sqlite" and not parsed.database):
        raise GraderError(
            f"the gradebook {safe_url(url)} is neither an SQLite file nor a PostgreSQL "
            f"database; {_fix(course)}"
        )
    connect_args = {"connect_timeout": 10} if backend == "postgresql" else {}
    try:
        return sqlalchemy.create_engine(parsed, connect_args=connect_args)
    except (ImportError, sqlalchemy.exc.NoSuchModuleError) as error:
        raise GraderError(
            f"no database driver for {safe_url(url)} ({one_line(error, url)}); {_fix(course)}"
        ) from None


def exists(course: CourseConfig) -> bool:
    """Whether the course's gradebook exists: its SQLite file, or nbgrader's tables on the
    server. Checks the connection (a GraderError naming the fix) and creates nothing."""
    path = _sqlite_path(db_url(course))
    if path is not None:
        return path.exists()
    engine = _engine(course)
    try:
        with engine.connect() as db:
            return sqlalchemy.inspect(db).has_table(Course.__tablename__)
    except sqlalchemy.exc.DBAPIError as error:
        raise _unreachable(course, error) from None
    finally:
        engine.dispose()


def _unreachable(course: CourseConfig, error: BaseException) -> GraderError:
    url = db_url(course)
    what = (
        "the server is up and the database exists"
        if _sqlite_path(url) is None
        else ("its folder exists and is writable")
    )
    return GraderError(
        f"cannot open the gradebook {describe(course)}: {one_line(error, url)}; check that "
        f"{what}, or {_fix(course)}"
    )


def coursedir_config(course: CourseConfig):
    """nbgrader's configuration for a grading course: its root and its gradebook."""
    config = copy.deepcopy(course.config)
    config.CourseDirectory.db_url = db_url(course)
    return config


def prepare(repo: CourseConfig, workdir: Path, assignments: list[str] | None = None):
    """Create (or extend) a grading folder with the assignments registered in its gradebook.

    An assignment already in the gradebook is left alone: regenerating it would be refused
    by nbgrader once submissions exist, and grading must use the notebooks students got.
    A shared gradebook may know an assignment that this machine's grading folder lacks:
    its source/ and release/ are made here without touching the gradebook.
    """
    workdir = Path(workdir).resolve()
    course = with_root(repo, workdir)
    course.config.CourseDirectory.db_url = db_url(course)
    check_course_id(course)
    path = _sqlite_path(db_url(course))
    if path is not None and path.parent != workdir and not path.parent.is_dir():
        raise GraderError(
            f"cannot make the gradebook {path}: no folder {path.parent}; {_fix(course)}"
        )
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


def open_workdir(repo: CourseConfig, workdir: Path | str | None) -> CourseConfig:
    """An existing grading folder, checked to belong to this course."""
    workdir = Path(workdir or default_workdir(repo)).resolve()
    course = with_root(repo, workdir)
    course.config.CourseDirectory.db_url = db_url(course)
    if course.db is None and not (workdir / DB_NAME).exists():
        raise GraderError(
            f"no grading folder at {workdir} (no {DB_NAME}); run `python -m grader collect PATH` "
            "first, or point --workdir / GRADER_WORKDIR at your grading folder (and --db at "
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
            "with this --db first, or point --workdir / GRADER_WORKDIR at your grading folder"
        )
    return course


def check_course_id(course: CourseConfig) -> None:
    """Refuse a gradebook written for another course (nbgrader would mix the two), and one
    that cannot be opened, with a GraderError that names the fix."""
    path = _sqlite_path(db_url(course))
    if path is not None and not path.exists():
        return
    engine = _engine(course)
    try:
        try:
            db = engine.connect()
        except sqlalchemy.exc.DBAPIError as error:
            raise _unreachable(course, error) from None
        # SQLite: a read-write connection (SQLAlchemy's default) rolls back the journal of a
        # run killed mid-write, and creates nothing (the file exists).
        with db:
            try:
                tables = sqlalchemy.inspect(db).get_table_names()
                if not tables and path is None:
                    return  # an empty database on a server: nbgrader makes its tables
                if Course.__tablename__ in tables:
                    ids = list(db.execute(sqlalchemy.select(Course.id)).scalars())
            except sqlalchemy.exc.DBAPIError as error:
                raise _not_a_gradebook(course, one_line(error, db_url(course))) from None
            if Course.__tablename__ not in tables:
                raise _not_a_gradebook(course, f"it has no table {Course.__tablename__!r}")
    finally:
        engine.dispose()
    # nbgrader's preprocessors open the gradebook without a course id, which adds
    # 'default_course'; any other id is a different course.
    others = [i for i in ids if i not in (course.course_id, "default_course")]
    if others:
        fix = (
            "choose another --workdir for this course"
            if course.db is None
            else "choose another database (--db) for this course"
        )
        raise GraderError(
            f"{describe(course)} belongs to course {others[0]!r}, not {course.course_id!r}; {fix}"
        )


def _not_a_gradebook(course: CourseConfig, why: str) -> GraderError:
    fix = (
        "move it away or choose another --workdir"
        if course.db is None
        else "choose another database (--db)"
    )
    return GraderError(f"{describe(course)} is not an nbgrader gradebook ({why}); {fix}")


def registered_assignments(course: CourseConfig) -> set[str]:
    with Gradebook(db_url(course), course.course_id) as gb:
        return {a.name for a in gb.assignments}


def check_assignments(course: CourseConfig, assignments: list[str]) -> list[str]:
    """The named assignments (all registered ones by default), each known to the gradebook."""
    known = registered_assignments(course)
    unknown = [a for a in assignments if a not in known]
    if unknown:
        raise GraderError(f"unknown assignment {unknown[0]!r}; this gradebook has {sorted(known)}")
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
            by_hand = {n.name: graded_by_hand(n) for n in assignment.notebooks}
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
                                pending=grade.name in by_hand.get(notebook.name, ())
                                and is_pending(grade),
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
