"""`python -m grader autograde`: every submission, N at a time, scored as nbgrader scores it.

Per submission, in three steps:

1. main process: the student and the submission go into the gradebook, and nbgrader's
   sanitizing preprocessors (ClearOutput, DeduplicateIds (as DropDuplicateIds),
   OverwriteKernelspec, OverwriteCells, CheckCellMetadata) restore the locked cells and
   the hidden tests into a private working copy that holds only this notebook and the
   assignment's files;
2. one of N long-lived worker processes (grader.pool, grader.worker) executes and scores
   that copy, with a per-cell and a per-notebook timeout; workers never open the
   gradebook, so any number of them can run (and the same runner could hand them to a
   cluster);
3. main process: nbgrader's SaveAutoGrades and AssignLatePenalties write the grades, and
   the executed notebook goes to autograded/ as `nbgrader autograde` would leave it.

A submission already graded at its current timestamp is skipped unless `force`, so a run
that was killed is completed by running it again.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearOutput,
    DeduplicateIds,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
)
from nbgrader.utils import find_all_files
from tqdm.auto import tqdm

from grader.course_config import CourseConfig
from grader.errors import GraderError
from grader.execute import QUIET_ENVIRONMENT
from grader.gradebook import check_assignments, coursedir_config, db_url
from grader.pool import WorkerSlot
from grader.sandbox import missing_pieces
from grader.worker import mark_not_run

STATUSES = ("graded", "timeout", "crashed", "invalid", "missing")
# nbgrader warns about every test cell with hidden tests ("checksum has changed": the
# gradebook's copy has them, the student's has not); what matters is in the notes.
NBGRADER_LOG = logging.getLogger("grader.nbgrader")
NBGRADER_LOG.setLevel(logging.ERROR)
# Grading kernels draw no figures: rendering them for the inline backend is a quarter to a
# third of a notebook's run time, and no test looks at pixels. Agg's two complaints, about
# plt.show() and about many open figures, would land on stderr, which zeroes a test cell.
NO_FIGURES = {
    "MPLBACKEND": "agg",
    "PYTHONWARNINGS": "ignore:FigureCanvasAgg is non-interactive:UserWarning,"
                      "ignore:More than 20 figures have been opened:RuntimeWarning",
}


class DropDuplicateIds(DeduplicateIds):
    """nbgrader's DeduplicateIds leaves a duplicate with empty nbgrader metadata, which its
    own CheckCellMetadata then rejects, failing the whole submission; make it a plain cell."""

    def preprocess_cell(self, cell, resources, index):
        cell, resources = super().preprocess_cell(cell, resources, index)
        if cell.get("metadata", {}).get("nbgrader") == {}:
            del cell.metadata["nbgrader"]
        return cell, resources


SANITIZE = (ClearOutput, DropDuplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata)
SAVE = (SaveAutoGrades, AssignLatePenalties, CheckCellMetadata)


@dataclass
class Outcome:
    student: str
    assignment: str
    status: str
    message: str = ""
    timestamp: str | None = None
    sandboxed: bool = True  # False: graded with --unsafe, the kernel had the grader's rights


def status_path(course: CourseConfig, student: str, assignment: str) -> Path:
    return course.root / "status" / student / f"{assignment}.json"


def read_status(course: CourseConfig, student: str, assignment: str) -> Outcome | None:
    path = status_path(course, student, assignment)
    if not path.exists():
        return None
    return Outcome(**json.loads(path.read_text()))


def write_status(course: CourseConfig, outcome: Outcome) -> None:
    path = status_path(course, outcome.student, outcome.assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(outcome.__dict__))
    tmp.replace(path)  # atomic: a killed run leaves the old status or the new one


def submissions(course: CourseConfig, assignments: list[str]) -> list[tuple[str, str]]:
    """(student, assignment) of every submission folder of the named assignments."""
    root = course.root / "submitted"
    found = []
    for student_dir in sorted(p for p in root.glob("*") if p.is_dir()):
        for assignment in assignments:
            if (student_dir / assignment).is_dir():
                found.append((student_dir.name, assignment))
    return found


def submitted_timestamp(course: CourseConfig, student: str, assignment: str) -> str | None:
    stamp = course.root / "submitted" / student / assignment / "timestamp.txt"
    return stamp.read_text().strip() if stamp.exists() else None


def autograde(
    course: CourseConfig,
    assignments: list[str] | None = None,
    *,
    jobs: int | None = None,
    cell_timeout: int | None = None,
    notebook_timeout: int = 900,
    force: bool = False,
    progress: bool = True,
    unsafe: bool = False,
    cpus: float | None = None,
) -> list[Outcome]:
    """Grade every submission of the assignments (all by default) that needs grading.

    Each kernel runs in a grader.sandbox; where the machine cannot sandbox, this refuses
    to grade unless `unsafe`, and the grades are marked as made without one.
    """
    assignments = check_assignments(course, assignments or [])
    missing = [] if unsafe else missing_pieces()
    if missing:
        raise GraderError(
            f"cannot sandbox submissions here: this machine lacks {'; '.join(missing)}. "
            "Install it (the README's one system prerequisite), or pass --unsafe to run "
            "students' code with your own rights (the report marks those grades)"
        )
    jobs = jobs or os.cpu_count() or 1
    # Each kernel's share of the cores (N kernels at once), unless told.
    cpus = cpus or max(1.0, (os.cpu_count() or 1) / jobs)
    cell_timeout = cell_timeout or int(course.config.Execute.get("timeout", 120))
    todo = []
    for student, assignment in submissions(course, assignments):
        stamp = submitted_timestamp(course, student, assignment)
        done = read_status(course, student, assignment)
        if force or done is None or done.timestamp != stamp:
            todo.append((student, assignment, stamp))
    # Longest first: with N workers, a long notebook started last leaves N-1 of them idle.
    weight = {a: _code_cells(course, a) for a in assignments}
    todo.sort(key=lambda job: -weight[job[1]])
    start = time.perf_counter()
    outcomes = []
    bar = tqdm(total=len(todo), desc="autograde", unit="submission", disable=not progress)
    slots = queue.Queue()
    for number in range(jobs):
        slots.put(WorkerSlot(course.config_file, _worker_env(cpus),
                             course.root / "logs" / f"worker-{number}.log",
                             sandbox=not unsafe, cpus=cpus))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        running = {}
        for student, assignment, stamp in todo:
            prepared = _prepare(course, student, assignment, stamp)
            if isinstance(prepared, Outcome):
                outcomes.append(_finish(course, prepared, bar, sandboxed=not unsafe))
                continue
            notebook, notes = prepared
            future = pool.submit(_run_in_slot, slots, notebook, cell_timeout, notebook_timeout)
            running[future] = (student, assignment, stamp, notebook, notes)
        for future in as_completed(running):
            student, assignment, stamp, notebook, notes = running[future]
            result = future.result()
            outcome = _save(course, student, assignment, stamp, notebook, result, notes)
            outcomes.append(_finish(course, outcome, bar, sandboxed=not unsafe))
        while not slots.empty():
            slots.get().close()
    bar.close()
    counts = Counter(o.status for o in outcomes)
    parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
    skipped = len(submissions(course, assignments)) - len(todo)
    print(
        f"Autograded {len(outcomes)} submission(s) in {time.perf_counter() - start:.0f} s "
        f"with {jobs} job(s): {parts or 'nothing to do'}"
        + (f"; {skipped} already graded (use --force to grade again)" if skipped else ""),
        flush=True,
    )
    return outcomes


def _code_cells(course: CourseConfig, assignment: str) -> int:
    """How long an assignment's notebook runs, roughly: its number of code cells."""
    nb = nbformat.read(str(course.root / "source" / assignment / f"{assignment}.ipynb"), 4)
    return sum(cell.cell_type == "code" for cell in nb.cells)


