"""Every verb stops with one clear line on bad input, and writes nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest
from nbgrader.api import Gradebook

from grader.config import REPO_ROOT


def grader(*args, cwd=REPO_ROOT):
    return subprocess.run(
        [sys.executable, "-m", "grader", *args], capture_output=True, text=True, cwd=cwd
    )


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


def test_gradebook_of_another_course(tmp_path):
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", "another-course"):
        pass
    before = (tmp_path / "gradebook.db").read_bytes()
    line = one_line_error(grader("--workdir", str(tmp_path), "report"))
    assert "another-course" in line and "--workdir" in line
    assert (tmp_path / "gradebook.db").read_bytes() == before


def test_unknown_assignment(tmp_path):
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", "intro-to-deep-learning") as gb:
        gb.add_assignment("01_perceptron")
    line = one_line_error(grader("--workdir", str(tmp_path), "autograde", "99_nope"))
    assert "unknown assignment '99_nope'" in line and "01_perceptron" in line


@pytest.mark.parametrize("kind", ["missing", "empty", "corrupt"])
def test_collect_refuses_bad_input_before_making_the_work_folder(kind, tmp_path):
    path = tmp_path / "in"
    if kind == "empty":
        path.mkdir()
    elif kind == "corrupt":
        path = tmp_path / "in.zip"
        path.write_bytes(b"PK\x03\x04 broken")
    line = one_line_error(grader("--workdir", str(tmp_path / "grading"), "collect", str(path)))
    assert str(path) in line
    assert not (tmp_path / "grading").exists()


def test_build_of_an_unknown_assignment():
    line = one_line_error(grader("build", "--check", "99_nope"))
    assert "99_nope" in line
