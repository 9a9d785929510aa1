"""The hostile-submission suite: one class of the tiny two-exercise course (conftest.py)
in which, beside a few ordinary students, each student attacks the grader in one way.

The class is collected and autograded once, in parallel and sandboxed, as
`python -m grader demo` does it, while a watcher samples the sandboxed processes. Then:

- every ordinary student scores exactly as by hand, as if the attackers were not there;
- every attacker ends with the expected status, points and a message that names what it
  did (submissions.csv), or, where the attack is simply blocked, with the failure of the
  attempt in its own notebook's outputs (it prints what it could do) and nothing gained;
- nothing is left running, no sandboxed process grew past its memory or process limit,
  nothing reached the network, read a hidden test or wrote the gradebook.

The tiny course: exercise 1.1 `square` (2 points, one hidden test `square(-2) == 4`),
1.2 `cube` (1 point).
"""

from __future__ import annotations

import ast
import csv
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import nbformat
import psutil
import pytest
from conftest import (
    MINI,
    answered,
    build_class_course,
    cell_index,
    copy_notebook,
    with_cells_after,
)
from nbgrader.api import Gradebook

from grader.execution.sandbox import ENVIRONMENT, UID_BASE, UID_COUNT, Limits
from grader.execution.worker import OUTPUT_LIMIT
from grader.notebooks import cells as nbs
from grader.pipeline.autograde import autograde
from grader.pipeline.collect import collect
from grader.pipeline.report import write_report
from grader.pipeline.synthetic import (
    as_handed_in,
    with_answer_at,
    with_first_answer,
    with_noisy_function,
)
from grader.workdir import gradebook
from grader.workdir.folder import prepare

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

CELL_TIMEOUT = 5
HIDDEN = ["square(-2)", "HIDDEN TESTS"]  # text of the hidden test: must reach no output

# student -> (points of test_square, points of test_cube, status, what the message says)
NORMAL = {
    "ada": (2, 1, "graded", ""),  # everything right
    "blank": (0, 0, "graded", ""),  # the untouched release notebook
    "cat": (2, 0, "graded", ""),  # `cube` answered wrongly
    "gus": (2, 1, "graded", ""),  # right, and warns on stderr inside the tests: full marks
}
HOSTILE = {
    "loop": (0, 1, "timeout", f"ran longer than {CELL_TIMEOUT} s"),  # `square`'s cell: LOOP
    "exit": (2, 0, "crashed", "kernel died"),  # os._exit(1) in `cube`'s cell
    "segv": (2, 0, "crashed", "kernel died"),  # a segfault in `cube`'s cell
    "memhog": (2, 1, "graded", "ran out of memory"),  # 64 GiB at once, then a growing list
    "forkbomb": (2, 1, "timeout", "cell 10"),  # after the tests; stopped, every process reaped
    "spam": (2, 1, "graded", "the rest of the output was dropped"),  # prints 20 MB (SPAM)
    "edited": (0, 1, "graded", ""),  # tests edited to `pass`, `square` wrong: restored (the
    # message: test_edited_tests_are_noted)
    "deleted": (2, 1, "graded", "deleted"),  # test_square deleted: restored, and it passes
    "doubled": (2, 1, "graded", "duplicated grade id"),  # test_square copied: no double points
    "broken": (0, 0, "invalid", "not a readable notebook"),  # not JSON
    "dbwriter": (2, 0, "graded", ""),  # writes the gradebook; `cube` wrong
    "snoop": (2, 1, "graded", ""),  # reads hidden tests, source/, another submission
    "netcat": (2, 1, "graded", ""),  # opens network connections
    "disarm": (0, 0, "invalid", "disarmed"),  # failing cells report success; `square` wrong
    "fakeerr": (0, 1, "graded", ""),  # replaces builtins.AssertionError; `square` wrong
    # What one kernel leaves behind must not reach the next, nor the machine.
    "leaver": (2, 1, "graded", ""),  # files, IPC objects, a daemon, pinned memory
    "looker": (2, 1, "graded", ""),  # looks for what leaver left
    "envthief": (2, 1, "graded", ""),  # the grader's environment, descriptors, log
    # No notebook to grade: the report says so.
    "misnamed": (0, 0, "missing", "nothing submitted"),  # wrong file name: collect skips it
    "nofile": (0, 0, "missing", "nothing submitted"),  # no notebook in the folder at all
    "lost": (0, 0, "missing", f"no {MINI}.ipynb in the submission"),  # folder, no notebook
}
EXPECTED = {**NORMAL, **HOSTILE}
ROSTER = ["misnamed", "nofile"]  # on the class list, so the report lists them
MESSAGE_DETAIL = {  # more that a message must name
    "deleted": "test_square",
    "doubled": "test_square",
    "broken": "JSON",
    "memhog": f"{Limits().memory >> 30} GiB",
    "forkbomb": "stopped",
}


