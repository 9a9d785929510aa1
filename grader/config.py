"""The course's configuration, read from nbgrader_config.py at the repository root.

nbgrader and the grader read the same file, so the assignment list, the course id and
the timeouts are written down once.
"""

from __future__ import annotations

import copy
import runpy
from dataclasses import dataclass, field
from pathlib import Path

from traitlets.config import Config

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = "nbgrader_config.py"
DB_NAME = "gradebook.db"  # nbgrader's SQLite gradebook in a course root, its default


@dataclass
class CourseConfig:
    """What the grader needs to know about the course.

    root: the course folder (source/, release/, solutions/ live here).
    assignments: assignment ids in the lecture's order.
    config: nbgrader's traitlets configuration, with CourseDirectory.root set to `root`.
    db: the gradebook's SQLAlchemy URL where one is chosen (--db, or
        c.CourseDirectory.db_url in nbgrader_config.py); None: gradebook.db in `root`.
    duedates: DUEDATES of nbgrader_config.py, assignment -> date text (grader.workdir.late).
    canvas_ids: CANVAS_ASSIGNMENT_IDS, assignment -> Canvas assignment id (grader.lms.formats).
    """

    root: Path
    assignments: list[str]
    config: Config
    config_file: Path
    db: str | None = None
    duedates: dict = field(default_factory=dict)
    canvas_ids: dict = field(default_factory=dict)

    @property
    def course_id(self) -> str:
        return self.config.CourseDirectory.course_id


def load_config(root: Path | str = REPO_ROOT, db: str | None = None) -> CourseConfig:
    """Read `root/nbgrader_config.py` and return the course configuration.

    The gradebook is `db` if given, else the file's c.CourseDirectory.db_url where that is
    not nbgrader's default (gradebook.db in the course root), else gradebook.db in `root`.
    """
    root = Path(root).resolve()
    path = root / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the course root must hold nbgrader's {CONFIG_FILE}."
        )
    config = Config()
    namespace = runpy.run_path(str(path), init_globals={"get_config": lambda: config})
    assignments = list(namespace.get("ASSIGNMENTS", []))
    if not assignments:
        raise ValueError(f"{path} defines no ASSIGNMENTS list.")
    configured = config.CourseDirectory.get("db_url") or None
    if db is None and configured and not _is_default_db(configured, root):
        db = configured
    config.CourseDirectory.root = str(root)
    return CourseConfig(
        root=root,
        assignments=assignments,
        config=config,
        config_file=path,
        db=db or None,
        duedates=dict(namespace.get("DUEDATES") or {}),
        canvas_ids=dict(namespace.get("CANVAS_ASSIGNMENT_IDS") or {}),
    )


def _is_default_db(url: str, root: Path) -> bool:
    """Whether `url` names nbgrader's default gradebook, gradebook.db in the course root
    (a relative path counts from the root, where nbgrader's commands run)."""
    prefix = "sqlite:///"
    return url.startswith(prefix) and (root / url[len(prefix) :]).resolve() == root / DB_NAME


def with_root(course: CourseConfig, root: Path | str) -> CourseConfig:
    """The same course configuration, for a course folder somewhere else (a grading folder)."""
    config = copy.deepcopy(course.config)
    config.merge(Config({"CourseDirectory": {"root": str(Path(root).resolve())}}))
    return CourseConfig(
        root=Path(root).resolve(),
        assignments=course.assignments,
        config=config,
        config_file=course.config_file,
        db=course.db,
        duedates=course.duedates,
        canvas_ids=course.canvas_ids,
    )
