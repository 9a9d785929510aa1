"""`python -m grader autograde`: every submission, N at a time, scored as nbgrader scores it.

Per submission, in three steps:

1. main process: the student and the submission go into the gradebook; every graded and
   locked cell comes back from the release notebook whole (restore_from_release: source,
   metadata and tags, type, place), then nbgrader's OverwriteCells puts the hidden tests
   back from the gradebook, into a private working copy that holds only this notebook and
   the assignment's files;
2. one of N long-lived worker processes (grader.execution.pool, grader.execution.worker) executes
   and scores
   that copy, with a per-cell and a per-notebook timeout; workers never open the
   gradebook, so any number of them can run (and the same runner could hand them to a
   cluster);
3. main process: nbgrader's SaveAutoGrades and AssignLatePenalties write the worker's
   all-or-nothing scores (the outputs are made to agree with them first), and the
   executed notebook goes to autograded/ as `nbgrader autograde` would leave it.

One submission's failure, at any step, is that submission's status (`invalid`, 0 points,
a message), never the run's.

Answers graded by hand (written answers: graded markdown solution cells) keep the student's
text; nbgrader's SaveAutoGrades gives 0 to one left as the release had it and leaves any
other pending (no score until a person grades it in formgrader). A grade given by hand
stays when the submission is graded again; it is cleared only when the answer's text
differs from the one it was given to (`_settle_hand_grades`).

A submission already graded at its current timestamp is skipped unless `force`, so a run
that was killed is completed by running it again.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearOutput,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
)
from nbgrader.utils import find_all_files
from tqdm.auto import tqdm

from grader.config import GradingFolder
from grader.errors import GraderError
from grader.execution.execute import QUIET_ENVIRONMENT
from grader.execution.executors import Executor, LocalExecutor
from grader.execution.pool import worker_command
from grader.execution.preload import preload_for
from grader.execution.protocol import ExecutionResult, Job
from grader.execution.sandbox import missing_pieces
from grader.execution.timeouts import CELL_TIMEOUT_S, NOTEBOOK_TIMEOUT_S
from grader.notebooks.restore import grade_id_of, graded_cell_notes, restore_from_release
from grader.notebooks.scoring import mark_not_run, settle
from grader.pipeline.order import LongestFirst
from grader.workdir.folder import check_assignments
from grader.workdir.gradebook import coursedir_config, db_url, graded_by_hand, grades
from grader.workdir.status import (
    STATUSES,
    Outcome,
    Status,
    is_current,
    submissions,
    submitted_timestamp,
    write_status,
)

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


# After restore_from_release: the hidden tests from the gradebook, and nbgrader's checks.
SANITIZE = (ClearOutput, OverwriteKernelspec, OverwriteCells, CheckCellMetadata)
SAVE = (SaveAutoGrades, AssignLatePenalties, CheckCellMetadata)


def autograde(
    course: GradingFolder,
    assignments: list[str] | None = None,
    *,
    jobs: int | None = None,
    cell_timeout: int | None = None,
    notebook_timeout: int = NOTEBOOK_TIMEOUT_S,
    force: bool = False,
    progress: bool = True,
    unsafe: bool = False,
    cpus: float | None = None,
    cluster: str | None = None,
    scheduler_file: str | None = None,
    students: list[str] | None = None,
    executor: Executor | None = None,
) -> list[Outcome]:
    """Grade every submission of the assignments (all by default) that needs grading, or
    only those of `students`. Grades that a new run changes (after `force`, say, once a
    test was fixed) are printed and written to reports/changed-grades.csv.

    Each kernel runs in a grader.execution.sandbox; where the machine cannot sandbox, this refuses
    to grade unless `unsafe`, and the grades are marked as made without one. Kernels run
    on this machine, `jobs` at a time, or on the Dask cluster at `cluster` (a scheduler
    address) or described by `scheduler_file`.

    `executor`: open workers to grade on (`local_executor`), which this call leaves open,
    instead of workers of its own; `jobs`, `cpus` and the cluster are then the executor's,
    and `unsafe` must be what it was built with (the report marks unsandboxed grades). For a
    caller that grades many times in one process, such as a test session: each worker's
    start costs about 2 s of CPU, its kernel template's 1 to 3 more.
    """
    assignments = check_assignments(course, assignments or [])
    remote = bool(cluster or scheduler_file)
    # On a cluster, each Dask worker's machine is checked instead (grader.execution.executors).
    missing = [] if unsafe or remote else missing_pieces()
    if missing:
        raise GraderError(
            f"cannot sandbox submissions here: this machine lacks {'; '.join(missing)}. "
            "Install it (the README's one system prerequisite), or pass --unsafe to run "
            "students' code with your own rights (the report marks those grades)"
        )
    jobs = jobs or os.cpu_count() or 1
    # Each kernel's share of the cores (N kernels at once here; a Dask worker thread's one
    # core there), unless told.
    cpus = cpus or (1.0 if remote else _share_of_cores(jobs))
    cell_timeout = cell_timeout or int(course.config.Execute.get("timeout", CELL_TIMEOUT_S))
    todo = []
    handed_in = submissions(course, assignments)
    if students:
        unknown = sorted(set(students) - {student for student, _ in handed_in})
        if unknown:
            raise GraderError(
                f"no submission of {', '.join(map(repr, unknown))} in {course.root / 'submitted'}"
                "; check the student id (`python -m grader report` lists the class)"
            )
        handed_in = [(s, a) for s, a in handed_in if s in students]
    for student, assignment in handed_in:
        if force or not is_current(course, student, assignment):
            todo.append((student, assignment, submitted_timestamp(course, student, assignment)))
    # Until this run has measured them (grader.pipeline.order), the assignments with the
    # most code cells first.
    weight = {a: _code_cells(course, a) for a in assignments}
    todo.sort(key=lambda job: -weight[job[1]])
    # The libraries each worker's kernel template imports: those these notebooks use.
    preload = preload_for(
        (_release_notebook(course, a) for a in sorted({a for _, a, _ in todo})),
        course.config_file.parent,  # the course's repository, where its packages lie
    )
    start = time.perf_counter()
    outcomes = []
    before = _grades_of(course, todo)
    bar = tqdm(total=len(todo), desc="autograde", unit="submission", disable=not progress)
    own = executor is None
    if executor is None:
        executor = _executor(course, jobs, cpus, unsafe, cluster, scheduler_file)
    where = f"the Dask cluster ({executor.jobs} threads)" if remote else f"{executor.jobs} job(s)"
    order = LongestFirst((assignment, (student, stamp)) for student, assignment, stamp in todo)
    running: dict[Future[ExecutionResult], tuple] = {}

    def hand_out() -> None:
        # One submission more than the workers: a worker that is done starts the next at
        # once, while this process saves what it sent back.
        while order and len(running) <= executor.jobs:
            assignment, (student, stamp) = order.next()
            prepared = _prepare(course, student, assignment, stamp)
            if isinstance(prepared, Outcome):
                outcomes.append(_finish(course, prepared, bar, sandboxed=not unsafe))
                continue
            notebook, notes = prepared
            future = executor.submit(Job(notebook, cell_timeout, notebook_timeout, preload))
            running[future] = (student, assignment, stamp, notebook, notes)

    try:
        hand_out()
        while running:
            for future in wait(running, return_when=FIRST_COMPLETED).done:
                student, assignment, stamp, notebook, notes = running.pop(future)
                result = _result(future)
                order.ran(assignment, result.seconds)
                hand_out()
                outcome = _save(course, student, assignment, stamp, notebook, result, notes)
                outcomes.append(_finish(course, outcome, bar, sandboxed=not unsafe))
    finally:
        if own:
            executor.close()
    bar.close()
    counts = Counter(o.status for o in outcomes)
    parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
    skipped = len(handed_in) - len(todo)
    print(
        f"Autograded {len(outcomes)} submission(s) in {time.perf_counter() - start:.0f} s "
        f"with {where}: {parts or 'nothing to do'}"
        + (f"; {skipped} already graded (use --force to grade again)" if skipped else ""),
        flush=True,
    )
    report_changes(course, before, _grades_of(course, todo))
    return outcomes


def _grades_of(course: GradingFolder, todo) -> dict[tuple[str, str, str], float | None]:
    """(student, assignment, grade id) -> points (None: pending, to be graded by hand), of
    the submissions in `todo`."""
    keys = {(student, assignment) for student, assignment, _ in todo}
    return {
        (g.student, g.assignment, g.grade_id): None if g.pending else g.points
        for g in grades(course)
        if (g.student, g.assignment) in keys
    }


def report_changes(course: GradingFolder, before: dict, after: dict) -> list[tuple]:
    """Print the grades this run changed (a first grade is no change) and write them to
    reports/changed-grades.csv; the changes, as (student, assignment, grade id, old, new)."""
    changes = sorted(
        (
            (*key, before[key], after.get(key, 0.0))
            for key in before
            if after.get(key, 0.0) != before[key]
        ),
        key=lambda change: change[:3],
    )
    if not changes:
        return changes
    folder = course.root / "reports"
    folder.mkdir(exist_ok=True)
    with open(folder / "changed-grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "assignment", "grade_id", "before", "after", "change"])
        for student, assignment, grade_id, old, new in changes:
            writer.writerow(
                [
                    student,
                    assignment,
                    grade_id,
                    *("pending" if x is None else x for x in (old, new)),
                    "" if old is None or new is None else new - old,
                ]
            )
    print(f"{len(changes)} grade(s) changed (reports/changed-grades.csv):")
    for student, assignment, grade_id, old, new in changes[:20]:
        change = _change(old, new)
        print(
            f"  {student} {assignment} {grade_id}: {_shown(old)} -> {_shown(new)}"
            + (f" ({change})" if change else "")
        )
    if len(changes) > 20:
        print(f"  ... and {len(changes) - 20} more")
    return changes


def _shown(points: float | None) -> str:
    return "pending" if points is None else f"{points:g}"


def _change(old: float | None, new: float | None) -> str:
    return "" if old is None or new is None else f"{new - old:+g}"


def _executor(
    course: GradingFolder,
    jobs: int,
    cpus: float,
    unsafe: bool,
    cluster: str | None,
    scheduler_file: str | None,
) -> Executor:
    if cluster or scheduler_file:
        from grader.execution.executors import DaskExecutor

        executor = DaskExecutor(
            course.config_file,
            _worker_env(cpus),
            address=cluster,
            scheduler_file=scheduler_file,
            sandbox=not unsafe,
            cpus=cpus,
        )
        print(
            f"Grading on the Dask cluster {executor.address} "
            f"({executor.jobs} threads); dashboard: {executor.dashboard}",
            flush=True,
        )
        return executor
    return local_executor(course, jobs, unsafe=unsafe, cpus=cpus)


def local_executor(
    course: GradingFolder,
    jobs: int,
    *,
    unsafe: bool = False,
    cpus: float | None = None,
    logs: Path | None = None,
) -> LocalExecutor:
    """`jobs` grading workers on this machine, as autograde starts them for `course` (its
    nbgrader_config.py, the sandbox unless `unsafe`, each kernel's share of the cores: `cpus`,
    by default the machine's cores over `jobs`), their logs in `logs` (the course's logs/
    folder by default); started on first use, ended by `close()`."""
    cpus = cpus or _share_of_cores(jobs)
    command = worker_command(course.config_file, sandbox=not unsafe, cpus=cpus)
    return LocalExecutor(command, _worker_env(cpus), logs or course.root / "logs", jobs)


def _share_of_cores(jobs: int) -> float:
    """Each of `jobs` kernels' share of this machine's cores, at least one."""
    return max(1.0, (os.cpu_count() or 1) / jobs)


def _code_cells(course: GradingFolder, assignment: str) -> int:
    """How long an assignment's notebook runs, roughly: its number of code cells."""
    nb = nbformat.read(str(course.root / "source" / assignment / f"{assignment}.ipynb"), 4)
    return sum(cell.cell_type == "code" for cell in nb.cells)


