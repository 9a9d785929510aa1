"""The sandbox around grading kernels: what a kernel sees, and grading where there is none.

The hostile-submission suite (test_hostile.py) attacks it with whole submissions; these
tests look at the pieces: the machine check, the worker protocol, --unsafe.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys

import nbformat
import pytest
from conftest import MINI

from grader import autograde as autograde_module
from grader import gradebook
from grader.autograde import autograde
from grader.course_config import REPO_ROOT
from grader.errors import GraderError
from grader.report import table, write_report
from grader.sandbox import UID_BASE, UID_COUNT, missing_pieces

PROBE = r"""
import os, socket
print("uid", os.getuid())
print("repo", sorted(os.listdir(REPO)))
print("cwd", sorted(os.listdir(".")))
try:
    socket.create_connection(("1.1.1.1", 80), timeout=3)
    print("network open")
except OSError as error:
    print("network closed", error.errno)
try:
    open(os.path.join(REPO, "course", "planted.py"), "w")
    print("course writable")
except OSError:
    print("course read only")
"""


def test_this_machine_can_sandbox_or_says_what_it_lacks():
    missing = missing_pieces()
    if os.geteuid() == 0:
        assert missing == [], f"root should be able to sandbox, but: {missing}"
    else:
        assert missing and "root" in missing[0], "a non-root grader must name root as missing"


@pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs root")
def test_a_sandboxed_kernel_sees_only_its_folder_and_no_network(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "data.txt").write_text("the assignment's file")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"REPO = {str(REPO_ROOT)!r}\n" + PROBE)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    notebook = work / "probe.ipynb"
    nbformat.write(nb, str(notebook))
    job = {"notebook": str(notebook), "cell_timeout": 60, "notebook_timeout": 120}
    answer = subprocess.run(
        [sys.executable, "-m", "grader.worker", "--config", str(REPO_ROOT / "nbgrader_config.py"),
         "--hide", str(REPO_ROOT), "--hide", str(tmp_path)],
        input=json.dumps(job) + "\n", capture_output=True, text=True, timeout=300,
    )
    assert answer.returncode == 0, answer.stderr[-2000:]
    assert json.loads(answer.stdout)["status"] == "graded"
    text = "".join(o.get("text", "") for o in nbformat.read(str(notebook), 4).cells[0].outputs)
    uid = int(re.search(r"uid (\d+)", text).group(1))
    assert UID_BASE <= uid < UID_BASE + UID_COUNT, f"the kernel ran as uid {uid}, not a sandbox's"
    assert "repo ['.venv', 'course']" in text, f"the kernel saw more of the repo: {text}"
    assert "cwd ['data.txt']" in text, f"the kernel's folder should hold only data.txt: {text}"
    assert "network closed" in text, f"the kernel reached the network: {text}"
    assert "course read only" in text, f"the kernel could write the course package: {text}"
    assert not (REPO_ROOT / "course" / "planted.py").exists()


@pytest.fixture
def one_submission(class_course, tmp_path):
    course = gradebook.prepare(class_course, tmp_path / "grading")
    release = class_course.root / "release" / MINI / f"{MINI}.ipynb"
    gradebook.submit(course, "ada", MINI, release)
    return course


def test_autograde_refuses_without_a_sandbox_and_writes_nothing(one_submission, monkeypatch):
    lack = "root: the grader must run as root"
    monkeypatch.setattr(autograde_module, "missing_pieces", lambda: [lack])
    with pytest.raises(GraderError) as error:
        autograde(one_submission, progress=False)
    assert lack in str(error.value) and "--unsafe" in str(error.value)
    assert not (one_submission.root / "status").exists(), "a refused run must write no status"


def test_unsafe_grades_are_graded_and_marked(one_submission, monkeypatch):
    monkeypatch.setattr(autograde_module, "missing_pieces", lambda: ["root"])
    [outcome] = autograde(one_submission, unsafe=True, cell_timeout=30, progress=False)
    assert outcome.status == "graded" and not outcome.sandboxed
    report, out = write_report(one_submission)
    with open(out / "submissions.csv") as f:
        [row] = list(csv.DictReader(f))
    assert row["sandboxed"] == "no (--unsafe)", "submissions.csv must mark unsafe grades"
    assert "(unsafe)" in table(report), "the table must mark unsafe grades"
