"""`python -m grader feedback`: one HTML page per student and notebook.

nbgrader's GenerateFeedback (its template shows every cell's score) with one more
preprocessor: graded test cells lose their hidden tests, and their error outputs keep only
the message, because a traceback quotes the line of the (hidden) test that failed.
"""

from __future__ import annotations

import logging

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.converters import GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests, GetGrades, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution

from grader.course_config import CourseConfig
from grader.gradebook import check_assignments, coursedir_config


class HideHiddenTests(NbGraderPreprocessor):
    """Remove hidden tests from test cells; reduce their tracebacks to the message."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell):
            ClearHiddenTests(enforce_metadata=False)._remove_hidden_test_region(cell)
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename')}: {output.get('evalue')}"]
        return cell, resources


def generate_feedback(course: CourseConfig, assignments: list[str] | None = None) -> list:
    """feedback/<student>/<assignment>/<assignment>.html for every autograded submission."""
    assignments = check_assignments(course, assignments or [])
    written = []
    for assignment in assignments:
        students = sorted(
            p.name for p in (course.root / "autograded").glob("*") if (p / assignment).is_dir()
        )
        if not students:
            continue
        config = coursedir_config(course)
        config.GenerateFeedback.preprocessors = [
            GetGrades,
            HideHiddenTests,
            CSSHTMLHeaderPreprocessor,
        ]
        coursedir = CourseDirectory(config=config)
        coursedir.assignment_id = assignment
        coursedir.student_id = "*"
        app = GenerateFeedback(coursedir=coursedir, config=config)
        app.force = True
        app.log.setLevel(logging.ERROR)
        app.start()
        written += [
            course.root / "feedback" / s / assignment / f"{assignment}.html" for s in students
        ]
    return written
