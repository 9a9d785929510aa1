"""nbgrader's gradebook of a grading folder: where it is, opening it safely, what it holds.

The gradebook is nbgrader's, on any database nbgrader's SQLAlchemy models run on here:
SQLite in the grading folder by default, or a URL (`--db`, or `c.CourseDirectory.db_url`
in nbgrader_config.py) such as postgresql+psycopg://user:password@host:5432/dbname for a
gradebook that several machines and instructors share. Every message that names it hides
the password a URL may hold. The folder around it is grader.workdir.folder.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy
from nbgrader.api import Course, Gradebook
from sqlalchemy.engine import make_url

from grader.config import DB_NAME, CourseConfig
from grader.errors import GraderError

BACKENDS = ("sqlite", "postgresql")
URL_FORMS = "sqlite:////path/to/gradebook.db or postgresql+psycopg://user:password@host:port/dbname"


def db_url(course: CourseConfig) -> str:
    """The gradebook's SQLAlchemy URL: the chosen one, else gradebook.db in the course root."""
    return course.db or f"sqlite:///{course.root / DB_NAME}"


def coursedir_config(course: CourseConfig):
    """nbgrader's configuration for the course (a grading folder): its root and its gradebook,
    for nbgrader's apps and preprocessors."""
    config = copy.deepcopy(course.config)
    config.CourseDirectory.db_url = db_url(course)
    return config


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


def check_can_create(course: CourseConfig) -> None:
    """Refuse an SQLite gradebook in a folder that does not exist: nbgrader would fail late
    and unclearly. The course root's own folder is made with the grading folder."""
    path = _sqlite_path(db_url(course))
    if path is not None and path.parent != course.root and not path.parent.is_dir():
        raise GraderError(
            f"cannot make the gradebook {path}: no folder {path.parent}; {_fix(course)}"
        )


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


def registered_assignments(course: CourseConfig) -> set[str]:
    """The assignments the gradebook knows (nbgrader records one when it makes its release)."""
    with Gradebook(db_url(course), course.course_id) as gb:
        return {a.name for a in gb.assignments}


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
