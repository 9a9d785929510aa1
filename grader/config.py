"""The course's configuration, read from nbgrader_config.py at the repository root.

nbgrader and the grader read the same file, so the assignment list, the course id and
the timeouts are written down once. A grading folder (GradingFolder) is the same
configuration with the folder as its course root; where it is by default is here too.
"""

from __future__ import annotations

import copy
import os
import runpy
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar

from traitlets.config import Config

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = "nbgrader_config.py"
DB_NAME = "gradebook.db"  # nbgrader's SQLite gradebook in a course root, its default
WORKDIR_NAME = "grading"  # the grading folder in the course root, unless WORKDIR_ENV names one
WORKDIR_ENV = "GRADER_WORKDIR"


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


@dataclass
class GradingFolder(CourseConfig):
    """A grading folder (grader.workdir.folder): the course's configuration with the folder as
    its course root, where submitted/, autograded/, feedback/, status/, reports/ and, unless
    `db` names another, the gradebook live. The verbs that grade take one; build and bundle
    take the repository's CourseConfig. Made by grader.workdir.folder's prepare and
    open_workdir.
    """

    @classmethod
    def at(cls, course: CourseConfig, root: Path | str) -> GradingFolder:
        """The course's configuration for the grading folder `root`."""
        return _rooted(cls, course, root)


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


def default_workdir(course: CourseConfig) -> Path:
    """Where the grading folder is unless --workdir says: $GRADER_WORKDIR, else grading/ in
    the course root."""
    return Path(os.environ.get(WORKDIR_ENV) or course.root / WORKDIR_NAME)


def with_root(course: CourseConfig, root: Path | str) -> CourseConfig:
    """The same course configuration, for a copy of the course somewhere else (for a grading
    folder, GradingFolder.at)."""
    return _rooted(CourseConfig, course, root)


C = TypeVar("C", bound=CourseConfig)


def _rooted(cls: type[C], course: CourseConfig, root: Path | str) -> C:
    config = copy.deepcopy(course.config)
    config.merge(Config({"CourseDirectory": {"root": str(Path(root).resolve())}}))
    values = {f.name: getattr(course, f.name) for f in fields(CourseConfig)}
    return cls(**{**values, "root": Path(root).resolve(), "config": config})
