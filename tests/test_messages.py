"""What a student reads when something is wrong: one sentence, first, and warnings that cost
nothing.

- course.messages in a kernel: a failed check shows its sentence alone, an unanswered
  exercise one line naming it, a warning a plain line on stdout; errors stay errors (name
  and value), with `import course` and with the kernel option of nbgrader_config.py alone.
- nbgrader's Validate and autograde with the course's configuration: a warning in a test
  cell costs nothing; a failed test still scores 0 and keeps its sentence.
- The release: every stub names its exercise; an untouched notebook runs to its end with
  nbclient (the `raises-exception` tags), one line per unanswered exercise (read from the
  run's one execution of it, conftest.py's graded_reference), and the plots of the answered
  exercises after an unanswered one appear.
- Every exercise, answered with one typical wrong answer in the release notebook, fails its
  test with the sentence written for that mistake, first and alone.
- The course's test cells keep the conventions that make this work: every assert has a
  message, no numpy.testing (its report comes before the sentence).
"""

from __future__ import annotations

import ast
import contextlib
import copy
import re
import warnings

import nbformat
import pytest
from conftest import MINI, UNTOUCHED, build_class_course, nbgrader_cell, two_exercise_cells
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from nbgrader.utils import is_grade, is_solution
from nbgrader.validator import Validator
from nbgrader_reference import nbgrader_autograde

from course import messages
from grader.config import REPO_ROOT, load_config
from grader.execution.execute import in_course_environment, kernel_environment
from grader.execution.preload import imported_names
from grader.notebooks import cells as nbs
from grader.notebooks.stubs import RAISES
from grader.notebooks.validate import source_assignments
from grader.workdir import folder, gradebook

COURSE = load_config(REPO_ROOT)
ASSIGNMENTS = source_assignments(COURSE)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
UNANSWERED = re.compile(r"Exercise (\d[\d.]*)\b.*? is not answered yet")


def plain(text: str) -> str:
    return ANSI.sub("", text)


def errors(cell) -> list:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def run(nb, cwd, extra_arguments=(), allow_errors=True):
    """Execute `nb` in place in a fresh kernel, as the build does."""
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        allow_errors=allow_errors,
        extra_arguments=list(extra_arguments),
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute(env=kernel_environment())
    return nb


# --- course.messages ------------------------------------------------------------------------


def test_short_traceback_of_a_failed_check_is_its_sentence():
    lines = messages.short_traceback(AssertionError, AssertionError("f(x) should be 1."), None)
    assert [plain(line) for line in lines] == ["AssertionError: f(x) should be 1."]
    # A bare assert has nothing to say but its line: the usual traceback.
    assert messages.short_traceback(AssertionError, AssertionError(), None) is None
    assert messages.short_traceback(ValueError, ValueError("x"), None) is None


def test_short_traceback_of_an_unanswered_exercise_is_one_line():
    stub = NotImplementedError("Exercise 1.2 (`perceptron`) is not answered yet")
    [line] = messages.short_traceback(NotImplementedError, stub, None)
    assert plain(line) == (
        "Exercise 1.2 (`perceptron`) is not answered yet: write your code "
        "in place of `raise NotImplementedError(...)`."
    )

    def perceptron():
        raise NotImplementedError()

    try:
        perceptron()
    except NotImplementedError as error:
        [line] = messages.short_traceback(NotImplementedError, error, error.__traceback__)
    assert plain(line).startswith("`perceptron` is not answered yet: write your code in place")
    # A library's NotImplementedError is no exercise: the usual traceback.
    assert (
        messages.short_traceback(NotImplementedError, NotImplementedError("not for MPS"), None)
        is None
    )


def test_a_warning_is_one_line_on_stdout(capsys):
    messages.show_warning(
        RuntimeWarning("overflow encountered in exp"),
        RuntimeWarning,
        "/tmp/ipykernel_1/123.py",
        3,
        line="    return 1 / (1 + np.exp(-a))",
    )
    out, err = capsys.readouterr()
    assert err == ""
    assert out == "RuntimeWarning: overflow encountered in exp (at `return 1 / (1 + np.exp(-a))`)\n"


def test_installing_outside_ipython_does_nothing():
    before = warnings.showwarning
    assert messages.install() is False
    assert warnings.showwarning is before


