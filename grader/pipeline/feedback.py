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
- GetGrades (nbgrader): the scores; then MarkPending: a written answer not graded by hand
  yet shows "pending" instead of a score, and the page's score says how many points are.
- HideHiddenTests: graded test cells lose their hidden tests; every error is cut down to
  what a student needs (see `HideHiddenTests`), and no output shows hidden-test source or
  a path of the grading machine.
- Bound: at most MAX_TEXT characters of each source and output and MAX_PAGE in all, cut
  with a visible note (after HideHiddenTests, so that no cut splits a line to be redacted).
- The template: nbgrader's feedback template, with each test named by its grade id in the
  table of contents and no MathJax (TEMPLATES). nbconvert's `sanitize_html` is on (no script
  outputs or widgets), and every filter that makes HTML of submitted text ends in
  grader.notebooks.sanitize.clean (nh3). Markdown becomes HTML only in the template, after the
  preprocessors, so its raw HTML is cleaned in the markdown2html filter: the one place every
  markdown cell, text/markdown output and comment goes through. Formulas there (and in
  text/latex outputs) become MathML on this machine (latex2mathml), so they read offline
  and without a script. The page then gets a Content-Security-Policy, first in its head.
"""

from __future__ import annotations

import html
import json
import logging
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import nbformat
from jinja2 import DictLoader, pass_context
from latex2mathml.converter import convert as latex_to_mathml
from nbconvert.exporters import HTMLExporter
from nbconvert.exporters.exporter import ResourcesDict
from nbconvert.filters import strip_files_prefix
from nbconvert.filters.markdown_mistune import InvalidNotebook, IPythonRenderer, MarkdownWithMath
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor, Preprocessor
from nbformat import NotebookNode
from nbformat.v4 import new_markdown_cell
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests, GetGrades, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution
from traitlets import Bool, default

from grader.config import REPO_ROOT, GradingFolder, load_config
from grader.notebooks import cells as nbs
from grader.notebooks.sanitize import BLANK_PNG, clean, html_page, with_csp
from grader.workdir.folder import check_assignments, open_workdir
from grader.workdir.gradebook import coursedir_config, graded_by_hand, is_pending
from grader.workdir.late import apply_penalties

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
    """Every line of every hidden test region and the delimiters, stripped (lines under 8
    characters, such as `else:`, say nothing about the tests and would match everywhere;
    a delimiter is longer)."""
    return {
        line.strip()
        for cell in nb.cells
        for line in nbs.hidden_test_lines(cell.source)
        if len(line.strip()) >= 8
    }


def _redact(text: str, hidden: set[str]) -> str:
    """Printed output: every line that contains a hidden line anywhere is replaced."""
    if not any(h in text for h in hidden):  # the usual case, and quick on a huge output
        return text
    return "\n".join(
        REDACTED if any(h in line for h in hidden) else line for line in text.split("\n")
    )


# Around a line of source that a program quotes: the start or the end of a line of its
# output, or a quote (repr of inspect's code_context, "['    x = 1\n']").
_OPENS = re.compile(r"(?:\A|['\"])[ \t]*\Z")
_CLOSES = re.compile(r"[ \t]*(?:\Z|\\n|['\"])")


def _quotes(line: str, hidden: str) -> bool:
    """Whether `line` of a message quotes `hidden` as source: at a line boundary or in
    quotes, not in the middle of a sentence."""
    at = line.find(hidden)
    while at >= 0:
        if _OPENS.search(line, 0, at) or _CLOSES.match(line, at + len(hidden)):
            return True
        at = line.find(hidden, at + 1)
    return False


def _redact_message(text: str, hidden: set[str]) -> str:
    """An error's name or message: a line is replaced only where it quotes a hidden line as
    source (see `_quotes`), so that a sentence that names a tolerance or an expression that
    a hidden test also holds (`... tolerance rtol=1e-10, atol=0`) stays."""
    found = [h for h in hidden if h in text]
    if not found:
        return text
    return "\n".join(
        REDACTED if any(_quotes(line, h) for h in found) else line for line in text.split("\n")
    )


# An absolute path: not a part of a URL, a fraction, a date, a closing tag or base64.
PATH = re.compile(r"(?<![\w/.:~+%<\\-])/[\w.@+~-]+(?:/[\w.@+~-]+)*/?")
CELL_FILE = re.compile(r"tmp/ipykernel_\d+/\d+\.py")
STDLIB = re.compile(r"python3(?:\.\d+)?")


def _short_path(match: re.Match) -> str:
    """A path of the grading machine as a student may see it: a module by its name
    (numpy/linalg/_linalg.py), the kernel's file of a cell as [cell], a file of the
    submission's folder by its name there, anything else as .../its last part."""
    path = match[0]
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2:
        return "." if parts == ["submission"] else path
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            at = len(parts) - 1 - parts[::-1].index(marker)
            return "/".join(parts[at + 1 :]) or "..."
    if CELL_FILE.fullmatch("/".join(parts)):
        return "[cell]"
    if parts[0] == "submission":
        return "/".join(parts[1:])
    if path.startswith(f"{REPO_ROOT}/"):
        return path[len(str(REPO_ROOT)) + 1 :]
    for at, part in enumerate(parts[:-1]):
        if part.startswith("lib") and STDLIB.fullmatch(parts[at + 1]):
            return "/".join(parts[at + 2 :]) or "..."
    return ".../" + parts[-1]