def _finish(course: GradingFolder, outcome: Outcome, bar, sandboxed: bool) -> Outcome:
    outcome.sandboxed = sandboxed
    write_status(course, outcome)
    bar.update(1)
    return outcome


def _release_notebook(course: GradingFolder, assignment: str) -> Path:
    return course.root / "release" / assignment / f"{assignment}.ipynb"


def _work_dir(course: GradingFolder, student: str, assignment: str) -> Path:
    return course.root / "work" / assignment / student


def _prepare(course: GradingFolder, student: str, assignment: str, stamp: str | None):
    """Step 1: gradebook rows and a sanitized working copy, with notes on what the student
    did to graded cells; an Outcome when it cannot run (any failure: `invalid`)."""
    try:
        return _sanitized_copy(course, student, assignment, stamp)
    except Exception as error:  # one submission's failure is its status, not the run's
        return _failed(course, student, assignment, stamp, "prepare", error)


def _sanitized_copy(course: GradingFolder, student: str, assignment: str, stamp: str | None):
    def zero(status: Status, message: str) -> Outcome:
        return _zero(course, student, assignment, stamp, status, message)

    config = coursedir_config(course)
    with Gradebook(db_url(course), course.course_id) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment, student, timestamp=stamp)
        graded_cells = {c.name for c in gb.find_notebook(assignment, assignment).grade_cells}
    release = nbformat.read(str(_release_notebook(course, assignment)), as_version=4)
    submitted = course.root / "submitted" / student / assignment / f"{assignment}.ipynb"
    if not submitted.exists():
        return zero("missing", f"no {assignment}.ipynb in the submission")
    try:
        nb = nbformat.read(str(submitted), as_version=4)
    except Exception as error:  # nbformat raises several kinds for unreadable files
        return zero("invalid", f"not a readable notebook: {type(error).__name__}: {error}")
    notes = graded_cell_notes(nb, graded_cells, release)
    nb = restore_from_release(nb, release)
    resources = _resources(course, student, assignment)
    try:
        for preprocessor in SANITIZE:
            nb, resources = preprocessor(config=config, log=NBGRADER_LOG)(nb, resources)
    except Exception as error:  # nbgrader raises plain exceptions for broken metadata
        return zero("invalid", f"nbgrader could not restore the notebook's cells: {error}")
    work = _work_dir(course, student, assignment)
    if work.exists():
        shutil.rmtree(work)
    _copy_assignment_files(course, assignment, work)
    notebook = work / f"{assignment}.ipynb"
    nbformat.write(nb, str(notebook))
    return notebook, notes


