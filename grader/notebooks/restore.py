"""A submission put back in the shape of its release: graded and locked cells restored whole,
and notes on what the student had done to them.

The main process of autograde runs this on every submission before a worker executes it,
so that no edit to a test, a locked cell or a cell's nbgrader metadata changes a grade.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

import nbformat


def grade_id_of(cell) -> str | None:
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return grade_id if isinstance(grade_id, str) else None


def _protected(cell) -> bool:
    """A release cell the student may not change: a test, locked or a task. (A solution
    cell is the student's, but keeps its place, type and metadata; so is an answer graded
    by hand, a graded solution cell such as a written answer.)"""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(grade_id_of(cell)) and (
        any(meta.get(k) for k in ("locked", "task"))
        or bool(meta.get("grade"))
        and not meta.get("solution")
    )


def _graded(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade"))


def _anchor(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return _protected(cell) or (bool(grade_id_of(cell)) and bool(meta.get("solution")))


def _anchors(release) -> dict[str, Any]:
    """The release's cells that keep their place, by grade id."""
    return {grade_id: c for c in release.cells if _anchor(c) and (grade_id := grade_id_of(c))}


RESTORED_KEYS = ("grade", "solution", "locked", "task", "points")
CELL_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")  # nbformat's schema of a cell id


def restore_from_release(nb, release):
    """The submission with every graded and locked cell of the release back whole.

    Graded, locked and task cells come from the release (source, metadata with tags, cell
    type), solution cells (written answers graded by hand too) keep the student's source
    but get the release's type and metadata; all of them in the release's order. The
    student's own cells follow the graded, locked or solution cell they followed in the
    submission (those before the first one stay first). A graded or locked cell the student
    deleted comes back (a written answer as the release's stub, which scores 0); of a
    duplicated grade id only the first cell counts, copies (and cells claiming a grade id
    the release lacks) become plain cells without nbgrader metadata. Notebook metadata
    (the kernelspec too) comes from the release; outputs are dropped.
    """
    anchors = _anchors(release)
    answers: dict[str, Any] = {}
    after: dict[str | None, list] = {None: []}
    current = None
    for cell in nb.cells:
        grade_id = grade_id_of(cell)
        if grade_id is not None and grade_id in anchors and grade_id not in answers:
            answers[grade_id] = cell
            current = grade_id
            after[current] = []
        elif cell.get("cell_type") in ("code", "markdown", "raw"):
            after[current].append(_plain(cell))
    cells = list(after[None])
    released = set()  # id() of the cells that come from the release
    for grade_id, original in anchors.items():
        if grade_id not in answers and not (_protected(original) or _graded(original)):
            continue  # a deleted solution cell: its stub would undo the student's answer
        restored = copy.deepcopy(original)
        released.add(id(restored))
        if grade_id in answers and not _protected(original):
            restored.source = answers[grade_id].get("source", "")
            if "attachments" in answers[grade_id] and restored.cell_type == "markdown":
                restored.attachments = copy.deepcopy(answers[grade_id].attachments)
        _clear(restored)
        cells.append(restored)
        cells.extend(after.get(grade_id, []))
    seen = set()
    # Cell ids unique and well-formed: the release's cells keep theirs, the student's give way.
    for cell in sorted(cells, key=lambda cell: id(cell) not in released):
        if "id" in cell and (cell.id in seen or not CELL_ID.fullmatch(str(cell.id))):
            cell.id = uuid.uuid4().hex[:8]
        seen.add(cell.get("id"))
    restored_nb = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(release.metadata))
    restored_nb.nbformat, restored_nb.nbformat_minor = release.nbformat, release.nbformat_minor
    return restored_nb


