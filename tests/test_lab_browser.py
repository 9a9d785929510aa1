"""The student's JupyterLab (`make lab`), a feedback page and formgrader, in Chromium.

The lab is started as `make lab` starts it (`python -m courselab`, from the repository's
root), on a copy of release/ and solutions/ with the bundle's nbgrader_config.py, on a free
port with a token, with Jupyter's user folders in a temporary folder. A student opens
01_perceptron, runs it, answers an exercise wrongly and then rightly, reads the test's
message, and clicks Validate. Then a feedback page that the grader wrote is opened, and
formgrader (`make formgrader`) on a grading folder, where a score is corrected by hand.
Neither server writes into the repository (checked around the module).

Screenshots of what the student and the instructor see are kept under pytest's temporary
folder (printed at the end of the run, `-rP`; look at them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import MINI
from jupyter_process import JupyterServer, start_formgrader
from nbgrader_reference import nbgrader_autograde

from courselab.check import EXERCISE_HEADING
from grader.config import REPO_ROOT
from grader.pipeline.bundle import student_config
from grader.pipeline.feedback import generate_feedback
from grader.workdir import gradebook
from grader.workdir.folder import open_workdir, submit

pytestmark = pytest.mark.slow

NOTEBOOK = "release/01_perceptron/01_perceptron.ipynb"
SOLUTION = "solutions/01_perceptron/01_perceptron.ipynb"
STEP = (
    'def step(a):\n    """The threshold function."""\n'
    "    return np.where(np.asarray(a) {} 0, 1, 0)\n"
)
GATES = (
    "w_and, b_and = np.array([1.0, 1.0]), -0.5  # OR's line: not AND\n"
    "w_or, b_or = np.array([1.0, 1.0]), -0.5\n"
    "w_nand, b_nand = np.array([-1.0, -1.0]), 1.5\n"
)
NOT_STUDENT_PARTS = [
    "Nbgrader",
    "Assignment List",
    "Course List",
    "Formgrader",
    "Create Assignment",
]
# Not counted as writing into the course: caches, and JupyterLab's checkpoints (a copy of a
# notebook as opened, for File > Revert; git ignores them).
PRUNED = {
    ".git",
    ".venv",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
    ".ipynb_checkpoints",
}


def files_under(root: Path) -> set[str]:
    """Every file and folder below `root`, but version control, venv and caches."""
    found = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in PRUNED and not d.endswith(".egg-info")]
        rel = Path(folder).relative_to(root)
        found |= {str(rel / name) for name in dirs + files}
    return found


def written_by_a_lab(repo: Path) -> set[str]:
    """What a Jupyter server started in the repository could have written there: its top
    level (the server's working folder), and release/ and solutions/ (the notebooks). Not
    the rest, where the other engineers' work and other tests' files come and go."""
    top = {p.name for p in repo.iterdir() if p.name not in PRUNED}
    return top | {
        f"{folder}/{path}"
        for folder in ("release", "solutions")
        for path in files_under(repo / folder)
    }


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lab-screenshots")
    yield folder
    print(f"\nScreenshots of the student's lab, a feedback page and formgrader: {folder}")


@pytest.fixture(scope="module")
def repo_files():
    """The repository's files before the module's servers ran; checked after them."""
    before = written_by_a_lab(REPO_ROOT)
    yield
    new = sorted(written_by_a_lab(REPO_ROOT) - before)
    assert not new, f"the lab or formgrader wrote into the repository: {new}"


@pytest.fixture(scope="module")
def course_copy(tmp_path_factory, repo_course):
    """The course folder a student has: release/, solutions/, the README, the bundle's
    nbgrader_config.py."""
    root = tmp_path_factory.mktemp("course")
    for folder in ("release", "solutions"):
        shutil.copytree(REPO_ROOT / folder, root / folder)
    shutil.copy(REPO_ROOT / "README.md", root)
    (root / "nbgrader_config.py").write_text(student_config(repo_course))
    return root


@pytest.fixture(scope="module")
def lab(course_copy, tmp_path_factory, repo_files):
    # What `make lab` runs (make's own line, the venv's python), here with --root.
    make = subprocess.run(
        ["make", "--no-print-directory", "-n", "lab", "LAB_ARGS=--x"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert make.stdout.split()[-3:] == ["-m", "courselab", "--x"], make.stdout
    server = JupyterServer(
        [sys.executable, "-m", "courselab", "--root", str(course_copy)],
        tmp_path_factory.mktemp("lab-home"),
    )
    yield server
    server.stop()


@pytest.fixture
def page(chromium, shots, request):
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(120_000)  # 2 shared cores, another test worker beside
    try:
        yield page
    finally:
        # What the page showed when the test ended, failed or not.
        page.screenshot(path=shots / f"last-{request.node.name}.png")
        page.close()


# --- the student's lab, through its HTTP API --------------------------------------------


def test_lab_shows_release_and_solutions_and_no_instructor_tools(lab):
    status, root = lab.get("api/contents")
    assert status == 200
    assert sorted(item["name"] for item in root["content"]) == ["README.md", "release", "solutions"]
    # nbgrader's exchange, course list and formgrader are not served; Validate is.
    for path in ("assignments", "courses", "formgrader", "formgrader/api/assignments"):
        assert lab.get(path)[0] == 404, path
    assert lab.get("nbgrader_version?version=0.9.6")[1] == {"success": True}


def test_untouched_notebooks_open_as_the_kernel_would_write_them(lab, course_copy):
    """JupyterLab writes the kernel's language_info into a notebook when the kernel starts;
    the lab hands it over with this machine's, so that nothing changed when it does."""
    from ipykernel.ipkernel import IPythonKernel

    paths = sorted(str(p.relative_to(course_copy)) for p in course_copy.glob("*/*/*.ipynb"))
    assert NOTEBOOK in paths and SOLUTION in paths
    for path in paths:
        status, model = lab.get(f"api/contents/{path}?content=1")
        assert status == 200
        assert model["content"]["metadata"]["language_info"] == IPythonKernel.language_info, path


# --- the student's lab, in Chromium -----------------------------------------------------


def cells(page):
    return page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")


def open_notebook(page, course: Path, path: str) -> None:
    """Open a notebook as a student does, from the file browser, and wait until it is loaded
    (all its cells shown) and its kernel has started and answered."""
    page.locator(".jp-BreadCrumbs-home").click()
    for part in path.split("/"):
        page.locator(".jp-DirListing-itemText").get_by_text(part, exact=True).dblclick()
    count = len(nbformat.read(course / path, 4).cells)
    page.locator(f".lm-TabBar-tab.jp-mod-current[title*='Path: {path}']").wait_for()
    page.wait_for_function(f"""() => {{
        const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
        return panel && panel.querySelectorAll('.jp-Notebook .jp-Cell').length === {count}
            && panel.querySelector('.jp-Notebook-ExecutionIndicator[data-status="idle"]');
    }}""")
    page.wait_for_timeout(2000)  # the kernel's info (and language_info) arrives after idle


def dirty(page) -> bool:
    return page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty").count() > 0


def prompt(page, index: int) -> str:
    return cells(page).nth(index).locator(".jp-InputPrompt").text_content()


def wait_for_run(page, index: int, before: str = "") -> None:
    """Until cell `index` has run (a new execution count in its prompt) and none runs."""
    page.wait_for_function(
        """([index, before]) => {
        const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
        const prompts = [...panel.querySelectorAll('.jp-Notebook .jp-Cell .jp-InputPrompt')];
        const mine = prompts[index].textContent;
        return /\\[\\d+\\]/.test(mine) && mine !== before
            && !prompts.some(p => p.textContent.includes('*'));
    }""",
        arg=[index, before],
    )


def cell_index(path: Path, grade_id: str) -> int:
    nb = nbformat.read(path, 4)
    return next(
        i
        for i, c in enumerate(nb.cells)
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    )


def type_into(page, index: int, code: str) -> None:
    editor = cells(page).nth(index).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(code)


def run(page, *indices: int) -> None:
    for index in indices:
        before = prompt(page, index)
        cells(page).nth(index).locator(".jp-InputPrompt").click()  # select it, command mode
        page.keyboard.press("Control+Enter")
        wait_for_run(page, index, before)


def output(page, index: int) -> str:
    """The text of a cell's outputs (textContent: a cell scrolled out of view is not laid
    out, and its innerText is empty)."""
    area = cells(page).nth(index).locator(".jp-OutputArea-output")
    return "\n".join(text.strip() for text in area.all_text_contents()).strip()


def shoot(page, index: int, path: Path) -> None:
    """A screenshot with cell `index`'s output in view."""
    cells(page).nth(index).locator(".jp-OutputArea").evaluate(
        "area => area.scrollIntoView({block: 'center'})"
    )
    page.wait_for_timeout(300)
    page.screenshot(path=path)


def one_sentence(text: str, *names: str) -> None:
    """What a failing test shows a student: one line that names the problem."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"not one line:\n{text}"
    assert all(name in lines[0] for name in names), (names, lines[0])


def exercises(nb) -> list[tuple[str, float, list[int], float]]:
    """(title, points, indices of its test cells, points of its written answers) of each
    exercise and question, from its heading."""
    found = []
    for index, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        match = EXERCISE_HEADING.search(cell.source) if cell.cell_type == "markdown" else None
        if match:
            found.append((match.group("title"), 0.0, [], 0.0))
        elif meta.get("grade"):
            title, points, indices, written = found[-1]
            if meta.get("solution"):
                found[-1] = (title, points, indices, written + meta["points"])
            else:
                found[-1] = (title, points + meta["points"], indices + [index], written)
    return found


def dialog_entries(text: str) -> dict[str, str]:
    """Validate's failing exercises: each heading, and its sentence (wrapped lines joined)."""
    entries, heading = {}, None
    for line in text.splitlines():
        if line.startswith(("Exercise ", "Question ")):
            heading = line.strip()
            entries[heading] = ""
        elif heading and line.startswith("    "):
            entries[heading] = f"{entries[heading]} {line.strip()}".strip()
        else:
            heading = None
    return entries


def test_a_student_session(lab, page, course_copy, shots):
    release = course_copy / NOTEBOOK
    nb = nbformat.read(release, 4)
    tests = [
        c
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade")
        and not c.metadata["nbgrader"].get("solution")
    ]
    total = sum(c.metadata["nbgrader"]["points"] for c in tests)
    step, test_step = cell_index(release, "step"), cell_index(release, "test_step")
    gates = cell_index(release, "logic_gates")
    gate_tests = [cell_index(release, f"test_logic_gates_{g}") for g in ("and", "or", "nand")]

    page.goto(lab.page("lab"))
    page.locator(".jp-DirListing-item").first.wait_for()
    page.wait_for_timeout(1000)
    page.screenshot(path=shots / "1-lab.png")
    listed = page.locator(".jp-DirListing-item .jp-DirListing-itemText").all_inner_texts()
    assert sorted(listed) == ["README.md", "release", "solutions"]
    shown = page.locator("#jp-top-panel, #jp-right-stack, .lm-TabBar").all_inner_texts()
    assert not [part for part in NOT_STUDENT_PARTS if part in " ".join(shown)], shown

    # The worked solution opens, with its plots, and unmodified.
    before = files_under(course_copy)
    open_notebook(page, course_copy, SOLUTION)
    assert page.locator(".jp-NotebookPanel:visible .jp-RenderedImage img").count() > 0
    assert not dirty(page), "solutions/01_perceptron is marked modified before any typing"
    page.screenshot(path=shots / "2-solution.png")

    open_notebook(page, course_copy, NOTEBOOK)
    assert not dirty(page), "release/01_perceptron is marked modified before any typing"
    assert files_under(course_copy) == before, "opening notebooks wrote into the course"
    page.screenshot(path=shots / "3-release.png")

    # Run it all: every test fails, each with one line that names what is missing.
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    wait_for_run(page, test_step)
    one_sentence(output(page, test_step), "step", "not answered")
    shoot(page, test_step, shots / "4-run-all.png")

    # A wrong answer, then a right one.
    type_into(page, step, STEP.format(">="))
    run(page, step, test_step)
    one_sentence(output(page, test_step), "step(")
    shoot(page, test_step, shots / "5-wrong-answer.png")
    type_into(page, step, STEP.format(">"))
    run(page, step, test_step)
    assert output(page, test_step) == ""
    # Logic gates: OR and NAND right, AND wrong.
    type_into(page, gates, GATES)
    run(page, gates, *gate_tests)
    one_sentence(output(page, gate_tests[0]), "w_and, b_and")
    assert output(page, gate_tests[1]) == output(page, gate_tests[2]) == ""
    shoot(page, gate_tests[0], shots / "6-answers.png")

    # Validate: the summary, and the first failing sentence of each exercise.
    page.locator(".jp-NotebookPanel:visible .validate-button").click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=180_000)
    page.wait_for_timeout(300)
    page.screenshot(path=shots / "7-validate.png")
    text = dialog.inner_text()
    points = {
        cell_index(release, c.metadata.nbgrader.grade_id): c.metadata.nbgrader.points for c in tests
    }
    earned = points[test_step] + points[gate_tests[1]] + points[gate_tests[2]]
    assert f"3 of {len(tests)} tests pass, {earned:g} of {total:g} points." in text, text
    by_hand = sum(w for *_, w in exercises(nb))
    assert f"Written answers ({by_hand:g} points) are graded by hand." in text, text
    expected = {}  # every exercise but the first (it passes), with the points it earned
    for title, max_points, indices, written in exercises(nb)[1:]:
        if written:  # the written question, still as handed out
            assert not indices, f"{title} has tests and a written answer"
            expected[f"{title} ({written:g} points, graded by hand)"] = "not answered"
            continue
        got = sum(points[i] for i in indices if i in (gate_tests[1], gate_tests[2]))
        expected[f"{title} ({got:g} of {max_points:g} point{'s' * (max_points != 1)})"] = (
            "w_and, b_and" if gate_tests[0] in indices else "not answered"
        )
    assert any(heading.startswith("Question ") for heading in expected), "no written question"
    problems = dialog_entries(text)
    assert list(problems) == list(expected), text
    for heading, sentence in problems.items():
        one_sentence(sentence, expected[heading])
    assert "Traceback" not in text and "def step" not in text and len(text) < 2000, text
    dialog.get_by_role("button", name="Ok").click()
    assert not dirty(page)  # Validate saved the notebook
    saved = nbformat.read(release, 4)
    assert "np.asarray(a) > 0" in saved.cells[step].source