def _resources(course: GradingFolder, student: str, assignment: str) -> dict:
    return {
        "nbgrader": {
            "student": student,
            "assignment": assignment,
            "notebook": assignment,
            "db_url": db_url(course),
        }
    }


def _copy_assignment_files(course: GradingFolder, assignment: str, target: Path) -> None:
    """The assignment's files other than notebooks, from source/, as nbgrader copies them."""
    source = course.root / "source" / assignment
    target.mkdir(parents=True, exist_ok=True)
    for name in find_all_files(
        str(source),
        course.config.CourseDirectory.get(
            "ignore", [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]
        )
        + ["*.ipynb"],
    ):
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


def _result(future: Future[ExecutionResult]) -> ExecutionResult:
    """The worker's result; a failure to get it is the submission's crash."""
    try:
        return future.result()
    except Exception as error:
        return ExecutionResult.crashed(
            f"grading failed: {type(error).__name__}: {_first_line(error)}"
        )


def _save(
    course, student, assignment, stamp, notebook: Path, result: ExecutionResult, notes: list[str]
) -> Outcome:
    """Step 3: nbgrader saves the grades; the notebook goes where nbgrader puts it. Any
    failure makes the submission `invalid` with 0 points."""
    try:
        return _save_grades(course, student, assignment, stamp, notebook, result, notes)
    except Exception as error:  # one submission's failure is its status, not the run's
        return _failed(course, student, assignment, stamp, "save", error)