KERNEL_CELLS = [
    "import numpy as np",
    "assert 1 == 2, 'step(a) should be 0 for a <= 0.'",
    "def perceptron(x):\n    # YOUR CODE HERE\n"
    '    raise NotImplementedError("Exercise 1.2 (`perceptron`) is not answered yet")\n'
    "perceptron(1)",
    "np.exp(np.array([1000.0]))",
    "import warnings\nwarnings.warn('this could be faster', UserWarning)",
    "assert 1 == 2",
    "raise ValueError('not mine to shorten')",
    "print('the end')",
]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["import course", "kernel option"])
def test_the_kernel_shows_sentences_and_warnings_on_stdout(how, tmp_path):
    if how == "import course":
        cells, extra = ["import course", *KERNEL_CELLS], []
    else:  # the options nbgrader's Execute, the grader and Validate start kernels with
        cells, extra = KERNEL_CELLS, COURSE.config.Execute.extra_arguments
    nb = run(new_notebook(cells=[new_code_cell(c) for c in cells]), tmp_path, extra)
    by_source = {cell.source: cell for cell in nb.cells}
    [error] = errors(by_source[KERNEL_CELLS[1]])
    assert (error.ename, error.evalue) == ("AssertionError", "step(a) should be 0 for a <= 0.")
    assert [plain(t) for t in error.traceback] == [
        "AssertionError: step(a) should be 0 for a <= 0."
    ]
    [error] = errors(by_source[KERNEL_CELLS[2]])
    assert error.ename == "NotImplementedError"
    assert [plain(t) for t in error.traceback] == [
        "Exercise 1.2 (`perceptron`) is not answered yet: write your code in place of "
        "`raise NotImplementedError(...)`."
    ]
    for source in KERNEL_CELLS[3:5]:  # warnings: stdout, never stderr, never an error
        outputs = by_source[source].outputs
        assert not errors(by_source[source])
        assert not [o for o in outputs if o.get("name") == "stderr"], outputs
        streams = [o.text for o in outputs if o.get("name") == "stdout"]
        assert any("Warning: " in text for text in streams), outputs
    [error] = errors(by_source[KERNEL_CELLS[3 + 2]])  # a bare assert keeps its traceback
    assert len(error.traceback) > 1
    [error] = errors(by_source[KERNEL_CELLS[6]])
    assert error.ename == "ValueError" and len(error.traceback) > 1
    assert by_source[KERNEL_CELLS[-1]].outputs[0].text == "the end\n"


# --- nbgrader's Validate and autograde with the course's configuration ---------------------


def noisy_cells():
    """The two-exercise course of conftest.py, without `import course`, whose answer to the
    first exercise warns (student_notebook answers the second one wrong)."""
    cells = two_exercise_cells()
    cells[3].source = cells[3].source.replace(
        "    return x * x",
        "    import warnings\n    warnings.warn('this could be faster', UserWarning)\n"
        "    return x * x",
    )
    return cells


def student_notebook(course, tmp_path, wrong_cube=True):
    release = nbs.read(course.root / "release" / MINI / f"{MINI}.ipynb")
    answers = {
        "square": "def square(x):\n    import warnings\n"
        "    warnings.warn('this could be faster', UserWarning)\n"
        "    return x * x",
        "cube": "def cube(x):\n    return x ** 2"
        if wrong_cube
        else "def cube(x):\n    return x ** 3",
    }
    for cell in release.cells:
        grade_id = nbs.nbgrader_meta(cell).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    path = tmp_path / "student" / f"{MINI}.ipynb"
    nbs.write(release, path)
    return path


@pytest.mark.slow
def test_validate_counts_no_warning_and_shows_the_sentence(tmp_path):
    course = build_class_course(tmp_path / "course", noisy_cells())
    validator = Validator(config=course.config)
    release = course.root / "release" / MINI / f"{MINI}.ipynb"
    validator.preprocessors = in_course_environment(validator.preprocessors)
    passing = validator.validate(str(student_notebook(course, tmp_path, wrong_cube=False)))
    failing = validator.validate(str(student_notebook(course, tmp_path / "2")))
    untouched = validator.validate(str(release))
    assert passing == {}, passing  # the warning in test_square is no failure
    [failed] = failing["failed"]
    assert "cube(2)" in failed["source"]
    assert plain(failed["raw_error"]) == "AssertionError: cube(2) should be 8"
    assert [plain(f["raw_error"]) for f in untouched["failed"]] == [
        f"Exercise {n} (`{name}`) is not answered yet: write your code in place of "
        "`raise NotImplementedError(...)`."
        for n, name in [("1.1", "square"), ("1.2", "cube")]
    ]


