"""`python -m grader bundle`: the zip students download.

It holds release/, the `course` package, the set-up files and a student README; nothing
from source/, solutions/, grader/ or tests/ (hidden tests and answers live there).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from grader.course_config import CourseConfig
from grader.errors import GraderError

TOP = "intro-to-deep-learning"
FILES = ["environment.yml", "pyproject.toml", "constraints.txt"]
FOLDERS = ["release", "course"]
SKIP_PARTS = {"__pycache__", ".ipynb_checkpoints"}

STUDENT_README = """\
# Introduction to Deep Learning: student bundle

Set up once, with Python 3.11:

    python3 -m venv .venv
    .venv/bin/pip install -c constraints.txt -e .
    .venv/bin/jupyter lab release/

or with conda:

    conda env create -f environment.yml
    conda activate intro-to-deep-learning
    jupyter lab release/

Work through release/01_perceptron/01_perceptron.ipynb first, then the others in order.
Replace each `raise NotImplementedError()` with your code and run the test cell below it.
Hand in each notebook under its own name (e.g. 01_perceptron.ipynb).
"""


def make_bundle(course: CourseConfig, out: Path | str | None = None) -> Path:
    root = course.root
    if not (root / "release").is_dir() or not any((root / "release").rglob("*.ipynb")):
        raise GraderError("release/ holds no notebooks; run `python -m grader build` first")
    out = Path(out) if out else root / "grading" / "student-bundle.zip"
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
    tmp.replace(out)  # a half-written bundle never takes the place of a good one
    return out
