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

and, for the similarity check (its test and bench/similarity.py), a class of random answers
with copies in disguise (`similarity_class`).
"""

from __future__ import annotations

import datetime as dt
import random
import re
import shutil
import tempfile
import textwrap
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from grader.config import CourseConfig
from grader.notebooks import cells as nbs
from grader.notebooks.stubs import TagCellsThatMayFail
from grader.pipeline.build import solution_notebook

if TYPE_CHECKING:
    from grader.pipeline.similarity import Answer

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
    """What a student's notebook looks like: no delimiters, no hidden tests, and the tags the
    release gave its cells (grader.notebooks.stubs: `raises-exception` where a cell may fail)."""
    tmp = Path(tempfile.mkdtemp(prefix="grader-synthetic-")) / "nb.ipynb"
    try:
        nbs.write(nb, tmp)
        handed_in = solution_notebook(tmp)
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)
    tagged, _ = TagCellsThatMayFail().preprocess(_copy(nb), {})
    for cell, released in zip(handed_in.cells, tagged.cells, strict=True):
        if released.metadata.get("tags"):
            cell.metadata["tags"] = list(released.metadata["tags"])
    return handed_in


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


# --- the class as Canvas and Moodle hand it out ------------------------------------------

# student id, name, email, Canvas user id: the roster of the LMS class below.
ROSTER = [
    ("ada", "Ada Lovelace", "ada@example.edu", "1001"),
    ("blank", "Blaise Pascal", "blaise@example.edu", "1002"),
    ("hal", "Hal Abelson", "hal@example.edu", "1008"),
    ("dan", "Dana Scott", "dana@example.edu", "1004"),
    ("eve", "Eve Cohen", "eve@example.edu", "1005"),
]
# Hands in, but is on no roster: collect lists this identity and grades nothing of it.
STRANGER = ("Sam Stranger", "1099")
DOWNLOADED = DEADLINE + dt.timedelta(days=9)  # when the instructor downloads the zip


def write_roster(path: Path, rows=ROSTER) -> Path:
    """The roster as a CSV file (grader.lms.roster)."""
    lines = ["student_id,name,email,lms_id"] + [",".join(row) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def lms_class(course: CourseConfig, assignment: str, due: dt.datetime = DEADLINE):
    """Who hands in what, and when, for one assignment, in the LMS class:

        ada      the solutions, a day early
        blank    the untouched release notebook, on time
        hal      the release notebook two days early, then the solutions an hour early
                 (a resubmission under the same name: the LMS renames the second copy)
        dan      the solutions 1 day 2 hours late
        eve      the solutions 8 days late
        stranger the solutions, on time, from an identity that is on no roster

    as (who, notebook bytes, handed in at, copy number, late) with who a roster row or
    STRANGER; copy 0 is the notebook's own name, 1 the LMS's first renamed copy.
    """
    full = nbs.read(course.root / "source" / assignment / f"{assignment}.ipynb")
    right = nbformat.writes(as_handed_in(full)).encode()
    blank = nbformat.writes(
        nbs.read(course.root / "release" / assignment / f"{assignment}.ipynb")
    ).encode()
    rows = {row[0]: row for row in ROSTER}
    hour = dt.timedelta(hours=1)
    return [
        (rows["ada"], right, due - 24 * hour, 0, False),
        (rows["blank"], blank, due - hour, 0, False),
        (rows["hal"], blank, due - 48 * hour, 0, False),
        (rows["hal"], right, due - hour, 1, False),
        (rows["dan"], right, due + 26 * hour, 0, True),
        (rows["eve"], right, due + 8 * 24 * hour, 0, True),
        (STRANGER, right, due - hour, 0, False),
    ]


def name_and_lms_id(who) -> tuple[str, str]:
    """The name and LMS id of a ROSTER row or of STRANGER."""
    return (who[0], who[1]) if len(who) == 2 else (who[1], who[3])


def canvas_name(who, late: bool) -> str:
    """`<sortable name>[_LATE]_<user id>` as Canvas's content_zipper writes it: "Lovelace,
    Ada" lower-cased, all but letters, digits and '_' removed."""
    name, user = name_and_lms_id(who)
    first, _, last = name.rpartition(" ")
    sortable = re.sub(r"[^\w]", "", f"{last}, {first}".lower())
    return "_".join([sortable, *(["LATE"] if late else []), user])