@pytest.mark.slow
def test_nbgrader_autograde_counts_no_warning_and_keeps_the_sentence(tmp_path):
    course = build_class_course(tmp_path / "course", noisy_cells())
    grading = folder.prepare(course, tmp_path / "grading", [MINI])
    folder.submit(grading, "ann", MINI, student_notebook(course, tmp_path))
    nbgrader_autograde(grading, MINI, "ann")
    scores = {g.grade_id: g.points for g in gradebook.grades(grading)}
    assert scores == {"test_square": 2, "test_cube": 0}
    nb = nbs.read(grading.root / "autograded" / "ann" / MINI / f"{MINI}.ipynb")
    by_id = {nbs.nbgrader_meta(c).get("grade_id"): c for c in nb.cells}
    assert not [o for o in by_id["test_square"].outputs if o.get("name") == "stderr"]
    [error] = errors(by_id["test_cube"])  # what the feedback page shows: name and value
    assert (error.ename, error.evalue) == ("AssertionError", "cube(2) should be 8")
    assert [plain(t) for t in error.traceback] == ["AssertionError: cube(2) should be 8"]


# --- the release ----------------------------------------------------------------------------


def test_stubs_name_exercise_and_function_and_the_cells_that_need_them_are_tagged():
    from grader.notebooks.stubs import ExerciseStubs, TagCellsThatMayFail

    nb = new_notebook(
        cells=[
            new_code_cell("import numpy as np"),
            nbgrader_cell(
                "def helper(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION",
                "helper",
                solution=True,
            ),  # before any heading
            new_markdown_cell("### Exercise 2.3: Two (2 points)"),
            nbgrader_cell(
                "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\n\n"
                "def g(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION",
                "fg",
                solution=True,
            ),
            nbgrader_cell('assert f(1) == 1, "f(1) should be 1"', "test_fg", points=2),
            new_code_cell("rows = []\nfor i in range(3):\n    rows.append(g(i))"),  # uses g
            new_code_cell("print(len(rows))"),  # uses what the cell before half filled
            new_code_cell(
                "def f_twice(x):\n    return 2 * x\nprint(f_twice(2))"
            ),  # its own f_twice
            new_markdown_cell("### Exercise 2.4: Gates (1 point)"),
            nbgrader_cell("### BEGIN SOLUTION\nw = 1\n### END SOLUTION", "gates", solution=True),
            nbgrader_cell('assert w == 1, "w should be 1"', "test_gates", points=1),
            new_code_cell("for w in range(2):\n    print(w)"),  # binds w itself before reading it
        ]
    )
    nb, _ = TagCellsThatMayFail().preprocess(nb, {})
    nb, _ = ExerciseStubs().preprocess(nb, {"language": "python"})
    tagged = [i for i, c in enumerate(nb.cells) if RAISES in c.metadata.get("tags", [])]
    assert tagged == [4, 5, 6, 9, 10]
    stubs = [
        line.strip()
        for c in nb.cells
        for line in c.source.splitlines()
        if "NotImplementedError" in line
    ]
    assert stubs == [
        'raise NotImplementedError("`helper` is not answered yet")',
        'raise NotImplementedError("Exercise 2.3 (`f`) is not answered yet")',
        'raise NotImplementedError("Exercise 2.3 (`g`) is not answered yet")',
        'raise NotImplementedError("Exercise 2.4 is not answered yet")',
    ]


def release_notebook(assignment):
    return nbs.read(REPO_ROOT / "release" / assignment / f"{assignment}.ipynb")


def solution_sources(assignment) -> dict[str, str]:
    solutions = nbs.read(REPO_ROOT / "solutions" / assignment / f"{assignment}.ipynb")
    return {nbs.nbgrader_meta(c)["grade_id"]: c.source for c in solutions.cells if is_solution(c)}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_stub_names_its_exercise_and_failing_cells_are_tagged(assignment):
    nb = release_notebook(assignment)
    headings = set()
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "markdown":
            headings |= set(re.findall(r"^#+\s*Exercise\s+(\d[\d.]*)\s*:", cell.source, re.M))
        elif is_solution(cell):
            stubs = [line for line in cell.source.splitlines() if "NotImplementedError" in line]
            assert stubs, cell.source
            for stub in stubs:
                match = UNANSWERED.search(stub)
                assert match and match.group(1) in headings, stub
        elif is_grade(cell):
            assert RAISES in tags, f"{assignment}: test cell {nbs.nbgrader_meta(cell)['grade_id']}"
    setup = next(c for c in nb.cells if c.cell_type == "code")
    assert RAISES not in setup.metadata.get("tags", [])
    solved = nbs.read(REPO_ROOT / "solutions" / assignment / f"{assignment}.ipynb")
    assert not [c for c in solved.cells if RAISES in c.metadata.get("tags", [])], (
        "solutions/ must carry no raises-exception tag: nbval would accept their errors"
    )