# --- the notebooks --------------------------------------------------------------------


def wrong_square(nb):
    return answered(nb, "square", "return x * x", "return x + x")  # square(3) == 6


def wrong_cube(nb):
    return answered(nb, "cube", "return x ** 3", "return x * x")  # cube(2) == 4


def protected(label: str, body: str) -> str:
    """Code that tries `body` and prints `label` with what happened: READ/WROTE on success,
    BLOCKED on any exception."""
    indented = "\n".join("    " + line for line in body.splitlines())
    return (
        f"try:\n{indented}\n"
        f"except Exception as error:\n"
        f"    print('BLOCKED {label}:', type(error).__name__, error)\n"
    )


MEMORY_AT_ONCE = "hog = bytearray(64 << 30)  # 64 GiB"
# Untouched (calloc'd) chunks: the limit counts them all the same. Touched memory fills at
# under 1 GB/s on a small VM, so reaching the limit would take longer than a cell may run.
MEMORY_GROWING = """\
hoard = []
while True:
    hoard.append(bytes(256 << 20))"""

FORK_BOMB = """\
import os
while True:
    try:
        os.fork()  # parent and children alike, for ever
    except OSError:
        pass"""

# Twice what the grader keeps: what it drops is as much again as what it keeps. (Not more:
# every megabyte printed costs the kernel and the worker CPU time, to no further effect.)
SPAM = f"""\
line = "spam " * 2000  # 10 kB
for _ in range({2 * OUTPUT_LIMIT // 10_000}):  # {2 * OUTPUT_LIMIT >> 20} MB in all
    print(line)"""

# A cell that never ends, for the cell timeout. It sleeps: a busy loop would burn a core for
# the whole timeout, to no further effect here (a busy loop's timeout: the demo class's `ivy`,
# test_grader_demo.py).
LOOP = """\
import time
while True:  # oops
    time.sleep(0.1)"""

DISARM = """\
_shell = get_ipython()
_run_cell = _shell.run_cell


def _forgiving_run_cell(raw_cell, *args, **kwargs):
    body = "\\n".join("    " + line for line in raw_cell.splitlines()) or "    pass"
    return _run_cell("try:\\n" + body + "\\nexcept BaseException:\\n    pass", *args, **kwargs)


_shell.run_cell = _forgiving_run_cell"""

FAKE_ASSERTION_ERROR = """\
import builtins


class AssertionError(Warning):
    pass


builtins.AssertionError = AssertionError"""


