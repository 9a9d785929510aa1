"""Integrity of the grading cycle, beyond the worked-out scores of test_grader_demo.py:

- nothing leaks: no solution and no hidden test of source/ reaches release/, the student
  bundle, or the feedback pages;
- a grader killed half way (SIGKILL, as a crash) leaves no process behind, and running it
  again grades the rest, each submission once, to the scores of an uninterrupted run, also
  when the kill left the gradebook in the middle of a write;
- autograding twice changes nothing; forcing it gives the same scores.

The grading tests share one graded tiny class (the two-exercise course of conftest.py),
graded once as `python -m grader demo` does it.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from conftest import DEMO_CELL_TIMEOUT, DEMO_JOBS, MINI, copy_grading
from nbgrader.api import Gradebook

from grader.config import CourseConfig
from grader.notebooks import cells as nbs
from grader.notebooks.redaction import HideHiddenTests
from grader.pipeline.autograde import autograde
from grader.pipeline.bundle import make_bundle
from grader.pipeline.collect import collect
from grader.workdir import folder, gradebook

# What counts as a leak. A snippet is one line of a solution or hidden-test body, with its
# whitespace collapsed, or a whole body (its non-blank lines). Compared as substrings of the
# text a student gets, normalized the same way. Skipped, because they say nothing:
# - snippets under MIN_CHARS characters (`pass`, `return H`, `)`, `H = X`); 12 keeps
#   short but specific answers such as `return x * x`;
# - snippets that a student sees legitimately anyway: text outside the solution and
#   hidden-test regions of any source notebook (a visible test repeats a hidden test's
#   set-up line, a later notebook shows an earlier answer); single lines also when they
#   occur in the `course` package, which students get (an idiom such as
#   `for start in range(0, len(X), batch_size):`); a whole body there still counts.
MIN_CHARS = 12
SOLUTION, HIDDEN = "solution", "hidden test"
DELIMITERS = {
    nbs.BEGIN_SOLUTION: SOLUTION,
    nbs.BEGIN_HIDDEN: HIDDEN,
    nbs.END_SOLUTION: None,
    nbs.END_HIDDEN: None,
}
JOBS, CELL_TIMEOUT = DEMO_JOBS, DEMO_CELL_TIMEOUT  # those of the graded demo class
# After a SIGKILL of the grader, how long what it started may take to notice and exit
# (a kernel polls for its parent once a second).
EXIT_GRACE_S = 4.0
# A student of the synthetic class whose first answer loops until the cell timeout.
# Submissions are graded in the order of the students' names, so once every student before
# this one is graded, its kernel is in the loop (or starting): killed then, the run has a
# process that would outlive the grace if nothing stopped it.
LOOPING_STUDENT = "ivy"


def normalize(text: str) -> str:
    """Each line with its whitespace collapsed; blank lines dropped."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def split_cell(source: str) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """([(kind, normalized body lines)], normalized lines outside every region)."""
    bodies, public, current = [], [], None
    for line in source.splitlines():
        stripped = line.strip()
        if stripped in DELIMITERS:
            kind = DELIMITERS[stripped]
            current = (kind, []) if kind else None
            if current:
                bodies.append(current)
        elif current is not None:
            if stripped:
                current[1].append(" ".join(line.split()))
        elif stripped:
            public.append(" ".join(line.split()))
    return bodies, public


def secrets(notebooks: list[Path], package_text: str = "") -> dict[str, set[str]]:
    """kind -> the snippets of `notebooks` that no student may see (see the rule above)."""
    bodies, public = [], []
    for path in notebooks:
        for cell in nbs.read(path).cells:
            cell_bodies, cell_public = split_cell(cell.source)
            bodies += cell_bodies
            public += cell_public
    in_notebooks = "\n".join(public)
    anywhere = in_notebooks + "\n" + normalize(package_text)
    found = {SOLUTION: set(), HIDDEN: set()}
    for kind, lines in bodies:
        whole = "\n".join(lines)
        if len(whole) >= MIN_CHARS and whole not in in_notebooks:
            found[kind].add(whole)
        found[kind] |= {x for x in lines if len(x) >= MIN_CHARS and x not in anywhere}
    return found


def json_strings(value):
    """Every string in a JSON document; nbformat's lists of lines joined back."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        yield "".join(value)
    elif isinstance(value, list):
        for item in value:
            yield from json_strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from json_strings(item)


