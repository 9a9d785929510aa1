"""Every verb stops with one clear line on bad input, and writes nothing.

Each verb's first case runs the real command line, `python -m grader` in an interpreter of
its own: its imports, its logging set-up, its exit status through SystemExit, all it prints
to stderr. A further bad input of a verb already run so goes through `main` in this process
(`in_process`), which checks the same: what the command line would print to stderr there,
warnings and log records included. (An interpreter costs 1.5 s of CPU in imports.)
"""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings

import pytest
from nbgrader.api import Gradebook

from grader.cli import main
from grader.config import REPO_ROOT

# Warnings the interpreter's default filters never show outside __main__.
SILENT_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def grader(*args, cwd=REPO_ROOT):
    return subprocess.run(
        [sys.executable, "-m", "grader", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.fixture
def in_process(capfd, caplog, monkeypatch):
    """`grader` through `main` in this process. pytest holds warnings and log records that
    the command line would print: they come back as lines of stderr, as the command line's
    logging set-up (WARNING and above) and the interpreter would write them."""
    monkeypatch.chdir(REPO_ROOT)

    def run(*args):
        capfd.readouterr()
        caplog.clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code = main(list(args))
        out, err = capfd.readouterr()
        shown = [
            f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}"
            for w in caught
            if not issubclass(w.category, SILENT_WARNINGS)
        ]
        logged = [
            f"{r.levelname} {r.name}: {r.getMessage()}"
            for r in caplog.records
            if r.levelno >= logging.WARNING
        ]
        stderr = "".join(line + "\n" for line in [*shown, *logged]) + err
        return subprocess.CompletedProcess(args, code, out, stderr)

    return run


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("verb", ["autograde", "feedback", "report"])
def test_missing_work_folder(verb, tmp_path):
    line = one_line_error(grader("--workdir", str(tmp_path / "nowhere"), verb))
    assert "no grading folder" in line and "collect" in line
    assert not (tmp_path / "nowhere").exists()


def test_gradebook_of_another_course(tmp_path, in_process):
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", "another-course"):
        pass
    before = (tmp_path / "gradebook.db").read_bytes()
    line = one_line_error(in_process("--workdir", str(tmp_path), "report"))
    assert "another-course" in line and "--workdir" in line
    assert (tmp_path / "gradebook.db").read_bytes() == before


def test_unknown_assignment(tmp_path, in_process):
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", "intro-to-deep-learning") as gb:
        gb.add_assignment("01_perceptron")
    line = one_line_error(in_process("--workdir", str(tmp_path), "autograde", "99_nope"))
    assert "unknown assignment '99_nope'" in line and "01_perceptron" in line


@pytest.mark.parametrize("kind", ["missing", "empty", "corrupt"])
def test_collect_refuses_bad_input_before_making_the_work_folder(kind, tmp_path, in_process):
    path = tmp_path / "in"
    if kind == "empty":
        path.mkdir()
    elif kind == "corrupt":
        path = tmp_path / "in.zip"
        path.write_bytes(b"PK\x03\x04 broken")
    run = grader if kind == "missing" else in_process  # the first case: the command line
    line = one_line_error(run("--workdir", str(tmp_path / "grading"), "collect", str(path)))
    assert str(path) in line
    assert not (tmp_path / "grading").exists()


def test_build_of_an_unknown_assignment():
    line = one_line_error(grader("build", "--check", "99_nope"))
    assert "99_nope" in line
