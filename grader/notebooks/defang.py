"""A graded notebook, which a student wrote, made safe and small enough for a page.

`defang` reads a notebook as plain JSON of any shape and returns what nbconvert's templates
expect: every field a template prints unescaped (a grade id, an image's width, an execution
count) of its type; outputs of allowed MIME types only (text, HTML, markdown, LaTeX, base64
PNG and JPEG; any other output says what it was instead); MAX_OUTPUTS outputs a cell and
MAX_ITEMS cells and outputs a page, graded cells aside. `Bound`, a preprocessor, then cuts
each source and output to MAX_TEXT characters and the page to MAX_PAGE, each cut marked.
The feedback pages (grader.pipeline.feedback) and the class report read notebooks this way.
"""

from __future__ import annotations

import re
from typing import Any

import nbformat
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from nbformat.v4 import new_markdown_cell
from traitlets import Bool

from grader.notebooks import cells as nbs
from grader.notebooks.sanitize import BLANK_PNG

TEXT_DATA = ("text/plain", "text/html", "text/markdown", "text/latex")
IMAGE_DATA = ("image/png", "image/jpeg")

# What a page shows at most. A course notebook (about 1 MB, mostly figures) stays far below.
MAX_NOTEBOOK_BYTES = 50 * 2**20  # a bigger autograded file is not read
MAX_TEXT = 100_000  # characters of one source, one output's text of one type, one traceback
MAX_IMAGE = 2_000_000  # base64 characters of one image
MAX_OUTPUTS = 100  # outputs of one cell
MAX_ITEMS = 1_000  # cells and outputs of a page, graded cells aside (a course notebook: 75)
MAX_PAGE = 5_000_000  # characters of all sources and outputs of a page, images included
ITEM_COST = 200  # what each cell and output counts on top of its text
GRADED_SOURCE, GRADED_OUTPUT = 10_000, 1_000  # what a graded cell shows of a full page
NOTE = "feedback_note"  # metadata of the cells that say what was left out

BASE64 = re.compile(r"[A-Za-z0-9+/=]*\Z")
GRADE_ID = re.compile(r"[A-Za-z0-9_.-]{1,100}\Z")
NAME = re.compile(r"[A-Za-z0-9_.+-]{1,64}\Z")
ATTACHMENT = re.compile(r"attachment:([^\s()<>\"']{1,64})")


def _image(value) -> str | None:
    """Base64 image data, whitespace removed, if it is that and not too big."""
    text = nbs.text_of(value)
    if text is None or len(text) > 2 * MAX_IMAGE:
        return None
    text = "".join(text.split())
    return text if len(text) <= MAX_IMAGE and BASE64.match(text) else None


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _nbgrader(value) -> dict | None:
    """The fields of nbgrader's cell metadata that the template and the preprocessors read,
    each of its type; a grade id that could not be nbgrader's becomes a neutral one."""
    if not isinstance(value, dict):
        return None
    fields: dict[str, bool | str | int | float] = {
        key: value.get(key) is True for key in ("grade", "solution", "locked", "task")
    }
    grade_id = value.get("grade_id")
    fields["grade_id"] = (
        grade_id if isinstance(grade_id, str) and GRADE_ID.match(grade_id) else "unnamed"
    )
    points = value.get("points")
    if isinstance(points, int | float) and not isinstance(points, bool) and 0 <= points < 1e6:
        fields["points"] = points
    return fields


def _is_graded(cell) -> bool:
    fields = _dict(_dict(cell.get("metadata")).get("nbgrader"))
    return any(fields.get(key) is True for key in ("grade", "solution", "task"))


def _stream(text: str, name: str = "stdout") -> dict:
    return {"output_type": "stream", "name": name, "text": text}


def _defang_output(output) -> dict:
    output = _dict(output)
    kind = output.get("output_type")
    if kind == "stream":
        return _stream(
            nbs.text_of(output.get("text")) or "",
            "stderr" if output.get("name") == "stderr" else "stdout",
        )
    if kind == "error":
        traceback = output.get("traceback")
        return {
            "output_type": "error",
            "ename": nbs.text_of(output.get("ename")) or "",
            "evalue": nbs.text_of(output.get("evalue")) or "",
            "traceback": [t for t in traceback if isinstance(t, str)]
            if isinstance(traceback, list)
            else [],
        }
    if kind not in ("display_data", "execute_result"):
        return _stream("[an output of unknown type, not shown]")
    data, metadata, dropped = {}, {}, []
    for mime, value in _dict(output.get("data")).items():
        kept = (
            nbs.text_of(value)
            if mime in TEXT_DATA
            else _image(value)
            if mime in IMAGE_DATA
            else None
        )
        if kept is None:
            dropped.append(
                mime if isinstance(mime, str) and NAME.match(mime.replace("/", "")) else "unknown"
            )
        else:
            data[mime] = kept
    for mime in IMAGE_DATA:
        size = _dict(_dict(output.get("metadata")).get(mime))
        if mime in data and size:
            metadata[mime] = {
                key: size[key]
                for key in ("width", "height")
                if isinstance(size.get(key), int) and 0 < size[key] < 10_000
            }
    if not data:
        data["text/plain"] = f"[an output of type {', '.join(sorted(dropped)[:5])}, not shown]"
    result = {"output_type": kind, "data": data, "metadata": metadata}
    if kind == "execute_result":
        count = output.get("execution_count")
        result["execution_count"] = count if type(count) is int else None
    return result


