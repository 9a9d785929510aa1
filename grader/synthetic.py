"""A synthetic class for the demo and the benchmark: every kind of submission a course sees.

Each student's notebook is derived from the assignment's source notebook, so the class
follows the course as it changes:

    ada            everything right (the solution view of source/)
    blank          the untouched release notebook
    cat, dan, eve, fay
                   partly right: some exercises left as stubs, some answered wrongly
    gus            correct, but a function warns on stderr when tested (full marks)
    hal            handed in twice: a blank first attempt, then the solutions (the later counts)
    ivy            one answer loops forever (the cell is stopped at the timeout)
    jon            a syntax error in one answer
    kim            the notebook is not valid JSON
    leo            the kernel dies half way (os._exit)
    max            the notebook under a wrong file name (collect skips it: missing)
"""

from __future__ import annotations

import datetime as dt
import random
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

import nbformat

from grader import notebooks as nbs
from grader.build import solution_notebook
from grader.course_config import CourseConfig

EARLY = dt.datetime(2026, 11, 20, 9, 0, 0)
DEADLINE = dt.datetime(2026, 11, 27, 9, 0, 0)
WRONG_ANSWER = "    return None  # a wrong answer: the right shape of code, no result"


def _solution_cells(nb) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and nbs.is_solution(c)]


def _replace_solution(source: str, body: str) -> str:
    """Replace what is between the solution delimiters (kept) by `body`."""
    lines, out, inside = source.splitlines(), [], False
    for line in lines:
        stripped = line.strip()
        if stripped == nbs.BEGIN_SOLUTION:
            inside = True
            out.append(line)
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + b for b in body.splitlines()]
        elif stripped == nbs.END_SOLUTION:
            inside = False
            out.append(line)
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _indented_region(source: str) -> bool:
    """Whether the solution region sits inside a function (indented delimiters)."""
    for line in source.splitlines():
        if line.strip() == nbs.BEGIN_SOLUTION:
            return line.startswith((" ", "\t"))
    return False


def as_handed_in(nb):
    """What a student's notebook looks like: no delimiters, no hidden tests."""
    tmp = Path(tempfile.mkdtemp(prefix="grader-synthetic-")) / "nb.ipynb"
    try:
        nbs.write(nb, tmp)
        return solution_notebook(tmp)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def partly_right(source_nb, seed: int):
    """About half of the exercises stubbed or answered wrongly, the rest right."""
    nb = _copy(source_nb)
    rng = random.Random(seed)
    cells = _solution_cells(nb)
    chosen = rng.sample(cells, k=max(1, len(cells) // 2))
    for i in chosen:
        cell = nb.cells[i]
        wrong = rng.random() < 0.5 and _indented_region(cell.source)
        body = WRONG_ANSWER.strip() if wrong else "raise NotImplementedError()"
        cell.source = _replace_solution(cell.source, body)
    return as_handed_in(nb)


def _copy(nb):
    return nbformat.reads(nbformat.writes(nb), as_version=4)


def with_first_answer(source_nb, prefix: str):
    """The right answers, with `prefix` run at the top of the first solution cell."""
    nb = _copy(source_nb)
    first = nb.cells[_solution_cells(nb)[0]]
    first.source = prefix + "\n" + first.source
    return as_handed_in(nb)


def with_answer_at(source_nb, position: float, prefix: str):
    """The right answers, with `prefix` at the top of the solution cell at `position` (0..1)."""
    nb = _copy(source_nb)
    cells = _solution_cells(nb)
    cell = nb.cells[cells[min(len(cells) - 1, int(position * len(cells)))]]
    cell.source = prefix + "\n" + cell.source
    return as_handed_in(nb)


NOISY = """
import functools as _functools
import warnings as _warnings


def _noisy(fn):
    @_functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _warnings.warn("this could be faster", UserWarning)
        return fn(*args, **kwargs)
    return wrapper


{name} = _noisy({name})
"""


def with_noisy_function(source_nb):
    """The right answers; the first answer that defines a function warns on every call,
    so the warning lands on stderr inside the test cells (nbgrader must not zero them)."""
    nb = _copy(source_nb)
    for i in _solution_cells(nb):
        match = re.search(r"^def (\w+)\(", nb.cells[i].source, re.MULTILINE)
        if match:
            nb.cells[i].source += "\n" + NOISY.format(name=match.group(1))
            break
    return as_handed_in(nb)


def make_class(
    course: CourseConfig, assignments: list[str], out: Path, exclude: tuple[str, ...] = ()
) -> Path:
    """Write an LMS-style zip of the whole class (but `exclude`) to `out` and return it."""
    files: list[tuple[str, bytes, dt.datetime]] = []
    for number, assignment in enumerate(assignments):
        source = course.root / "source" / assignment / f"{assignment}.ipynb"
        release = course.root / "release" / assignment / f"{assignment}.ipynb"
        full = nbs.read(source)
        right = as_handed_in(full)
        blank = nbs.read(release)
        name = f"{assignment}.ipynb"

        def add(student, nb, when=DEADLINE, filename=None, folder="final", name=name):
            if student in exclude:
                return
            data = nb if isinstance(nb, bytes) else nbformat.writes(nb).encode()
            files.append((f"{folder}/{student}_{filename or name}", data, when))

        add("ada", right)
        add("blank", blank)
        for k, student in enumerate(["cat", "dan", "eve", "fay"]):
            add(student, partly_right(full, seed=100 * number + k))
        add("gus", with_noisy_function(full))
        add("hal", blank, when=EARLY, folder="first-attempt")
        add("hal", right, when=DEADLINE - dt.timedelta(hours=1))
        add("ivy", with_first_answer(full, "while True:  # oops\n    pass"))
        add("jon", with_answer_at(full, 0.5, "def broken(:"))
        add("kim", nbformat.writes(right).encode()[:500])
        add("leo", with_answer_at(full, 0.6, "import os\nos._exit(1)"))
        add("max", right, filename=f"{assignment}_final_v2.ipynb")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for filename, data, when in files:
            info = zipfile.ZipInfo(f"submissions/{filename}", date_time=when.timetuple()[:6])
            archive.writestr(info, data)
        archive.writestr("submissions/README.txt", "Downloaded from the LMS.\n")
    return out
