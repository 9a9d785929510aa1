"""Feedback pages of huge autograded notebooks: time and peak memory of each page.

    python bench/feedback_huge.py            # refused files of 500 MB
    python bench/feedback_huge.py --giant-mb 200

One student of 01_perceptron, graded in a temporary grading folder, whose autograded notebook
is replaced by each case in turn: the course's own solution notebook (figures included), then
notebooks just under grader.notebooks.defang.MAX_NOTEBOOK_BYTES that are one huge markdown cell,
one
huge output, many cells or many outputs, then files far over it. Each page is made in a
fresh `python -m grader feedback`; the table gives its wall time and peak resident memory
(ru_maxrss from wait4: the largest of the command and the worker it forks).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from grader.config import REPO_ROOT, load_config
from grader.notebooks import defang
from grader.process import setup_process
from grader.workdir import folder, gradebook

ASSIGNMENT = "01_perceptron"
STUDENT = "huge"
MB = 2**20


def write_notebook(path: Path, cells, size: int) -> None:
    """A notebook file of about `size` bytes, written as `cells(size)` yields its cells' JSON
    text piece by piece (never all of it in memory)."""
    with open(path, "w") as f:
        f.write(
            '{"nbformat": 4, "nbformat_minor": 5, "metadata": {"language_info": '
            '{"name": "python"}}, "cells": ['
        )
        f.writelines(cells(size))
        f.write("]}")


def one_string(size: int, start: str, end: str, line: str):
    """One cell whose one string (between `start` and `end`) is `line` repeated."""
    yield start
    block = json.dumps(line * 10_000)[1:-1]
    for _ in range(size // len(block)):
        yield block
    yield end


def huge_markdown(size):
    return one_string(
        size,
        '{"cell_type": "markdown", "id": "m", "metadata": {}, "source": "',
        '"}',
        "A line of markdown words.\n",
    )


def huge_output(size):
    return one_string(
        size,
        '{"cell_type": "code", "id": "c", "metadata": {}, "execution_count": 1, '
        '"source": "print(...)", "outputs": [{"output_type": "stream", "name": "stdout", '
        '"text": "',
        '"}]}',
        "A line printed by the submission.\n",
    )


def many_cells(size):
    cell = json.dumps(nbformat.v4.new_code_cell("x = 1  # " + "c" * 150, id="x"))
    for n in range(size // (len(cell) + 8)):
        yield ("," if n else "") + cell.replace('"id": "x"', f'"id": "c{n}"')


def many_outputs(size):
    output = json.dumps({"output_type": "stream", "name": "stdout", "text": "o" * 100 + "\n"})
    yield (
        '{"cell_type": "code", "id": "c", "metadata": {}, "execution_count": 1, '
        '"source": "", "outputs": ['
    )
    for n in range(size // (len(output) + 1)):
        yield ("," if n else "") + output
    yield "]}"


def page_in_child(course) -> tuple[float, float]:
    """(seconds, peak resident MB) of `python -m grader feedback` for the assignment; wait4
    reports the largest of the command and the worker process it forks."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "grader", "--workdir", str(course.root), "feedback", ASSIGNMENT],
        stdout=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"making the page failed (exit status {child.returncode})")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def main() -> int:
    setup_process()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--giant-mb", type=int, default=500, help="size of the refused files")
    args = parser.parse_args()
    under = defang.MAX_NOTEBOOK_BYTES - MB
    giant = args.giant_mb * MB
    cases = [
        ("course notebook (solutions)", None, 0),
        ("one huge markdown cell", huge_markdown, under),
        ("one huge output", huge_output, under),
        ("many cells", many_cells, under),
        ("many outputs", many_outputs, under),
        ("markdown cell, over the limit", huge_markdown, giant),
        ("output, over the limit", huge_output, giant),
    ]
    repo = load_config(REPO_ROOT)
    with tempfile.TemporaryDirectory(prefix="bench-feedback-") as tmp:
        course = folder.prepare(repo, Path(tmp) / "grading", [ASSIGNMENT])
        with Gradebook(gradebook.db_url(course), course.course_id) as gb:
            gb.update_or_create_student(STUDENT)
            gb.add_submission(ASSIGNMENT, STUDENT)
        notebook = course.root / "autograded" / STUDENT / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        notebook.parent.mkdir(parents=True)
        page = course.root / "feedback" / STUDENT / ASSIGNMENT / f"{ASSIGNMENT}.html"
        print(f"{'case':32} {'file MB':>8} {'page kB':>8} {'seconds':>8} {'peak MB':>8}")
        for name, cells, size in cases:
            if cells is None:
                shutil.copyfile(
                    REPO_ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", notebook
                )
            else:
                write_notebook(notebook, cells, size)
            seconds, peak = page_in_child(course)
            print(
                f"{name:32} {notebook.stat().st_size / MB:8.1f} "
                f"{page.stat().st_size / 1024:8.0f} {seconds:8.1f} {peak:8.0f}",
                flush=True,
            )
            notebook.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
