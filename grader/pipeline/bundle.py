"""`python -m grader bundle`: the zip students download.

It holds release/, the `course` package, the student lab (`courselab`), the set-up files,
the LICENSE, a student README and a student-safe nbgrader_config.py; nothing from source/,
solutions/, grader/ or tests/ (hidden tests and answers live there).
"""

from __future__ import annotations

import ast
import zipfile
from pathlib import Path

from traitlets.config import LazyConfigValue

from grader.config import CONFIG_FILE, CourseConfig, default_workdir
from grader.errors import GraderError

TOP = "intro-to-deep-learning"
BUNDLE_NAME = "student-bundle.zip"  # in the grading folder, unless --out names another place
FILES = ["environment.yml", "pyproject.toml", "constraints.txt", "LICENSE"]
FOLDERS = ["release", "course", "courselab"]
SKIP_PARTS = {"__pycache__", ".ipynb_checkpoints"}
# What a student's nbgrader needs of the course's configuration to validate a notebook as
# the grader runs it: the kernel's options and timeout (Execute), the stderr noise that
# does not count (IgnorePattern), Validator's settings. Not the gradebook's URL, the course
# root, the exchange or anything else an instructor's file may hold.
STUDENT_SECTIONS = ("Execute", "IgnorePattern", "Validator")

STUDENT_README = """\
# Introduction to Deep Learning: student bundle

Set up once, with Python 3.11 (3.12 and 3.13 work too), in this folder:

    python3 -m venv .venv
    .venv/bin/pip install -c constraints.txt -e .

(on Windows: `py -3.11 -m venv .venv` and `.venv\\Scripts\\pip ...`), or with conda:

    conda env create -f environment.yml
    conda activate intro-to-deep-learning

Then, in this folder, start JupyterLab:

    .venv/bin/python -m courselab      (with conda: python -m courselab)

Work through release/01_perceptron/01_perceptron.ipynb first, then the others in order.
Replace each line `raise NotImplementedError(...)` with your code and run the test cell below it.
The Validate button in the notebook's toolbar saves the notebook and runs it from the top
as the grader will (with this folder's nbgrader_config.py): it says how many tests pass,
how many points they are worth, the first problem of each exercise, and which written
answers are still blank (your instructor grades those). The grader also runs hidden tests.
`nbgrader validate release/01_perceptron/01_perceptron.ipynb`, run in this folder, checks
the tests the same way in a terminal.

Hand in each notebook under its own name (e.g. 01_perceptron.ipynb).
"""


def make_bundle(course: CourseConfig, out: Path | str | None = None) -> Path:
    """Write the bundle to `out`, by default BUNDLE_NAME in the default grading folder."""
    root = course.root
    if not (root / "release").is_dir() or not any((root / "release").rglob("*.ipynb")):
        raise GraderError("release/ holds no notebooks; run `python -m grader build` first")
    out = Path(out) if out else default_workdir(course) / BUNDLE_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".zip.part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in FILES:
            archive.write(root / name, f"{TOP}/{name}")
        for folder in FOLDERS:
            for path in sorted((root / folder).rglob("*")):
                rel = path.relative_to(root)
                if path.is_file() and not SKIP_PARTS & set(rel.parts) and path.suffix != ".pyc":
                    archive.write(path, f"{TOP}/{rel.as_posix()}")
        archive.writestr(f"{TOP}/README.md", STUDENT_README)
        archive.writestr(f"{TOP}/{CONFIG_FILE}", student_config(course))
    tmp.replace(out)  # a half-written bundle never takes the place of a good one
    return out


def student_config(course: CourseConfig) -> str:
    """nbgrader_config.py for students: the course id and the course's STUDENT_SECTIONS, so
    that Validate (the lab's button and `nbgrader validate`) runs notebooks as the grader does.
    """
    lines = [
        '"""nbgrader\'s configuration for students of the course, written by `python -m grader',
        "bundle` from the course's nbgrader_config.py: what Validate needs to run a notebook",
        "as the grader does (the kernel's options, the timeout, the stderr noise that does not",
        'count). Keep it beside release/."""',
        "",
        "c = get_config()  # noqa: F821 (nbgrader and traitlets provide get_config)",
        "",
        f"c.CourseDirectory.course_id = {course.course_id!r}",
    ]
    for section in STUDENT_SECTIONS:
        for key, value in sorted(course.config.get(section, {}).items()):
            lines.append(f"c.{section}.{key} = {_literal(section, key, value)}")
    return "\n".join(lines) + "\n"


def _literal(section: str, key: str, value) -> str:
    """`value` as Python source; a value the course's file built with .append() or
    .update() (a traitlets LazyConfigValue) is first applied to nbgrader's default."""
    if isinstance(value, LazyConfigValue):
        from nbgrader import preprocessors, validator

        owner = getattr(preprocessors, section, None) or getattr(validator, section)
        value = value.get_value(owner.class_traits()[key].default())
    text = repr(value)
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise GraderError(
            f"{CONFIG_FILE}: c.{section}.{key} = {text} cannot be written "
            "into the student bundle's configuration; use a plain value"
        ) from None
    return text