def _finish(course: CourseConfig, outcome: Outcome, bar, sandboxed: bool) -> Outcome:
    outcome.sandboxed = sandboxed
    write_status(course, outcome)
    bar.update(1)
    return outcome


def _work_dir(course: CourseConfig, student: str, assignment: str) -> Path:
    return course.root / "work" / assignment / student


def _prepare(course: CourseConfig, student: str, assignment: str, stamp: str | None):
    """Step 1: gradebook rows and a sanitized working copy, with notes on what the student
    did to graded cells; an Outcome when it cannot run."""
    config = coursedir_config(course)
    with Gradebook(db_url(course), course.course_id) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment, student, timestamp=stamp)
        graded_cells = {c.name for c in gb.find_notebook(assignment, assignment).grade_cells}
    release = nbformat.read(
        str(course.root / "release" / assignment / f"{assignment}.ipynb"), as_version=4)
    submitted = course.root / "submitted" / student / assignment / f"{assignment}.ipynb"
    if not submitted.exists():
        return _zero(course, student, assignment, stamp, "missing",
                     f"no {assignment}.ipynb in the submission")
    try:
        nb = nbformat.read(str(submitted), as_version=4)
    except Exception as error:  # nbformat raises several kinds for unreadable files
        return _zero(course, student, assignment, stamp, "invalid",
                     f"not a readable notebook: {type(error).__name__}: {error}")
    notes = graded_cell_notes(nb, graded_cells, release)
    resources = _resources(course, student, assignment)
    try:
        for preprocessor in SANITIZE:
            nb, resources = preprocessor(config=config, log=NBGRADER_LOG)(nb, resources)
    except Exception as error:  # nbgrader raises plain exceptions for broken metadata
        return _zero(course, student, assignment, stamp, "invalid",
                     f"nbgrader could not restore the notebook's cells: {error}")
    work = _work_dir(course, student, assignment)
    if work.exists():
        shutil.rmtree(work)
    _copy_assignment_files(course, assignment, work)
    notebook = work / f"{assignment}.ipynb"
    nbformat.write(nb, str(notebook))
    return notebook, notes