# --- a feedback page and formgrader -----------------------------------------------------


SCRIPT = "window.__pwned = 1; document.title = 'PWNED'"


@pytest.fixture(scope="module")
def graded(prepared_grading, tmp_path_factory):
    """A grading folder with one submission, autograded by nbgrader (ada: square right, cube
    wrong, a script in a markdown cell), and its feedback page."""
    repo, template = prepared_grading
    root = tmp_path_factory.mktemp("graded")
    shutil.copytree(template, root / "grading")
    course = open_workdir(repo, root / "grading")
    nb = nbformat.read(course.root / "release" / MINI / f"{MINI}.ipynb", 4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "square":
            cell.source = "def square(x):\n    return x * x"
        elif grade_id == "cube":
            cell.source = "def cube(x):\n    return x * x"
    nb.cells.insert(
        1,
        nbformat.v4.new_markdown_cell(
            f'Notes <script>{SCRIPT}</script><img src=x onerror="{SCRIPT}">'
        ),
    )
    nbformat.write(nb, root / "ada.ipynb")
    submit(course, "ada", MINI, root / "ada.ipynb")
    nbgrader_autograde(course, MINI, "ada")
    [page] = generate_feedback(course, [MINI], jobs=1)
    return repo, course, page


def test_feedback_page_shows_scores_and_runs_no_script(graded, page, shots):
    _, _, path = graded
    dialogs, requests = [], []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: requests.append(r.url))
    page.route(
        "**/*",
        lambda route: route.continue_() if route.request.url == path.as_uri() else route.abort(),
    )
    page.goto(path.as_uri())
    page.wait_for_timeout(500)
    page.screenshot(path=shots / "8-feedback.png", full_page=True)
    text = page.inner_text("body")
    assert "(Score: 2.0 / 3.0)" in text, text
    assert "test_square (Score: 2.0 / 2.0)" in text and "test_cube (Score: 0.0 / 1.0)" in text
    assert "cube(2) should be 8" in text
    assert page.evaluate("window.__pwned") is None and page.title() == MINI and not dialogs


