"""`python -m grader feedback`: one HTML page per student and notebook.

nbgrader's GenerateFeedback (its template shows every cell's score), with an exporter and
preprocessors of ours. Everything in an autograded notebook comes from the submission except
the graded cells' sources, so the page must be safe to open and cheap to make. In order:

- FeedbackExporter reads no notebook file over MAX_NOTEBOOK_BYTES (its page says why), and
  reads the others as plain JSON, which `defang` turns into what the template expects before
  nbconvert sees it: every field the template prints unescaped (a grade id, an image's
  width, an execution count) of its type; outputs of allowed MIME types only (text, HTML,
  markdown, LaTeX, base64 PNG and JPEG; any other output says what it was instead);
  MAX_OUTPUTS outputs a cell and MAX_ITEMS cells and outputs a page, graded cells aside.
- GetGrades (nbgrader): the scores.
- HideHiddenTests: graded test cells lose their hidden tests, and their error outputs keep
  only the message, because a traceback quotes the line of the (hidden) test that failed. A
  submission can also print what the kernel was asked to run (`inspect.stack()` in a tested
  function, an IPython hook), so every line of any output that quotes a hidden test line is
  replaced too.
- Bound: at most MAX_TEXT characters of each source and output and MAX_PAGE in all, cut
  with a visible note (after HideHiddenTests, so that no cut splits a line to be redacted).
- The template: nbconvert's `sanitize_html` is on (no script outputs or widgets), and every
  filter that makes HTML of submitted text ends in grader.sanitize.clean (nh3). Markdown
  becomes HTML only in the template, after the preprocessors, so its raw HTML is cleaned in
  the markdown2html filter: the one place every markdown cell, text/markdown output and
  comment goes through. The page then gets a Content-Security-Policy, first in its head.
"""

from __future__ import annotations

import html
import json
import logging
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
from jinja2 import pass_context
from nbconvert.exporters import HTMLExporter
from nbconvert.exporters.exporter import ResourcesDict
from nbconvert.filters import strip_files_prefix
from nbconvert.filters.markdown_mistune import InvalidNotebook
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor, Preprocessor
from nbformat import NotebookNode
from nbformat.v4 import new_markdown_cell
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests, GetGrades, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution
from traitlets import Bool

from grader.course_config import CourseConfig, load_config
from grader.gradebook import check_assignments, coursedir_config, open_workdir
from grader.sanitize import BLANK_PNG, CSP_META, clean, with_csp

BEGIN_HIDDEN, END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
REDACTED = "[a line quoting a hidden test, removed]"
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
    if not any(h in text for h in hidden):  # the usual case, and quick on a huge output
        return text
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


