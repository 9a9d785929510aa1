"""Kernels forked from a grading worker's template (grader.execution.template_kernel): the same
sandbox as a kernel of its own, nothing of one submission reaches the next, the same grades.

Most tests feed one `python -m grader.execution.worker` several notebooks in a row (one worker, one
template), and read what the kernels printed. A kernel forked from the template shows the
template's command in /proc/self/cmdline; each test checks that its kernels were forked.
"""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import nbformat
import psutil
import pytest
from conftest import DEMO_CELL_TIMEOUT, MINI

from grader.config import REPO_ROOT
from grader.execution import template_kernel as template_module
from grader.execution.execute import QUIET_ENVIRONMENT
from grader.execution.pool import worker_command
from grader.execution.sandbox import Limits, missing_pieces
from grader.execution.template_kernel import SWITCH, TemplateSandbox
from grader.pipeline.autograde import NO_FIGURES, autograde
from grader.pipeline.collect import collect
from grader.workdir import folder, gradebook
from grader.workdir.status import read_status, submissions

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

FORKED = "grader-template"  # in the template's command line, so in its kernels'
WHO = """\
import os
print("FORKED" if "grader-template" in open("/proc/self/cmdline").read() else "OWN KERNEL")
"""


def notebook(path: Path, code: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def worker_env(**extra: str) -> dict[str, str]:
    """What autograde gives its workers (one thread per kernel, Agg), the template on."""
    return {
        **os.environ,
        **QUIET_ENVIRONMENT,
        **NO_FIGURES,
        "OMP_NUM_THREADS": "1",
        SWITCH: "1",
        **extra,
    }


def run_worker(tmp_path: Path, codes: list[str], env=None, between=None, preload=None):
    """Each code as a notebook of one cell, graded in turn by one worker: (what each
    printed, the worker's log). `between(worker)` runs after each job. `preload`: the
    libraries its template imports (None: all it may, torch and matplotlib too, 2 to 3 s of
    CPU at each template's start, as for a job that does not say)."""
    worker = subprocess.Popen(
        worker_command(REPO_ROOT / "nbgrader_config.py", sandbox=True, cpus=1.0),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or worker_env(),
    )
    printed = []
    try:
        for number, code in enumerate(codes):
            path = notebook(tmp_path / f"job-{number}" / "job.ipynb", WHO + code)
            job = {"notebook": str(path), "cell_timeout": 60, "notebook_timeout": 120}
            if preload is not None:
                job["preload"] = preload
            worker.stdin.write(json.dumps(job) + "\n")
            worker.stdin.flush()
            answer = json.loads(worker.stdout.readline() or "{}")
            assert answer.get("status") == "graded", (
                answer,
                worker.stderr.read()[-3000:] if worker.poll() is not None else "",
            )
            assert 0 < answer["seconds"] < 120, answer  # how long it took, for autograde's order
            outputs = nbformat.read(str(path), 4).cells[0].outputs
            errors = [o for o in outputs if o.output_type == "error"]
            assert not errors, errors
            printed.append("".join(o.get("text", "") for o in outputs))
            if between is not None:
                between(worker)
        worker.stdin.close()
        log = worker.stderr.read()
        assert worker.wait(timeout=120) == 0, log[-3000:]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    return printed, log


def value(text: str, key: str):
    """The Python value printed on the line `KEY value`."""
    line = next(line for line in text.splitlines() if line.startswith(key + " "))
    return json.loads(line[len(key) + 1 :])


# --- one submission, then the next --------------------------------------------------------

PLACES = ["/tmp", "/submission", "/dev/shm", "~/.ipython/profile_default/startup"]
SYSCALLS = {"x86_64": (248, 250), "aarch64": (217, 219)}  # add_key, keyctl
KEYS = """\
import ctypes, platform
libc = ctypes.CDLL(None, use_errno=True)
ADD_KEY, KEYCTL = {syscalls}.get(platform.machine(), (None, None))
USER_KEYRING, SEARCH = -4, 10
"""
LEAVE = (
    KEYS.format(syscalls=SYSCALLS)
    + f"""\
import os, socket, subprocess
for place in {PLACES!r}:
    folder = os.path.expanduser(place)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "left_by_a.py"), "w") as f:
        f.write("import builtins\\nbuiltins.LEFT_BY_A = True\\n")  # run at start if a startup file
    print("LEFT", place)
unix = socket.socket(socket.AF_UNIX)
unix.bind("/tmp/left-by-a.sock")
unix.listen()
abstract = socket.socket(socket.AF_UNIX)
abstract.bind("\\0left-by-a")
abstract.listen()
print("LEFT sockets")
subprocess.Popen(["sleep", "2718"], start_new_session=True, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL)
print("LEFT sleeper")
if ADD_KEY is not None:
    key = libc.syscall(ADD_KEY, b"user", b"left-by-a", b"secret", 6, USER_KEYRING)
    print("KEY", key)
print("LEFT shm", libc.shmget(0x6C656674, 4096, 0o1000 | 0o666))
"""
)
LOOK = (
    KEYS.format(syscalls=SYSCALLS)
    + f"""\
import builtins, os, socket, subprocess
found = [place for place in {PLACES!r}
         if os.path.exists(os.path.join(os.path.expanduser(place), "left_by_a.py"))]
if getattr(builtins, "LEFT_BY_A", False):
    found.append("startup file ran")
if os.path.exists("/tmp/left-by-a.sock"):
    found.append("socket file")
try:
    socket.socket(socket.AF_UNIX).connect("\\0left-by-a")
    found.append("abstract socket")
except OSError:
    pass
if "sleep 2718" in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout:
    found.append("sleeper")
if KEYCTL is not None and libc.syscall(KEYCTL, SEARCH, USER_KEYRING, b"user", b"left-by-a", 0) >= 0:
    found.append("key")
if libc.shmget(0x6C656674, 0, 0) >= 0:
    found.append("shm")
print("FOUND", found)
"""
)


WRITE_RUNTIME = """
import sys, course
for folder in (sys.prefix, sys.base_prefix, os.path.dirname(course.__file__)):
    try:
        with open(os.path.join(folder, "planted.py"), "w") as f:
            f.write("x = 1")
        print("WROTE", folder)
    except OSError as error:
        print("REFUSED", folder, error.errno)
"""


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    """One worker grades the notebooks of the five tests below in turn, as it grades a class,
    one template forking every kernel (a worker and its template cost about 7 CPU-s to start:
    once here instead of five times); LEAVE's kernel is followed by LOOK's, the next of the
    worker. (What each printed, by name; the worker's log; its threads and file
    descriptors after each notebook.)"""
    codes = {
        "write": WRITE_RUNTIME,
        "privileges": PRIVILEGES,
        "random 1": RANDOM,
        "random 2": RANDOM,
        "leave": LEAVE,
        "look": LOOK,
        "seen": SEEN,  # with one thread per kernel, as graded
    }
    held = []

    def count(worker):
        process = psutil.Process(worker.pid)
        held.append((process.num_threads(), process.num_fds()))

    printed, log = run_worker(
        tmp_path_factory.mktemp("one-worker"), list(codes.values()), between=count
    )
    return dict(zip(codes, printed, strict=True)), log, held


def test_a_worker_keeps_nothing_of_a_kernel_that_ended(one_worker):
    """Its threads and file descriptors (a kernel client's heartbeat pinging the dead
    kernel, the kernel manager's zmq context) are as many after the last submission as after
    the first."""
    held = one_worker[2]
    assert set(held) == {held[0]}, f"(threads, descriptors) after each notebook: {held}"


def test_a_forked_kernel_cannot_write_into_python_the_venv_or_course(one_worker):
    """Python, the venv and `course` are bound read-only into every forked kernel, also
    where they lie under /tmp (a clone in a temporary folder), which the kernel gets fresh:
    a planted module would run in every later kernel of the worker and in the grader."""
    printed = one_worker[0]["write"]
    assert printed.startswith("FORKED"), printed
    assert "WROTE" not in printed and printed.count("REFUSED") == 3, printed


def test_nothing_of_a_submission_reaches_the_next_of_the_same_worker(one_worker):
    printed, log, _ = one_worker
    a, b = printed["leave"], printed["look"]
    assert a.startswith("FORKED") and b.startswith("FORKED"), log
    assert "template" not in log, log  # one template forked both
    for place in PLACES:
        assert f"LEFT {place}" in a, a
    assert "LEFT sockets" in a and "LEFT sleeper" in a, a
    if platform.machine() in SYSCALLS:
        assert value(a, "KEY") > 0, a  # a key in the user keyring: per user namespace
    assert value(b, "FOUND") == [], b
    sleepers = [
        p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "2718"]
    ]
    assert sleepers == []