def executed_untouched(course, assignment):
    """(release/ notebook, the same notebook as the grader executed it), cell by cell: student
    `untouched` of conftest.py's graded_reference handed in the release notebook as it is."""
    release = release_notebook(assignment)
    ran = nbs.read(course.root / "autograded" / UNTOUCHED / assignment / f"{assignment}.ipynb")
    assert [c.cell_type for c in ran.cells] == [c.cell_type for c in release.cells], (
        f"{assignment}: the graded untouched notebook does not have the cells of release/"
    )
    return list(zip(release.cells, ran.cells, strict=True))


def parsed(source: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError:  # IPython syntax: no names known
        return ast.Module(body=[], type_ignores=[])


def names_in(tree: ast.AST) -> set[str]:
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def functions_of(cells) -> dict[str, set[str]]:
    """Every function the notebook defines -> the names its body reads."""
    functions: dict[str, set[str]] = {}
    for cell in cells:
        if cell.cell_type == "code":
            for node in ast.walk(parsed(cell.source)):
                if isinstance(node, ast.FunctionDef):
                    functions.setdefault(node.name, set()).update(names_in(node))
    return functions


def reaches(source: str, name: str, functions: dict[str, set[str]]) -> bool:
    """Whether `source` uses `name`, itself or through functions the notebook defines."""
    seen, todo = set(), names_in(parsed(source))
    while todo:
        used = todo.pop()
        if used == name:
            return True
        seen.add(used)
        todo |= functions.get(used, set()) - seen
    return False


def raised_before_its_hidden_tests(visible: str, error, functions) -> bool:
    """Whether a test cell's error comes from its visible part, the cell as release/ has it:
    then the hidden tests that nbgrader added after it never ran, and the cell did what it
    does in a student's Run All. Only the error's text can tell: the cell's line in a full
    traceback, the stub's function used there (the one-line error has no line), the sentence
    of a failed check written there."""
    shown = [plain(line) for line in error.traceback]
    if len(shown) > 1:
        line = re.search(r"Cell In\[\d+\], line (\d+)", "\n".join(shown))
        return line is not None and int(line.group(1)) <= len(visible.splitlines())
    stub = re.search(r"\(`(\w+)`\) is not answered yet", shown[0])
    if stub:
        return reaches(visible, stub.group(1), functions)
    sentence = shown[0].removeprefix("AssertionError: ")
    return sentence != shown[0] and sentence[:30] in visible


def check_untouched_run(pairs) -> None:
    """The checks of an untouched release notebook's run, on (release/ cell, executed cell)
    pairs; their errors say which cell breaks which promise."""
    exercises, unanswered = set(), set()
    functions = functions_of(released for released, _ in pairs)
    for index, (released, ran) in enumerate(pairs):
        where = f"cell {index + 1}"
        if released.cell_type == "markdown":
            heading = re.search(r"Exercise\s+(?P<number>\d[\d.]*)\s*:", released.source)
            exercises |= {heading.group("number")} if heading else set()
        if released.cell_type != "code":
            continue
        assert ran.get("execution_count"), f"{where} did not run"
        hidden = ran.source != released.source
        if hidden:  # a test cell comes back with its hidden tests, after the visible part
            assert is_grade(released) and not is_solution(released), f"{where}: not release/'s"
            visible = released.source.rstrip()
            assert ran.source.startswith(visible), f"{where}: not release/'s"
            added = ran.source[len(visible) :].strip()
            assert added.startswith(nbs.BEGIN_HIDDEN) and added.endswith(nbs.END_HIDDEN), where
        for error in errors(ran):
            # nbgrader runs with errors allowed; Run All and nbclient go on past an error only
            # in a cell that release/ tags so.
            assert RAISES in released.metadata.get("tags", []), (
                f"{where} fails untagged, Run All stops there: {error.ename}: {error.evalue}"
            )
            if hidden:
                assert raised_before_its_hidden_tests(released.source, error, functions), (
                    f"{where}: its hidden tests fail, not what release/ shows: {error.traceback}"
                )
            if error.ename == "NotImplementedError":
                shown = error.traceback
                assert len(shown) == 1 and "\n" not in shown[0], f"{where}: not one line: {shown}"
                number = UNANSWERED.search(plain(shown[0]))
                assert number, f"{where}: names no exercise: {shown}"
                unanswered.add(number.group(1))
    assert unanswered == exercises, f"shown unanswered: {unanswered}, headings: {exercises}"


@pytest.mark.slow
@pytest.mark.sandbox  # graded_reference grades sandboxed
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_an_untouched_release_runs_to_its_end_with_one_line_per_unanswered_exercise(
    assignment, graded_reference
):
    """Read from the run's one execution of the untouched release notebook (graded_reference),
    with the kernel option of nbgrader_config.py that installs course.messages (the grader's
    kernels have it as nbgrader's do); a student's kernel has it
    from `import course` in the setup cell (test_the_kernel_shows_sentences_... proves both)."""
    pairs = executed_untouched(graded_reference, assignment)
    setup = next(released for released, _ in pairs if released.cell_type == "code")
    assert "course" in imported_names(setup.source), (
        "the setup cell should `import course`: it installs the messages"
    )
    check_untouched_run(pairs)


@pytest.mark.slow
def test_the_plots_of_answered_exercises_appear_after_an_unanswered_one(tmp_path):
    nb = release_notebook("01_perceptron")
    answers = solution_sources("01_perceptron")
    for cell in nb.cells:  # every exercise answered but the logic gates (1.3)
        grade_id = nbs.nbgrader_meta(cell).get("grade_id")
        if is_solution(cell) and grade_id != "logic_gates":
            cell.source = answers[grade_id]
    run(nb, tmp_path, allow_errors=False)
    gates = next(
        i for i, c in enumerate(nb.cells) if nbs.nbgrader_meta(c).get("grade_id") == "logic_gates"
    )
    [error] = errors(nb.cells[gates])
    assert plain(error.traceback[0]).startswith("Exercise 1.3 is not answered yet")
    later_plots = [
        c
        for c in nb.cells[gates:]
        if any("image/png" in o.get("data", {}) for o in c.get("outputs", []))
    ]
    assert len(later_plots) >= 2, "the learning rule's and XOR's plots should appear"
    assert nb.cells[-1].cell_type != "code" or nb.cells[-1].execution_count


# --- one typical wrong answer per exercise -------------------------------------------------

# (assignment, exercise cell, right code, wrong code, test cell, its message begins with)
WRONG = [
    (
        "01_perceptron",
        "step",
        "> 0, 1, 0)",
        ">= 0, 1, 0)",
        "test_step",
        "AssertionError: step should be 0 for a <= 0 (a = 0 included) and 1 for a > 0: step(a) "
        "for a = [-2, -0.5, 0, 0.5, 2] is 1 at index [2], expected 0",
    ),
    (
        "01_perceptron",
        "perceptron",
        "f(x @ w + b)",
        "f(x @ w)",
        "test_perceptron",
        "AssertionError: With f the identity, perceptron should return the activation x^T w + b: "
        "perceptron([1, 2], [0.5, -1], 1, f=identity) is -1.5, expected -0.5.",
    ),
    (
        "01_perceptron",
        "logic_gates",
        "w_and, b_and = np.array([1.0, 1.0]), -1.5",
        "w_and, b_and = np.array([1.0, 1.0]), -0.5",
        "test_logic_gates_and",
        "AssertionError: w_and, b_and do not compute AND: the output for the input(s) 01, 10 is "
        "wrong",
    ),
    (
        "01_perceptron",
        "train_perceptron",
        "    mistakes = []\n    for _ in range(num_epochs):\n        count = 0\n",
        "    mistakes = []\n    count = 0\n    for _ in range(num_epochs):\n",
        "test_train_perceptron",
        "AssertionError: The last of 120 epochs still had",
    ),
    (
        "01_perceptron",
        "best_linear_accuracy",
        "accuracy.max()",
        "accuracy.mean()",
        "test_best_linear_accuracy",
        "AssertionError: For XOR the best perceptron gets 3 of the 4 rows right, an accuracy of "
        "0.75: best_linear_accuracy for XOR is",
    ),
    (
        "02_networks",
        "dense",
        "f(X @ W.T + b)",
        "f(X @ W.T)",
        "test_dense",
        "AssertionError: dense(X, W, b, identity) is not close to the expected value at index",
    ),
    (
        "02_networks",
        "mlp_forward",
        "H = dense(H, W, b, f)",
        "H = H @ W.T + b",
        "test_mlp_forward",
        "AssertionError: mlp_forward(X, layers, relu) is not close to the expected value",
    ),
    (
        "02_networks",
        "xor_layers",
        "b2 = np.array([-1.5])",
        "b2 = np.array([-0.5])",
        "test_xor_layers",
        "AssertionError: the output of your network for the inputs (0, 0), "
        "(0, 1), (1, 0), (1, 1) is not the expected value at index [0]: expected 0, got 1",
    ),
    (
        "02_networks",
        "network_from_truth_table",
        "b1 = 0.5 - true_rows.sum(axis=1)",
        "b1 = -true_rows.sum(axis=1)",
        "test_network_from_truth_table",
        "AssertionError: the output of the network for XOR is not the expected value",
    ),
    (
        "02_networks",
        "to_sequential",
        "linear.weight.copy_(torch.as_tensor(W))\n"
        "            linear.bias.copy_(torch.as_tensor(b))",
        "linear.weight = nn.Parameter(torch.as_tensor(W))\n"
        "            linear.bias = nn.Parameter(torch.as_tensor(b))",
        "test_to_sequential",
        "AssertionError: to_sequential(layers) cannot take a batch of shape (20, 2): "
        "layer 0 of the "
        "model, Linear(in_features=2, out_features=4, bias=True), holds a bias of dtype float64 "
        "and a weight of dtype float64 but gets a float32 input",
    ),
    (
        "02_networks",
        "count_parameters",
        "d_out * d_in + d_out for",
        "d_out * d_in for",
        "test_num_parameters",
        "AssertionError: num_parameters([2, 2, 1]) is not the expected value: expected 9, got 6.",
    ),
    (
        "03_deep_networks",
        "bump_network",
        "b2 = np.array([fn(t[:1])[0]])",
        "b2 = np.array([0.0])",
        "test_bump_network_error",
        "AssertionError: With 100 units the network is up to",
    ),
    (
        "03_deep_networks",
        "tent_parameters",
        "W2 = np.array([[2.0, -4.0]])",
        "W2 = np.array([[2.0, -2.0]])",
        "test_tent_parameters",
        "AssertionError: T(x) for x = 0, 1/4, 1/2, 3/4, 1 is not close to the expected value at "
        "index [4]: expected 0, got 1",
    ),
    (
        "03_deep_networks",
        "count_linear_pieces",
        "return 1 + int(",
        "return int(",
        "test_count_linear_pieces",
        "AssertionError: count_linear_pieces(x, 3x + 1) is not the expected value: expected 1, "
        "got 0.",
    ),
    (
        "03_deep_networks",
        "make_good_model",
        "nn.Linear(64, 1), nn.Sigmoid()",
        "nn.Linear(32, 1), nn.Sigmoid()",
        "test_good_model",
        "AssertionError: make_good_model() cannot take a batch of shape (5, 2): layer 6 of the "
        "model, Linear(in_features=32, out_features=1, bias=True), expects 32 input features but "
        "gets 64 from the layer before it.",
    ),
    (
        "03_deep_networks",
        "make_mlp",
        "layers.append(nn.Linear(d_in, 10))",
        "layers += [nn.Linear(d_in, 10), nn.ReLU()]",
        "test_make_mlp",
        "AssertionError: A ReLU follows every hidden layer, and nothing follows the last one: "
        "make_mlp([32, 16])(X)",
    ),
    (
        "04_learning",
        "mse_loss",
        "0.5 * np.sum(error**2) / k",
        "np.sum(error**2) / k",
        "test_mse_loss",
        "AssertionError: the loss returned by mse_loss(y_hat, y) is not close to "
        "the expected value: expected 3.25, got 6.5.",
    ),
    (
        "04_learning",
        "sigmoid",
        "np.exp(-np.logaddexp(0.0, -a))",
        "1 / (1 + np.exp(-a))",
        "test_sigmoid",
        "AssertionError: sigmoid is not numerically stable: numpy reports "
        "'overflow encountered in exp'",
    ),
    (
        "04_learning",
        "relu",
        "np.maximum(a, 0.0)",
        "np.max(a, 0)",
        "test_relu",
        "AssertionError: relu([-2, -0.5, 0.5, 3]) should have shape (4,) but has shape ().",
    ),
    (
        "04_learning",
        "gradient_descent",
        "return np.array(trajectory)",
        "return trajectory[-1]",
        "test_gradient_descent",
        "AssertionError: gradient_descent should return the whole trajectory theta^0, ..., "
        "theta^num_steps: gradient_descent(grad_fn, [1.0], 0.25, num_steps=3) should have shape "
        "(4, 1) but has shape (1,).",
    ),
    (
        "04_learning",
        "forward",
        "H.append(f(A[-1]))",
        "H.append(A[-1])",
        "test_forward",
        "AssertionError: y_hat of forward with tanh is not close to the expected value",
    ),
    (
        "04_learning",
        "backward",
        "delta = dH * f_grad(A[l])",
        "delta = dH",
        "test_backward",
        "AssertionError: the gradient of W1 differs from the numerical gradient: relative error",
    ),
    (
        "04_learning",
        "minibatches",
        "    order = rng.permutation(len(X))\n    for start in range(0, len(X), batch_size):\n"
        "        batch = order[start : start + batch_size]\n        yield X[batch], y[batch]",
        "    order = rng.permutation(len(X))\n    X[:], y[:] = X[order], y[order]\n"
        "    for start in range(0, len(X), batch_size):\n"
        "        yield X[start : start + batch_size], y[start : start + batch_size]",
        "test_minibatches",
        "AssertionError: minibatches changed X or y in place",
    ),
    (
        "04_learning",
        "sgd_step",
        "return theta - lr * grad, state",
        "return theta - lr * grad",
        "test_sgd_step",
        "AssertionError: sgd_step(theta, grad, None, lr=0.1) should return 2 "
        "values (theta, state) but returns a single ndarray.",
    ),
    (
        "04_learning",
        "momentum_step",
        "lr * grad + beta * state",
        "lr * grad - beta * state",
        "test_momentum_step",
        "AssertionError: theta after 2 momentum_steps with gradient (1, -2)",
    ),
    (
        "04_learning",
        "adam_step",
        "m_hat = m / (1 - beta1**t)\n    v_hat = v / (1 - beta2**t)",
        "m_hat = m\n    v_hat = v",
        "test_adam_step",
        "AssertionError: adam_step takes the slide's first step, 3.16 times too long",
    ),
    (
        "04_learning",
        "train_epoch",
        "    return total_loss / len(X)",
        "",
        "test_train_epoch",
        "AssertionError: train_epoch should return the mean loss of the epoch, a number, not None",
    ),
    (
        "05_convolution",
        "num_parameters",
        "m * (K + 1), K + 1",
        "m * K, K + 1",
        "test_num_parameters",
        "AssertionError: The three counts are (fully connected, locally connected, convolutional), "
        "biases included: num_parameters(5, 3) is 9 at index [1], expected 12;",
    ),
    (
        "05_convolution",
        "conv1d",
        "k[j] * h[j : j + m]",
        "k[len(k) - 1 - j] * h[j : j + m]",
        "test_conv1d_examples",
        "AssertionError: conv1d([1, 2, 3, 4, 5], [1, 0, -1]) is not close "
        "to the expected value at index [0]: expected -2, got 2",
    ),
    (
        "05_convolution",
        "conv1d_matrix",
        "W[i, i : i + len(k)] = k",
        "W[i, i : i + len(k)] = k[::-1]",
        "test_conv1d_matrix",
        "AssertionError: conv1d_matrix([1, 2, 3], 5) is not close to the expected value",
    ),
    (
        "05_convolution",
        "is_shift_equivariant",
        "np.allclose(",
        "np.array_equal(",
        "test_is_shift_equivariant",
        "AssertionError: is_shift_equivariant(running_mean, h) is False, but a running mean is "
        "shift equivariant",
    ),
    (
        "05_convolution",
        "conv2d",
        "X = np.pad(X, ((0, 0), (padding, padding), (padding, padding)))",
        "X = X",
        "test_conv2d",
        "AssertionError: conv2d(X, ones((1, 1, 3, 3)), padding=1) should "
        "have shape (1, 3, 3) but has shape (1, 1, 1).",
    ),
    (
        "05_convolution",
        "max_pool2d",
        "blocks.max(axis=(2, 4))",
        "blocks.mean(axis=(2, 4))",
        "test_max_pool2d",
        "AssertionError: max_pool2d(arange(16).reshape(1, 4, 4)) is not close to "
        "the expected value",
    ),
    (
        "05_convolution",
        "make_cnn",
        "nn.Linear(16 * 4 * 4, 10)",
        "nn.Linear(16 * 8 * 8, 10)",
        "test_make_cnn",
        "AssertionError: make_cnn() cannot take a batch of shape (5, 1, 8, 8): "
        "layer 6 of the model, Linear(in_features=1024, out_features=10, bias=True), expects 1024 "
        "input features but gets 256 from the layer before it.",
    ),
]


def test_every_exercise_has_a_wrong_answer_here():
    covered = {(a, solution) for a, solution, *_ in WRONG}
    for assignment in ASSIGNMENTS:
        solutions = nbs.read(REPO_ROOT / "solutions" / assignment / f"{assignment}.ipynb")
        for cell in solutions.cells:
            if not is_solution(cell) or nbs.is_written_answer(cell):
                continue  # written answers are graded by hand: no test, no wrong answer
            grade_id = nbs.nbgrader_meta(cell)["grade_id"]
            assert (assignment, grade_id) in covered, f"{assignment}: {grade_id} has none"


@pytest.fixture(scope="module")
def shared_kernel(tmp_path_factory):
    """One kernel for the notebooks of the typical wrong answers, one after the other, its
    namespace reset between them: a kernel's start and torch's import once, not once per
    notebook (10 s of CPU). Only the test cells' errors are read, never a plot: Agg draws
    none, where the inline backend renders each figure to PNG (a fifth of the CPU time)."""
    km = AsyncKernelManager(kernel_name="python3")
    run_sync(km.start_kernel)(
        env={**kernel_environment(), "MPLBACKEND": "agg"},
        cwd=str(tmp_path_factory.mktemp("wrong_answers")),
    )
    yield km
    run_sync(km.shutdown_kernel)(now=True)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_a_typical_wrong_answer_fails_with_its_sentence_first(assignment, shared_kernel):
    """The release notebook answered right, in shared_kernel (reset first); after each
    exercise's test has passed, the exercise cell runs again with the wrong answer, then the
    cells up to and with the test (a training cell between them included), then right
    again."""
    nb = release_notebook(assignment)
    answers = solution_sources(assignment)
    index = {nbs.nbgrader_meta(c).get("grade_id"): i for i, c in enumerate(nb.cells)}
    for cell in nb.cells:
        if is_solution(cell):
            cell.source = answers[nbs.nbgrader_meta(cell)["grade_id"]]
    cases = {
        test: (solution, right, wrong, expected)
        for a, solution, right, wrong, test, expected in WRONG
        if a == assignment
    }
    last = max(index[test] for test in cases)
    client = NotebookClient(nb, km=shared_kernel, timeout=600, allow_errors=True)
    seen = {}

    def execute(i, source=None):
        original = nb.cells[i]
        cell = nbformat.from_dict(copy.deepcopy(original))
        if source is not None:
            cell.source = source
        client.execute_cell(cell, i)
        nb.cells[i] = original  # nbclient puts the cell it ran in its place
        return cell

    with client.setup_kernel(), contextlib.ExitStack() as stack:
        stack.callback(client.kc.stop_channels)  # the kernel stays, for the next notebook
        # What an earlier notebook left: its names, its figures.
        reset = new_code_cell("%reset -f\nimport matplotlib.pyplot\nmatplotlib.pyplot.close('all')")
        client.execute_cell(reset, 0)
        assert not errors(reset), errors(reset)
        for i, cell in enumerate(nb.cells[: last + 1]):
            if cell.cell_type != "code":
                continue
            ran = execute(i)
            test = nbs.nbgrader_meta(cell).get("grade_id")
            if test not in cases:
                continue
            assert not errors(ran), f"{test} fails on the right answer: {errors(ran)}"
            solution, right, wrong, expected = cases[test]
            start = index[solution]
            source = nb.cells[start].source
            assert right in source, (solution, right)
            execute(start, source.replace(right, wrong))
            between = [j for j in range(start + 1, i) if nb.cells[j].cell_type == "code"]
            for j in between:
                execute(j)
            seen[test] = errors(execute(i))
            execute(start)
            for j in between:
                execute(j)
    assert set(seen) == set(cases)
    for test, (_, _, _, expected) in cases.items():
        assert len(seen[test]) == 1, f"{test}: {seen[test]}"
        [error] = seen[test]
        assert len(error.traceback) == 1 and "\n" not in error.traceback[0], (
            f"{test}: not one line: {error.traceback}"
        )
        shown = plain(error.traceback[0])
        assert shown.startswith(expected), f"{test}: {shown!r}"


# --- the conventions of the course's test cells --------------------------------------------


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_check_of_a_test_cell_has_a_sentence_and_none_is_numpy_testing(assignment):
    nb = nbs.read(REPO_ROOT / "source" / assignment / f"{assignment}.ipynb")
    problems = []
    for cell in nb.cells:
        if cell.cell_type != "code" or not is_grade(cell) or is_solution(cell):
            continue
        grade_id = nbs.nbgrader_meta(cell)["grade_id"]
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Assert) and node.msg is None:
                problems.append(f"{grade_id}, line {node.lineno}: an assert without a message")
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "testing"
                and isinstance(node.value, ast.Name)
                and node.value.id in ("np", "numpy")
            ):
                problems.append(
                    f"{grade_id}, line {node.lineno}: numpy.testing, whose report "
                    "comes before the message; use course.testing"
                )
    assert not problems, problems
