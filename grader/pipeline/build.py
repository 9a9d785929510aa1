"""`python -m grader build`: release/ and solutions/ from source/.

release/   nbgrader's generate_assignment, unchanged (stubs, no hidden tests, checksums);
           checked to show no line of a written answer's model answer or rubric.
solutions/ source with the solution delimiters, the hidden tests and the rubrics of the
           written answers (from a `Rubric:` line to the end of the solution region) removed,
           executed so that students can read the plots later. Only what changes on every
           run (timings, kernel versions) is left out.
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
from pathlib import Path

from nbgrader.converters import GenerateAssignment
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests, ClearOutput

from grader.config import CourseConfig
from grader.errors import GraderError
from grader.execution.execute import execute
from grader.notebooks import cells as nbs
from grader.notebooks.validate import SourceError, check_course, source_assignments

log = logging.getLogger("grader.pipeline.build")


def build(
    course: CourseConfig,
    assignments: list[str] | None = None,
    *,
    release=True,
    solutions=True,
    execute_solutions=True,
) -> None:
    """Check source/, then regenerate release/ and solutions/ (of every assignment by default)."""
    require_in_source(course, assignments)
    problems = check_course(course, assignments)
    if problems:
        raise SourceError(problems)
    for assignment in assignments or source_assignments(course):
        if release:
            log.info("release/%s", assignment)
            generate_release(course, assignment)
            leaks = release_leaks(course, assignment)
            if leaks:
                raise SourceError(leaks)
        if solutions:
            log.info("solutions/%s", assignment)
            generate_solution(course, assignment, execute_it=execute_solutions)


def require_in_source(course: CourseConfig, assignments: list[str] | None) -> None:
    """Refuse, in one line, assignment names that have no folder in source/."""
    available = source_assignments(course)
    unknown = [a for a in assignments or [] if a not in available]
    if unknown:
        raise GraderError(f"unknown assignment {unknown[0]!r}; source/ has {available}")


def generate_release(course: CourseConfig, assignment: str, db_url: str | None = None) -> None:
    """nbgrader generate_assignment for one assignment.

    With `db_url` the assignment and its cells are recorded in that gradebook for
    autograding. Without it a throwaway gradebook is used: nbgrader's SaveCells writes one
    even with --no-db, and the committed release/ must not leave a gradebook.db behind.
    """
    if db_url is None:
        with tempfile.TemporaryDirectory(prefix="grader-build-") as scratch:
            generate_release(course, assignment, db_url=f"sqlite:///{scratch}/gradebook.db")
        return
    config = copy.deepcopy(course.config)
    config.CourseDirectory.db_url = db_url
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    app = GenerateAssignment(coursedir=coursedir, config=config)
    app.force = True
    app.create_assignment = True
    app.log.setLevel(logging.WARNING)
    app.start()


# Lines of a written answer's model answer or rubric shorter than this may appear in the
# release for other reasons ("Rubric:", "- 1 point", a formula); longer ones must not.
LEAK_CHARS = 20


def release_leaks(course: CourseConfig, assignment: str) -> list[str]:
    """Problems if release/ shows a line of a written answer's solution region (its model
    answer or rubric), which nbgrader's ClearSolutions should have replaced by its stub."""
    source = nbs.read(course.root / "source" / assignment / f"{assignment}.ipynb")
    path = course.root / "release" / assignment / f"{assignment}.ipynb"
    released = nbs.read(path)
    secret = {
        line.strip()
        for cell in source.cells
        if nbs.is_written_answer(cell)
        for region in nbs.solution_regions(cell.source)
        for line in region
        if len(line.strip()) >= LEAK_CHARS
    }
    problems = []
    display = path.relative_to(course.root)
    for index, cell in enumerate(released.cells):
        shown = sorted(line for line in secret if line in cell.source)
        if shown:
            problems.append(
                f"{nbs.describe(display, index, cell)}: shows a line of a written answer's "
                f"model answer or rubric ({shown[0][:60]!r}); keep it between "
                f"'{nbs.BEGIN_SOLUTION}' / '{nbs.END_SOLUTION}' in source/ and do not repeat it "
                "in the question."
            )
    return problems


def solution_notebook(source_path: Path):
    """The solution view of a source notebook, not yet executed."""
    nb = nbs.read(source_path)
    nb, _ = ClearOutput().preprocess(nb, {})
    nb, _ = ClearHiddenTests().preprocess(nb, {})
    for cell in nb.cells:
        if nbs.is_solution(cell) and cell.cell_type == "code":
            cell.source = nbs.strip_solution_delimiters(cell.source)
        elif nbs.is_solution(cell) and cell.cell_type == "markdown":
            cell.source = nbs.model_answer(cell.source)  # the rubric is for graders only
    return nb


def generate_solution(course: CourseConfig, assignment: str, *, execute_it=True) -> Path:
    """solutions/<assignment>/: the solution notebook, executed, and the assignment's files."""
    source_dir = course.root / "source" / assignment
    out_dir = course.root / "solutions" / assignment
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(
        source_dir, out_dir, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints")
    )
    source_path = source_dir / f"{assignment}.ipynb"
    nb = solution_notebook(source_path)
    language_info = copy.deepcopy(nb.metadata.get("language_info"))
    if execute_it:
        execute(nb, cwd=out_dir)
    # The kernel writes its exact version here; keep the source's so builds agree across machines.
    if language_info is None:
        nb.metadata.pop("language_info", None)
    else:
        nb.metadata["language_info"] = language_info
    out_path = out_dir / f"{assignment}.ipynb"
    nbs.write(nb, out_path)
    return out_path