def _text(value) -> str | None:
    """A notebook string (one string or nbformat's list of lines), or None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return None


def _image(value) -> str | None:
    """Base64 image data, whitespace removed, if it is that and not too big."""
    text = _text(value)
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
    fields = {key: value.get(key) is True for key in ("grade", "solution", "locked", "task")}
    grade_id = value.get("grade_id")
    fields["grade_id"] = grade_id if isinstance(grade_id, str) and GRADE_ID.match(grade_id) \
        else "unnamed"
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
        return _stream(_text(output.get("text")) or "",
                       "stderr" if output.get("name") == "stderr" else "stdout")
    if kind == "error":
        traceback = output.get("traceback")
        return {"output_type": "error", "ename": _text(output.get("ename")) or "",
                "evalue": _text(output.get("evalue")) or "",
                "traceback": [t for t in traceback if isinstance(t, str)]
                if isinstance(traceback, list) else []}
    if kind not in ("display_data", "execute_result"):
        return _stream("[an output of unknown type, not shown]")
    data, metadata, dropped = {}, {}, []
    for mime, value in _dict(output.get("data")).items():
        kept = _text(value) if mime in TEXT_DATA else _image(value) if mime in IMAGE_DATA \
            else None
        if kept is None:
            dropped.append(mime if isinstance(mime, str) and NAME.match(mime.replace("/", ""))
                           else "unknown")
        else:
            data[mime] = kept
    for mime in IMAGE_DATA:
        size = _dict(_dict(output.get("metadata")).get(mime))
        if mime in data and size:
            metadata[mime] = {key: size[key] for key in ("width", "height")
                              if isinstance(size.get(key), int) and 0 < size[key] < 10_000}
    if not data:
        data["text/plain"] = f"[an output of type {', '.join(sorted(dropped)[:5])}, not shown]"
    result = {"output_type": kind, "data": data, "metadata": metadata}
    if kind == "execute_result":
        count = output.get("execution_count")
        result["execution_count"] = count if type(count) is int else None
    return result


def _defang_cell(cell: dict, number: int, room: int) -> dict:
    """The cell as the template expects it, with `room` outputs at most."""
    kind, source = cell.get("cell_type"), _text(cell.get("source"))
    if kind not in ("code", "markdown", "raw") or source is None:
        kind, source = "markdown", "*[a cell of unknown type, not shown]*"
    # Ids of our own: the page uses them as anchors, and nbformat wants them unique.
    new = {"id": f"cell-{number}", "cell_type": kind, "source": source, "metadata": {}}
    fields = _nbgrader(_dict(cell.get("metadata")).get("nbgrader"))
    if fields:
        new["metadata"]["nbgrader"] = fields
    if kind == "code":
        count = cell.get("execution_count")
        new["execution_count"] = count if type(count) is int else None
        outputs = cell.get("outputs") if isinstance(cell.get("outputs"), list) else []
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
    metadata = {"language_info": {"name": language}} \
        if isinstance(language, str) and NAME.match(language) else {}
    cells, items, skipped = [], 0, 0
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
        {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": cells})


def _skipped_note(number: int, count: int) -> dict:
    # Marked as ours (defang leaves no other metadata than nbgrader's), so Bound keeps it.
    return {"id": f"cell-{number}", "cell_type": "markdown", "metadata": {NOTE: True},
            "source": f"*[... {count:,} cells not shown: a feedback page shows at most "
                      f"{MAX_ITEMS:,} cells and outputs]*"}


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
        return new_markdown_cell(f"*[... {count:,} cells not shown: a feedback page shows "
                                 f"at most {MAX_PAGE:,} characters]*")

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


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTML exporter with every piece of submitted HTML cleaned, a
    Content-Security-Policy in the page, and no page made of a notebook file too big."""

    def default_filters(self):
        yield from super().default_filters()
        yield ("clean_html", clean)
        # nbgrader's template applies it after markdown2html; it turns `files/javascript:...`
        # (a relative URL, which the cleaner keeps) into `javascript:...`.
        yield ("strip_files_prefix", lambda text: clean(strip_files_prefix(text)))

    @pass_context
    def markdown2html(self, context, source):
        try:
            return clean(super().markdown2html(context, source))
        except InvalidNotebook:  # an image of an attachment that is missing, or was dropped
            source = source.replace("attachment:", "missing-attachment:")
            return clean(super().markdown2html(context, source))

    def from_notebook_node(self, nb, resources=None, **kw):
        page, resources = super().from_notebook_node(defang(nb), resources, **kw)
        return with_csp(page), resources

    def from_file(self, file_stream, resources=None, **kw):
        # Not nbformat.read: it validates the whole notebook (jsonschema over every output),
        # then nbconvert copies it three times before the first preprocessor; for a notebook
        # of 100,000s of outputs, minutes. Defanged first, it is a page's worth of cells.
        nb = json.load(file_stream)
        if _dict(nb).get("nbformat") == 3:  # cells in worksheets; defang reads any other shape
            nb = nbformat.convert(nbformat.from_dict(nb), 4)
        return self.from_notebook_node(nb, resources, **kw)

    def from_filename(self, filename, resources=None, **kw):
        size = os.stat(filename).st_size
        if size <= MAX_NOTEBOOK_BYTES:
            return super().from_filename(filename, resources, **kw)
        resources, given = ResourcesDict(), resources
        resources.update(given or {})
        resources["output_extension"] = self.file_extension
        return too_big_page(size, resources.get("nbgrader", {})), resources


def too_big_page(size: int, nbgrader: dict) -> str:
    """The page of a notebook file over MAX_NOTEBOOK_BYTES: its score, and why no more."""
    name = html.escape(str(nbgrader.get("notebook", "notebook")))
    score = ""
    try:
        with Gradebook(nbgrader["db_url"]) as gb:
            notebook = gb.find_submission_notebook(
                nbgrader["notebook"], nbgrader["assignment"], nbgrader["student"])
            points = [float(round(x, 2)) for x in (notebook.score, notebook.max_score)]
            score = f" (Score: {points[0]} / {points[1]})"
    except (KeyError, MissingEntry):
        pass
    return f"""<!DOCTYPE html>
<html>
<head>
{CSP_META}
<meta charset="utf-8">
<title>{name}</title>
</head>
<body style="font-family: sans-serif; margin: 2em">
<h4>{name}{score}</h4>
<p>This notebook file is {size / 2**20:,.0f} MB, more than the {MAX_NOTEBOOK_BYTES // 2**20} MB
that a feedback page is made from, so its cells are not shown. It was graded as usual; ask
your instructor for the details.</p>
</body>
</html>
"""


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
                        [course.root] * len(todo), [course.db] * len(todo), todo)
        return [page for pages in done for page in pages]


def _students(course: CourseConfig, assignment: str) -> list[str]:
    return sorted(
        p.name for p in (course.root / "autograded").glob("*") if (p / assignment).is_dir()
    )


def _feedback_for(repo_root: Path, workdir: Path, db: str | None, assignment: str) -> list[Path]:
    """nbgrader's GenerateFeedback for one assignment (in a process of its own)."""
    course = open_workdir(load_config(repo_root, db=db), workdir)
    config = coursedir_config(course)
    config.GenerateFeedback.exporter_class = FeedbackExporter
    config.GenerateFeedback.preprocessors = [
        GetGrades, HideHiddenTests, Bound, CSSHTMLHeaderPreprocessor]
    # Whatever the course's configuration says: no script outputs or widgets, and no local
    # file read into a page for a markdown image.
    config.FeedbackExporter.sanitize_html = True
    config.FeedbackExporter.embed_images = False
    # nbconvert validates the notebook after each preprocessor: once, at the end, instead.
    config.FeedbackExporter.optimistic_validation = True
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    coursedir.student_id = "*"
    app = GenerateFeedback(coursedir=coursedir, config=config)
    app.force = True
    app.log.setLevel(logging.ERROR)
    app.start()
    return [course.root / "feedback" / s / assignment / f"{assignment}.html"
            for s in _students(course, assignment)]