# leaver's marks: a name, an IPC key, a process title; looker and the test look for them.
MARK = "left-by-leaver"
IPC_KEY = 0x6C656674  # "left"
DAEMON_SECONDS = 3141  # `sleep 3141`: leaver's detached process
WRITABLE_PLACES = ["/tmp", "/var/tmp", "/dev/shm", ".", "~", "/run", "/var/lock", "/home", "/ipc"]
SYSV = """\
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
IPC_CREAT, SHM_LOCK = 0o1000, 11
"""
LEAVE = [
    SYSV
    + f"""\
import os, subprocess
for place in {WRITABLE_PLACES!r}:
    try:
        with open(os.path.join(os.path.expanduser(place), "{MARK}"), "w") as f:
            f.write("x" * 1000)
        print("LEFT file in", place)
    except OSError as error:
        print("BLOCKED file in", place, error)
shm = libc.shmget({IPC_KEY}, 256 << 20, IPC_CREAT | 0o666)
print("LEFT shm", shm, "locked", libc.shmctl(shm, SHM_LOCK, None))
address = libc.shmat(shm, None, 0)
ctypes.memset(ctypes.c_void_p(address), 1, 256 << 20)  # touched: real memory
print("LEFT msgq", libc.msgget({IPC_KEY}, IPC_CREAT | 0o666))
print("LEFT sem", libc.semget({IPC_KEY}, 1, IPC_CREAT | 0o666))
with open("/dev/shm/{MARK}-posix", "wb") as f:  # POSIX shared memory, filled
    try:
        f.write(b"x" * (512 << 20))
    except OSError as error:
        print("FULL /dev/shm", error)
try:  # the connection folder: writable (its sockets), but small
    with open("/ipc/{MARK}-fill", "wb") as f:
        f.write(b"x" * (8 << 20))
    print("FILLED /ipc")
except OSError as error:
    print("FULL /ipc", error)
subprocess.Popen(["sleep", "{DAEMON_SECONDS}"], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("LEFT daemon")""",
    """\
import mmap
pinned = mmap.mmap(-1, 64 << 20)
try:
    libc.mlock(ctypes.c_void_p(ctypes.addressof(ctypes.c_char.from_buffer(pinned))), 64 << 20)
except Exception as error:
    print("mlock", error)""",
]
LOOK = [
    SYSV
    + f"""\
import glob, os, subprocess
found = [p for place in {WRITABLE_PLACES!r}
         for p in glob.glob(os.path.join(os.path.expanduser(place), "{MARK}*"))]
for key_user in ("shmget", "msgget", "semget"):
    args = ({IPC_KEY}, 0, 0) if key_user != "semget" else ({IPC_KEY}, 0, 0)
    if getattr(libc, key_user)(*args) >= 0:
        found.append(key_user)
ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
if "sleep {DAEMON_SECONDS}" in ps:
    found.append("daemon")
print("FOUND", found)""",
]
SECRET_NAME, SECRET = "GRADER_TEST_TOKEN", "token-7f3a9c1e"
ENV_THIEF = [
    """\
import os
print("ENV", sorted(os.environ))
print("ENVIRON", open("/proc/self/environ").read().replace("\\0", " "))
for pid in ("1", "2"):
    try:
        print("PID", pid, open(f"/proc/{pid}/environ").read(),
              open(f"/proc/{pid}/cmdline").read())
    except OSError as error:
        print("BLOCKED pid", pid, error)
for fd in sorted(os.listdir("/proc/self/fd"), key=int):
    try:
        print("FD", fd, os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        pass
for fd in (0, 1, 2):
    try:  # without blocking: ipykernel turns 1 and 2 into pipes of its own
        reopened = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK)
        print("READ fd", fd, repr(os.read(reopened, 200)))
    except OSError as error:
        print("BLOCKED read fd", fd, error)
    try:
        os.write(fd, b"ENVTHIEF WAS HERE\\n")
    except OSError as error:
        print("BLOCKED write fd", fd, error)""",
]


def gradebook_attack(db: Path) -> list[str]:
    """Cells that try to write the gradebook, directly and through the worker's /proc view."""
    paths = {"gradebook": str(db), "gradebook via /proc": f"/proc/{{os.getppid()}}/root{db}"}
    cells = ["import os\nimport sqlite3"]
    for label, path in paths.items():
        cells.append(
            protected(
                f"sqlite {label}",
                (  # S608: the text of a hostile cell the sandbox must stop, not a query of ours
                    f'db = sqlite3.connect(f"{path}")\n'  # noqa: S608
                    'db.execute("UPDATE grade SET auto_score = max_score, '
                    'manual_score = max_score")\n'
                    "db.commit()\n"
                    f"print('WROTE sqlite {label}')"
                ),
            )
        )
        cells.append(
            protected(
                f"open {label}",
                (
                    f'with open(f"{path}", "r+b") as f:\n'
                    '    f.write(b"not a gradebook any more")\n'
                    f"print('WROTE open {label}')"
                ),
            )
        )
    return cells


def snoop_targets(course, repo) -> dict[str, str]:
    """What a student would like to read: every place a hidden test or an answer sits."""
    root = course.root
    notebook = f"{MINI}/{MINI}.ipynb"
    return {
        "sanitized copy": f"{root}/work/{MINI}/snoop/{MINI}.ipynb",
        "grading source": f"{root}/source/{notebook}",
        "course source": f"{repo.root}/source/{notebook}",
        "other submission": f"{root}/submitted/ada/{notebook}",
        "other autograded": f"{root}/autograded/ada/{notebook}",
        "collected class": f"{repo.root}/class/ada/{notebook}",
        "config": str(repo.config_file),
        "via /proc": f"/proc/{{os.getppid()}}/root{root}/source/{notebook}",
    }