def scrub_paths(text: str) -> str:
    """`text` without any absolute path of the grading machine (see `_short_path`)."""
    return PATH.sub(_short_path, text) if "/" in text else text


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# IPython's header of a frame in a cell: "Cell In[6], line 10, in perceptron(x, w, b, f)".
CELL_FRAME = re.compile(r"\s*Cell In\[(\d{1,9})\], line (\d{1,9})(?:, in ([\w<>.]{1,100}))?")
RED, END = "\x1b[31m", "\x1b[39m"
FAILURE = "feedback_failure"  # metadata of a failed test cell: its sentence, for the contents
SUMMARY = 200  # characters of that sentence at most


def _summary(ename: str, evalue: str) -> str:
    """An error in one line: the first line of its message, after its name unless it is a
    failed check (an AssertionError with a message: the sentence says it all)."""
    first = next((line.strip() for line in evalue.split("\n") if line.strip()), "")
    if not first or ename != "AssertionError":
        first = f"{ename}: {first}" if first else ename
    return first if len(first) <= SUMMARY else first[: SUMMARY - 3] + "..."


def _is_test(cell) -> bool:
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


class HideHiddenTests(NbGraderPreprocessor):
    """What a page shows of outputs: no hidden-test source, no path of the grading machine.

    Hidden-test source reaches outputs three ways, each handled where it arrives:
    - a traceback quotes the lines of its frames, among them a test cell's. A traceback is
      cut down to the error's name and message, after the one line that a student can act
      on: that of the innermost frame in one of their own cells (not a test cell), taken
      from the cell's source on the page, never from the traceback's text;
    - a tested function can print its caller's source (inspect, linecache, an IPython
      hook): every line of printed output (streams, displayed and returned values) that
      contains a hidden line (8 characters or more) anywhere is replaced;
    - an error's message can embed source the same way. But the message is also the
      sentence the test's author wrote for the student, and it may name a fragment that a
      hidden test holds too (`... tolerance rtol=1e-10, atol=0`), so in a message only a
      line that quotes a hidden line as source (at its start or end, or in quotes, as
      code_context, getsource and linecache give it) is replaced.
    Absolute paths in outputs are shortened (`scrub_paths`)."""

    def preprocess(self, nb, resources):
        self.hidden = hidden_lines(nb)
        # The student's own code cells, by execution count: where a traceback may point.
        self.own = {
            cell.execution_count: cell.source.split("\n")
            for cell in nb.cells
            if cell.cell_type == "code"
            and not _is_test(cell)
            and type(cell.get("execution_count")) is int
        }
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if _is_test(cell):
            ClearHiddenTests(enforce_metadata=False)._remove_hidden_test_region(cell)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                self._error(output)
                if _is_test(cell) and FAILURE not in cell.metadata:
                    cell.metadata[FAILURE] = _summary(output["ename"], output["evalue"])
            if "text" in output:
                output["text"] = scrub_paths(_redact(output["text"], self.hidden))
            for mime in TEXT_DATA:
                if isinstance(output.get("data", {}).get(mime), str):
                    output["data"][mime] = scrub_paths(_redact(output["data"][mime], self.hidden))
        return cell, resources

    def _error(self, output) -> None:
        ename = scrub_paths(_redact_message(output.get("ename", ""), self.hidden))
        evalue = scrub_paths(_redact_message(output.get("evalue", ""), self.hidden))
        sentence = f"{RED}{ename}{END}" + (f": {evalue.strip()}" if evalue.strip() else "")
        output["ename"], output["evalue"] = ename, evalue
        output["traceback"] = [*self._own_frame(output.get("traceback", [])), sentence]

    def _own_frame(self, traceback: list[str]) -> list[str]:
        """The header and the line of the innermost frame in a cell of the student's own,
        or nothing."""
        for entry in reversed(traceback):
            found = CELL_FRAME.match(ANSI.sub("", entry[:1000]))
            if not found or int(found[1]) not in self.own:
                continue
            lines, number = self.own[int(found[1])], int(found[2])
            if 1 <= number <= len(lines):
                where = f", in {found[3]}" if found[3] and found[3] != "<module>" else ""
                return [
                    f"Cell In[{found[1]}], line {number}{where}",
                    f"----> {number} {lines[number - 1]}",
                ]
        return []


