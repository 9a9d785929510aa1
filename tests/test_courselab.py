"""The student's lab (courselab/) without a browser: Validate runs as the grader scores, in
the repository and in the student bundle; the lab's configuration names what it switches
off; the bundle ships a student-safe nbgrader_config.py.

The browser side is tests/test_lab_browser.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from conftest import MINI
from nbgrader import utils as nbgrader_utils
from traitlets.config import Config, PyFileConfigLoader

from courselab import check
from courselab import validate as lab_validate
from grader.config import REPO_ROOT
from grader.pipeline.bundle import STUDENT_SECTIONS, TOP, make_bundle, student_config

LAB_CONFIG = REPO_ROOT / "courselab" / "jupyter"
LABEXTENSION = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "@jupyter" / "nbgrader"

# A right answer whose code warns twice (UserWarning, RuntimeWarning from numpy), inside the
# test cell that calls it: nbgrader fails a test cell with anything on stderr.
WARNING = (
    "import warnings\n\ndef square(x):\n"
    "    warnings.warn('squaring may overflow', UserWarning)\n"
    "    np.log(np.float64(0.0))  # RuntimeWarning: divide by zero\n"
    "    return x * x"
)
RIGHT_CUBE = "def cube(x):\n    return x ** 3"
WRONG_CUBE = "def cube(x):\n    return x * x"


def answered(course, square: str, cube: str) -> nbformat.NotebookNode:
    """The release notebook of the tiny course with these answers."""
    nb = nbformat.read(course.root / "release" / MINI / f"{MINI}.ipynb", 4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in ("square", "cube"):
            cell.source = square if grade_id == "square" else cube
    return nb


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory):
    """warned.ipynb (right, with warnings) and failed.ipynb (the same, cube wrong)."""
    from conftest import build_class_course

    root = tmp_path_factory.mktemp("validate")
    course = build_class_course(root / "course")
    folder = root / "work"
    folder.mkdir()
    nbformat.write(answered(course, WARNING, RIGHT_CUBE), folder / "warned.ipynb")
    nbformat.write(answered(course, WARNING, WRONG_CUBE), folder / "failed.ipynb")
    return folder


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, repo_course):
    """The student bundle, unzipped."""
    out = tmp_path_factory.mktemp("bundle")
    with zipfile.ZipFile(make_bundle(repo_course, out / "bundle.zip")) as archive:
        archive.extractall(out)
    return out / TOP


def config_of(folder: Path) -> Config:
    return check.load_config(folder / "nbgrader_config.py")


# --- Validate and the grader agree about warnings ------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("where", ["repository", "bundle"])
def test_lab_validate_passes_warnings_and_fails_errors(notebooks, bundle, where):
    config = config_of(REPO_ROOT if where == "repository" else bundle)
    warned = check.validate(notebooks / "warned.ipynb", config)
    assert check.dialog(warned) == {}, warned  # the dialog's "Success!"
    assert warned["summary"]["passed"] == warned["summary"]["tests"] == 2
    failed = check.validate(notebooks / "failed.ipynb", config)
    summary = failed["summary"]
    assert (summary["passed"], summary["tests"], summary["points"]) == (1, 2, 2)
    [entry] = check.dialog(failed)["failed"]
    assert entry["source"] == "Exercise 1.2: Cube (0 of 1 point)\n    cube(2) should be 8"
    assert "1 of 2 tests pass, 2 of 3 points." in entry["error"]


@pytest.mark.slow
def test_with_nbgraders_defaults_the_warnings_fail(notebooks):
    """The control: what Validate did before, with nbgrader's defaults (the warning lands
    on stderr in the test cell)."""
    results = check.validate(notebooks / "warned.ipynb", Config())
    [exercise, _] = results["summary"]["exercises"]
    assert (
        exercise["passed"] == 0 and "UserWarning: squaring may overflow" in exercise["message"]
    ), results


@pytest.mark.slow
@pytest.mark.parametrize("where", ["repository", "bundle"])
def test_nbgrader_validate_passes_warnings_and_fails_errors(notebooks, bundle, where):
    """`nbgrader validate`, run in the course folder, reads its nbgrader_config.py."""
    cwd = REPO_ROOT if where == "repository" else bundle
    result = subprocess.run(
        [
            Path(sys.executable).parent / "nbgrader",
            "validate",
            str(notebooks / "warned.ipynb"),
            str(notebooks / "failed.ipynb"),
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    warned, failed = result.stdout.split("Success! Your notebook passes all the tests.")
    assert "failed" not in warned.lower() and "Warning" not in warned, result.stdout
    assert "VALIDATION FAILED ON 1 CELL(S)" in failed and "cube(2) should be 8" in failed, (
        result.stdout + result.stderr
    )


# --- the summary ---------------------------------------------------------------------------


def summary_of(*exercises) -> dict:
    return {
        "summary": {
            "tests": sum(e["tests"] for e in exercises),
            "passed": sum(e["passed"] for e in exercises),
            "points": sum(e["points"] for e in exercises),
            "max_points": sum(e["max_points"] for e in exercises),
            "exercises": list(exercises),
        }
    }


def exercise(title, passed, tests, points, max_points, message=None):
    return {
        "title": title,
        "passed": passed,
        "tests": tests,
        "points": points,
        "max_points": max_points,
        "message": message,
    }


def test_dialog_names_each_failing_exercise_once_with_its_first_sentence():
    results = summary_of(
        exercise("Exercise 1.1: Step", 1, 1, 1, 1),
        exercise("Exercise 1.2: Gates", 1, 3, 1, 3, "w_and, b_and <b>do not</b> compute AND " * 4),
        exercise("Exercise 1.3: Learn", 0, 1, 0, 2, "Exercise 1.3 is not answered yet"),
    )
    [entry] = check.dialog(results)["failed"]
    lines = entry["source"].splitlines()
    assert lines[0] == "Exercise 1.2: Gates (1 of 3 points)"
    assert all(len(line) <= check.WIDTH for line in lines)  # wrapped, indented
    assert lines[-2:] == [
        "Exercise 1.3: Learn (0 of 2 points)",
        "    Exercise 1.3 is not answered yet",
    ]
    assert "Exercise 1.1" not in entry["source"]
    # The source is shown as text; the error is HTML, escaped but for the bold totals.
    assert entry["error"].startswith("<b>2 of 5 tests pass, 2 of 6 points.</b>")
    assert check.HIDDEN_NOTE in entry["error"]


def graded_cell(kind: str, source: str, grade_id: str, points: float, *, solution: bool):
    """A cell as a release notebook has it: nbgrader's metadata and checksum."""
    make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
    cell = make(source)
    cell.metadata.nbgrader = {
        "grade": True,
        "solution": solution,
        "locked": not solution,
        "grade_id": grade_id,
        "points": points,
        "schema_version": 3,
    }
    cell.metadata.nbgrader.checksum = nbgrader_utils.compute_checksum(cell)
    return cell