def snoop_cells(targets: dict[str, str], base: Path) -> list[str]:
    cells = ["import glob\nimport os"]
    for label, path in targets.items():
        cells.append(
            protected(
                label, (f"with open(f\"{path}\") as f:\n    print('READ {label}:', f.read())")
            )
        )
    folders = {
        label: str(Path(path).parent) for label, path in targets.items() if label != "via /proc"
    }
    for label, folder in folders.items():  # a hidden folder may show, but empty
        cells.append(
            protected(
                f"{label} folder",
                (
                    f'entries = os.listdir("{folder}")\n'
                    f"print('READ {label} folder:' if entries else 'BLOCKED {label} folder: empty',"
                    " entries)"
                ),
            )
        )
    # Any notebook anywhere near, and in the folder the kernel runs in.
    cells.append(
        f'tops = [".", "/tmp", "/dev/shm", os.path.expanduser("~"), "{base}"]\n'
        'found = [p for top in tops for p in glob.glob(f"{top}/**/*.ipynb", recursive=True)]\n'
        "for path in found:\n"
        "    with open(path) as f:\n"
        "        print('READ found', path, f.read())\n"
        "print(f'SEARCHED {len(found)}')"
    )
    return cells


def network_cells(port: int) -> list[str]:
    cells = ["import socket"]
    for host, to in [("1.1.1.1", 80), ("127.0.0.1", port)]:
        cells.append(
            protected(
                f"{host}:{to}",
                (
                    f'socket.create_connection(("{host}", {to}), timeout=3).close()\n'
                    f"print('CONNECTED {host}:{to}')"
                ),
            )
        )
    return cells


def make_class(repo, course, folder: Path, port: int, base: Path) -> Path:
    """<student>/<assignment>/<notebook>.ipynb for the whole class, as collect reads it."""
    full = nbs.read(repo.root / "source" / MINI / f"{MINI}.ipynb")
    right = as_handed_in(full)
    blank = nbs.read(repo.root / "release" / MINI / f"{MINI}.ipynb")
    in_square_cell = 0.0  # position of the solution cell, for grader.pipeline.synthetic
    in_cube_cell = 0.99
    test_square = cell_index(right, "test_square")
    notebooks = {
        "ada": right,
        "blank": blank,
        "cat": wrong_cube(right),
        "gus": with_noisy_function(full),
        "loop": with_answer_at(full, in_square_cell, LOOP),
        "exit": with_answer_at(full, in_cube_cell, "import os\nos._exit(1)"),
        "segv": with_answer_at(full, in_cube_cell, "import ctypes\nctypes.string_at(0)"),
        "memhog": with_cells_after(right, "square", MEMORY_AT_ONCE, MEMORY_GROWING),
        # After the tests: what the kernel does once the bomb has gone off is up to chance
        # (stopped at the cell timeout, or no answer at all), the points before it are not.
        "forkbomb": with_cells_after(right, "test_cube", FORK_BOMB),
        "spam": with_first_answer(full, SPAM),
        "edited": wrong_square(right),
        "deleted": copy_notebook(right),
        "doubled": copy_notebook(right),
        "dbwriter": with_cells_after(
            wrong_cube(right), "square", *gradebook_attack(course.root / gradebook.DB_NAME)
        ),
        "snoop": with_cells_after(right, "square", *snoop_cells(snoop_targets(course, repo), base)),
        "netcat": with_cells_after(right, "square", *network_cells(port)),
        "disarm": with_cells_after(wrong_square(right), "square", DISARM),
        "fakeerr": with_cells_after(wrong_square(right), "square", FAKE_ASSERTION_ERROR),
        "leaver": with_cells_after(right, "square", *LEAVE),
        "looker": with_cells_after(right, "square", *LOOK),
        "envthief": with_cells_after(right, "square", *ENV_THIEF),
    }
    for grade_id in ("test_square", "test_cube"):
        notebooks["edited"].cells[cell_index(right, grade_id)].source = "pass"
    del notebooks["deleted"].cells[test_square]
    doubled = copy_notebook(right).cells[test_square]
    doubled.id = "pasted-copy"  # as JupyterLab pastes it: a new cell id, the same metadata
    notebooks["doubled"].cells.insert(test_square + 1, doubled)
    for student, nb in notebooks.items():
        nbs.write(nb, folder / student / MINI / f"{MINI}.ipynb")
    (folder / "broken" / MINI).mkdir(parents=True)
    (folder / "broken" / MINI / f"{MINI}.ipynb").write_text(nbformat.writes(right)[:500])
    nbs.write(right, folder / "misnamed" / MINI / f"{MINI}_final_v2.ipynb")
    (folder / "nofile" / MINI).mkdir(parents=True)
    (folder / "nofile" / MINI / "answers.py").write_text("def square(x):\n    return x * x\n")
    return folder