PRIVILEGES = """\
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
with open("/proc/self/status") as f:
    status = dict(line.split(":", 1) for line in f if ":" in line)
status = {key: value.strip() for key, value in status.items()}
print("STATUS", json.dumps({k: status[k] for k in
                            ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")}))
print("USERNS", json.dumps([libc.unshare(0x10000000), ctypes.get_errno()]))
print("MOUNT", json.dumps([libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None), ctypes.get_errno()]))
print("MOUNTNS", json.dumps([libc.unshare(0x20000), ctypes.get_errno()]))
try:
    os.setuid(0)
    print("ROOT true")
except OSError:
    print("ROOT false")
try:
    open("/proc/1/environ").read()
    print("INIT readable")
except OSError:
    print("INIT blocked")
print("PIDS", json.dumps(sorted(int(p) for p in os.listdir("/proc") if p.isdigit())))
"""


def test_a_forked_kernel_has_no_privilege(one_worker):
    text = one_worker[0]["privileges"]
    assert text.startswith("FORKED"), text
    assert value(text, "STATUS") == {
        "CapInh": "0000000000000000",
        "CapPrm": "0000000000000000",
        "CapEff": "0000000000000000",
        "CapBnd": "0000000000000000",
        "CapAmb": "0000000000000000",
        "NoNewPrivs": "1",
    }
    assert value(text, "USERNS")[0] == -1, "it could make a user namespace"
    assert value(text, "MOUNT")[0] == -1 and value(text, "MOUNTNS")[0] == -1, "it could mount"
    assert "ROOT false" in text and "INIT blocked" in text
    assert value(text, "PIDS") == [1, 2]  # its init, itself: nothing of the template's