def _plain(cell):
    """A student's cell as a plain cell of the same type, without nbgrader metadata."""
    metadata = {
        k: copy.deepcopy(v) for k, v in dict(cell.get("metadata", {})).items() if k != "nbgrader"
    }
    make = {
        "code": nbformat.v4.new_code_cell,
        "markdown": nbformat.v4.new_markdown_cell,
        "raw": nbformat.v4.new_raw_cell,
    }[cell.cell_type]
    plain = make(source=cell.get("source", ""), metadata=metadata)
    if "attachments" in cell and cell.cell_type != "code":
        plain.attachments = copy.deepcopy(cell.attachments)
    plain.id = str(cell.get("id") or uuid.uuid4().hex[:8])
    return plain


def _clear(cell) -> None:
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None


def graded_cell_notes(nb, graded_cells: set[str], release) -> list[str]:
    """What the student did to graded and locked cells, all of which restore_from_release
    undoes: the notes tell the student and the instructor."""
    anchors = _anchors(release)
    ids = [grade_id for c in nb.cells if (grade_id := grade_id_of(c))]
    first: dict[str, Any] = {}
    for cell in nb.cells:
        grade_id = grade_id_of(cell)
        if grade_id is not None and grade_id in anchors:
            first.setdefault(grade_id, cell)
    notes = []
    protected = {g for g, c in anchors.items() if _protected(c)}
    missing = sorted((graded_cells | protected) - set(first))
    if missing:
        notes.append(
            f"graded cell(s) deleted or stripped of their metadata, restored from "
            f"the release: {', '.join(missing)}"
        )
    doubled = sorted({i for i in ids if ids.count(i) > 1})
    if doubled:
        notes.append(f"duplicated grade id(s), counted once: {', '.join(doubled)}")
    unknown = sorted({i for i in ids if i not in anchors})
    if unknown:
        notes.append(
            f"cell(s) claiming grade ids the assignment lacks, made plain: "
            f"{', '.join(unknown)[:200]}"
        )
    edited = sorted(
        g
        for g, c in first.items()
        if g in protected and str(c.get("source", "")).strip() != anchors[g].source.strip()
    )
    if edited:
        notes.append(f"locked cell(s) edited, restored from the source: {', '.join(edited)}")
    changed = []
    for grade_id, cell in sorted(first.items()):
        what = _changes(cell, anchors[grade_id])
        if what:
            changed.append(f"{grade_id} ({', '.join(what)})")
    if changed:
        notes.append(
            f"graded cell(s) with changed metadata, restored from the release: {'; '.join(changed)}"
        )
    order = [g for g in anchors if g in first]
    moved = _moved([g for g in first if g in anchors], order)
    if moved:
        notes.append(f"graded cell(s) moved, put back in place: {', '.join(moved)}")
    return notes


def _changes(cell, original) -> list[str]:
    """Which of what restore_from_release restores the student changed."""
    changes = []
    if cell.get("cell_type") != original.cell_type:
        changes.append(f"cell type {str(cell.get('cell_type'))[:20]}")
    meta = cell.get("metadata", {}).get("nbgrader", {})
    wanted = original.metadata.nbgrader
    for key in RESTORED_KEYS:
        if bool(meta.get(key)) != bool(wanted.get(key)) or (
            key == "points" and _points(meta.get(key)) != _points(wanted.get(key))
        ):
            changes.append(key if key != "grade" else "grade flag")
    tags = cell.get("metadata", {}).get("tags", [])
    if sorted(map(str, tags if isinstance(tags, list) else [tags])) != sorted(
        original.metadata.get("tags", [])
    ):
        changes.append("tags")
    return changes


def _points(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _moved(submitted: list[str], release: list[str]) -> list[str]:
    """The grade ids out of the release's order: those not in a longest run in order."""
    rank = {g: i for i, g in enumerate(release)}
    seq = [rank[g] for g in submitted]
    best: list[list[int]] = []
    for i, r in enumerate(seq):
        before = [b for j, b in enumerate(best) if seq[j] < r]
        longest = max(before, key=len) if before else []
        best.append([*longest, i])
    longest_run: list[int] = max(best, key=len) if best else []
    keep = set(longest_run)
    return [g for i, g in enumerate(submitted) if i not in keep]
