"""Reading and describing notebooks and their nbgrader cells."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat import NotebookNode

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"


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


def is_solution(cell: NotebookNode) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


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
        line
        for line in source.splitlines()
        if line.strip() not in (BEGIN_SOLUTION, END_SOLUTION)
    ]
    return "\n".join(keep)