def with_a_written_question(answer: str | None) -> nbformat.NotebookNode:
    """An exercise whose one test passed, then a written question, blank unless `answer`."""
    nb = nbformat.v4.new_notebook()
    written = graded_cell("markdown", "YOUR ANSWER HERE", "why", 2, solution=True)
    if answer is not None:
        written.source = answer
    nb.cells = [
        nbformat.v4.new_markdown_cell("### Exercise 1.1: Step (1 point)"),
        graded_cell("code", "assert step(1) == 1", "test_step", 1, solution=False),
        nbformat.v4.new_markdown_cell("### Question 1.2: Why a step (2 points)\n\nIn a sentence."),
        written,
    ]
    return nb


def test_a_blank_written_answer_is_named_and_its_points_are_apart():
    results = {"summary": check.summarize(with_a_written_question(None))}
    summary = results["summary"]
    # Its points are a person's to give: neither earned nor missed by the tests.
    assert summary["passed"] == summary["tests"] == 1
    assert summary["points"] == summary["max_points"] == 1
    assert (summary["written"], summary["unwritten"]) == (2, 1)
    [entry] = check.dialog(results)["failed"]  # not nbgrader's "Success!" over a blank answer
    assert entry["source"] == (
        f"Question 1.2: Why a step (2 points, graded by hand)\n    {check.UNWRITTEN}"
    )
    assert entry["error"].startswith(
        "<b>1 of 1 tests pass, 1 of 1 point. Written answers (2 points) are graded by hand.</b>"
    )
    assert check.UNWRITTEN in check.text(results) and not check.ready(results)


def test_a_written_answer_counts_as_written_once_it_is_changed():
    results = {"summary": check.summarize(with_a_written_question("It saturates."))}
    assert results["summary"]["unwritten"] == 0 and results["summary"]["written"] == 2
    assert check.dialog(results) == {}  # the dialog's "Success!"
    assert check.ready(results)
    assert check.headline(results["summary"]).endswith(
        "Written answers (2 points) are graded by hand."
    )


def test_dialog_keeps_nbgraders_own_messages_for_changed_cells():
    changed = {"changed": [{"source": "assert True"}], "summary": summary_of()["summary"]}
    assert check.dialog(changed) == {"changed": [{"source": "assert True"}]}
    assert check.dialog(summary_of(exercise("Exercise 1.1: Step", 1, 1, 1, 1))) == {}


