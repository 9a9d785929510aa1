"""The sandbox around grading kernels: what a kernel sees, and grading where there is none.

The hostile-submission suite (test_hostile.py) attacks it with whole submissions; these
tests look at the pieces: the machine check, what a kernel sees, the clean-up, --unsafe.
Run as root, the last test runs this module again as an unprivileged user, but for the tests
of SAME_FOR_EVERY_USER and those named `as_root`: an instructor on a laptop grades sandboxed.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from conftest import MINI, build_class_course
from unprivileged import as_unprivileged, unprivileged_folder

from grader.config import REPO_ROOT
from grader.errors import GraderError
from grader.execution import sandbox as sandbox_module
from grader.execution.pool import worker_command
from grader.execution.sandbox import INSIDE_UID, Sandbox, SandboxError, missing_pieces
from grader.pipeline import autograde as autograde_module
from grader.pipeline.autograde import autograde
from grader.pipeline.report import table, write_report
from grader.workdir.folder import prepare, submit

pytestmark = pytest.mark.sandbox

ROOT = os.geteuid() == 0
# What a kernel's / may hold: the system, its private folders, and the folders on the
# way to Python, the virtual environment and `course`.
SYSTEM = {"bin", "dev", "etc", "ipc", "lib", "lib64", "proc", "sbin", "submission", "tmp", "usr"}

PROBE = r"""
import os, socket
print("uid", os.getuid())
print("top", sorted(os.listdir("/")))
print("repo", sorted(os.listdir(REPO)))
print("cwd", sorted(os.listdir(".")))
print("etc", sorted(os.listdir("/etc")))
print("passwd", open("/etc/passwd").read().split(":")[0])
for path in SECRETS:
    try:
        with open(path) as f:
            print("READ", path, f.read()[:100])
    except OSError as error:
        print("BLOCKED", path, error.strerror)
try:
    socket.create_connection(("1.1.1.1", 80), timeout=3)
    print("network open")
except OSError as error:
    print("network closed", error.errno)
for path in [os.path.join(REPO, "course", "planted.py"), "/usr/planted", "/planted"]:
    try:
        open(path, "w")
        print("WROTE", path)
    except OSError:
        print("read only", path)
for path in ["/submission/mine", "/tmp/mine", "/dev/shm/mine"]:
    open(path, "w").write("x")
    print("wrote", path)
