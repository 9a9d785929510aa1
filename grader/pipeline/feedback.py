"""`python -m grader feedback`: one HTML page per student and notebook.

nbgrader's GenerateFeedback (its template shows every cell's score), with an exporter and
preprocessors of ours. Everything in an autograded notebook comes from the submission except
the graded cells' sources, so the page must be safe to open and cheap to make. In order:

- FeedbackExporter reads no notebook file over MAX_NOTEBOOK_BYTES (its page says why), and
  reads the others as plain JSON, which `defang` (grader.notebooks.defang) turns into what
  the template expects before nbconvert sees it: every field the template prints unescaped
  (a grade id, an image's width, an execution count) of its type; outputs of allowed MIME
  types only; a bounded number of cells and outputs, graded cells aside.
- GetGrades (nbgrader): the scores; then MarkPending: a written answer not graded by hand
  yet shows "pending" instead of a score, and the page's score says how many points are.
- HideHiddenTests (grader.notebooks.redaction): graded test cells lose their hidden tests;
  every error is cut down to what a student needs, and no output shows hidden-test source
  or a path of the grading machine.
- Bound (grader.notebooks.defang): a bounded number of characters of each source and
  output and of the page, cut with a visible note (after HideHiddenTests, so that no cut
  splits a line to be redacted).
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

import nbformat
from jinja2 import DictLoader, pass_context
from latex2mathml.converter import convert as latex_to_mathml
from nbconvert.exporters import HTMLExporter
from nbconvert.exporters.exporter import ResourcesDict
from nbconvert.filters import strip_files_prefix
from nbconvert.filters.markdown_mistune import InvalidNotebook, IPythonRenderer, MarkdownWithMath
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import GetGrades, NbGraderPreprocessor
from traitlets import default

from grader.config import GradingFolder, load_config
from grader.notebooks.defang import MAX_NOTEBOOK_BYTES, Bound, defang
from grader.notebooks.redaction import HideHiddenTests
from grader.notebooks.sanitize import clean, html_page, with_csp
from grader.workdir.folder import check_assignments, open_workdir
from grader.workdir.gradebook import coursedir_config, graded_by_hand, is_pending
from grader.workdir.late import apply_penalties


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
        if (
            isinstance(nb, dict) and nb.get("nbformat") == 3
        ):  # cells in worksheets; defang reads any other shape
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