@pytest.mark.parametrize(
    ("ename", "evalue", "shown"),
    [
        ("AssertionError", "step(0) should be 0", "step(0) should be 0"),
        (
            "NotImplementedError",
            "Exercise 1.1 (`step`) is not answered yet",
            "Exercise 1.1 (`step`) is not answered yet",
        ),
        (
            "NotImplementedError",
            "",
            "not answered yet: replace `raise NotImplementedError()` with your code",
        ),
        ("NameError", "name 'w_and' is not defined", "NameError: name 'w_and' is not defined"),
        ("AssertionError", "line\n" * 10, "line\nline\nline\n..."),
    ],
)
def test_failure_is_the_errors_sentence(ename, evalue, shown):
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[])]
    assert check.failure(cell) == shown


def test_the_server_says_what_is_missing_in_one_answer(tmp_path):
    answer = asyncio.run(lab_validate.validate(tmp_path / "a.ipynb", tmp_path / "none.py"))
    assert answer["success"] is False and "none.py is missing" in answer["value"]
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    answer = asyncio.run(
        lab_validate.validate(tmp_path / "a.ipynb", tmp_path / "nbgrader_config.py")
    )
    assert answer == {"success": False, "value": "a.ipynb: no such notebook; save it first."}
    (tmp_path / "a.ipynb").write_text("{ not json")
    answer = asyncio.run(
        lab_validate.validate(tmp_path / "a.ipynb", tmp_path / "nbgrader_config.py")
    )
    assert answer["success"] is False and "\n" not in answer["value"]
    assert answer["value"].startswith("Validate could not run a.ipynb: ")
    assert "does not appear to be JSON" in answer["value"]


# --- the lab's configuration ---------------------------------------------------------------


def lab_server_config() -> Config:
    return PyFileConfigLoader("jupyter_server_config.py", str(LAB_CONFIG)).load_config()


def test_lab_switches_off_the_instructors_parts_of_nbgrader():
    extensions = lab_server_config().ServerApp.jpserver_extensions
    assert extensions == {
        "nbgrader.server_extensions.assignment_list": False,
        "nbgrader.server_extensions.course_list": False,
        "nbgrader.server_extensions.formgrader": False,
        "nbgrader.server_extensions.validate_assignment": False,
        "courselab.validate": True,
    }
    installed = json.loads(
        (Path(sys.prefix) / "etc/jupyter/jupyter_server_config.d/nbgrader.json").read_text()
    )
    assert set(installed["ServerApp"]["jpserver_extensions"]) < set(extensions)


def test_disabled_lab_plugins_are_the_installed_nbgraders():
    """The ids in labconfig/page_config.json are those of the installed labextension (an
    id that changed in an nbgrader upgrade would leave its plugin on)."""
    disabled = json.loads((LAB_CONFIG / "labconfig" / "page_config.json").read_text())[
        "disabledExtensions"
    ]
    package = json.loads((LABEXTENSION / "package.json").read_text())
    assert package["name"] == "@jupyter/nbgrader"
    code = "".join(p.read_text() for p in (LABEXTENSION / "static").glob("*.js"))
    ids = set(re.findall(r'"(@jupyter/nbgrader:[a-z-]+)"', code))
    nbgrader = {name for name in disabled if name.startswith("@jupyter/nbgrader:")}
    assert nbgrader == ids - {"@jupyter/nbgrader:validate-assignment"}, ids
    assert all(disabled.values())


def test_launcher_refuses_a_folder_without_release(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "courselab", "--root", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "holds no release/" in result.stderr


# --- the bundle ------------------------------------------------------------------------------


def test_bundle_ships_the_lab_and_a_student_safe_config(bundle, repo_course):
    assert (bundle / "courselab" / "jupyter" / "labconfig" / "page_config.json").is_file()
    assert (bundle / "courselab" / "validate.py").is_file()
    shipped = config_of(bundle)
    for section in STUDENT_SECTIONS:
        assert shipped.get(section, {}) == repo_course.config.get(section, {}), section
    assert set(shipped) == {
        "CourseDirectory",
        *[s for s in STUDENT_SECTIONS if s in repo_course.config],
    }
    assert dict(shipped.CourseDirectory) == {"course_id": repo_course.course_id}
    readme = (bundle / "README.md").read_text()
    assert "python -m courselab" in readme and "Validate" in readme


def test_student_config_leaves_out_the_gradebook_and_the_root(repo_course):
    import copy

    course = copy.deepcopy(repo_course)
    course.config.CourseDirectory.db_url = "postgresql+psycopg://grader:s3cret@db/intro"
    del course.config.Execute["extra_arguments"]
    course.config.Execute.extra_arguments.append("--x")  # .append(): a LazyConfigValue
    text = student_config(course)
    assert "s3cret" not in text and "db_url" not in text and ".root" not in text
    assert "c.Execute.extra_arguments = ['--x']" in text