def graded_cell_notes(nb, graded_cells: set[str], release) -> list[str]:
    """What the student did to graded and locked cells that nbgrader silently copes with."""
    def grade_id(cell):
        return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")

    ids = [grade_id(c) for c in nb.cells
           if c.get("metadata", {}).get("nbgrader", {}).get("grade") and grade_id(c)]
    locked = {grade_id(c): c.source.strip() for c in release.cells
              if c.get("metadata", {}).get("nbgrader", {}).get("locked") and grade_id(c)}
    notes = []
    missing = sorted(graded_cells - set(ids))
    if missing:
        notes.append(f"graded cell(s) deleted or stripped of their metadata, scored 0: "
                     f"{', '.join(missing)}")
    doubled = sorted({i for i in ids if ids.count(i) > 1})
    if doubled:
        notes.append(f"duplicated grade id(s), counted once: {', '.join(doubled)}")
    edited = sorted({grade_id(c) for c in nb.cells
                     if grade_id(c) in locked and c.source.strip() != locked[grade_id(c)]})
    if edited:
        notes.append(f"locked cell(s) edited, restored from the source: {', '.join(edited)}")
    return notes


def _resources(course: CourseConfig, student: str, assignment: str) -> dict:
    return {
        "nbgrader": {
            "student": student,
            "assignment": assignment,
            "notebook": assignment,
            "db_url": db_url(course),
        }
    }


def _copy_assignment_files(course: CourseConfig, assignment: str, target: Path) -> None:
    """The assignment's files other than notebooks, from source/, as nbgrader copies them."""
    source = course.root / "source" / assignment
    target.mkdir(parents=True, exist_ok=True)
    for name in find_all_files(str(source), course.config.CourseDirectory.get(
            "ignore", [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]) + ["*.ipynb"]):
        dest = target / Path(name).relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(name, dest)


def _worker_env(cpus: float) -> dict[str, str]:
    env = dict(os.environ)
    env.update(QUIET_ENVIRONMENT)
    env.update(NO_FIGURES)
    # N kernels at once: each uses its share of the cores instead of all of them
    # (oversubscribed torch and BLAS threads spin and slow everyone down).
    env.setdefault("OMP_NUM_THREADS", str(max(1, int(cpus))))
    return env


def _run_in_slot(slots: queue.Queue, notebook: Path, cell_timeout: int, notebook_timeout: int):
    """Step 2, in a thread that only waits: a free worker executes and scores."""
    slot = slots.get()
    try:
        return slot.run(notebook, cell_timeout, notebook_timeout)
    finally:
        slots.put(slot)


def _save(course, student, assignment, stamp, notebook: Path, result: dict,
          notes: list[str]) -> Outcome:
    """Step 3: nbgrader saves the grades; the notebook goes where nbgrader puts it."""
    config = coursedir_config(course)
    nb = nbformat.read(str(notebook), as_version=4)
    if not result.get("scores") and result["status"] != "graded":
        mark_not_run(nb, result["message"], completed=set())  # the worker died before it could
    resources = _resources(course, student, assignment)
    for preprocessor in SAVE:
        nb, resources = preprocessor(config=config, log=NBGRADER_LOG)(nb, resources)
    target = course.root / "autograded" / student / assignment
    if target.exists():
        shutil.rmtree(target)
    _copy_assignment_files(course, assignment, target)
    nbformat.write(nb, str(target / f"{assignment}.ipynb"))
    shutil.rmtree(notebook.parent, ignore_errors=True)
    message = "; ".join(filter(None, [result.get("message", ""), *notes]))
    return Outcome(student, assignment, result["status"], message, stamp)


def _zero(course, student, assignment, stamp, status, message) -> Outcome:
    """A submission that cannot run: its grades are 0 and it is marked."""
    with Gradebook(db_url(course), course.course_id) as gb:
        submission = gb.find_submission(assignment, student)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score = 0
                grade.needs_manual_grade = False
        gb.db.commit()
    return Outcome(student, assignment, status, message, stamp)