RANDOM = """\
import json, random
import numpy as np
import torch
print("DRAWN", json.dumps([np.random.get_state()[1][:4].tolist(), np.random.rand(),
                           random.random(), torch.initial_seed(), torch.rand(1).item()]))
"""


def test_forked_kernels_draw_different_random_numbers(one_worker):
    printed, log, _ = one_worker
    first, second = printed["random 1"], printed["random 2"]
    assert first.startswith("FORKED") and second.startswith("FORKED")
    assert "template" not in log, log  # one template forked both
    one, two = value(first, "DRAWN"), value(second, "DRAWN")
    for what, x, y in zip(
        ["numpy state", "numpy", "random", "torch seed", "torch"], one, two, strict=True
    ):
        assert x != y, f"two kernels of one template drew the same {what}"


# --- the same kernel as one of its own ----------------------------------------------------

SEEN = """\
import json, os, resource, signal, socket, sys, threading, warnings
import matplotlib
import matplotlib.pyplot
import numpy
import threadpoolctl
import torch


def tree(top):
    paths = [os.path.join(d, n) for d, dirs, files in os.walk(top) for n in dirs + files]
    return sorted((os.path.relpath(p, top), oct(os.lstat(p).st_mode)) for p in paths)


ip = get_ipython()
seen = {
    "argv": sys.argv, "path": sys.path, "flags": repr(sys.flags), "executable": sys.executable,
    "environ": dict(os.environ), "cwd": [os.getcwd(), tree(".")], "home": tree("/tmp"),
    "ids": [os.getresuid(), os.getresgid(), os.getgroups()], "hostname": socket.gethostname(),
    "root": sorted(os.listdir("/")), "dev": sorted(os.listdir("/dev")),
    "ipc": sorted(os.listdir("/ipc")), "net": open("/proc/net/dev").read().splitlines()[2:],
    "mounts": sorted({line.split()[4] for line in open("/proc/self/mountinfo")
                      if not line.split()[4].startswith("/proc/")}),
    "rlimits": {n: resource.getrlimit(getattr(resource, n))
                for n in dir(resource) if n.startswith("RLIMIT_")},
    "signals": {s.name: repr(signal.getsignal(s)) for s in signal.Signals
                if s not in (signal.SIGKILL, signal.SIGSTOP)},
    "warnings": [repr(f) for f in warnings.filters],
    "showwarning": warnings.showwarning.__module__,
    "threads": sorted(t.name for t in threading.enumerate()),
    "pools": sorted((p["internal_api"], p["num_threads"]) for p in threadpoolctl.threadpool_info()),
    "torch": [torch.get_num_threads(), torch.get_num_interop_threads()],
    "matplotlib": [matplotlib.get_backend(), matplotlib.get_configdir(), matplotlib.get_cachedir()],
    "extensions": sorted(ip.extension_manager.loaded),
    "events": {k: len(v) for k, v in ip.events.callbacks.items()},
    "umask": os.umask(0o022),
}
try:
    json.loads("{")
except ValueError as error:
    seen["traceback"] = ip.InteractiveTB.structured_traceback(
        type(error), error, error.__traceback__
    )
    store = getattr(ip, "_format_exception_for_storage", None)
    print("STORED", json.dumps(store and store(error)))
print("SEEN", json.dumps(seen, default=repr))
"""