def notebook_text(data: str) -> str:
    """All text of a notebook file (sources, outputs, metadata), normalized."""
    return normalize("\n".join(json_strings(json.loads(data))))


def html_text(data: str) -> str:
    """What a page says: tags removed (code is split into highlighting spans), unescaped."""
    return normalize(html.unescape(re.sub(r"<[^>]*>", "", data)))


def leaks(snippets: dict[str, set[str]], texts: dict[str, str]) -> list[str]:
    return sorted(
        f"{name}: {kind} {snippet!r}"
        for name, text in texts.items()
        for kind, found in snippets.items()
        for snippet in found
        if snippet in text
    )


def package_text(course: CourseConfig) -> str:
    return "\n".join(p.read_text() for p in sorted((course.root / "course").rglob("*.py")))


def source_notebooks(course: CourseConfig) -> list[Path]:
    return [course.root / "source" / a / f"{a}.ipynb" for a in course.assignments]


@pytest.fixture(scope="module")
def course_secrets(repo_course):
    return secrets(source_notebooks(repo_course), package_text(repo_course))


def test_release_and_bundle_hold_no_solution_and_no_hidden_test(
    repo_course, course_secrets, tmp_path
):
    for path in source_notebooks(repo_course):
        one = secrets([path])
        assert one[SOLUTION] and one[HIDDEN], (
            f"{path} yields no solution or no hidden-test snippet, so the leak check of it "
            "checks nothing."
        )
    release = {
        str(p.relative_to(repo_course.root)): notebook_text(p.read_text())
        for p in sorted((repo_course.root / "release").rglob("*.ipynb"))
    }
    assert len(release) == len(repo_course.assignments), "release/ lacks a student notebook."
    found = leaks(course_secrets, release)
    assert not found, "release/ shows solutions or hidden tests:\n" + "\n".join(found)

    bundle, binary = {}, []
    with zipfile.ZipFile(make_bundle(repo_course, tmp_path / "bundle.zip")) as archive:
        for name in archive.namelist():
            try:
                data = archive.read(name).decode("utf-8")
            except UnicodeDecodeError:
                binary.append(name)
                continue
            bundle[name] = notebook_text(data) if name.endswith(".ipynb") else normalize(data)
    assert sum(n.endswith(".ipynb") for n in bundle) == len(repo_course.assignments), (
        "The bundle's notebooks were not all read, so the leak check would miss some."
    )
    assert not [n for n in binary if n.endswith((".py", ".ipynb", ".md", ".txt"))], (
        f"Text files of the bundle could not be read as UTF-8: {binary}"
    )
    found = leaks(course_secrets, bundle)
    assert not found, "The student bundle shows solutions or hidden tests:\n" + "\n".join(found)


def test_feedback_step_removes_every_hidden_test_of_the_course(repo_course):
    """The feedback preprocessor on the real notebooks, as autograde leaves them (hidden
    tests restored) with every test cell failing, its traceback quoting the whole cell,
    and every cell printing the source of every cell (as a submission can, with
    `inspect.stack()` in a tested function or an IPython hook)."""
    for path in source_notebooks(repo_course):
        nb = nbs.read(path)
        hidden = secrets([path], package_text(repo_course))[HIDDEN]
        assert hidden, f"{path} yields no hidden-test snippet, so this check checks nothing."
        everything = "\n".join(cell.source for cell in nb.cells)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            cell.outputs = [
                {"output_type": "stream", "name": "stdout", "text": everything},
                {
                    "output_type": "error",
                    "ename": "AssertionError",
                    "evalue": "wrong",
                    "traceback": [
                        f"----> {n} {line}" for n, line in enumerate(cell.source.splitlines(), 1)
                    ],
                },
            ]
        nb, _ = HideHiddenTests().preprocess(nb, {})
        text = notebook_text(json.dumps(nb))
        found = leaks({HIDDEN: hidden}, {str(path.relative_to(repo_course.root)): text})
        assert not found, (
            "The feedback step leaves hidden tests in cells, tracebacks or printed output:\n"
            + "\n".join(found)
        )


