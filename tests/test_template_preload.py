"""What a grading worker's kernel template imports (grader.execution.preload): the libraries
it may preload that the graded release notebooks use, directly or through the course's own
packages; carried by each Job; a worker's template imports what its first job names.
"""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import Future
from pathlib import Path

import nbformat
import pytest
from conftest import MINI, write_notebook
from nbformat.v4 import new_code_cell, new_markdown_cell

from grader.config import REPO_ROOT
from grader.execution.execute import QUIET_ENVIRONMENT
from grader.execution.pool import worker_command
from grader.execution.preload import PRELOADABLE, preload_for
from grader.execution.protocol import ExecutionResult, Job, ProtocolError
from grader.execution.template_kernel import SWITCH, template_modules
from grader.pipeline import autograde as autograde_module
from grader.pipeline.autograde import NO_FIGURES, autograde
from grader.workdir import folder


def preload_of(tmp_path: Path, *sources: str, root: Path | None = None) -> tuple[str, ...]:
    """The preload of one notebook whose code cells are `sources`."""
    path = write_notebook(
        tmp_path / "nb" / "nb.ipynb",
        [new_markdown_cell("```python\nimport torch\n```"), *map(new_code_cell, sources)],
    )
    return preload_for([path], root or tmp_path)


# --- what the notebooks import -----------------------------------------------------------


def test_the_allow_list_is_what_the_template_knows_to_fork_safely():
    assert PRELOADABLE == ("numpy", "torch", "matplotlib")


def test_a_notebook_that_imports_numpy_preloads_numpy_only(tmp_path):
    """A markdown cell's code is no import."""
    assert preload_of(tmp_path, "import numpy as np", "print(np.ones(3))") == ("numpy",)


def test_submodules_count_as_their_library_in_the_allow_lists_order(tmp_path):
    assert preload_of(tmp_path, "import numpy.linalg") == ("numpy",)
    assert preload_of(tmp_path, "from matplotlib import pyplot as plt") == ("matplotlib",)
    assert preload_of(
        tmp_path, "def f():\n    import torch.nn.functional as F", "from numpy import ones"
    ) == ("numpy", "torch")


def test_libraries_outside_the_allow_list_are_ignored(tmp_path):
    assert preload_of(tmp_path, "import scipy, sklearn\nfrom time import time") == ()


def test_a_cell_that_does_not_parse_is_skipped(tmp_path):
    cells = [
        "import torch\nthis is no python",
        "%matplotlib inline\nimport matplotlib",
        "import numpy",
    ]
    assert preload_of(tmp_path, *cells) == ("numpy",)


def test_an_unreadable_notebook_adds_nothing(tmp_path):
    (tmp_path / "broken.ipynb").write_text("{not json")
    good = write_notebook(tmp_path / "good.ipynb", [new_code_cell("import numpy")])
    assert preload_for([tmp_path / "broken.ipynb", good], tmp_path) == ("numpy",)


def lessons_package(root: Path) -> None:
    """A course's own package, `grader_test_lessons`, whose models import torch lazily and
    whose plotting module imports a second package of the course's."""
    package = root / "grader_test_lessons"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""The course\'s helpers."""\n')
    (package / "models.py").write_text(
        "def net():\n    import torch\n    return torch.nn.Linear(2, 1)\n"
    )
    (package / "plots.py").write_text("import grader_test_figures\n")
    (package / "broken.py").write_text("import numpy\nthis is no python\n")
    (root / "grader_test_figures.py").write_text("def show():\n    import matplotlib.pyplot\n")


def test_torch_through_a_package_of_the_course(tmp_path, monkeypatch):
    """Every .py file of an imported package under the course's root counts (a module of
    the package the notebook never names too), and the course's packages they import."""
    root = tmp_path / "course"
    lessons_package(root)
    monkeypatch.syspath_prepend(str(root))  # installed, as `course` is
    notebook = ["import numpy as np", "from grader_test_lessons import plots"]
    assert preload_of(tmp_path, *notebook, root=root) == ("numpy", "torch", "matplotlib")
    # The same package outside the course's root is a library like any other: not read.
    assert preload_of(tmp_path, *notebook, root=tmp_path / "elsewhere") == ("numpy",)


def test_the_real_course_gets_torch_through_its_package():
    """01_perceptron imports numpy, matplotlib and `course`, whose modules import torch: the
    template imports what it imported before preloads were chosen."""
    release = REPO_ROOT / "release" / "01_perceptron" / "01_perceptron.ipynb"
    assert preload_for([release], REPO_ROOT) == ("numpy", "torch", "matplotlib")


def test_the_template_imports_matplotlib_only_with_a_backend(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "agg")
    assert template_modules(None) == ["numpy", "torch", "matplotlib", "matplotlib.pyplot"]
    assert template_modules(("matplotlib", "numpy")) == ["numpy", "matplotlib", "matplotlib.pyplot"]
    assert template_modules(("scipy",)) == template_modules(()) == []
    # Only allow-listed modules, named exactly: a job's preload cannot make the template
    # import anything else (a module with side effects, a submodule of its own choosing).
    assert template_modules(("os", "antigravity", "numpy.evil", "torch ", "NUMPY")) == []
    monkeypatch.delenv("MPLBACKEND")
    assert template_modules(None) == ["numpy", "torch"]
    assert template_modules(("matplotlib",)) == []


# --- the Job carries it ------------------------------------------------------------------


