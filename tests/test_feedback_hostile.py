"""Feedback pages of hostile submissions: safe to open, and bounded in size and cost.

One graded tiny class (the two-exercise course of conftest.py), its autograded notebooks
written here as nbgrader's autograde leaves them (hidden tests restored, outputs kept) with
their rows in the gradebook, so that they can carry outputs no kernel would write:

- ada: right everywhere, an ordinary page;
- mallory: active HTML in a markdown cell, a raw cell and every kind of output;
- eve: a notebook that breaks the format where the template prints fields as they are;
- bulky: more text than a page shows (a huge markdown cell, output and traceback,
  many outputs, more cells than fit);
- giant: a notebook file over the size a page is made from.

Every attack tries to set `window.__pwned` and `document.title`, add a DOM element, log
to the console and open an alert. The pages are checked as HTML, then opened in Chromium.
A page holds no script at all: formulas are MathML, made when the page is.
"""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from conftest import MINI, build_class_course
from nbgrader.api import Gradebook

from grader.notebooks import defang
from grader.notebooks.sanitize import CSP, MATHML_ATTRIBUTES, MATHML_TAGS
from grader.pipeline.feedback import generate_feedback
from grader.workdir import folder, gradebook

JS = (
    "window.__pwned=1;document.title='PWNED';"
    "document.documentElement.appendChild(document.createElement('pwned-marker'));"
    "console.log('PWNED');alert('PWNED')"
)
MARKUP = "</title></code></pre></div>\"'><script>" + JS + "</script>"
REMOTE = "https://attacker.invalid"
# A 1x1 PNG.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8ffff3f0005fe02fea7d605e7"
        "0000000049454e44ae426082"
    )
).decode()
HIDDEN_TEST = "assert square(-2) == 4"

MARKDOWN = f"""## Mallory's notes

Plain words stay: **bold**, a [real link](https://example.org) and $x < y$.

<script>{JS}</script>
<img src=x onerror="{JS}">
<svg onload="{JS}"><script>{JS}</script><circle r="5"/></svg>
<iframe src="javascript:{JS}"></iframe>
<iframe srcdoc="<script>{JS}</script>"></iframe>
<a href="javascript:{JS}">a javascript link</a>
<a href="files/javascript:{JS}">a files/ link</a>
<a href="data:text/html,<script>{JS}</script>">a data link</a>
<meta http-equiv="refresh" content="0;url=javascript:{JS}">
<meta http-equiv="refresh" content="0;url={REMOTE}/refresh">
<style>body {{ background: url({REMOTE}/style.png) }} .score {{ display: none }}</style>
<link rel="stylesheet" href="{REMOTE}/sheet.css">
<object data="javascript:{JS}"></object><embed src="{REMOTE}/embed">
<form action="{REMOTE}/form"><input autofocus onfocus="{JS}"><button>send</button></form>
<details open ontoggle="{JS}"><summary>details</summary></details>
<base href="{REMOTE}/">
<div style="position:fixed;top:0;background:url({REMOTE}/div.png)">Score: 3.0 / 3.0</div>
<video src="{REMOTE}/v.mp4" autoplay onplay="{JS}"></video>
<math><mtext><table><mglyph><style><img src=x onerror="{JS}">

[a markdown javascript link](javascript:window.__pwned=1)

![a remote image]({REMOTE}/track.png)
"""


def display(data: dict, metadata: dict | None = None) -> dict:
    return {"output_type": "display_data", "data": data, "metadata": metadata or {}}