def make_lms_class(
    course: CourseConfig, assignments: list[str], out: Path, lms: str, due: dt.datetime = DEADLINE
) -> Path:
    """A Canvas or Moodle "Download all submissions" zip of the LMS class (`lms_class`),
    named as each LMS names its files (grader.lms.formats). Canvas dates every entry when it builds
    the zip and marks late work LATE; Moodle dates each file (as Moodle before 4.1 does) and
    puts each student's files in a folder of their own."""
    entries = []
    attachment = 5000
    for number, assignment in enumerate(assignments):
        for who, data, when, copy, late in lms_class(course, assignment, due):
            name, user = name_and_lms_id(who)
            if lms == "canvas":
                attachment += 1
                file = f"{assignment}{f'-{copy}' if copy else ''}.ipynb"
                entries.append((f"{canvas_name(who, late)}_{attachment}_{file}", data, DOWNLOADED))
            elif lms == "moodle":
                file = f"{assignment}{f' ({copy})' if copy else ''}.ipynb"
                # Moodle's participant id: one per user and assignment
                participant = int(user) + 600000 + 10000 * number
                entries.append((f"{name}_{participant}_assignsubmission_file/{file}", data, when))
            else:
                raise ValueError(f"unknown LMS {lms!r}: canvas or moodle")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for filename, data, when in entries:
            archive.writestr(zipfile.ZipInfo(filename, date_time=when.timetuple()[:6]), data)
    return out


# --- answers for the similarity check: independent ones, and copies in disguise -----------

_NAMES = [
    f"{a}{b}"
    for a in ("val", "tmp", "acc", "res", "arr", "out", "cur", "tot")
    for b in ("", "s", "_a", "_b", "1", "2")
]
_LINES = [
    "{a} = np.asarray({b}, dtype=float)",
    "{a} = {b} * {k} + {c}",
    "for {i} in range(len({b})):\n    {a} = {a} + {b}[{i}] * {k}",
    "if {a} > {k}:\n    {b} = {a} - {k}\nelse:\n    {b} = {k}",
    "{a} = np.{fn}({b}, axis={k2})",
    "{a} = [{c} * {k} for {c} in {b} if {c} > {k2}]",
    "{a}, {b} = {b}, {a} + {k}",
    "while {a} < {k}:\n    {a} += {k2}",
    "{a} = {b}.reshape({k}, -1).T @ {c}",
    "{a} = max({a}, {b}[{k2}])",
]
_FUNCTIONS = ["sum", "mean", "max", "cumsum", "argmax", "std"]


def random_answer(rng: random.Random, lines: int = 8) -> str:
    """The body of a function: `lines` random statements of the kind students write, then a
    return."""
    out = []
    for _ in range(lines):
        names = rng.sample(_NAMES, 4)
        out.append(
            rng.choice(_LINES).format(
                a=names[0],
                b=names[1],
                c=names[2],
                i=names[3],
                k=rng.randint(0, 9),
                k2=rng.randint(0, 3),
                fn=rng.choice(_FUNCTIONS),
            )
        )
    out.append(f"return {rng.choice(_NAMES)}")
    return textwrap.indent("\n".join(out), "    ")


def renamed(source: str, rng: random.Random) -> str:
    """`source` with every name of random_answer's changed: a copy in disguise."""
    mapping = dict(
        zip(_NAMES, rng.sample([f"z{i}" for i in range(len(_NAMES))], len(_NAMES)), strict=True)
    )
    return re.sub(r"\w+", lambda m: mapping.get(m[0], m[0]), source)


def similarity_class(
    students: int, copies: int, exercises: int = 5, seed: int = 0
) -> tuple[dict[str, dict[str, str]], dict[str, str], dict[str, str]]:
    """A class for grader.pipeline.similarity: (answers {grade id: {student: source}},
    stubs {grade id: the release's stub}, copies {original: copy}). Students s000, s001, ...
    answer each exercise `ex0`, `ex1`, ... with random_answer; the first `copies` odd-numbered
    students hand in the answers of the student before them, renamed."""
    rng = random.Random(seed)
    stubs = {
        f"ex{e}": f"def ex{e}(data):\n    raise NotImplementedError()" for e in range(exercises)
    }
    pairs = {f"s{2 * i:03d}": f"s{2 * i + 1:03d}" for i in range(copies)}
    original_of = {copy: original for original, copy in pairs.items()}
    answers: dict[str, dict[str, str]] = {grade_id: {} for grade_id in stubs}
    for student in (f"s{i:03d}" for i in range(students)):
        for grade_id, by_student in answers.items():
            original = original_of.get(student)
            by_student[student] = (
                renamed(by_student[original], rng)
                if original
                else f"def {grade_id}(data):\n" + random_answer(rng)
            )
    return answers, stubs, pairs


def fingerprinted(
    answers: dict[str, dict[str, str]], stubs: dict[str, str]
) -> dict[str, dict[str, Answer]]:
    """similarity_class's answers as grader.pipeline.similarity compares them, by grade id
    and student."""
    from grader.pipeline.similarity import make_answer

    return {
        grade_id: {
            student: make_answer(
                student, grade_id, source, stubs[grade_id], {grade_id, "data", "np"}
            )
            for student, source in by_student.items()
        }
        for grade_id, by_student in answers.items()
    }