@pytest.mark.parametrize("threads", ["1", "2"])
def test_a_forked_kernel_sees_what_a_kernel_of_its_own_sees(tmp_path, threads, one_worker):
    """Environment, interpreter, files, limits, signals, warnings filters, thread pools (one
    thread per kernel as graded: one_worker's, and two: OpenBLAS starts them in the kernel),
    IPython."""
    env = {"OMP_NUM_THREADS": threads}
    if threads == "1":  # one_worker's environment
        forked = one_worker[0]["seen"]
    else:
        [forked], _ = run_worker(tmp_path / "forked", [SEEN], worker_env(**env))
    [own], _ = run_worker(tmp_path / "own", [SEEN], worker_env(**env, **{SWITCH: "0"}))
    assert forked.startswith("FORKED") and own.startswith("OWN KERNEL")
    # Not the same, on purpose: the forked kernel keeps no second copy of a traceback in
    # its history (template_inside's _error_for_history), one of its own does.
    stored = value(forked, "STORED")
    assert stored == {"ename": "JSONDecodeError", "evalue": stored["evalue"], "traceback": []}
    assert "Expecting property name" in stored["evalue"]
    assert value(own, "STORED")["traceback"], own
    forked, own = value(forked, "SEEN"), value(own, "SEEN")
    assert own["traceback"], own  # a traceback, shown the same in both
    assert forked.keys() == own.keys()
    differ = {key: (own[key], forked[key]) for key in own if own[key] != forked[key]}
    assert differ == {}, json.dumps(differ)[:3000]


# --- when the template fails --------------------------------------------------------------


def test_a_dead_template_is_replaced(tmp_path):
    def kill_template(worker):
        # The template's Python and its forks (bwrap's command line names it too).
        forked = []
        for process in psutil.Process(worker.pid).children(recursive=True):
            try:
                command = process.cmdline()
            except psutil.Error:
                continue
            if command[:2] == [sys.executable, "-c"] and FORKED in command[2]:
                forked.append(process)
        assert forked, "the worker has no template"
        template = min(forked, key=lambda p: len(p.parents()))  # below it: a kernel's
        template.kill()
        template.wait(10)

    printed, log = run_worker(
        tmp_path, ["print('one')", "print('two')"], between=kill_template, preload=[]
    )
    assert [text.splitlines()[0] for text in printed] == ["FORKED", "FORKED"], log
    assert "the kernel template failed" in log and "starting a new one" in log, log