HOSTILE_OUTPUTS = [
    display(
        {"application/javascript": JS, "text/plain": "<IPython.core.display.Javascript object>"}
    ),
    display(
        {
            "text/html": f'<b>bold html</b><script>{JS}</script><img src=x onerror="{JS}">'
            f'<iframe src="{REMOTE}/frame"></iframe><object data=x></object>',
            "text/plain": "<IPython.core.display.HTML object>",
        },
        {"text/html": {"isolated": True}},
    ),
    display(
        {
            "image/svg+xml": f'<svg xmlns="http://www.w3.org/2000/svg" onload="{JS}">'
            f"<script>{JS}</script></svg>"
        }
    ),
    display(
        {
            "application/vnd.jupyter.widget-view+json": {
                "model_id": "abc",
                "version_major": 2,
                "version_minor": 0,
            },
            "text/plain": "IntSlider(value=0)",
        }
    ),
    display(
        {
            "text/markdown": f"**markdown output** <script>{JS}</script> "
            "[link](javascript:window.__pwned=1)"
        }
    ),
    display(
        {"image/png": PNG},
        {
            "image/png": {"width": f"1 onerror={JS}"},
            "filenames": {"image/png": f"{REMOTE}/filename.png"},
        },
    ),
    display({"text/vnd.mermaid": "graph TD; A-->B", "application/x-unknown": MARKUP}),
    display({"text/latex": f"$x$ {MARKUP}"}),
    {
        "output_type": "execute_result",
        "execution_count": 7,
        "data": {"text/plain": f"plain text {MARKUP}"},
        "metadata": {},
    },
    {"output_type": "stream", "name": "stdout", "text": f"printed {MARKUP}\n"},
]

# Not valid nbformat, read all the same: each is a field the template prints unescaped,
# or a type it does not expect.
BROKEN_OUTPUTS = [
    {
        "output_type": "execute_result",
        "execution_count": MARKUP,
        "data": {"text/plain": "an execution count with markup"},
        "metadata": {},
    },
    display({"image/png": f'x" onerror="{JS}'}),
    display({"image/jpeg": PNG}, {"image/jpeg": {"height": MARKUP}}),
    {"output_type": MARKUP, "html": f"<script>{JS}</script>"},
    {"output_type": "error", "ename": MARKUP, "evalue": MARKUP, "traceback": [MARKUP, 3]},
    {"output_type": "stream", "name": MARKUP, "text": ["line one ", MARKUP]},
]


def answered(course, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The source notebook (so hidden tests are in, as after autograde) with these
    answers in the solution cells."""
    nb = nbformat.read(course.root / "source" / MINI / f"{MINI}.ipynb", 4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
        if cell.cell_type == "code":
            cell.execution_count = 1
    return nb


RIGHT = {"square": "def square(x):\n    return x * x", "cube": "def cube(x):\n    return x ** 3"}


def cell_of(nb, grade_id: str):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def printing(nb):
    """The ungraded cell `print(square(4))`."""
    return next(c for c in nb.cells if c.source == "print(square(4))")


def ada(course):
    nb = answered(course, RIGHT)
    printing(nb).outputs = [{"output_type": "stream", "name": "stdout", "text": "16\n"}]
    return nb


def mallory(course):
    nb = answered(course, {**RIGHT, "square": "def square(x):\n    return x"})
    test = cell_of(nb, "test_square")
    # A failing test cell: its traceback quotes the hidden test, which must not show.
    test.outputs = [
        {
            "output_type": "error",
            "ename": "AssertionError",
            "evalue": "square(-2) should be 4",
            "traceback": [f"----> 4 {HIDDEN_TEST}, 'square(-2) should be 4'"],
        }
    ]
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(MARKDOWN))
    raw = nbformat.v4.new_raw_cell(f'raw words <script>{JS}</script><img src=x onerror="{JS}">')
    raw.metadata["raw_mimetype"] = "text/html"
    nb.cells.insert(2, raw)
    printing(nb).outputs = HOSTILE_OUTPUTS
    printing(nb).metadata["tags"] = [MARKUP]
    nb.metadata["title"] = MARKUP
    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {
            "state": {},
            "version_major": 2,
            "version_minor": 0,
            "x": MARKUP,
        }
    }
    return nb


def eve(course):
    nb = answered(course, RIGHT)
    cell = printing(nb)
    cell.outputs = BROKEN_OUTPUTS
    cell.id = MARKUP
    cell.metadata["nbgrader"] = {
        "grade": False,
        "solution": False,
        "task": MARKUP,
        "grade_id": MARKUP,
        "points": MARKUP,
    }
    odd = nbformat.v4.new_markdown_cell("an odd cell")
    odd.cell_type = MARKUP
    nb.cells.append(odd)
    nb.cells.append({"cell_type": "markdown", "metadata": {}, "source": {"not": "text"}})
    markdown = nbformat.v4.new_markdown_cell(
        "![svg](attachment:evil.svg) ![png](attachment:ok.png) ![gone](attachment:gone.png)"
    )
    markdown.attachments = {
        "evil.svg": {
            "image/svg+xml": base64.b64encode(
                f'<svg xmlns="http://www.w3.org/2000/svg" onload="{JS}"/>'.encode()
            ).decode()
        },
        "ok.png": {"image/png": PNG},
    }
    nb.cells.append(markdown)
    return nb


BULKY_TEXT = 300_000  # characters of each huge piece, over defang.MAX_TEXT


def bulky(course):
    nb = answered(course, RIGHT)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("# " + "markdown words " * (BULKY_TEXT // 15)))
    cell = printing(nb)
    cell.outputs = [
        {"output_type": "stream", "name": "stdout", "text": "printed line\n" * (BULKY_TEXT // 13)},
        display({"text/html": "<p>html words</p>" * (BULKY_TEXT // 17)}),
        {
            "output_type": "error",
            "ename": "ValueError",
            "evalue": "e" * BULKY_TEXT,
            "traceback": ["frame\n" * (BULKY_TEXT // 6)],
        },
    ] + [
        {"output_type": "stream", "name": "stdout", "text": f"output {i}\n"}
        for i in range(defang.MAX_OUTPUTS + 50)
    ]
    # Then enough cells of text to fill a page twice over and more cells than a page has,
    # before exercise 1.2's cells.
    filler = defang.MAX_PAGE * 2 // defang.MAX_TEXT
    at = nb.cells.index(cell) + 1
    nb.cells[at:at] = [
        nbformat.v4.new_code_cell(f"x = {i}  # " + "c" * defang.MAX_TEXT) for i in range(filler)
    ] + [nbformat.v4.new_code_cell(f"y = {i}") for i in range(defang.MAX_ITEMS)]
    return nb


def write_giant(path: Path) -> None:
    """A notebook file just over defang.MAX_NOTEBOOK_BYTES: one markdown cell."""
    size = defang.MAX_NOTEBOOK_BYTES + 2**20
    with open(path, "w") as f:
        f.write(
            '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": '
            '[{"cell_type": "markdown", "id": "a", "metadata": {}, "source": "'
        )
        block = "giant words " * 100_000
        for _ in range(size // len(block) + 1):
            f.write(block)
        f.write('"}]}')


STUDENTS = {  # student -> (notebook, (points of test_square, test_cube))
    "ada": (ada, (2, 1)),
    "mallory": (mallory, (0, 1)),
    "eve": (eve, (2, 1)),
    "bulky": (bulky, (2, 1)),
    "giant": (None, (1, 1)),
}


def grade(course, student: str, points: tuple[int, int]) -> None:
    """The gradebook's rows for a submission, as autograde leaves them."""
    with Gradebook(gradebook.db_url(course), course.course_id) as gb:
        gb.update_or_create_student(student)
        gb.add_submission(MINI, student)
        for grade_id, score in zip(["test_square", "test_cube"], points, strict=True):
            gb.find_grade(grade_id, MINI, MINI, student).auto_score = score
        gb.db.commit()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_feedback")
    repo = build_class_course(root / "course")
    course = folder.prepare(repo, root / "grading", [MINI])
    for student, (make, points) in STUDENTS.items():
        grade(course, student, points)
        path = course.root / "autograded" / student / MINI / f"{MINI}.ipynb"
        path.parent.mkdir(parents=True)
        if make is None:
            write_giant(path)
        else:
            path.write_text(json.dumps(make(course)))  # nbformat.write would refuse eve's
    written = generate_feedback(course, [MINI], jobs=1)
    assert len(written) == len(STUDENTS)
    return {p.parent.parent.name: p for p in written}


class Elements(HTMLParser):
    """Every start tag of a page with its attributes, and the contents of its scripts."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.scripts, self._in_script = [], [], False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append((dict(attrs), ""))

    def handle_data(self, data):
        if self._in_script:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag):
        self._in_script = False


@pytest.mark.parametrize("student", STUDENTS)
def test_page_holds_nothing_active(pages, student):
    page = pages[student].read_text()
    elements = Elements(page)
    assert not elements.scripts, f"{student}: scripts: {elements.scripts}"
    assert not re.search(r"<script", page, re.IGNORECASE), student
    # The same, without the parser: in no tag an event handler or a javascript: URL.
    assert not re.search(r"<[a-z][^>]*\son\w+\s*=", page, re.IGNORECASE), student
    assert not re.search(r"<[a-z][^>]*javascript:", page, re.IGNORECASE), student
    tags = {tag for tag, _ in elements.tags}
    assert not tags & {
        "iframe",
        "object",
        "embed",
        "form",
        "input",
        "base",
        "link",
        "svg",
        "video",
        "audio",
        "frame",
        "applet",
        "annotation-xml",
        "mglyph",
    }, student
    metas = [attrs for tag, attrs in elements.tags if tag == "meta"]
    assert [m for m in metas if m.get("http-equiv")] == [
        {"http-equiv": "Content-Security-Policy", "content": CSP}
    ], student
    assert page.index("Content-Security-Policy") < page.index("<title"), student
    for tag, attrs in elements.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), f"{student}: <{tag} {name}={value!r}>"
            squeezed = re.sub(r"\s", "", value or "").lower()
            assert "javascript:" not in squeezed and "attacker" not in squeezed, (
                f"{student}: <{tag} {name}={value!r}>"
            )
            assert name != "style" or tag not in ("div", "span", "p", "a", "img"), student
            if name == "src" and tag == "img":
                assert re.match(r"data:image/(png|jpeg);base64,[A-Za-z0-9+/=]*$", value), value
            if tag in MATHML_TAGS:
                assert name in MATHML_ATTRIBUTES.get(tag, ()), f"{student}: <{tag} {name}>"
    assert HIDDEN_TEST not in page and "HIDDEN TESTS" not in page, student


def test_submitted_style_and_widgets_are_gone(pages):
    page = pages["mallory"].read_text()
    ada_page = pages["ada"].read_text()
    # Only the template's <style> elements: as many as on an ordinary page.
    assert page.count("<style") == ada_page.count("<style")
    assert REMOTE not in page
    assert "widget-state" not in page and "widget-view" not in page
    assert "isolated-iframe" not in page


def test_page_still_shows_scores_and_what_the_student_wrote(pages):
    text = re.sub(r"<[^>]*>", "", pages["mallory"].read_text())
    assert "(Score: 1.0 / 3.0)" in text
    assert "test_square (Score: 0.0 / 2.0)" in text and "test_cube (Score: 1.0 / 1.0)" in text
    assert "AssertionError: square(-2) should be 4" in text
    # The formula of the markdown cell, as MathML: x &lt; y.
    assert re.search(
        r"<math[^>]*><mrow><mi>x</mi><mo>&lt;</mo><mi>y</mi></mrow></math>",
        pages["mallory"].read_text(),
    )
    for shown in (
        "Mallory's notes",
        "Plain words stay",
        "bold html",
        "markdown output",
        "raw words",
        "IntSlider(value=0)",
        "printed",
        "plain text",
        "&lt;IPython.core.display.Javascript object&gt;",
        "[an output of type image/svg+xml, not shown]",
        "[an output of type application/x-unknown, text/vnd.mermaid, not shown]",
    ):
        assert shown in text, shown
    page = pages["mallory"].read_text()
    assert re.search(f'<img [^>]*src="data:image/png;base64,{re.escape(PNG)}"', page)
    assert '<a href="https://example.org" rel="noopener noreferrer">real link</a>' in page


def test_broken_fields_are_replaced(pages):
    text = re.sub(r"<[^>]*>", "", pages["eve"].read_text())
    assert "an execution count with markup" in text
    assert "[an output of unknown type, not shown]" in text
    assert "[a cell of unknown type, not shown]" in text
    assert "line one" in text
    assert "(Score: 3.0 / 3.0)" in text


def test_huge_texts_are_cut_with_a_note(pages):
    page = pages["bulky"].read_text()
    text = re.sub(r"<[^>]*>", "", page)
    notes = [
        int(n.replace(",", ""))
        for n in re.findall(r"\[\.\.\. ([\d,]+) characters not shown\]", text)
    ]
    assert len(notes) >= 4 and min(notes) > 0, notes
    assert "[... 53 more outputs not shown]" in text  # 3 huge ones, MAX_OUTPUTS + 50 small
    assert "output 96" in text and "output 97" not in text
    assert re.search(
        r"\[\.\.\. [\d,]+ cells not shown: a feedback page shows at most "
        r"[\d,]+ characters\]",
        text,
    )
    assert re.search(
        r"\[\.\.\. [\d,]+ cells not shown: a feedback page shows at most "
        r"[\d,]+ cells and outputs\]",
        text,
    )
    # The graded cells after the cut still show, with their scores.
    assert "test_cube (Score: 1.0 / 1.0)" in text and "def cube(x):" in text
    assert len(page) < defang.MAX_PAGE + 2_000_000


def test_too_big_a_notebook_gets_a_short_page(pages):
    page = pages["giant"].read_text()
    assert len(page) < 2000
    assert f'content="{CSP}"' in page
    assert "(Score: 2.0 / 3.0)" in page
    assert f"more than the {defang.MAX_NOTEBOOK_BYTES // 2**20} MB" in page
    assert "giant words" not in page


def visit(browser, path: Path, screenshot: Path | None = None) -> dict:
    """Open a page from disk; what it did: dialogs, console messages, requests (those that
    reached the network layer, which answers none but the page itself) and its state."""
    page = browser.new_page()
    seen = {"dialogs": [], "console": [], "requests": [], "failed": {}, "routed": []}
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("console", lambda m: seen["console"].append(m.text))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("requestfailed", lambda r: seen["failed"].__setitem__(r.url, r.failure))

    def route(route):
        seen["routed"].append(route.request.url)
        if route.request.url == path.as_uri():
            route.continue_()
        else:
            route.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_timeout(300)
    seen["pwned"] = page.evaluate("window.__pwned")
    seen["title"] = page.title()
    seen["markers"] = page.evaluate("document.getElementsByTagName('pwned-marker').length")
    seen["text"] = page.inner_text("body")
    if screenshot:
        page.screenshot(path=str(screenshot), full_page=False)
    page.close()
    return seen


def template_request(url: str, page: Path) -> bool:
    """Bootstrap's CSS (in the template) asks for its icon font."""
    fonts = (page.parent.parent / "fonts").as_uri() + "/glyphicons-halflings-regular."
    return url.startswith(fonts)


@pytest.mark.slow
@pytest.mark.parametrize("student", STUDENTS)
def test_no_submitted_script_runs_in_a_browser(pages, chromium, student, tmp_path):
    path = pages[student]
    seen = visit(chromium, path, tmp_path / f"{student}.png" if student == "mallory" else None)
    assert seen["pwned"] is None and seen["markers"] == 0 and not seen["dialogs"], seen
    assert seen["title"] == MINI
    assert not [m for m in seen["console"] if "PWNED" in m], seen["console"]
    # Nothing but the page itself went out. The template (in Bootstrap's CSS) asks for its
    # icon font; the policy refuses it before the network.
    assert seen["routed"] == [path.as_uri()], seen["routed"]
    others = [u for u in seen["requests"] if not u.startswith("data:") and u != path.as_uri()]
    assert all(template_request(u, path) for u in others), others
    assert all(seen["failed"].get(u) == "csp" for u in others), seen["failed"]
    # The sanitizer left the policy nothing else to refuse.
    refused = [m for m in seen["console"] if "Content Security Policy" in m]
    assert all("glyphicons-halflings" in m for m in refused), refused
    if student != "giant":
        assert "Score:" in seen["text"]


@pytest.mark.slow
def test_the_policy_alone_stops_what_the_sanitizer_would_miss(chromium, tmp_path):
    """The second layer on its own: the hostile markdown, not sanitized at all, in a page
    with only the policy. (Less its meta refresh elements: a policy does not stop a
    navigation, so only the sanitizer removes those.)"""
    from grader.notebooks.sanitize import with_csp

    hostile = "\n".join(line for line in MARKDOWN.splitlines() if "refresh" not in line)
    path = tmp_path / "raw.html"
    path.write_text(
        with_csp(
            f"<!DOCTYPE html><html><head><title>{MINI}</title></head>"
            f"<body>{hostile}{HOSTILE_OUTPUTS[1]['data']['text/html']}</body>"
            "</html>"
        )
    )
    seen = visit(chromium, path)
    assert seen["pwned"] is None and seen["markers"] == 0 and not seen["dialogs"], seen
    assert seen["title"] == MINI
    assert seen["routed"] == [path.as_uri()], seen["routed"]
    assert any("Content Security Policy" in m for m in seen["console"])