def _save_grades(
    course, student, assignment, stamp, notebook: Path, result: ExecutionResult, notes: list[str]
) -> Outcome:
    config = coursedir_config(course)
    nb = nbformat.read(str(notebook), as_version=4)
    if not result.scores and result.status != "graded":
        mark_not_run(nb, result.message, completed=set())  # the worker died before it could
    # The worker's all-or-nothing scores decide, whatever the outputs say; SaveAutoGrades
    # reads the outputs, so they must say the same (no result as partial credit).
    settle(nb, lambda index, cell: result.passed(cell.metadata.nbgrader["grade_id"]))
    resources = _resources(course, student, assignment)
    for preprocessor in SAVE:
        nb, resources = preprocessor(config=config, log=NBGRADER_LOG)(nb, resources)
    notes = [*notes, *_settle_hand_grades(course, student, assignment, nb)]
    target = course.root / "autograded" / student / assignment
    if target.exists():
        shutil.rmtree(target)
    _copy_assignment_files(course, assignment, target)
    nbformat.write(nb, str(target / f"{assignment}.ipynb"))
    shutil.rmtree(notebook.parent, ignore_errors=True)
    message = "; ".join(filter(None, [result.message, *notes]))
    return Outcome(student, assignment, result.status, message, stamp)


def _failed(course, student, assignment, stamp, step: str, error: Exception) -> Outcome:
    """A submission the grader could not prepare or save: `invalid`, 0 points."""
    message = (
        f"the grader could not {step} this submission: {type(error).__name__}: {_first_line(error)}"
    )
    try:
        return _zero(course, student, assignment, stamp, "invalid", message)
    except Exception as again:  # the gradebook itself failed: the status says so
        return Outcome(
            student,
            assignment,
            "invalid",
            f"{message}; its grades could not be reset: {type(again).__name__}",
            stamp,
        )