# --- watching the sandboxed processes ---------------------------------------------------


class Watcher(threading.Thread):
    """Samples, while the class is graded, the sandbox uids the grader's kernels use, how
    many processes each uid has and the largest memory of one sandboxed process."""

    def __init__(self, earlier: set[int], interval: float = 0.2):
        super().__init__(daemon=True)
        self.earlier = earlier  # processes of this pytest process's before the run: not its
        self.interval = interval
        self.uids: set[int] = set()
        self.peak_processes: Counter = Counter()
        self.peak_rss = 0
        self.done = threading.Event()

    def run(self):
        me = psutil.Process()
        while not self.done.wait(self.interval):
            for child in me.children(recursive=True):
                if child.pid in self.earlier:
                    continue
                try:
                    uid = child.uids().real
                except psutil.Error:
                    continue
                if UID_BASE <= uid < UID_BASE + UID_COUNT:
                    self.uids.add(uid)
            counts = Counter()
            for process in psutil.process_iter(["uids", "memory_info"]):
                uids, memory = process.info["uids"], process.info["memory_info"]
                if uids and uids.real in self.uids:
                    counts[uids.real] += 1
                    self.peak_rss = max(self.peak_rss, memory.rss if memory else 0)
            for uid, count in counts.items():
                self.peak_processes[uid] = max(self.peak_processes[uid], count)


def processes_of(uids: set[int], before: float) -> list[str]:
    """Processes of those uids started before `before` (a later one is another run's) that
    no live grading worker started. Another grader of the test run (pytest-xdist runs other
    files beside this one) may be given a sandbox uid that this run has just released; its
    kernels have their worker above them, while this run's workers have all ended."""
    left = []
    for process in psutil.process_iter(["uids", "create_time", "pid", "cmdline"]):
        uids_ = process.info["uids"]
        if not (uids_ and uids_.real in uids and process.info["create_time"] <= before):
            continue
        if not any(GRADING_WORKER in command(parent) for parent in parents(process)):
            left.append(f"{process.info['pid']} (uid {uids_.real}): {process.info['cmdline']}")
    return left


GRADING_WORKER = "grader.execution"  # in the command line of every grading worker


