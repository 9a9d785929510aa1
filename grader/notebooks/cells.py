"""Reading and describing notebooks and their nbgrader cells."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbformat import NotebookNode

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
# The hidden-test delimiters as the course writes them. nbgrader takes any line that holds
# their words for one (ClearHiddenTests), and so does whatever hides what nbgrader hides.
BEGIN_HIDDEN_WORDS, END_HIDDEN_WORDS = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
BEGIN_HIDDEN = f"### {BEGIN_HIDDEN_WORDS}"
END_HIDDEN = f"### {END_HIDDEN_WORDS}"
# In a written answer's solution region, the line that starts its rubric ("Rubric:", in bold
# or not): the rubric is for graders, so it reaches neither release/ nor solutions/.
RUBRIC = re.compile(r"^\s*(?:[*_]{1,2})?Rubric(?:[*_]{1,2})?\s*:", re.IGNORECASE)


def read(path: Path) -> NotebookNode:
    """Read a notebook as nbformat 4."""
    return nbformat.read(str(path), as_version=4)


def write(nb: NotebookNode, path: Path) -> None:
    """Write a notebook with a trailing newline, the way JupyterLab saves it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")


def nbgrader_meta(cell: NotebookNode) -> dict:
    """The cell's nbgrader metadata, or {} for an ordinary cell."""
    return dict(cell.get("metadata", {}).get("nbgrader", {}))


def text_of(value) -> str | None:
    """A notebook's string field (one string or nbformat's list of lines) as one string, or
    None when it is anything else: a submitted file's fields may hold any JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return None


def is_solution(cell: NotebookNode) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_written_answer(cell: NotebookNode) -> bool:
    """A manually graded answer in markdown (nbgrader's "Manually graded answer"): the
    student writes text there, and an instructor grades it by hand."""
    meta = nbgrader_meta(cell)
    return cell.cell_type == "markdown" and bool(meta.get("solution")) and bool(meta.get("grade"))


def describe(path: Path, index: int, cell: NotebookNode) -> str:
    """Name a cell for an error message: file, 1-based cell number, grade id, first line."""
    grade_id = nbgrader_meta(cell).get("grade_id")
    first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
    if len(first) > 50:
        first = first[:47] + "..."
    parts = [f"{path}, cell {index + 1}"]
    if grade_id:
        parts.append(f"(grade id '{grade_id}')")
    if first:
        parts.append(f"starting {first!r}")
    return " ".join(parts)


def strip_solution_delimiters(source: str) -> str:
    """Keep the solution, drop the BEGIN/END SOLUTION lines around it."""
    keep = [
        line for line in source.splitlines() if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION)
    ]
    return "\n".join(keep)


def solution_regions(source: str) -> list[list[str]]:
    """The lines between each `### BEGIN SOLUTION` and its `### END SOLUTION`."""
    regions: list[list[str]] = []
    current: list[str] | None = None
    for line in source.splitlines():
        if line.strip() == BEGIN_SOLUTION:
            current = []
            regions.append(current)
        elif line.strip() == END_SOLUTION:
            current = None
        elif current is not None:
            current.append(line)
    return regions


def hidden_test_lines(source: str) -> list[str]:
    """The lines of a cell's hidden-test regions, their delimiters included, as nbgrader's
    ClearHiddenTests finds them (a delimiter is any line that holds its words)."""
    lines, inside = [], False
    for line in source.splitlines():
        if BEGIN_HIDDEN_WORDS in line or END_HIDDEN_WORDS in line:
            inside = BEGIN_HIDDEN_WORDS in line
            lines.append(line)
        elif inside:
            lines.append(line)
    return lines


def model_answer(source: str) -> str:
    """A written answer's source as solutions/ shows it: the solution regions without their
    delimiters and without their rubric (from a `Rubric:` line to the region's end)."""
    keep, inside, rubric = [], False, False
    for line in source.splitlines():
        if line.strip() == BEGIN_SOLUTION:
            inside, rubric = True, False
        elif line.strip() == END_SOLUTION:
            inside, rubric = False, False
        elif inside and (rubric or RUBRIC.match(line)):
            rubric = True
        else:
            keep.append(line)
    while keep and not keep[-1].strip():
        keep.pop()
    return "\n".join(keep)