@dataclass
class Graded:
    repo: CourseConfig  # the tiny course
    course: CourseConfig  # its grading folder, graded by run_demo: shared, read only
    grades: dict  # (student, assignment, grade id) -> points, right after grading
    statuses: dict  # (student, assignment) -> status, right after grading


def scores(course: CourseConfig) -> dict:
    return {(g.student, g.assignment, g.grade_id): g.points for g in gradebook.grades(course)}


def statuses(course: CourseConfig) -> dict:
    """(student, assignment) -> status of every status file of the grading folder."""
    return {
        (p.parent.name, p.stem): json.loads(p.read_text())["status"]
        for p in (course.root / "status").glob("*/*.json")
    }


def submitted(course: CourseConfig) -> set:
    return {(p.parent.name, p.name) for p in (course.root / "submitted").glob("*/*") if p.is_dir()}


@pytest.fixture(scope="module")
def graded(graded_demo):
    """The run's graded demo class (conftest.py), as test_grader_demo.py reads it too."""
    course = graded_demo.course
    return Graded(graded_demo.repo, course, scores(course), statuses(course))


@pytest.mark.slow
def test_feedback_shows_no_hidden_test_and_no_answer_the_student_did_not_write(graded):
    course = graded.course
    found = secrets([graded.repo.root / "source" / MINI / f"{MINI}.ipynb"])
    hidden_test = 'assert square(-2) == 4, "square(-2) should be 4"'
    assert hidden_test in found[HIDDEN] and "return x * x" in found[SOLUTION], (
        "The tiny course's hidden test or solution is not among its snippets; the check is vacuous."
    )
    ada = course.root / "autograded" / "ada" / MINI / f"{MINI}.ipynb"
    assert hidden_test in notebook_text(ada.read_text()), (
        "The hidden test was not restored for grading, so its absence from feedback proves nothing."
    )
    pages = {
        p.relative_to(course.root).as_posix(): html_text(p.read_text())
        for p in sorted((course.root / "feedback").rglob("*.html"))
    }
    graded_students = {s for (s, _), status in graded.statuses.items() if status != "invalid"}
    assert {name.split("/")[1] for name in pages} == graded_students, (
        "Not every graded student got a feedback page."
    )
    page = f"feedback/{{}}/{MINI}/{MINI}.html"
    unseen = {s for s in found[SOLUTION] if s not in pages[page.format("ada")]}
    assert not unseen, (
        f"A correct student's own answer {sorted(unseen)} is not found in their feedback "
        "page: the page is not read right, so the solution check below is vacuous."
    )
    hidden = leaks({HIDDEN: found[HIDDEN]}, pages)
    assert not hidden, "Feedback shows hidden tests:\n" + "\n".join(hidden)
    for name, text in pages.items():
        assert "HIDDEN TESTS" not in text, f"{name} shows the hidden-test delimiters."
    blank = leaks({SOLUTION: found[SOLUTION]}, {"blank": pages[page.format("blank")]})
    assert not blank, "The feedback of a blank notebook shows the solution:\n" + "\n".join(blank)


@dataclass
class Resumed:
    course: CourseConfig
    graded_before_kill: set  # (student, assignment) with a status when the grader died
    running_at_kill: int  # processes the grader had started and that ran when it died
    survivors: list[str]  # processes of the killed run still alive after the grace
    outcomes: list  # what the second run graded
    error: str | None  # why the second run failed, if it did


def describe(process: psutil.Process) -> str:
    try:
        return f"pid {process.pid}: {' '.join(process.cmdline())} (cwd {process.cwd()})"
    except psutil.Error:
        return f"pid {process.pid}"


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def inside(process: psutil.Process, folder: Path) -> bool:
    """Whether the process works in `folder` or names it on its command line."""
    try:
        cwd, cmdline = process.cwd(), " ".join(process.cmdline())
    except psutil.Error:
        return False
    return Path(cwd).is_relative_to(folder) or str(folder) in cmdline


def started_in(folder: Path) -> list[psutil.Process]:
    me = os.getpid()
    return [p for p in psutil.process_iter() if p.pid != me and alive(p) and inside(p, folder)]


@pytest.fixture(scope="module")
def resumed(graded, tmp_path_factory, workers):
    """The class of `graded`, collected afresh, graded by a CLI run killed half way, then
    by a second run to the end."""
    work = tmp_path_factory.mktemp("killed") / "grading"
    course = folder.prepare(graded.repo, work, [MINI])
    collect(course, graded.course.root / "class.zip")
    everything = submitted(course)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    command = [
        sys.executable,
        "-m",
        "grader",
        "--root",
        str(graded.repo.root),
        "--workdir",
        str(work),
        "autograde",
        "--jobs",
        str(JOBS),
        "--timeout",
        str(CELL_TIMEOUT),
    ]
    log_path = work.parent / "killed-run.log"
    seen: dict[int, psutil.Process] = {}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, cwd=graded.repo.root, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        main = psutil.Process(process.pid)
        first = {(s, a) for s, a in everything if s < LOOPING_STUDENT}
        deadline = time.monotonic() + 240
        try:
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"The grader ended or stalled before the moment to kill it (all "
                        f"before {LOOPING_STUDENT} graded, {LOOPING_STUDENT} not):\n"
                        f"{log_path.read_text()}"
                    )
                try:
                    children = main.children(recursive=True)
                except psutil.Error:
                    children = []
                for child in children:
                    seen.setdefault(child.pid, child)
                done = set(statuses(course))
                if len(done) >= 2 and first <= done and (LOOPING_STUDENT, MINI) not in done:
                    break
                time.sleep(0.05)
            running = [p for p in main.children(recursive=True) if alive(p)]
            seen.update((p.pid, p) for p in running)
        finally:
            os.kill(process.pid, signal.SIGKILL)  # the main process only, as a crash would
            process.wait()
    graded_before_kill = set(statuses(course))
    died = time.monotonic()
    while True:
        left = {p.pid: p for p in seen.values() if alive(p)}
        left.update({p.pid: p for p in started_in(work)})
        if not left or time.monotonic() - died > EXIT_GRACE_S:
            break
        time.sleep(0.1)
    survivors = [describe(p) for p in left.values()]
    # Let them end (or end them) before the second run, so that it grades undisturbed and
    # no test leaves a process behind; all were started by this fixture's grader run.
    _, stuck = psutil.wait_procs(list(left.values()), timeout=30)
    for leftover in stuck:
        leftover.kill()
    try:
        outcomes, error = (
            autograde(
                folder.open_workdir(graded.repo, work),
                cell_timeout=CELL_TIMEOUT,
                progress=False,
                executor=workers(graded.repo),  # shared_workers.py
            ),
            None,
        )
    except Exception as exc:  # reported by the test below, not as an error of this fixture
        outcomes, error = [], f"{type(exc).__name__}: {exc}"
    return Resumed(course, graded_before_kill, len(running), survivors, outcomes, error)


@pytest.mark.slow
@pytest.mark.sandbox
def test_killed_grader_leaves_no_process_behind(resumed):
    assert resumed.running_at_kill, (
        "The grader had no process running when it was killed, so this check checks nothing."
    )
    assert not resumed.survivors, (
        f"{len(resumed.survivors)} process(es) of the killed grader still ran "
        f"{EXIT_GRACE_S} s after it died:\n" + "\n".join(resumed.survivors)
    )