"""


def probe_kernel(tmp_path: Path, secrets: list[str]) -> str:
    """Run PROBE in a sandboxed kernel through a grading worker; what it printed."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "data.txt").write_text("the assignment's file")
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(f"REPO = {str(REPO_ROOT)!r}\nSECRETS = {secrets!r}\n" + PROBE)
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook = work / "probe.ipynb"
    nbformat.write(nb, str(notebook))
    # The probe imports no library: a template without torch's 2 to 3 s of CPU.
    job = {"notebook": str(notebook), "cell_timeout": 60, "notebook_timeout": 120, "preload": []}
    answer = subprocess.run(
        worker_command(REPO_ROOT / "nbgrader_config.py", sandbox=True, cpus=1.0),
        input=json.dumps(job) + "\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert answer.returncode == 0, answer.stderr[-2000:]
    assert json.loads(answer.stdout)["status"] == "graded", answer.stdout
    outputs = nbformat.read(str(notebook), 4).cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    return "".join(o.get("text", "") for o in outputs)


def test_this_machine_can_sandbox():
    assert missing_pieces() == [], "the set-up installs bubblewrap (README: prerequisites)"


@pytest.mark.slow
def test_a_sandboxed_kernel_sees_only_the_allowlist(tmp_path):
    # A classmate's notebook in a world-readable folder, the course's source, the
    # grader's home: none of it is on the allowlist.
    download = tmp_path / "downloads"
    download.mkdir()
    (download / "ada_01_perceptron.ipynb").write_text("ada's answers")
    for folder in (tmp_path, download):
        folder.chmod(0o755)
    (download / "ada_01_perceptron.ipynb").chmod(0o644)
    secrets = [
        str(download / "ada_01_perceptron.ipynb"),
        str(REPO_ROOT / "source"),
        str(REPO_ROOT / "nbgrader_config.py"),
        str(Path.home()),
        "/var/tmp",
        "/run",
        "/etc/shadow",
        "/etc/hostname",
        "/etc/ssl",
        "/proc/1/root/etc/shadow",
    ]
    text = probe_kernel(tmp_path, secrets)
    assert f"uid {INSIDE_UID}" in text
    top = set(ast.literal_eval(text.split("top ", 1)[1].splitlines()[0]))
    ways = {Path(p).parts[1] for p in sandbox_module._runtime_paths()}
    assert top <= SYSTEM | ways, top - SYSTEM - ways
    repo = set(ast.literal_eval(text.split("repo ", 1)[1].splitlines()[0]))
    assert repo <= {".venv", "course"} and "course" in repo, repo
    assert "cwd ['data.txt']" in text
    assert "passwd student" in text
    assert "READ" not in text, text
    for path in secrets:
        assert f"BLOCKED {path}" in text, path
    assert "network closed" in text
    assert "WROTE" not in text, text
    assert not (REPO_ROOT / "course" / "planted.py").exists()
    for path in ["/submission/mine", "/tmp/mine", "/dev/shm/mine"]:
        assert f"wrote {path}" in text  # its own, private folders
    assert not Path("/submission").exists()


def test_python_and_course_under_tmp_stay_visible(monkeypatch):
    """A clone in a temporary folder: its venv and `course` live under /tmp, which the
    kernel gets as a private tmpfs; they must still be there, read only."""
    folder = Path(tempfile.mkdtemp(prefix="grader-clone-", dir="/tmp"))
    try:
        (folder / "marker").write_text("still here")
        folder.chmod(0o755)
        (folder / "marker").chmod(0o644)
        real = sandbox_module._runtime_paths()
        monkeypatch.setattr(sandbox_module, "_runtime_paths", lambda: [*real, folder])
        sandbox = Sandbox()
        sandbox.prepare(None)
        result = subprocess.run(
            sandbox.command(["/usr/bin/cat", str(folder / "marker")]),
            pass_fds=sandbox.fds,
            capture_output=True,
            text=True,
        )
        sandbox.close()
        assert (result.returncode, result.stdout) == (0, "still here"), result.stderr
    finally:
        shutil.rmtree(folder)


def test_clean_fails_loudly_when_a_process_survives(monkeypatch):
    sandbox = Sandbox()
    sandbox.prepare(None)
    sleeper = subprocess.Popen(["sleep", "60"])
    sandbox.process = psutil.Process(sleeper.pid)
    monkeypatch.setattr(sandbox_module, "KILL_WAIT_S", 0.5)
    monkeypatch.setattr(psutil.Process, "kill", lambda self: None)  # a process that won't die
    with pytest.raises(SandboxError, match="survived") as error:
        sandbox.clean()
    assert str(sleeper.pid) in str(error.value)
    monkeypatch.undo()
    sleeper.kill()
    sleeper.wait()
    sandbox.process = None
    sandbox.close()


@pytest.mark.slow
def test_a_kernel_and_its_folders_are_gone_after_clean():
    sandbox = Sandbox()
    run_dir = sandbox.prepare(None)
    process = subprocess.Popen(sandbox.command(["/usr/bin/sleep", "60"]), pass_fds=sandbox.fds)
    sandbox.process = psutil.Process(process.pid)
    time.sleep(0.5)
    tree = [sandbox.process, *sandbox.process.children(recursive=True)]
    assert any(p.name() == "sleep" for p in tree)
    groups = list(sandbox.cgroups)
    for group in groups:  # every process of the sandbox is in its cgroups
        pids = {int(p) for p in (group / "cgroup.procs").read_text().split()}
        assert {p.pid for p in tree[1:]} <= pids, group
    sandbox.clean()
    process.wait()
    assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not run_dir.exists()
    assert not [g for g in groups if g.exists()]
    sandbox.close()


@pytest.mark.slow
@pytest.mark.skipif(not ROOT, reason="root only: an unprivileged grader makes no cgroups")
def test_as_root_kernels_get_cgroups_where_the_machine_allows():
    """v1 or v2; on a machine whose cgroup file system is read only there are none, and
    the rlimits hold alone (the README says so)."""
    groups = sandbox_module.make_cgroups(sandbox_module.Limits(cpus=1.5))
    writable = os.access("/sys/fs/cgroup", os.W_OK) or any(
        os.access(p, os.W_OK) for p in Path("/sys/fs/cgroup").glob("*/")
    )
    assert groups or not writable, "cgroups are writable here but none was made"
    for group in groups:
        if group.parent.name.startswith("cpu") or (group / "cpu.max").exists():
            quota = (
                (group / "cpu.max").read_text().split()[0]
                if (group / "cpu.max").exists()
                else (group / "cpu.cfs_quota_us").read_text().strip()
            )
            assert quota == "150000", "the CPU quota is the explicit parameter"
        group.rmdir()


@pytest.mark.slow
@pytest.mark.skipif(not ROOT, reason="root only: an unprivileged grader claims no uid")
def test_as_root_concurrent_graders_never_share_a_uid(tmp_path):
    """Claims are machine-wide: another grader with another TMPDIR gets another uid."""
    code = (
        "import time; from grader.execution.sandbox import claim_uid; print(claim_uid()[0], "
        "flush=True); time.sleep(30)"
    )
    first = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    try:
        theirs = int(first.stdout.readline())
        mine, lock = sandbox_module.claim_uid()
        os.close(lock)
        assert mine != theirs
    finally:
        first.kill()
        first.wait()


@pytest.mark.skipif(not ROOT, reason="root only: the uid locks are root's")
def test_as_root_the_lock_folder_must_be_roots_and_no_link(tmp_path, monkeypatch):
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "locks"
    link.symlink_to(target)
    with pytest.raises(SandboxError, match="only root"):
        sandbox_module._private_folder(link)
    open_folder = tmp_path / "open"
    open_folder.mkdir(mode=0o777)
    open_folder.chmod(0o777)
    with pytest.raises(SandboxError, match="only root"):
        sandbox_module._private_folder(open_folder)


@pytest.fixture
def one_submission(class_course, tmp_path):
    course = prepare(class_course, tmp_path / "grading")
    release = class_course.root / "release" / MINI / f"{MINI}.ipynb"
    submit(course, "ada", MINI, release)
    return course


@pytest.mark.slow
def test_a_class_is_graded_sandboxed(tmp_path, workers):
    """Right, blank: the exact points, sandboxed."""
    repo = build_class_course(tmp_path / "course")
    course = prepare(repo, tmp_path / "grading")
    from grader.pipeline.synthetic import as_handed_in

    right = as_handed_in(nbformat.read(str(repo.root / "source" / MINI / f"{MINI}.ipynb"), 4))
    nbformat.write(right, str(tmp_path / "right.ipynb"))
    submit(course, "ada", MINI, tmp_path / "right.ipynb")
    submit(course, "blank", MINI, repo.root / "release" / MINI / f"{MINI}.ipynb")
    outcomes = autograde(course, cell_timeout=30, progress=False, executor=workers(course))
    assert {(o.student, o.status, o.sandboxed) for o in outcomes} == {
        ("ada", "graded", True),
        ("blank", "graded", True),
    }
    report, _ = write_report(course)
    assert report.total("ada") == 3 and report.total("blank") == 0


def test_autograde_refuses_without_bubblewrap_and_writes_nothing(one_submission, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    lack = missing_pieces()
    assert lack and "bubblewrap" in lack[0] and "apt-get install bubblewrap" in lack[0]
    monkeypatch.undo()
    monkeypatch.setattr(autograde_module, "missing_pieces", lambda: lack)
    with pytest.raises(GraderError) as error:
        autograde(one_submission, progress=False)
    assert "bubblewrap" in str(error.value) and "--unsafe" in str(error.value)
    assert not (one_submission.root / "status").exists(), "a refused run must write no status"


@pytest.mark.slow
def test_unsafe_grades_are_graded_and_marked(one_submission, monkeypatch):
    monkeypatch.setattr(autograde_module, "missing_pieces", lambda: ["bubblewrap"])
    [outcome] = autograde(one_submission, unsafe=True, cell_timeout=30, progress=False)
    assert outcome.status == "graded" and not outcome.sandboxed
    report, out = write_report(one_submission)
    with open(out / "submissions.csv") as f:
        [row] = list(csv.DictReader(f))
    assert row["sandboxed"] == "no (--unsafe)", "submissions.csv must mark unsafe grades"
    assert "(unsafe)" in table(report), "the table must mark unsafe grades"


# The tests that would prove nothing new as another user: they replace what they check around
# (the kill, the machine check) and start no kernel, or run no sandbox (--unsafe). Those named
# `as_root` need root. Every other test of this module, a new one too, runs again unprivileged.
SAME_FOR_EVERY_USER = (
    "test_clean_fails_loudly_when_a_process_survives",
    "test_autograde_refuses_without_bubblewrap_and_writes_nothing",
    "test_unsafe_grades_are_graded_and_marked",
)


def unprivileged_tests() -> list[str]:
    return [
        name
        for name in globals()
        if name.startswith("test_") and "as_root" not in name and name not in SAME_FOR_EVERY_USER
    ]


@pytest.mark.slow
@pytest.mark.skipif(not ROOT, reason="this run is the unprivileged one")
def test_as_root_the_sandbox_works_for_an_unprivileged_user():
    """This module's tests as `nobody` (unprivileged_tests()): the machine check, what a
    kernel sees, the clean-up, a class graded sandboxed."""
    tests = unprivileged_tests()
    with unprivileged_folder() as home:
        result = subprocess.run(
            as_unprivileged(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "-p",
                    "no:xdist",
                    *(f"{__file__}::{name}" for name in tests),
                ],
                home,
            ),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert f"{len(tests)} passed" in result.stdout, result.stdout[-2000:]
    assert "skipped" not in result.stdout, result.stdout[-2000:]
