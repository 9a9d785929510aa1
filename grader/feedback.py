"""`python -m grader feedback`: one HTML page per student and notebook.

nbgrader's GenerateFeedback (its template shows every cell's score) with one more
preprocessor: graded test cells lose their hidden tests, and their error outputs keep only
the message, because a traceback quotes the line of the (hidden) test that failed. A
submission can also print what the kernel was asked to run (`inspect.stack()` in a tested
function, an IPython hook), so every line of any output that quotes a hidden test line is
replaced too.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.converters import GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests, GetGrades, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution

from grader.course_config import CourseConfig, load_config
from grader.gradebook import check_assignments, coursedir_config, open_workdir

BEGIN_HIDDEN, END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
REDACTED = "[a line quoting a hidden test, removed]"
TEXT_DATA = ("text/plain", "text/html", "text/markdown", "text/latex")


def hidden_lines(nb) -> set[str]:
    """Every line of every hidden test region, stripped (lines under 8 characters, such as
    `else:`, say nothing about the tests and would match everywhere)."""
    lines, inside = set(), False
    for cell in nb.cells:
        for line in cell.source.splitlines():
            if BEGIN_HIDDEN in line:
                inside = True
            elif END_HIDDEN in line:
                inside = False
            elif inside and len(line.strip()) >= 8:
                lines.add(line.strip())
    return lines


def _redact(text: str, hidden: set[str]) -> str:
    return "\n".join(REDACTED if any(h in line for h in hidden) else line
                     for line in text.split("\n"))


class HideHiddenTests(NbGraderPreprocessor):
    """Remove hidden tests from test cells; reduce their tracebacks to the message; remove
    output lines anywhere that quote a hidden test."""

    def preprocess(self, nb, resources):
        self.hidden = hidden_lines(nb)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = _redact(output["text"], self.hidden)
            if "evalue" in output:
                output["evalue"] = _redact(output["evalue"], self.hidden)
                output["traceback"] = [_redact(t, self.hidden) for t in output["traceback"]]
            for mime in TEXT_DATA:
                if isinstance(output.get("data", {}).get(mime), str):
                    output["data"][mime] = _redact(output["data"][mime], self.hidden)
        if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell):
            ClearHiddenTests(enforce_metadata=False)._remove_hidden_test_region(cell)
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename')}: {output.get('evalue')}"]
        return cell, resources


def generate_feedback(
    course: CourseConfig, assignments: list[str] | None = None, jobs: int | None = None
) -> list:
    """feedback/<student>/<assignment>/<assignment>.html for every autograded submission,
    one assignment per process, `jobs` (default: the number of cores) at a time."""
    assignments = check_assignments(course, assignments or [])
    todo = [a for a in assignments if _students(course, a)]
    jobs = min(jobs or os.cpu_count() or 1, len(todo) or 1)
    # Processes, not threads: nbconvert's rendering is pure Python and holds the GIL. Forked,
    # so that they need no importable __main__ (spawn re-runs it) and start at once.
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        done = pool.map(_feedback_for, [course.config_file.parent] * len(todo),
                        [course.root] * len(todo), todo)
        return [page for pages in done for page in pages]


def _students(course: CourseConfig, assignment: str) -> list[str]:
    return sorted(
        p.name for p in (course.root / "autograded").glob("*") if (p / assignment).is_dir()
    )


def _feedback_for(repo_root: Path, workdir: Path, assignment: str) -> list[Path]:
    """nbgrader's GenerateFeedback for one assignment (in a process of its own)."""
    course = open_workdir(load_config(repo_root), workdir)
    config = coursedir_config(course)
    config.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    coursedir.student_id = "*"
    app = GenerateFeedback(coursedir=coursedir, config=config)
    app.force = True
    app.log.setLevel(logging.ERROR)
    app.start()
    return [course.root / "feedback" / s / assignment / f"{assignment}.html"
            for s in _students(course, assignment)]