@pytest.mark.slow
@pytest.mark.sandbox
def test_grading_again_after_a_kill_grades_each_submission_once(graded, resumed):
    course = resumed.course
    assert resumed.error is None, f"Grading again after the kill failed: {resumed.error}"
    everything = submitted(course)
    assert 2 <= len(resumed.graded_before_kill) < len(everything), (
        "The grader was not killed half way."
    )
    again = Counter((o.student, o.assignment) for o in resumed.outcomes)
    assert set(again) == everything - resumed.graded_before_kill, (
        "The second run did not grade exactly the submissions the killed run left ungraded."
    )
    assert max(again.values()) == 1, "The second run graded a submission twice."
    with Gradebook(gradebook.db_url(course), course.course_id) as gb:
        rows = Counter((s.student.id, a.name) for a in gb.assignments for s in a.submissions)
    assert set(rows) == everything and max(rows.values()) == 1, (
        "The gradebook does not hold exactly one submission row per submission."
    )
    cells = Counter((g.student, g.assignment, g.grade_id) for g in gradebook.grades(course))
    graded_cells = gradebook.max_points(course)  # (assignment, grade id) -> points
    assert max(cells.values()) == 1, "The gradebook holds a graded cell twice."
    assert set(cells) == {(s, a, g) for s, a in everything for b, g in graded_cells if b == a}, (
        "The gradebook lacks grades of some graded cells."
    )
    assert scores(course) == graded.grades, (
        "Scores after a kill and a second run differ from those of an uninterrupted run."
    )
    assert statuses(course) == graded.statuses, (
        "Statuses after a kill and a second run differ from those of an uninterrupted run."
    )


SPILLING_WRITER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA cache_size = 1")  # changed pages go to the file before the commit
db.execute("BEGIN IMMEDIATE")
db.execute("CREATE TABLE spill (x)")
db.executemany("INSERT INTO spill VALUES (?)", [("x" * 500,)] * 2000)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.slow
def test_a_gradebook_left_mid_write_by_a_killed_run_opens_again(graded, tmp_path):
    """What a grader killed during a gradebook write leaves (the file half written, a hot
    rollback journal), made on purpose: the next run must roll it back and go on."""
    shutil.copy(graded.course.root / gradebook.DB_NAME, tmp_path / gradebook.DB_NAME)
    writer = subprocess.Popen(
        [sys.executable, "-c", SPILLING_WRITER, str(tmp_path / gradebook.DB_NAME)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
    finally:
        writer.kill()
        writer.wait()
    journal = tmp_path / f"{gradebook.DB_NAME}-journal"
    assert journal.exists(), "The killed writer left no journal; this test tests nothing."
    try:
        course = folder.open_workdir(graded.repo, tmp_path)
    except Exception as error:
        pytest.fail(
            f"A grading folder whose gradebook a killed run left mid-write is refused, so "
            f"the run cannot be completed by running it again: {error}"
        )
    assert scores(course) == graded.grades, "The half-written transaction was not rolled back."


def snapshot(course: CourseConfig) -> dict:
    """Grades, submission timestamps, statuses and the autograded files, as they are."""
    with Gradebook(gradebook.db_url(course), course.course_id) as gb:
        stamps = {
            (s.student.id, a.name): s.timestamp for a in gb.assignments for s in a.submissions
        }
    autograded = {
        p.relative_to(course.root).as_posix(): p.stat().st_mtime_ns
        for p in (course.root / "autograded").rglob("*")
        if p.is_file()
    }
    return {
        "grades": sorted(gradebook.grades(course)),
        "timestamps": stamps,
        "statuses": statuses(course),
        "autograded": autograded,
    }


@pytest.mark.slow
def test_autograding_twice_gives_the_same_gradebook(graded, tmp_path, workers):
    course = copy_grading(graded.repo, graded.course.root, tmp_path / "grading")
    shared = workers(course)  # shared_workers.py
    before = snapshot(course)
    assert before["grades"] and before["timestamps"], "The class was not graded at all."
    assert autograde(course, cell_timeout=CELL_TIMEOUT, progress=False, executor=shared) == [], (
        "Autograding an already graded class graded something again."
    )
    after = snapshot(course)
    for part in before:
        assert after[part] == before[part], f"Autograding again changed the {part}."
    forced = autograde(
        course, cell_timeout=CELL_TIMEOUT, force=True, progress=False, executor=shared
    )
    assert sorted((o.student, o.assignment) for o in forced) == sorted(submitted(course)), (
        "Forced autograding did not grade every submission exactly once."
    )
    again = snapshot(course)
    assert again["grades"] == before["grades"], "Forced autograding gave different grades."
    assert again["timestamps"] == before["timestamps"], (
        "Forced autograding changed the submissions' timestamps."
    )
    assert again["statuses"] == before["statuses"], "Forced autograding gave other statuses."