def parents(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.parents()
    except psutil.Error:
        return []


def command(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


# --- the class, graded once -------------------------------------------------------------


@pytest.fixture(scope="module")
def graded():
    # Not under /tmp, which every kernel gets empty anyway: here only the sandbox's hiding of
    # the grading folder and of the course keeps them out of sight, as in a real course
    # (a world-readable folder, like grading/ in the repository).
    base = Path(tempfile.mkdtemp(prefix="grader-hostile-", dir="/var/tmp"))
    base.chmod(0o755)
    try:
        yield grade_the_class(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def grade_the_class(base: Path) -> dict:
    # What this process ran before grading (a session's PostgreSQL server, the kernel
    # templates of shared_workers.py, idle) is not the grader's to end, nor watched as its.
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    repo = build_class_course(base / "course")
    course = prepare(repo, base / "grading", [MINI])
    with Gradebook(gradebook.db_url(course), course.course_id) as gb:
        for student in ROSTER:
            gb.update_or_create_student(student)
    listener = socket.create_server(("127.0.0.1", 0))  # on the grader's own loopback
    listener.setblocking(False)
    port = listener.getsockname()[1]
    # The download of the class sits in the course folder: hidden from kernels with it.
    collected = collect(course, make_class(repo, course, repo.root / "class", port, base))
    lost = course.root / "submitted" / "lost" / MINI
    lost.mkdir(parents=True)
    shutil.copy(course.root / "submitted" / "ada" / MINI / "timestamp.txt", lost)

    watcher = Watcher(before)
    watcher.start()
    start = time.perf_counter()
    os.environ[SECRET_NAME] = SECRET  # a token of the grader's that no kernel may see
    try:
        outcomes = autograde(
            course, jobs=2, cell_timeout=CELL_TIMEOUT, notebook_timeout=60, progress=False
        )
    finally:
        del os.environ[SECRET_NAME]
    seconds = time.perf_counter() - start
    finished = time.time()
    watcher.done.set()
    watcher.join()
    left = processes_of(watcher.uids, finished)
    try:
        listener.accept()
        reached = True
    except BlockingIOError:
        reached = False
    listener.close()
    report, out = write_report(course)
    with open(out / "submissions.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    with open(out / "totals.csv") as f:
        totals = {r["student"]: r for r in csv.DictReader(f)}
    print(
        f"autograded {len(outcomes)} submissions in {seconds:.0f} s; sandbox uids "
        f"{sorted(watcher.uids)}, most processes of one {max(watcher.peak_processes.values())}"
        f", largest sandboxed process {watcher.peak_rss >> 20} MiB"
    )
    return {
        "course": course,
        "repo": repo,
        "base": base,
        "report": report,
        "rows": rows,
        "totals": totals,
        "outcomes": outcomes,
        "collected": collected,
        "watcher": watcher,
        "left": left,
        "before": before,
        "reached": reached,
        "seconds": seconds,
    }


def autograded_nb(course, student: str):
    return nbs.read(course.root / "autograded" / student / MINI / f"{MINI}.ipynb")


PRINTED = ("stream", "display_data", "execute_result")


def output_text(nb, kinds=(*PRINTED, "error")) -> str:
    """Everything the cells of `nb` printed, displayed or raised (outputs of those kinds)."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") not in kinds:
                continue
            parts.append(str(output.get("text", "")))
            parts += [str(v) for v in output.get("data", {}).values()]
            parts += [str(output.get("evalue", "")), *map(str, output.get("traceback", []))]
    return "\n".join(parts)


# --- scores and statuses ----------------------------------------------------------------


def test_normal_students_score_as_without_the_attackers(graded):
    report = graded["report"]
    for student, (square, cube, status, _) in NORMAL.items():
        got = (
            report.points[student, MINI, "test_square"],
            report.points[student, MINI, "test_cube"],
            *report.statuses[student, MINI],
        )
        assert got == (square, cube, status, ""), student
        assert graded["rows"][student]["sandboxed"] == "yes", student


def test_the_class_is_everyone_collected_or_on_the_roster(graded):
    assert graded["report"].students == sorted(EXPECTED)


@pytest.mark.parametrize("student", EXPECTED)
def test_student_ends_with_its_status_points_and_message(graded, student):
    """Points and status in the report, in totals.csv and in the status file; the message
    in submissions.csv names what the submission did."""
    square, cube, status, phrase = EXPECTED[student]
    report, row = graded["report"], graded["rows"][student]
    got = (
        report.points[student, MINI, "test_square"],
        report.points[student, MINI, "test_cube"],
        row["status"],
    )
    assert got == (square, cube, status), row["message"]
    assert phrase in row["message"]
    assert MESSAGE_DETAIL.get(student, "") in row["message"]
    assert row["sandboxed"] == ("" if status == "missing" else "yes")
    totals = graded["totals"][student]
    assert (float(totals[MINI]), float(totals["max"])) == (square + cube, 3)
    status_file = graded["course"].root / "status" / student / f"{MINI}.json"
    if status == "missing" and student != "lost":  # never collected, so never graded
        assert not status_file.exists()
    else:
        assert json.loads(status_file.read_text())["status"] == status


def test_gradebook_holds_only_the_normal_grades(graded):
    """No grade above its maximum, one row per graded cell and submission: nothing wrote the
    gradebook but the grader (dbwriter's UPDATE would have given everyone full marks)."""
    course = graded["course"]
    rows = gradebook.grades(course)
    graded_students = {s for s, (*_, status, _) in EXPECTED.items() if status != "missing"}
    assert Counter(r.student for r in rows) == {s: 2 for s in graded_students | {"lost"}}
    for row in rows:
        assert 0 <= row.points <= row.max_points, row
        assert row.max_points == {"test_square": 2, "test_cube": 1}[row.grade_id], row


def test_missing_work_is_reported_and_skipped_by_collect(graded):
    skipped = dict(graded["collected"].skipped)
    assert "unknown notebook" in skipped[f"misnamed/{MINI}/{MINI}_final_v2.ipynb"]
    assert "not a notebook" in skipped[f"nofile/{MINI}/answers.py"]
    collected = {student for student, _, _ in graded["collected"].collected}
    assert not collected & {"misnamed", "nofile", "lost"}


# --- per attack: what the kernel could do -----------------------------------------------


def test_the_kernel_stopped_at_the_broken_cells(graded):
    course = graded["course"]
    loop = autograded_nb(course, "loop")
    assert "CellTimeoutError" in output_text(loop)
    for student in ("exit", "segv"):
        text = output_text(autograded_nb(course, student))
        assert "NotRun" in text and "kernel died" in text, student


def test_memory_bomb_is_a_memory_error_within_the_limit(graded):
    text = output_text(autograded_nb(graded["course"], "memhog"))
    assert text.count("MemoryError") >= 2  # the 64 GiB at once, and the growing list
    limit = Limits().memory
    peak = graded["watcher"].peak_rss
    assert peak < limit + (512 << 20), f"a sandboxed process used {peak >> 20} MiB"


def test_fork_bomb_is_capped_and_reaped(graded):
    watcher = graded["watcher"]
    assert len(watcher.uids) == 2  # one sandbox uid per worker
    peak = max(watcher.peak_processes.values())
    assert 50 < peak <= Limits().processes, watcher.peak_processes
    assert graded["left"] == []  # nothing of any sandbox is left running
    assert not [
        p
        for p in psutil.Process().children(recursive=True)
        if p.pid not in graded["before"] and p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    ]


def test_output_flood_is_cut(graded):
    course = graded["course"]
    path = course.root / "autograded" / "spam" / MINI / f"{MINI}.ipynb"
    assert path.stat().st_size < OUTPUT_LIMIT + (2 << 20)
    assert "the grader dropped the rest of the output" in output_text(nbs.read(path))


def test_edited_tests_are_restored(graded):
    nb = autograded_nb(graded["course"], "edited")
    for grade_id in ("test_square", "test_cube"):
        assert nb.cells[cell_index(nb, grade_id)].source != "pass", grade_id
    assert "square(3) should be 9" in output_text(nb)


def test_edited_tests_are_noted(graded):
    """nbgrader restores edited locked cells silently; the grader should tell the
    instructor that the student edited them, as it does for deleted and doubled cells."""
    message = graded["rows"]["edited"]["message"]
    assert "edited" in message and "test_square" in message and "test_cube" in message


def test_doubled_test_counts_once(graded):
    row = graded["rows"]["doubled"]
    assert row["status"] == "graded", row["message"]
    nb = autograded_nb(graded["course"], "doubled")
    ids = [nbs.nbgrader_meta(c).get("grade_id") for c in nb.cells if nbs.nbgrader_meta(c)]
    assert ids.count("test_square") == 1  # the copy lost its metadata
    assert graded["report"].total("doubled") == 3


def test_gradebook_cannot_be_written_from_a_kernel(graded):
    text = output_text(autograded_nb(graded["course"], "dbwriter"))
    assert "WROTE" not in text
    for attempt in (
        "sqlite gradebook",
        "open gradebook",
        "sqlite gradebook via /proc",
        "open gradebook via /proc",
    ):
        assert f"BLOCKED {attempt}:" in text, attempt


def test_hidden_tests_and_other_work_cannot_be_read(graded):
    course = graded["course"]
    text = output_text(autograded_nb(course, "snoop"))
    targets = snoop_targets(course, graded["repo"])
    assert "READ" not in text, text[:2000]
    for label in targets:
        assert f"BLOCKED {label}:" in text, label
        if label != "via /proc":
            assert f"BLOCKED {label} folder:" in text, label
    assert "SEARCHED 0" in text, text
    for hidden in HIDDEN:
        assert hidden not in text, hidden
    # Nobody printed a hidden test (error tracebacks quote them: feedback cuts those).
    for student in EXPECTED:
        path = course.root / "autograded" / student / MINI / f"{MINI}.ipynb"
        if path.exists():
            printed = output_text(nbs.read(path), kinds=PRINTED)
            for hidden in HIDDEN:
                assert hidden not in printed, (student, hidden)


def test_network_is_unreachable(graded):
    text = output_text(autograded_nb(graded["course"], "netcat"))
    assert "CONNECTED" not in text
    assert "BLOCKED 1.1.1.1:80:" in text
    assert "BLOCKED 127.0.0.1:" in text
    assert not graded["reached"]  # the grader's own loopback listener saw nobody


def test_disarmed_checks_are_caught(graded):
    nb = autograded_nb(graded["course"], "disarm")
    assert "NotRun" in output_text(nb)  # the tests from there were not run


def test_replaced_assertion_error_still_fails(graded):
    """`assert` raises the real AssertionError whatever builtins.AssertionError is."""
    nb = autograded_nb(graded["course"], "fakeerr")
    [error] = [
        o for o in nb.cells[cell_index(nb, "test_square")].outputs if o.output_type == "error"
    ]
    assert (error.ename, error.evalue) == ("AssertionError", "square(3) should be 9")


# --- nothing of one submission reaches the next, nor the machine --------------------------


# How deep the machine is searched for what leaver left. It writes at the top of each place:
# a sandbox that let it out would leave its files there, or in a folder that backed the
# kernel's private ones, a level or two down. Deeper lie other programs' caches (uv's
# unpacked wheels under ~/.cache: a hundred thousand files and more, seconds of CPU to walk).
SEARCH_DEPTH = 4


def named(prefix: str, places) -> list[str]:
    """Files and folders whose name starts with `prefix`, up to SEARCH_DEPTH levels below
    each place. os.walk, not glob: another test's temporary folder that vanishes mid-walk is
    skipped (os.walk ignores the error), where Path.glob raises FileNotFoundError."""
    found = []
    for place in map(str, places):
        top = place.rstrip("/").count("/")
        for folder, folders, files in os.walk(place):
            found += [os.path.join(folder, n) for n in folders + files if n.startswith(prefix)]
            if folder.rstrip("/").count("/") - top >= SEARCH_DEPTH - 1:
                folders.clear()  # its files are listed; what is below them is not
    return found


def test_leftovers_die_with_their_sandbox(graded):
    """leaver wrote everywhere it could, made System V IPC objects, pinned memory, started
    a detached process; none of it outlives its kernel: looker (graded after it or beside
    it) finds nothing, and neither does the machine."""
    leaver = output_text(autograded_nb(graded["course"], "leaver"))
    for place in ("/tmp", "/dev/shm", "."):
        assert f"LEFT file in {place}" in leaver, leaver[:3000]  # its own, private
    for place in ("/var/tmp", "/run", "/var/lock", "/home"):
        assert f"BLOCKED file in {place}" in leaver, place  # not there at all
    assert "LEFT daemon" in leaver
    assert "FULL /ipc" in leaver, leaver[:3000]
    assert "FOUND []" in output_text(autograded_nb(graded["course"], "looker"))
    on_machine = named(MARK, ("/tmp", "/var/tmp", "/dev/shm", "/run", Path.home()))
    assert on_machine == []
    ipcs = subprocess.run(["ipcs", "-a"], capture_output=True, text=True).stdout
    assert f"{IPC_KEY:#010x}" not in ipcs, ipcs
    daemons = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] == ["sleep", str(DAEMON_SECONDS)]
    ]
    assert daemons == []


def test_kernels_get_no_environment_or_descriptor_of_the_grader(graded):
    course = graded["course"]
    text = output_text(autograded_nb(course, "envthief"))
    assert SECRET not in text and SECRET_NAME not in text
    # the kernel's os.environ
    names = set(ast.literal_eval(text.split("ENV ", 1)[1].splitlines()[0]))
    # The sandbox's allowlist, PWD (bwrap's --chdir), and what ipykernel sets for itself.
    allowed = {
        *ENVIRONMENT,
        "PATH",
        "HOME",
        "USER",
        "PWD",
        "TERM",
        "CLICOLOR",
        "CLICOLOR_FORCE",
        "FORCE_COLOR",
        "PAGER",
        "GIT_PAGER",
        "PYDEVD_USE_FRAME_EVAL",
    }
    assert names <= allowed, names - allowed
    assert "FD 0 /dev/null" in text, text[:3000]
    links = [line.split(" ", 2)[2] for line in text.splitlines() if line.startswith("FD ")]
    # Pipes, sockets and event fds of the kernel's own, and files of its private folders.
    files = [
        link
        for link in links
        if link.startswith("/")
        and not link.startswith(("/dev/null", "/tmp/", "/submission/", "/dev/shm/"))
    ]
    assert files == [], links
    logs = "".join(p.read_text(errors="replace") for p in (course.root / "logs").glob("*"))
    assert "ENVTHIEF" not in logs