def test_a_job_carries_its_preload():
    for preload in [("numpy", "torch"), ()]:
        job = Job(Path("/w/a/nb.ipynb"), 10, 60, preload)
        assert json.loads(job.to_line())["preload"] == list(preload)
        assert Job.from_line(job.to_line()) == job


def test_a_job_line_without_preload_means_everything():
    job = Job(Path("/w/a/nb.ipynb"), 10, 60)
    assert "preload" not in json.loads(job.to_line())
    assert Job.from_line(job.to_line()) == job
    assert (
        Job.from_line(
            '{"notebook": "/w/nb.ipynb", "cell_timeout": 1, "notebook_timeout": 2}'
        ).preload
        is None
    )


@pytest.mark.parametrize("preload", ['"numpy"', "[1]", '[""]', "null", "{}"])
def test_a_preload_must_be_a_list_of_names(preload):
    job = '{"notebook": "/w/nb.ipynb", "cell_timeout": 1, "notebook_timeout": 2, "preload": '
    line = job + preload + "}"
    with pytest.raises(ProtocolError):
        Job.from_line(line)


class RecordingExecutor:
    """Takes jobs and runs none of them."""

    jobs = 1

    def __init__(self):
        self.submitted: list[Job] = []

    def submit(self, job: Job) -> Future[ExecutionResult]:
        self.submitted.append(job)
        done: Future[ExecutionResult] = Future()
        done.set_result(ExecutionResult.crashed("not run"))
        return done

    def close(self):
        pass


def test_autograde_puts_the_preload_into_every_job(class_course, tmp_path, monkeypatch):
    course = folder.prepare(class_course, tmp_path / "grading")
    release = course.root / "release" / MINI / f"{MINI}.ipynb"
    for student in ("ada", "bo"):
        folder.submit(course, student, MINI, release)
    executor = RecordingExecutor()
    monkeypatch.setattr(autograde_module, "_executor", lambda *args: executor)
    autograde(course, progress=False, unsafe=True)
    assert [job.preload for job in executor.submitted] == [("numpy",), ("numpy",)]


# --- a worker's template ------------------------------------------------------------------

LOADED = """\
import json, sys
forked = "grader-template" in open("/proc/self/cmdline").read()
loaded = {name: name in sys.modules for name in ("numpy", "torch", "matplotlib.pyplot")}
print("LOADED", json.dumps({"forked": forked, **loaded}))
"""
USE_TORCH = "import torch\nprint('SUM', float(torch.ones(3).sum()))\n"


def run_jobs(tmp_path: Path, jobs: list[tuple[str, list[str] | None]]) -> list[str]:
    """Each (code, preload) as a notebook of one cell, graded in turn by one worker (as
    autograde starts it, the template on); what each printed."""
    env = {**os.environ, **QUIET_ENVIRONMENT, **NO_FIGURES, "OMP_NUM_THREADS": "1", SWITCH: "1"}
    command = worker_command(REPO_ROOT / "nbgrader_config.py", sandbox=True, cpus=1.0)
    lines = []
    for number, (code, preload) in enumerate(jobs):
        path = write_notebook(tmp_path / f"job-{number}" / "job.ipynb", [new_code_cell(code)])
        job = {"notebook": str(path), "cell_timeout": 60, "notebook_timeout": 120}
        if preload is not None:
            job["preload"] = preload
        lines.append(json.dumps(job) + "\n")
    worker = subprocess.run(
        command, input="".join(lines), capture_output=True, text=True, env=env, timeout=600
    )
    assert worker.returncode == 0, worker.stderr[-3000:]
    answers = [json.loads(line) for line in worker.stdout.splitlines()]
    assert [a["status"] for a in answers] == ["graded"] * len(jobs), (
        answers,
        worker.stderr[-3000:],
    )
    printed = []
    for number in range(len(jobs)):
        outputs = nbformat.read(str(tmp_path / f"job-{number}" / "job.ipynb"), 4).cells[0].outputs
        assert not [o for o in outputs if o.output_type == "error"], outputs
        printed.append("".join(o.get("text", "") for o in outputs))
    return printed


def loaded(printed: str) -> dict:
    line = next(line for line in printed.splitlines() if line.startswith("LOADED "))
    return json.loads(line[len("LOADED ") :])


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_tiny_course_template_imports_no_torch(tmp_path):
    """The first job's preload is the template's; a later job that uses more still gets a
    forked kernel, which imports torch itself."""
    first, second = run_jobs(
        tmp_path, [(LOADED, ["numpy"]), (LOADED + USE_TORCH, ["numpy", "torch"])]
    )
    assert loaded(first) == {
        "forked": True,
        "numpy": True,
        "torch": False,
        "matplotlib.pyplot": False,
    }
    assert loaded(second) == loaded(first)
    assert "SUM 3.0" in second, second


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_template_imports_torch_when_the_preload_names_it(tmp_path):
    [printed] = run_jobs(tmp_path, [(LOADED, ["torch"])])
    assert loaded(printed) | {"numpy": None} == {
        "forked": True,
        "numpy": None,  # torch may import it
        "torch": True,
        "matplotlib.pyplot": False,
    }


@pytest.mark.slow
@pytest.mark.sandbox
def test_an_empty_preload_still_forks_kernels(tmp_path):
    [printed] = run_jobs(tmp_path, [(LOADED, [])])
    assert loaded(printed) | {"numpy": None} == {
        "forked": True,
        "numpy": None,  # the course's kernel extension, course.messages, imports it
        "torch": False,
        "matplotlib.pyplot": False,
    }
