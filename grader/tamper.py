"""Catching a submission that disarms the tests: canaries run in its kernel before each test.

Student code and tests share one Python process, so a submission can replace what the
tests call (`np.testing.assert_allclose = lambda *a, **k: None`, `assert_close` from
course.testing, IPython's cell runner) and pass everything. Restoring those objects
before each test cannot work: code in the same process can undo any restore. So the
grader checks instead: before every test cell it runs, in the same kernel, a few calls
that must fail (`assert False`, and each assertion helper the tests use, called on 0.25
against 0.75). If one of them no longer fails, the checks have been tampered with, the
notebook stops there, and the remaining tests score 0.

What it catches: blanket replacements of the assertion helpers, of AssertionError's
raising, of the cell runner. What it cannot: a replacement written to fail on these
canaries and pass only on the tests' own calls. Replacing `builtins.AssertionError`
needs no canary: an `assert` raises the real AssertionError, and anything else a test
raises is an error all the same, which nbgrader scores 0.
"""

from __future__ import annotations

import re

from nbgrader.utils import is_grade, is_solution

# Helpers imported by name from these modules are checked under their bare name...
TESTING_MODULES = ("course.testing", "numpy.testing", "torch.testing")
IMPORTED = re.compile(
    r"^[ \t]*from[ \t]+(course\.testing|numpy\.testing|torch\.testing)[ \t]+import[ \t]+"
    r"(?:\(([^)]*)\)|([\w ,]+))",  # `import (a,\n b)` or `import a, b` on one line
    re.MULTILINE,
)
# ... and these dotted calls where a test cell makes them.
DOTTED = re.compile(r"\b((?:np|numpy|torch|course)\.testing\.assert_\w+)\s*\(")


class Tampered(Exception):
    """A canary passed: the checks the tests rely on no longer fail."""


def canaries(nb) -> list[str]:
    """The code of every canary for this notebook: each must end in an error."""
    calls = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for module, in_parentheses, on_one_line in IMPORTED.findall(cell.source):
            for name in (n.strip() for n in (in_parentheses or on_one_line).split(",")):
                if name.startswith("assert"):
                    # The name as the kernel has it now, and the module's attribute, which
                    # a test cell importing the name afresh would get.
                    calls.add(name)
                    calls.add(f"__import__({module!r}, fromlist=['_']).{name}")
        if is_grade(cell) and not is_solution(cell):
            calls.update(DOTTED.findall(cell.source))
    return ["assert False, 'grader check'"] + [
        f"{call}(0.25, 0.75, 'grader check')" for call in sorted(calls)
    ]


def is_test_cell(cell) -> bool:
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)
