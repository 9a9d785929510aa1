"""Checks on source/ before anything is generated from it.

Every problem is reported at once, each naming the notebook and the cell, so that an
instructor fixes a notebook in one pass instead of one error per build.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from grader import notebooks as nbs
from grader.course_config import CourseConfig

# "### Exercise 1.2: The perceptron (2 points)"
EXERCISE_HEADING = re.compile(
    r"^#+\s*Exercise\s+[\d.]+\s*:.*\((?P<points>\d+(?:\.\d+)?)\s+points?\)\s*$",
    re.MULTILINE,
)


class SourceError(Exception):
    """One or more problems in source/; str() lists them, one per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(f"- {p}" for p in problems))


def assignment_notebook(course: CourseConfig, assignment: str) -> Path:
    """source/<assignment>/<assignment>.ipynb, the one notebook of an assignment."""
    return course.root / "source" / assignment / f"{assignment}.ipynb"


def source_assignments(course: CourseConfig) -> list[str]:
    """The assignment folders in source/, in the configured order."""
    source = course.root / "source"
    present = {p.name for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")}
    return [a for a in course.assignments if a in present] + sorted(
        present - set(course.assignments)
    )


def check_course(course: CourseConfig, assignments: list[str] | None = None) -> list[str]:
    """All problems in source/, or in the named assignments of it (empty when all is fine)."""
    source = course.root / "source"
    if not source.is_dir():
        return [f"{source}: no source/ folder; the course's notebooks are written there."]
    problems = []
    for assignment in assignments or source_assignments(course):
        folder = source / assignment
        rel = folder.relative_to(course.root)
        if assignment not in course.assignments:
            problems.append(
                f"{rel}/: '{assignment}' is not an assignment of nbgrader_config.py "
                f"(ASSIGNMENTS = {course.assignments}); add it there or rename the folder."
            )
            continue
        notebooks = sorted(
            p for p in folder.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
        )
        expected = assignment_notebook(course, assignment)
        if not notebooks:
            problems.append(
                f"{rel}/: the assignment folder holds no notebook; "
                f"write {expected.name} there or remove the folder."
            )
            continue
        if expected not in notebooks:
            names = ", ".join(p.name for p in notebooks)
            problems.append(
                f"{rel}/: found {names} but not {expected.name}; "
                "an assignment's notebook is named like its folder."
            )
            continue
        problems += check_notebook(expected, display=expected.relative_to(course.root))
    return problems


def check_notebook(path: Path, display: Path | None = None) -> list[str]:
    """Problems of one source notebook (an empty list when it is fine)."""
    display = display or path
    try:
        nb = nbs.read(path)
    except (json.JSONDecodeError, ValueError) as error:
        return [f"{display}: not a readable notebook ({error}); fix the JSON or re-save it."]
    problems = []
    owners: dict[str, int] = {}
    for index, cell in enumerate(nb.cells):
        where = nbs.describe(display, index, cell)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
            problems.append(
                f"{where}: has outputs or an execution count; source notebooks carry none "
                "(clear all outputs and save, or run `jupyter nbconvert --clear-output`)."
            )
        meta = nbs.nbgrader_meta(cell)
        if not meta:
            continue
        grade_id = meta.get("grade_id")
        if (meta.get("grade") or meta.get("solution") or meta.get("locked")) and not grade_id:
            problems.append(f"{where}: an nbgrader cell without a grade id; give it one.")
        if grade_id:
            if grade_id in owners:
                first = nbs.describe(display, owners[grade_id], nb.cells[owners[grade_id]])
                problems.append(
                    f"{where}: grade id '{grade_id}' is used twice (first by {first}); "
                    "every grade id must be unique."
                )
            else:
                owners[grade_id] = index
        if meta.get("grade") and not (float(meta.get("points") or 0) > 0):
            problems.append(f"{where}: a graded cell with no points; give it points > 0.")
        if meta.get("solution") and cell.cell_type == "code":
            problems += _check_delimiters(
                where, cell.source, nbs.BEGIN_SOLUTION, nbs.END_SOLUTION, required=True
            )
        problems += _check_delimiters(
            where, cell.source, nbs.BEGIN_HIDDEN, nbs.END_HIDDEN, required=False
        )
        if nbs.BEGIN_HIDDEN in cell.source and not meta.get("grade"):
            problems.append(f"{where}: hidden tests outside a graded test cell.")
    problems += _check_heading_points(display, nb)
    return problems


def _check_delimiters(where: str, source: str, begin: str, end: str, required: bool) -> list[str]:
    lines = [line.strip() for line in source.splitlines()]
    opened = lines.count(begin)
    closed = lines.count(end)
    if required and opened == 0:
        return [
            f"{where}: a solution cell with no '{begin}' / '{end}' region; wrap the "
            "answer in them so that nbgrader can replace it with a stub."
        ]
    if opened != closed:
        return [f"{where}: {opened} '{begin}' but {closed} '{end}'; they must pair up."]
    depth = 0
    for line in lines:
        depth += (line == begin) - (line == end)
        if depth not in (0, 1):
            return [f"{where}: '{begin}' and '{end}' are nested or out of order."]
    return []


def _check_heading_points(display: Path, nb) -> list[str]:
    """The points in an exercise heading equal the points of the test cells below it."""
    problems = []
    current = None  # (cell index, heading text, announced points, points seen)
    sections = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            match = EXERCISE_HEADING.search(cell.source)
            if match:
                current = [index, match.group(0).strip("# "), float(match.group("points")), 0.0]
                sections.append(current)
                continue
        meta = nbs.nbgrader_meta(cell)
        if meta.get("grade") and cell.cell_type == "code":
            if current is None:
                problems.append(
                    f"{nbs.describe(display, index, cell)}: a graded test cell before any "
                    "'### Exercise N.M: title (K points)' heading."
                )
            else:
                current[3] += float(meta.get("points") or 0)
    for index, heading, announced, seen in sections:
        if announced != seen:
            problems.append(
                f"{display}, cell {index + 1}: the heading '{heading}' announces "
                f"{announced:g} points but its test cells carry {seen:g}."
            )
    return problems