class MarkPending(NbGraderPreprocessor):
    """After GetGrades: every answer graded by hand (a written answer) that still waits for
    its grade gets `pending` in its nbgrader metadata (the template shows "pending" instead
    of a score of 0), and resources' nbgrader `pending` holds their points. From the
    gradebook only: defang leaves no `pending` of the submission's own."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            notebook = gb.find_submission_notebook(
                info["notebook"], info["assignment"], info["student"]
            )
            by_hand = graded_by_hand(notebook.notebook)
            waiting = {
                g.name: float(g.max_score)
                for g in notebook.grades
                if g.name in by_hand and is_pending(g)
            }
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader")
            if meta and meta.get("grade") and meta.get("grade_id") in waiting:
                meta["pending"] = True
        info["pending"] = sum(waiting.values())
        return nb, resources


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


# The page's template: nbgrader's feedback template (nbconvert finds it as index.html.j2),
# with every graded cell named by its grade id in the table of contents (nbgrader calls each
# test "Test cell") and text/latex outputs as MathML; and nbconvert's `mathjax` macro, which
# nbgrader's template calls, without the scripts it loads (formulas are MathML already).
FEEDBACK_TEMPLATE = "course_feedback.html.j2"
TEMPLATES = {
    "mathjax.html.j2": "{%- macro mathjax(url='') -%}{%- endmacro -%}",
    FEEDBACK_TEMPLATE: """{%- extends 'index.html.j2' -%}
{% macro entry(cell, label) -%}
{%- set id = cell.metadata.nbgrader.grade_id | e -%}
{%- set score = "pending" if cell.metadata.nbgrader.pending
    else cell.metadata.nbgrader.score | float | round(2) -%}
{%- set of = cell.metadata.nbgrader.points | float | round(2) -%}
<li>{{ label }}<a href="#{{ id }}"><code>{{ id }}</code></a> (Score: {{ score }} / {{ of }})
{%- if cell.metadata.feedback_failure %}
<br><span class="failure">{{ cell.metadata.feedback_failure | e }}</span>{% endif %}</li>
{%- endmacro %}
{% block body %}
<body>
  <style>
  /* A font with a MATH table lays formulas out as TeX does: the platform's, else any. */
  math { font-family: "STIX Two Math", "Cambria Math", "Latin Modern Math",
                      "DejaVu Math TeX Gyre", "STIX Math", math; font-size: 1.1em; }
  .ansi-red-fg, .failure { color: #c9302c; }  /* an error's name; a failed test's sentence */
  </style>
  <a name="top"></a>
  <div class="container">
    <div class="panel panel-default">
      <div class="panel-heading">
        <h4>{{ resources.nbgrader.notebook | e }} (Score: {{ resources.nbgrader.score | float
        | round(2) }} / {{ resources.nbgrader.max_score | float | round(2) }}
        {%- if resources.nbgrader.pending %} + {{ resources.nbgrader.pending | float
        | round(2) }} pending{% endif %})</h4>
        {%- if resources.nbgrader.pending %}
        <p class="pending">Written answers worth {{ resources.nbgrader.pending | float
        | round(2) }} point(s) are still to be graded by hand: they show "pending" and count
        in no score yet.</p>
        {%- endif %}
        <div id="toc">
          <ol>
          {% for cell in nb.cells %}
            {%- set grader = cell.metadata.nbgrader -%}
            {% if grader and grader.grade and not grader.solution %}
            {{ entry(cell, "") }}
            {% elif cell.cell_type == "code" and grader and grader.grade %}
            {{ entry(cell, "Coding free-response ") }}
            {% elif cell.cell_type == "markdown" and grader and grader.grade %}
            {{ entry(cell, "Written response ") }}
            {% elif cell.cell_type == "markdown" and grader and grader.task %}
            {{ entry(cell, "Task ") }}
            {% endif %}
            {% if grader and grader.comment %}
            <li><a href="#comment-{{ grader.grade_id | e }}">Comment</a></li>
            {% endif %}
          {% endfor %}
          {% if resources.nbgrader.late_penalty > 0 %}
            <li class="late-penalty">Late submission penalty (Score: -{{
              resources.nbgrader.late_penalty | float | round(2) }})</li>
          {% endif %}
          </ol>
        </div>
      </div>
      <div class="panel-body">
        <div id="notebook" class="border-box-sizing">
          <div class="container" id="notebook-container">
            {{ super.super() }}
          </div>
        </div>
      </div>
    </div>
  </div>
</body>
{%- endblock body %}
{% block markdowncell scoped %}
{%- if cell.metadata.nbgrader and cell.metadata.nbgrader.pending -%}
<div class="cell border-box-sizing text_cell rendered">
  {{ self.empty_in_prompt() }}
  <div class="panel panel-primary nbgrader_cell">
    <a name="{{ cell.metadata.nbgrader.grade_id | e }}"></a>
    <div class="panel-heading">
      <span class="nbgrader-label">Student's answer</span>
      <span class="pull-right">Score: pending / {{ cell.metadata.nbgrader.points | float
      | round(2) }} <a href="#top">(Top)</a></span>
    </div>
    <div class="panel-body">
      <div class="text_cell_render border-box-sizing rendered_html">
        {{ cell.source | markdown2html | strip_files_prefix }}
      </div>
    </div>
    {%- if cell.metadata.nbgrader.comment %}
    <div class="panel-footer"><div><b>Comments:</b> {{ cell.metadata.nbgrader.comment
      | markdown2html | strip_files_prefix }}</div></div>
    {%- endif %}
  </div>
</div>
{%- else -%}
{{ super() }}
{%- endif -%}
{% endblock markdowncell %}
{% block data_latex scoped %}
<div class="output_latex output_subarea {{ extra_class }}">
{{ output.data['text/latex'] | latex_output }}
</div>
{%- endblock data_latex %}
""",
}

MATH_CACHED = 500  # characters of TeX: longer formulas are converted each time they come
# Formulas in a text/latex output: $$..$$, \[..\], $..$, \(..\), \begin{env}..\end{env}.
LATEX_MATH = re.compile(
    r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\$(.+?)\$|\\\((.+?)\\\)"
    r"|(\\begin\{([A-Za-z]{1,20}\*?)\}.*?\\end\{\6\})",
    re.DOTALL,
)


def mathml(tex: str, display: str = "inline") -> str:
    """TeX as MathML, sanitized; TeX that latex2mathml cannot read as code, with its
    delimiters (`display`: "inline" or "block")."""
    return _mathml(tex, display) if len(tex) <= MATH_CACHED else _mathml.__wrapped__(tex, display)


@lru_cache(maxsize=4096)  # a class's pages show the same formulas, notebook after notebook
def _mathml(tex: str, display: str) -> str:
    try:
        return clean(latex_to_mathml(tex, display=display))
    except Exception:  # any input, any failure of the converter: the TeX instead
        delimiter = "$$" if display == "block" else "$"
        return f"<code>{html.escape(delimiter + tex + delimiter)}</code>"


def latex_output(text: str) -> str:
    """A text/latex output as HTML: its formulas as MathML, the rest as text."""
    parts, end = [], 0
    for found in LATEX_MATH.finditer(text):
        parts.append(html.escape(text[end : found.start()]))
        inline = found[3] or found[4]
        parts.append(
            mathml(inline, "inline")
            if inline
            else mathml(found[1] or found[2] or found[5], "block")
        )
        end = found.end()
    parts.append(html.escape(text[end:]))
    return "".join(parts)


class MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer with formulas as MathML, not left for MathJax."""

    def block_math(self, body: str) -> str:
        return mathml(body, "block")

    def inline_math(self, body: str) -> str:
        return mathml(body, "inline")

    def latex_environment(self, name: str, body: str) -> str:
        return mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", "block")


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTML exporter with every piece of submitted HTML cleaned, formulas as
    MathML, our template, a Content-Security-Policy in the page, and no page made of a
    notebook file too big."""

    @default("extra_loaders")
    def _extra_loaders_default(self):
        return [DictLoader(TEMPLATES)]

    @default("template_file")
    def _template_file_default(self):
        return FEEDBACK_TEMPLATE

    def default_filters(self):
        yield from super().default_filters()
        yield ("clean_html", clean)
        yield ("latex_output", latex_output)
        # nbgrader's template applies it after markdown2html; it turns `files/javascript:...`
        # (a relative URL, which the cleaner keeps) into `javascript:...`.
        yield ("strip_files_prefix", lambda text: clean(strip_files_prefix(text)))

    @pass_context
    def markdown2html(self, context, source):
        try:
            return clean(self._markdown(context, source))
        except InvalidNotebook:  # an image of an attachment that is missing, or was dropped
            source = source.replace("attachment:", "missing-attachment:")
            return clean(self._markdown(context, source))

    def _markdown(self, context, source: str) -> str:
        """HTMLExporter.markdown2html with MathMLRenderer."""
        renderer = MathMLRenderer(
            escape=False,
            attachments=context.get("cell", {}).get("attachments", {}),
            embed_images=self.embed_images,
            path=context.get("resources", {}).get("metadata", {}).get("path", ""),
            anchor_link_text=self.anchor_link_text,
            exclude_anchor_links=self.exclude_anchor_links,
            **self.lexer_options,
        )
        return MarkdownWithMath(renderer=renderer).render(source)

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
    name = str(nbgrader.get("notebook", "notebook"))
    score = ""
    try:
        with Gradebook(nbgrader["db_url"]) as gb:
            notebook = gb.find_submission_notebook(
                nbgrader["notebook"], nbgrader["assignment"], nbgrader["student"]
            )
            points = [float(round(x, 2)) for x in (notebook.score, notebook.max_score)]
            score = f" (Score: {points[0]} / {points[1]})"
    except (KeyError, MissingEntry):
        pass
    return html_page(
        name,
        [
            f"<h4>{html.escape(name)}{score}</h4>",
            f"<p>This notebook file is {size / 2**20:,.0f} MB, more than the "
            f"{MAX_NOTEBOOK_BYTES // 2**20} MB that a feedback page is made from, so its cells "
            "are not shown. It was graded as usual; ask your instructor for the details.</p>",
        ],
        "body { font-family: sans-serif; margin: 2em; }",
    )


def generate_feedback(
    course: GradingFolder, assignments: list[str] | None = None, jobs: int | None = None
) -> list:
    """feedback/<student>/<assignment>/<assignment>.html for every autograded submission,
    one assignment per process, `jobs` (default: the number of cores) at a time."""
    assignments = check_assignments(course, assignments or [])
    apply_penalties(course)  # on the scores as they are now, grades given by hand included
    todo = [a for a in assignments if _students(course, a)]
    jobs = min(jobs or os.cpu_count() or 1, len(todo) or 1)
    # Processes, not threads: nbconvert's rendering is pure Python and holds the GIL. Forked,
    # so that they need no importable __main__ (spawn re-runs it) and start at once.
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        done = pool.map(
            _feedback_for,
            [course.config_file.parent] * len(todo),
            [course.root] * len(todo),
            [course.db] * len(todo),
            todo,
        )
        return [page for pages in done for page in pages]


def _students(course: GradingFolder, assignment: str) -> list[str]:
    return sorted(
        p.name for p in (course.root / "autograded").glob("*") if (p / assignment).is_dir()
    )


def _feedback_for(repo_root: Path, workdir: Path, db: str | None, assignment: str) -> list[Path]:
    """nbgrader's GenerateFeedback for one assignment (in a process of its own)."""
    course = open_workdir(load_config(repo_root, db=db), workdir)
    config = coursedir_config(course)
    config.GenerateFeedback.exporter_class = FeedbackExporter
    config.GenerateFeedback.preprocessors = [
        GetGrades,
        MarkPending,
        HideHiddenTests,
        Bound,
        CSSHTMLHeaderPreprocessor,
    ]
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
    return [
        course.root / "feedback" / s / assignment / f"{assignment}.html"
        for s in _students(course, assignment)
    ]