def _first_line(error: Exception) -> str:
    return (str(error).splitlines() or [""])[0][:300]


def _zero(course, student, assignment, stamp, status, message) -> Outcome:
    """A submission that cannot run: its automatic grades are 0 and it is marked. A grade
    given by hand stays (the message names it): nothing the grader does undoes a person's
    grade unless it sees that the answer it was given to has changed."""
    kept = []
    with Gradebook(db_url(course), course.course_id) as gb:
        submission = gb.find_submission(assignment, student)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score = 0
                grade.needs_manual_grade = False
                if grade.manual_score is not None:
                    kept.append(grade.name)
        gb.db.commit()
    if kept:
        message += (
            f"; the grade(s) given by hand stay: {', '.join(sorted(kept))} (check them "
            "in formgrader)"
        )
    return Outcome(student, assignment, status, message, stamp)


def _previous_answers(course: GradingFolder, student: str, assignment: str) -> dict | None:
    """grade id -> source of the cells of the submission's last autograded notebook (what
    formgrader showed when a grade was given by hand); None if there is none to read."""
    path = course.root / "autograded" / student / assignment / f"{assignment}.ipynb"
    try:
        with open(path, encoding="utf-8") as f:  # the grader's own output: no validation
            cells = json.load(f)["cells"]
        answers: dict[str, str] = {}
        for cell in cells:
            grade_id = grade_id_of(cell)
            if grade_id:
                source = cell.get("source", "")
                answers.setdefault(
                    grade_id, "".join(source) if isinstance(source, list) else str(source)
                )
        return answers
    except Exception:  # missing or unreadable: nothing to compare with
        return None


def _settle_hand_grades(course, student, assignment, nb) -> list[str]:
    """After SaveAutoGrades, the grades given by hand to answers graded by hand (written
    answers). nbgrader keeps a manual score when it autogrades again and flags it for review
    (needs_manual_grade). Here a manual score stands, unflagged, when the answer's text is
    the one it was given to (`autograde --force`); when the text changed (a new submission)
    it is cleared, and the answer waits for its grade again (a note says so). Without a
    previous autograded notebook to compare with, nbgrader's flag stays and so does the grade.
    """
    answers: dict[str, str] = {}
    for cell in nb.cells:
        grade_id = grade_id_of(cell)
        if grade_id:
            answers.setdefault(grade_id, cell.get("source", ""))
    cleared = []
    with Gradebook(db_url(course), course.course_id) as gb:
        notebook = gb.find_submission_notebook(assignment, assignment, student)
        by_hand = graded_by_hand(notebook.notebook)
        graded = [g for g in notebook.grades if g.name in by_hand and g.manual_score is not None]
        # Read only where a grade given by hand is to be settled (a first grading has none).
        previous = _previous_answers(course, student, assignment) if graded else None
        for grade in graded:
            if previous is None:
                continue
            if previous.get(grade.name) == answers.get(grade.name):
                grade.needs_manual_grade = False
            else:
                cleared.append(f"{grade.name} (was {grade.manual_score:g})")
                grade.manual_score = None
                grade.extra_credit = None
                grade.needs_manual_grade = grade.auto_score is None
        gb.db.commit()
    if not cleared:
        return []
    return [
        f"answer(s) changed since they were graded by hand, to be graded again: "
        f"{', '.join(cleared)}"
    ]
