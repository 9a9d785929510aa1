"""nbgrader's own autograde of one submission: the reference the grader's results are held to."""

from __future__ import annotations

import logging

from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory

from grader.config import GradingFolder
from grader.execution.execute import in_course_environment
from grader.workdir.gradebook import coursedir_config


def nbgrader_autograde(
    course: GradingFolder, assignment: str, student: str, cell_timeout: int | None = None
) -> None:
    """Plain sequential `nbgrader autograde` of one submission, in this process."""
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
    app.autograde_preprocessors = in_course_environment(app.autograde_preprocessors)
    app.start()
