"""grader/execution/tamper.py's canaries, run in this process instead of a kernel.

The worker sends `Checks(nb).canary_block` to the kernel before each test cell and reads the
kernel's error reply (the exception's name and text) with `disarmed`. Here the block runs
with `exec` in a namespace that stands for the kernel's (the notebook's imports done), and
the exception it ends in is read the same way. What a submission replaces in a module is
replaced here too, for the test's duration only (monkeypatch).

Not here: a cell runner replaced inside IPython itself (`run_cell`, an AST transformer
registered with the shell) needs a kernel's shell; test_tamper.py grades such cheats end to
end. `test_a_cell_runner_that_empties_cells_is_caught` applies the same kind of transformer
to the block before it runs, as the shell would.
"""

from __future__ import annotations

import ast
import builtins
import types

import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import course.testing
from grader.execution.tamper import MARK, Checks, disarmed

SETUP = "import numpy as np\nfrom course.testing import assert_close\n"
TEST = (
    '"""Check double."""\n'
    'np.testing.assert_allclose(double(1.0), 2.0, err_msg="double(1.0)")\n'
    'assert_close(double(2.0), 4.0, "double(2.0)")\n'
)


def notebook():
    test = new_code_cell(TEST)
    test.metadata["nbgrader"] = {
        "grade": True,
        "solution": False,
        "locked": True,
        "grade_id": "test_double",
        "points": 1,
    }
    return new_notebook(cells=[new_code_cell(SETUP), test])


@pytest.fixture
def checks():
    return Checks(notebook())


@pytest.fixture
def kernel():
    """The kernel's namespace after the setup cell and an honest answer."""
    namespace: dict = {}
    exec(SETUP + "def double(x):\n    return 2 * x\n", namespace)
    return namespace


def run_canaries(
    checks: Checks, namespace: dict, transformer: ast.NodeTransformer | None = None
) -> str | None:
    """What `disarmed` makes of the canary block run in `namespace`, after `transformer`
    (as IPython applies the AST transformers registered with its shell)."""
    tree = ast.parse(checks.canary_block)
    if transformer is not None:
        tree = ast.fix_missing_locations(transformer.visit(tree))
    try:
        exec(compile(tree, "<canaries>", "exec"), namespace)
    except BaseException as error:  # as the kernel's error reply names it
        return disarmed(checks.canaries, type(error).__name__, str(error))
    return disarmed(checks.canaries, None)


def noop(*args, **kwargs):
    return None


def test_the_canaries_check_every_helper_the_tests_use(checks):
    assert checks.canaries[0] == f"assert False, {MARK}"
    calls = [canary.splitlines()[-1] for canary in checks.canaries[1:]]
    assert calls == [
        f"assert_close(0.25, 0.75, {MARK})",
        f"np.testing.assert_allclose(0.25, 0.75, err_msg={MARK})",
        f"__import__('course.testing', fromlist=['_']).assert_close(0.25, 0.75, {MARK})",
        f"__import__('numpy.testing', fromlist=['_']).assert_allclose(0.25, 0.75, err_msg={MARK})",
    ]


def test_an_untouched_kernel_passes(checks, kernel):
    assert run_canaries(checks, kernel) is None


def test_a_name_bound_to_a_dummy_is_caught(checks, kernel):
    kernel["assert_close"] = noop
    assert run_canaries(checks, kernel) == f"`assert_close(0.25, 0.75, {MARK})` no longer fails"


def test_a_replaced_numpy_helper_is_caught(checks, kernel, monkeypatch):
    monkeypatch.setattr(np.testing, "assert_allclose", noop)
    assert run_canaries(checks, kernel) == (
        f"`np.testing.assert_allclose(0.25, 0.75, err_msg={MARK})` no longer fails"
    )


def test_a_course_helper_replaced_in_its_module_is_caught(checks, kernel, monkeypatch):
    # The notebook's own name still holds the real helper; a test cell that imports it
    # afresh would get the dummy.
    monkeypatch.setattr(course.testing, "assert_close", noop)
    assert run_canaries(checks, kernel) == (
        f"`__import__('course.testing', fromlist=['_']).assert_close(0.25, 0.75, {MARK})` "
        "no longer fails"
    )


def test_a_helper_that_raises_something_else_is_caught(checks, kernel):
    def refuses(*args, **kwargs):
        raise TypeError("not today")

    kernel["assert_close"] = refuses
    assert run_canaries(checks, kernel) == (
        f"`assert_close(0.25, 0.75, {MARK})` raised TypeError, not an AssertionError"
    )


def test_a_replaced_assertion_error_is_caught(checks, kernel, monkeypatch):
    fine = type("Fine", (Exception,), {})
    with monkeypatch.context() as patch:  # undone before pytest needs AssertionError again
        patch.setattr(builtins, "AssertionError", fine)
        what = run_canaries(checks, kernel)
    assert what == f"`assert_close(0.25, 0.75, {MARK})` raised Fine, not an AssertionError"


def test_a_patched_import_is_caught(checks, kernel):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "numpy.testing":
            return types.SimpleNamespace(assert_allclose=noop)
        return real_import(name, *args, **kwargs)

    kernel["__builtins__"] = {**vars(builtins), "__import__": fake_import}
    assert run_canaries(checks, kernel) == (
        f"`__import__('numpy.testing', fromlist=['_']).assert_allclose(0.25, 0.75, "
        f"err_msg={MARK})` no longer fails"
    )


class EmptyCells(ast.NodeTransformer):
    """What a cheat registers as an AST transformer: every cell becomes `pass`."""

    def visit_Module(self, node):
        node.body = [ast.Pass()]
        return node


class NoAsserts(ast.NodeTransformer):
    """A subtler one: every assert statement goes, the helpers' calls stay."""

    def visit_Assert(self, node):
        return ast.Pass()


def test_a_cell_runner_that_empties_cells_is_caught(checks, kernel):
    assert run_canaries(checks, kernel, EmptyCells()) == f"`assert False, {MARK}` no longer fails"


def test_a_cell_runner_that_drops_asserts_is_caught(checks, kernel):
    assert run_canaries(checks, kernel, NoAsserts()) == f"`assert False, {MARK}` no longer fails"


def test_an_error_that_names_no_canary_is_caught(checks):
    # A RuntimeError of the kernel's own, or one that names a canary there is not.
    assert disarmed(checks.canaries, "RuntimeError", "something else") == (
        "the canaries raise RuntimeError, not an AssertionError"
    )
    assert disarmed(checks.canaries, "RuntimeError", "grader check 9: no error") == (
        "the canaries raise RuntimeError, not an AssertionError"
    )