def grades(course) -> set[tuple[str, str, float]]:
    return {(g.student, g.grade_id, g.points) for g in gradebook.grades(course)}


@pytest.fixture(scope="module")
def formgrader(graded, tmp_path_factory, repo_files):
    repo, course, _ = graded
    make = subprocess.run(
        ["make", "-n", "formgrader"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert "-m grader formgrader" in make.stdout, make.stdout
    server = start_formgrader(repo.root, course.root, tmp_path_factory.mktemp("fg-home"))
    yield server
    server.stop()


def test_formgrader_reviews_the_grading_folder(formgrader, graded, page, shots):
    _, course, _ = graded
    status, submissions = formgrader.get(f"formgrader/api/submissions/{MINI}")
    assert status == 200
    assert [(s["student"], s["score"], s["max_score"]) for s in submissions] == [("ada", 2.0, 3.0)]
    # The student lab's Validate extension is off here, nbgrader's on.
    assert formgrader.get("nbgrader_version?version=0.9.6")[1] == {"success": True}
    page.goto(formgrader.page(""))  # opens on formgrader's Manual Grading
    page.wait_for_url(re.compile(r"/formgrader/gradebook/?(\?.*)?$"))
    page.get_by_role("link", name=MINI).wait_for()
    page.screenshot(path=shots / "9-formgrader.png")
    page.goto(formgrader.page(f"formgrader/gradebook/{MINI}/{MINI}"))  # its notebook
    page.get_by_text("Submission #1").click()
    page.get_by_text("cube(2) should be 8").first.wait_for()
    page.wait_for_timeout(500)
    page.screenshot(path=shots / "10-formgrader-submission.png")
    # The submission's markup is shown as text: no script of it runs in the instructor's
    # Jupyter session (which could run anything on the instructor's machine).
    assert page.evaluate("window.__pwned") is None and page.title() != "PWNED"
    assert "<script>" in page.inner_text("body")
    # The review: full credit for cube by hand, and the grader's report counts it.
    page.locator(".nbgrader_cell", has_text="test_cube").locator(".full-credit").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and ("ada", "test_cube", 1.0) not in grades(course):
        time.sleep(0.3)
    assert ("ada", "test_cube", 1.0) in grades(course)
    assert not (REPO_ROOT / "gradebook.db").exists()


def test_formgrader_without_a_grading_folder_says_so_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "grader", "--workdir", str(tmp_path / "no"), "formgrader"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "no grading folder" in result.stderr and not (tmp_path / "no").exists()
