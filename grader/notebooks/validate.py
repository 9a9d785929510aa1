"""Checks on source/ before anything is generated from it.

Every problem is reported at once, each naming the notebook and the cell, so that an
instructor fixes a notebook in one pass instead of one error per build.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from grader.config import CourseConfig
from grader.notebooks import cells as nbs

# "### Exercise 1.2: The perceptron (2 points)"
EXERCISE_HEADING = re.compile(
    r"^#+\s*Exercise\s+(?P<number>\d+(?:\.\d+)*)\s*:.*\((?P<points>\d+(?:\.\d+)?)\s+points?\)\s*$",
    re.MULTILINE,
)
# "### Question 1.5: Why XOR defeats one perceptron (2 points)": a written answer, graded by hand.
QUESTION_HEADING = re.compile(
    r"^#+\s*Question\s+(?P<number>\d+(?:\.\d+)*)\s*:.*\((?P<points>\d+(?:\.\d+)?)\s+points?\)\s*$",
    re.MULTILINE,
)


def graded_heading(source: str) -> tuple[str, re.Match] | None:
    """("exercise" or "question", the match) of an exercise or question heading in a
    markdown cell's source, or None."""
    for kind, pattern in (("exercise", EXERCISE_HEADING), ("question", QUESTION_HEADING)):
        match = pattern.search(source)
        if match:
            return kind, match
    return None


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
        notebooks = sorted(p for p in folder.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
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
        if cell.cell_type == "markdown" and (meta.get("solution") or meta.get("grade")):
            problems += _check_written_answer(where, cell, meta)
        problems += _check_delimiters(
            where, cell.source, nbs.BEGIN_HIDDEN, nbs.END_HIDDEN, required=False
        )
        if nbs.BEGIN_HIDDEN in cell.source and not meta.get("grade"):
            problems.append(f"{where}: hidden tests outside a graded test cell.")
    problems += _check_rubrics_inside(display, nb)
    problems += _check_heading_points(display, nb)
    return problems


def _check_written_answer(where: str, cell, meta: dict) -> list[str]:
    """A written answer (nbgrader's "Manually graded answer"): a graded markdown solution
    cell whose solution region holds the model answer, then a `Rubric:` line and the rubric.
    release/ gets nbgrader's text stub in place of the region; solutions/ the model answer."""
    if not (meta.get("solution") and meta.get("grade")):
        return [
            f"{where}: a markdown cell that is {'graded' if meta.get('grade') else 'a solution'} "
            "but not both; a written answer is a 'Manually graded answer' (solution and "
            "graded, with points), any other markdown cell has no nbgrader role but 'Read-only'."
        ]
    problems = _check_delimiters(
        where, cell.source, nbs.BEGIN_SOLUTION, nbs.END_SOLUTION, required=True
    )
    if problems:
        return problems
    if graded_heading(cell.source):
        problems.append(
            f"{where}: the exercise or question heading is inside the written answer, which "
            "students edit; put the heading and the question in a read-only markdown cell "
            "above the answer cell."
        )
    for region in nbs.solution_regions(cell.source):
        at = next((i for i, line in enumerate(region) if nbs.RUBRIC.match(line)), None)
        answer = region if at is None else region[:at]
        if not any(line.strip() for line in answer):
            problems.append(
                f"{where}: the solution region holds no model answer before its rubric; "
                "write the model answer first (solutions/ shows it)."
            )
        rubric = [] if at is None else [nbs.RUBRIC.sub("", region[at]), *region[at + 1 :]]
        if not any(line.strip(" *_") for line in rubric):
            problems.append(
                f"{where}: the solution region has no rubric; after the model answer write a "
                "line 'Rubric:' and what earns each point (graders see it, students do not)."
            )
    return problems


def _check_rubrics_inside(display: Path, nb) -> list[str]:
    """A `Rubric:` line outside a solution region would reach release/ (and solutions/)."""
    problems = []
    for index, cell in enumerate(nb.cells):
        inside = False
        for line in cell.source.splitlines():
            if line.strip() in (nbs.BEGIN_SOLUTION, nbs.END_SOLUTION):
                inside = line.strip() == nbs.BEGIN_SOLUTION
            elif not inside and nbs.RUBRIC.match(line):
                problems.append(
                    f"{nbs.describe(display, index, cell)}: a 'Rubric:' line outside "
                    f"'{nbs.BEGIN_SOLUTION}' / '{nbs.END_SOLUTION}'; students would see it. "
                    "Put the rubric at the end of the written answer's solution region."
                )
                break
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
    """The points in an exercise heading equal the points of the test cells below it, and
    those in a question heading the points of the written answers below it; test cells sit
    under exercise headings, written answers under question headings."""
    problems = []
    current = None  # [cell index, heading text, announced points, points seen, kind]
    sections = []
    for index, cell in enumerate(nb.cells):
        meta = nbs.nbgrader_meta(cell)
        if cell.cell_type == "markdown" and not meta.get("solution"):
            found = graded_heading(cell.source)
            if found:
                kind, match = found
                current = [
                    index,
                    match.group(0).strip("# "),
                    float(match.group("points")),
                    0.0,
                    kind,
                ]
                sections.append(current)
                continue
        if not meta.get("grade") or cell.cell_type not in ("code", "markdown"):
            continue
        where = nbs.describe(display, index, cell)
        written = nbs.is_written_answer(cell)
        if cell.cell_type == "markdown" and not written:
            continue  # reported by _check_written_answer
        if current is None:
            problems.append(
                f"{where}: a written answer before any '### Question N.M: title (K points)' "
                "heading."
                if written
                else f"{where}: a graded test cell before any "
                "'### Exercise N.M: title (K points)' heading."
            )
            continue
        if written and current[4] != "question":
            problems.append(
                f"{where}: a written answer (graded by hand) under the exercise heading "
                f"'{current[1]}'; give it a '### Question N.M: title (K points)' heading of "
                "its own, so that students see which points are graded by hand."
            )
        elif not written and current[4] != "exercise" and not nbs.is_solution(cell):
            problems.append(
                f"{where}: a test cell under the question heading '{current[1]}'; tests "
                "belong to an '### Exercise N.M: title (K points)' heading."
            )
        current[3] += float(meta.get("points") or 0)
    for index, heading, announced, seen, kind in sections:
        if announced != seen:
            cells = "test cells" if kind == "exercise" else "written answers"
            problems.append(
                f"{display}, cell {index + 1}: the heading '{heading}' announces "
                f"{announced:g} points but its {cells} carry {seen:g}."
            )
    return problems
