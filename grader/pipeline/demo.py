"""`python -m grader demo` (`make demo`): the instructor's whole cycle on a synthetic class.

Build release/ from source/, write an LMS-style zip of a class of 13 students (see
grader.pipeline.synthetic), collect it, autograde it in parallel, write feedback and reports, print
the table. The work folder (default: demo/ in the default grading folder, grading/ or
$GRADER_WORKDIR) is made anew and kept for a look.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from grader.config import CourseConfig, default_workdir
from grader.errors import GraderError
from grader.execution.sandbox import missing_pieces
from grader.execution.timeouts import DEMO_CELL_TIMEOUT_S
from grader.notebooks.validate import source_assignments
from grader.pipeline.autograde import autograde
from grader.pipeline.build import build
from grader.pipeline.collect import collect
from grader.pipeline.feedback import generate_feedback
from grader.pipeline.report import table, write_report
from grader.pipeline.synthetic import make_class
from grader.workdir import gradebook
from grader.workdir.folder import prepare


def run_demo(
    repo: CourseConfig,
    workdir: Path | None = None,
    assignments: list[str] | None = None,
    *,
    jobs: int | None = None,
    cell_timeout: int = DEMO_CELL_TIMEOUT_S,
    progress: bool = True,
):
    start = time.perf_counter()
    assignments = assignments or source_assignments(repo)
    workdir = Path(workdir) if workdir else default_workdir(repo) / "demo"
    if repo.db is not None and gradebook.exists(repo):
        raise GraderError(
            f"the demo starts from an empty gradebook, and {gradebook.describe(repo)} holds "
            "one: give it a new database (createdb NAME) or leave out --db"
        )
    step = _Steps()
    # release/ is what students get; solutions/ (executed, committed) is left as it is, so
    # the demo is quicker and leaves the working tree unchanged.
    step(f"1. Building release/ of {', '.join(assignments)}")
    build(repo, assignments, solutions=False)
    if workdir.exists():
        shutil.rmtree(workdir)
    step(f"2. Writing a synthetic class to {workdir / 'class.zip'}")
    zip_path = make_class(repo, assignments, workdir / "class.zip")
    step("3. Collecting it")
    course = prepare(repo, workdir, assignments)
    print(collect(course, zip_path).summary(), flush=True)
    step("4. Autograding in parallel")
    missing = missing_pieces()
    if missing:
        # The synthetic class is code we wrote, so the demo may run it unsandboxed; real
        # submissions are refused on such a machine unless --unsafe.
        print(
            f"   This machine cannot sandbox submissions (it lacks {'; '.join(missing)}); "
            "the demo grades its own synthetic class without the sandbox.",
            flush=True,
        )
    autograde(
        course,
        assignments,
        jobs=jobs,
        cell_timeout=cell_timeout,
        progress=progress,
        unsafe=bool(missing),
    )
    step("5. Writing feedback")
    pages = generate_feedback(course, assignments)
    print(f"Wrote {len(pages)} feedback page(s) to {workdir / 'feedback'}", flush=True)
    step("6. Reporting")
    report, out = write_report(course)
    print("\n" + table(report))
    print(f"\nReports in {out}; gradebook {gradebook.describe(course)}")
    step.done()
    print(f"Demo finished in {time.perf_counter() - start:.0f} s.")
    return report


class _Steps:
    """Prints each step's heading and, when the next begins, how long it took."""

    def __init__(self):
        self.began: float | None = None

    def __call__(self, heading: str) -> None:
        self.done()
        print(f"{heading} ...", flush=True)
        self.began = time.perf_counter()

    def done(self) -> None:
        if self.began is not None:
            print(f"   ({time.perf_counter() - self.began:.0f} s)", flush=True)