def _defang_cell(cell: dict, number: int, room: int) -> dict:
    """The cell as the template expects it, with `room` outputs at most."""
    kind, source = cell.get("cell_type"), nbs.text_of(cell.get("source"))
    if kind not in ("code", "markdown", "raw") or source is None:
        kind, source = "markdown", "*[a cell of unknown type, not shown]*"
    # Ids of our own: the page uses them as anchors, and nbformat wants them unique.
    new: dict[str, Any] = {
        "id": f"cell-{number}",
        "cell_type": kind,
        "source": source,
        "metadata": {},
    }
    fields = _nbgrader(_dict(cell.get("metadata")).get("nbgrader"))
    if fields:
        new["metadata"]["nbgrader"] = fields
    if kind == "code":
        count = cell.get("execution_count")
        new["execution_count"] = count if type(count) is int else None
        given = cell.get("outputs")
        outputs: list = given if isinstance(given, list) else []
        new["outputs"] = [_defang_output(o) for o in outputs[:room]]
        if len(outputs) > room:
            new["outputs"].append(_stream(f"[... {len(outputs) - room:,} more outputs not shown]"))
    if kind == "markdown":
        images = {}
        for name, bundle in _dict(cell.get("attachments")).items():
            kept = {m: d for m in IMAGE_DATA if (d := _image(_dict(bundle).get(m)))}
            if isinstance(name, str) and NAME.match(name) and kept:
                images[name] = kept
        # nbconvert refuses a page with an image of a missing attachment: a blank one instead.
        for name in ATTACHMENT.findall(source[:MAX_TEXT]):
            images.setdefault(name, {"image/png": BLANK_PNG})
        if images:
            new["attachments"] = images
    return new


def defang(nb) -> NotebookNode:
    """A notebook (as read from JSON, any shape) as the template expects it: every cell and
    output of allowed types only (see the module's docstring), MAX_ITEMS cells and outputs
    at most besides the graded cells, the notebook's metadata reduced to its language."""
    nb = _dict(nb)
    language = _dict(_dict(nb.get("metadata")).get("language_info")).get("name")
    metadata = (
        {"language_info": {"name": language}}
        if isinstance(language, str) and NAME.match(language)
        else {}
    )
    cells: list[dict] = []
    items = skipped = 0
    for cell in nb.get("cells") if isinstance(nb.get("cells"), list) else []:
        cell = _dict(cell)
        graded = _is_graded(cell)
        if items >= MAX_ITEMS and not graded:
            skipped += 1
            continue
        if skipped:
            cells.append(_skipped_note(len(cells), skipped))
            skipped = 0
        room = MAX_OUTPUTS if graded else max(0, min(MAX_OUTPUTS, MAX_ITEMS - items - 1))
        cells.append(_defang_cell(cell, len(cells), room))
        items += 1 + len(cells[-1].get("outputs", []))
    if skipped:
        cells.append(_skipped_note(len(cells), skipped))
    return nbformat.from_dict(
        {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": cells}
    )


def _skipped_note(number: int, count: int) -> dict:
    # Marked as ours (defang leaves no other metadata than nbgrader's), so Bound keeps it.
    return {
        "id": f"cell-{number}",
        "cell_type": "markdown",
        "metadata": {NOTE: True},
        "source": f"*[... {count:,} cells not shown: a feedback page shows at most "
        f"{MAX_ITEMS:,} cells and outputs]*",
    }


class Bound(Preprocessor):
    """At most MAX_TEXT characters of each text and MAX_PAGE characters in all, each cut
    marked. Once the page is full, the other cells are left out (a note counts them), except
    graded cells: they show with their scores, the first GRADED_SOURCE characters of their
    source and GRADED_OUTPUT of each output's text."""

    enabled = Bool(True)

    def preprocess(self, nb, resources):
        self.left = MAX_PAGE
        cells, skipped = [], 0
        for cell in nb.cells:
            note = NOTE in cell.metadata
            if self.left <= 0 and not _is_graded(cell) and not note:
                skipped += 1
                continue
            if skipped:
                cells.append(self._skipped(skipped))
                skipped = 0
            cells.append(cell if note else self._bound_cell(cell, _is_graded(cell)))
        if skipped:
            cells.append(self._skipped(skipped))
        nb.cells = cells
        return nb, resources

    def _take(self, text: str, floor: int, limit: int = MAX_TEXT) -> str:
        keep = max(0, min(len(text), limit, max(self.left, floor)))
        self.left -= keep
        if keep == len(text):
            return text
        return f"{text[:keep]}\n[... {len(text) - keep:,} characters not shown]"

    @staticmethod
    def _skipped(count: int) -> NotebookNode:
        return new_markdown_cell(
            f"*[... {count:,} cells not shown: a feedback page shows "
            f"at most {MAX_PAGE:,} characters]*"
        )

    def _bound_cell(self, cell, graded: bool) -> NotebookNode:
        self.left -= ITEM_COST
        cell.source = self._take(cell.source, GRADED_SOURCE if graded else 0)
        if cell.cell_type != "code":
            return cell
        floor = GRADED_OUTPUT if graded else 0
        for output in cell.outputs:
            self.left -= ITEM_COST
            if output.output_type == "stream":
                output.text = self._take(output.text, floor)
            elif output.output_type == "error":
                output.ename = self._take(output.ename, floor, 1000)
                output.evalue = self._take(output.evalue, floor, 1000)
                output.traceback = [self._take("\n".join(output.traceback), floor)]
            else:
                for mime in list(output.data):
                    if mime not in IMAGE_DATA:
                        output.data[mime] = self._take(output.data[mime], floor)
                    elif len(output.data[mime]) <= self.left:
                        self.left -= len(output.data[mime])
                    else:
                        del output.data[mime]
                        output.data.setdefault("text/plain", "[an image, not shown]")
        return cell