def test_a_template_that_cannot_start_leaves_kernels_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setattr(template_module, "LIBRARIES", ("grader_no_such_module",))
    log = io.StringIO()
    sandbox = TemplateSandbox(Limits(), log=log)
    try:
        _, km = sandbox.start(tmp_path, "python3")
        assert not isinstance(km, template_module.TemplateKernelManager)
        _, km = sandbox.start(tmp_path, "python3")  # given up: no new attempt
        assert not isinstance(km, template_module.TemplateKernelManager)
    finally:
        sandbox.close()
    lines = log.getvalue().splitlines()
    assert sum("not from a template" in line for line in lines) == 1, lines
    assert "grader_no_such_module" in lines[-1], lines
    assert sandbox.template is None


# --- grades --------------------------------------------------------------------------------


def grade_with_template(course, switch: str, **options) -> list:
    """autograde with the template kernel switched on ("1") or off ("0")."""
    old = os.environ.get(SWITCH)
    os.environ[SWITCH] = switch
    try:
        return autograde(course, jobs=2, progress=False, **options)
    finally:
        os.environ.pop(SWITCH) if old is None else os.environ.__setitem__(SWITCH, old)


def results(course, students=None):
    """(statuses, points, logs) of a grading folder, of `students` only if given."""
    statuses = {
        (student, assignment): read_status(course, student, assignment).status
        for student, assignment in submissions(course, list(course.assignments))
        if students is None or student in students
    }
    points = {
        (g.student, g.assignment, g.grade_id): g.points
        for g in gradebook.grades(course)
        if students is None or g.student in students
    }
    logs = "".join(p.read_text() for p in (course.root / "logs").glob("*.log"))
    return statuses, points, logs


@pytest.fixture(scope="module")
def classes(graded_demo, tmp_path_factory):
    """The demo class graded with kernels forked from the template (conftest.py's
    graded_demo, as `python -m grader demo` grades it) and again, here, with kernels of their
    own: every kind of submission (full, partial and no marks, a loop stopped at the
    timeout, a kernel that dies, a syntax error, a notebook that does not parse, a warning
    on stderr, two attempts).

    The tiny course's kernels import numpy alone; what a template that has imported torch
    and matplotlib gives a kernel is test_a_forked_kernel_sees_what_a_kernel_of_its_own_sees's,
    and the real notebooks score full marks with the template (test_roundtrip.py)."""
    demo = graded_demo
    course = folder.prepare(demo.repo, tmp_path_factory.mktemp("own-kernels") / "grading", [MINI])
    collect(course, demo.course.root / "class.zip")
    grade_with_template(course, "0", cell_timeout=DEMO_CELL_TIMEOUT, unsafe=bool(missing_pieces()))
    return {"1": results(demo.course), "0": results(course)}


def test_grades_are_the_same_with_and_without_the_template(classes):
    statuses, points, logs = classes["1"]
    assert "not from a template" not in logs, logs[-2000:]
    assert set(statuses.values()) >= {"graded", "timeout", "crashed"}, statuses
    assert {s for s, a in statuses} >= {"ada", "blank", "cat", "ivy", "jon", "kim", "leo"}
    assert len(set(points.values())) > 2, points  # partial credit, not only all or nothing
    assert (statuses, points) == classes["0"][:2]


def test_a_killed_worker_leaves_no_template_behind(tmp_path):
    """The template must not outlive its worker, however the worker ends (SIGKILL here, not
    its process group: bwrap's and setpriv's parent-death signals take the template down)."""
    left = []

    def kill_worker(worker):
        left.extend(psutil.Process(worker.pid).children(recursive=True))
        worker.kill()
        worker.wait()

    with pytest.raises(AssertionError):  # the worker did not end well
        run_worker(tmp_path, ["print('one')"], between=kill_worker, preload=[])
    assert left, "the worker had no process"
    gone, alive = psutil.wait_procs(left, timeout=10)
    assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []
