"""Run a grading kernel as untrusted code: an unprivileged user, no network, a private folder.

Two halves:

- `Sandbox` lives in a grading worker (root). It holds one unprivileged uid for the
  worker's life, and per submission a size-limited tmpfs folder (same path for the worker
  and the kernel) with `ipc/` (the kernel's sockets and connection file), `home/` and
  `work/` (the assignment's files: the kernel's working folder). Its kernel manager starts
  the kernel through the second half, and `clean()` kills every process of the uid.
- `python -m grader.sandbox SPEC -- KERNEL COMMAND` is that second half, run as root in
  the kernel's place. In new mount and network namespaces it hides the grading folder,
  the course repository (all but the `course` package and the virtual environment),
  /tmp and /dev/shm behind empty tmpfs mounts; sets resource limits; drops to the uid
  with no way back (no new privileges); and executes the kernel. The kernel talks to the
  worker over Unix sockets: a network namespace cuts TCP on loopback, not those.

What a submission can then reach: the system's world-readable files (/usr, /etc), the
course package and the Python installation (read only), its own folder and a private
/tmp. What it cannot: the gradebook, source/, solutions/, the configuration, other
submissions, the hidden tests (they reach the kernel one cell at a time, when they run),
the network, more than `Limits` of memory, processes, file size and disk.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

# Linux constants (sched.h, sys/mount.h, sys/prctl.h).
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1, 2, 4, 32, 4096, 16384, 1 << 18)
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38

# Kernels run as uids from this range, one per grading worker, claimed with a lock file, so
# that RLIMIT_NPROC and "kill every process of the uid" concern one sandbox only. The range
# sits above the usual system and user uids and the usual subordinate-uid ranges.
UID_BASE = 1_500_000
UID_COUNT = 1000
LOCKS = Path(tempfile.gettempdir()) / "grader-sandbox-uids"


@dataclass
class Limits:
    """What one submission may use; every kernel gets these (`memory` per process)."""

    memory: int = 4 << 30  # bytes of data (RLIMIT_DATA): a bigger allocation is a MemoryError
    processes: int = 256  # processes and threads of the uid (RLIMIT_NPROC)
    file_size: int = 64 << 20  # bytes per file written (RLIMIT_FSIZE)
    disk: int = 256 << 20  # bytes of the submission's folder and of its /tmp (tmpfs size)
    open_files: int = 1024


class SandboxError(RuntimeError):
    """The sandbox cannot be set up on this machine; the message names the missing piece."""


_libc = ctypes.CDLL(None, use_errno=True)


def _call(name: str, *args) -> None:
    if getattr(_libc, name)(*args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}: {os.strerror(errno)}")


def _bytes(value) -> bytes | None:
    return None if value is None else str(value).encode()


def _mount(source, target, fstype, flags, data=None) -> None:
    _call("mount", _bytes(source), _bytes(target), _bytes(fstype), ctypes.c_ulong(flags),
          _bytes(data))


def private_mounts() -> None:
    """Give this process mount namespace of its own, so that what it mounts stays its own and
    disappears with it. Must run before the process starts threads."""
    _call("unshare", CLONE_NEWNS)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)


def missing_pieces() -> list[str]:
    """What this machine lacks for the sandbox, in words; empty when it can sandbox."""
    if not sys.platform.startswith("linux"):
        return [f"Linux namespaces (this is {sys.platform})"]
    if os.geteuid() != 0:
        return ["root: the grader must run as root to run submissions as an unprivileged user"]
    probe = subprocess.run(
        [sys.executable, "-m", "grader.sandbox", "--probe"],
        capture_output=True, text=True, timeout=60,
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        return [f"namespaces and mounts ({last})"]
    return []


def _probe() -> None:
    """Each step the wrapper takes, once, in a throwaway process."""
    for step, action in [
        ("mount namespace", lambda: private_mounts()),
        ("network namespace", lambda: _call("unshare", CLONE_NEWNET)),
        ("tmpfs mount", lambda: _mount("tmpfs", "/tmp", "tmpfs", 0, "size=1m")),
        ("unprivileged user", lambda: (os.setgroups([]), os.setgid(UID_BASE),
                                       os.setuid(UID_BASE))),
    ]:
        try:
            action()
        except OSError as error:
            sys.exit(f"cannot set up the {step}: {error}")


# --- the worker's half -----------------------------------------------------------------


class Sandbox:
    """One unprivileged uid, held for the life of a grading worker, and its folders."""

    def __init__(self, hide: list[Path], limits: Limits | None = None):
        self.hide = [Path(p).resolve() for p in hide]
        self.limits = limits or Limits()
        self.uid, self._lock = _claim_uid()
        self.base: Path | None = None
        self.cgroups = _cgroups(self.uid, self.limits)
        # Orphans of a kernel (a fork bomb's children) become this worker's children, not
        # init's, so that kill_processes can reap them at once (init may take seconds, or
        # never do it in a container).
        _call("prctl", PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        self.kill_processes()  # left behind by an earlier holder of the uid that was killed

    def prepare(self, files: Path) -> Path:
        """A fresh folder for one kernel, with the non-notebook files of `files`; its path."""
        self.base = Path(tempfile.mkdtemp(prefix="grader-sandbox-"))
        _mount("tmpfs", self.base, "tmpfs", MS_NOSUID | MS_NODEV,
               f"size={self.limits.disk},mode=0711")
        for name in ("ipc", "home", "work"):
            (self.base / name).mkdir(mode=0o700)
        for path in files.iterdir():
            if path.suffix != ".ipynb":
                copy = shutil.copytree if path.is_dir() else shutil.copy
                copy(path, self.base / "work" / path.name)
        _copy_font_cache(self.base / "home" / ".matplotlib")
        for path in [self.base / n for n in ("ipc", "home", "work")]:
            for item in [path, *path.rglob("*")]:
                os.lchown(item, self.uid, self.uid)
        spec = {
            "uid": self.uid,
            "cgroups": [str(group) for group in self.cgroups],
            "base": str(self.base),
            "hide": [str(p) for p in self.hide],
            "keep": [str(p) for p in _runtime_paths()],
            "limits": asdict(self.limits),
        }
        (self.base / "spec.json").write_text(json.dumps(spec))  # root's, mode 0644 in 0711
        return self.base / "work"

    def kernel_manager(self, kernel_name: str):
        """A kernel manager whose kernel starts inside this sandbox, over Unix sockets."""
        from jupyter_client.manager import AsyncKernelManager

        spec_file = str(self.base / "spec.json")

        class SandboxedKernelManager(AsyncKernelManager):
            def format_kernel_cmd(self, extra_arguments=None):
                command = super().format_kernel_cmd(extra_arguments)
                return [sys.executable, "-m", "grader.sandbox", spec_file, "--", *command]

        return SandboxedKernelManager(
            kernel_name=kernel_name, transport="ipc", ip=str(self.base / "ipc" / "kernel"),
            connection_file=str(self.base / "ipc" / "kernel.json"),
        )

    def kill_processes(self) -> None:
        """Kill every process of the uid: the kernel and whatever it started, detached or not;
        and reap them: a zombie still counts against the uid's RLIMIT_NPROC (and pids.max),
        so a fork bomb's zombies would keep this worker's next kernel from starting."""
        for _ in range(250):
            processes = self._processes()
            if not processes:
                return
            if any(p.info["status"] != psutil.STATUS_ZOMBIE for p in processes):
                # kill(-1) from the uid itself reaches all its processes at once, a fork bomb
                # too. Spelled `-KILL -1`: procps-ng's kill rejects `-s KILL -- -1` with a
                # usage message, which left every orphan of a kernel running.
                subprocess.run(["kill", "-KILL", "-1"], user=self.uid, group=self.uid,
                               extra_groups=[], check=False, stderr=subprocess.DEVNULL)
            for process in processes:  # orphans come to this worker (a subreaper): reap them
                if process.info["ppid"] == os.getpid():
                    try:
                        os.waitpid(process.pid, os.WNOHANG)
                    except ChildProcessError:
                        pass
            time.sleep(0.02)

    def _processes(self) -> list[psutil.Process]:
        """The uid's processes, zombies included."""
        return [p for p in psutil.process_iter(["uids", "status", "ppid"])
                if p.info["uids"] and p.info["uids"].real == self.uid]

    def clean(self) -> None:
        """Kill the kernel's processes and drop its folder."""
        self.kill_processes()
        if self.base is not None:
            _call("umount2", str(self.base).encode(), MNT_DETACH)
            self.base.rmdir()
            self.base = None


def _cgroups(uid: int, limits: Limits) -> list[Path]:
    """cgroups (v1) that cap the kernel's processes together, where this machine lets us
    make them: memory (RLIMIT_DATA caps each process, not a fork bomb's sum), CPU (the
    kernel's share of the cores: a fork bomb must not starve the other workers) and the
    number of processes."""
    cores = int(os.environ.get("OMP_NUM_THREADS", "1"))
    settings = {
        "memory": {"memory.limit_in_bytes": limits.memory},
        "cpu": {"cpu.cfs_period_us": 100_000, "cpu.cfs_quota_us": 100_000 * cores},
        "pids": {"pids.max": limits.processes},
    }
    groups = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in set(controllers.split(",")) & settings.keys():
            group = Path("/sys/fs/cgroup", controller + path) / f"grader-{uid}"
            try:
                group.mkdir(exist_ok=True)
                for name, value in settings[controller].items():
                    (group / name).write_text(str(value))
            except OSError:
                continue  # this controller is not ours to use: the rlimits still hold
            groups.append(group)
    return groups


def _claim_uid() -> tuple[int, object]:
    LOCKS.mkdir(mode=0o700, exist_ok=True)
    for uid in range(UID_BASE, UID_BASE + UID_COUNT):
        lock = open(LOCKS / str(uid), "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        return uid, lock
    raise SandboxError(f"all {UID_COUNT} sandbox uids from {UID_BASE} are in use")


def _runtime_paths() -> list[Path]:
    """What a kernel must be able to read: Python, the virtual environment, `course`."""
    import course

    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
             Path(course.__file__).resolve().parent}
    return sorted(paths)


def _copy_font_cache(target: Path) -> None:
    """Matplotlib's font list, so that each kernel need not rebuild it (a second or two)."""
    target.mkdir()
    home = Path.home()
    for folder in [os.environ.get("MPLCONFIGDIR"), home / ".cache" / "matplotlib",
                   home / ".matplotlib"]:
        if folder and Path(folder).is_dir():
            for cache in Path(folder).glob("fontlist-*.json"):
                shutil.copy(cache, target / cache.name)
            return


# --- the kernel's half -----------------------------------------------------------------


def _blocked_ancestors(paths: list[Path]) -> list[Path]:
    """Folders on the way to `paths` that other users may not enter (such as /root)."""
    blocked = set()
    for path in paths:
        for folder in reversed(path.parents):
            if not os.stat(folder).st_mode & stat.S_IXOTH:
                blocked.add(folder)
    return sorted(blocked)


def _cover(target: Path, keep: list[Path], fds: dict[Path, int], mode: str) -> list[Path]:
    """Hide folder `target` behind an empty tmpfs, then bring back the `keep` paths under
    it; the paths brought back."""
    _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode},size=64m")
    back = [path for path in keep if target in path.parents]
    for path in back:
        path.mkdir(parents=True, exist_ok=True)
        _mount(f"/proc/self/fd/{fds[path]}", path, None, MS_BIND | MS_REC)
    return back


def enter(spec: dict, command: list[str]) -> None:
    """Set up the sandbox described by `spec` around this process and become `command`."""
    uid, base, limits = spec["uid"], Path(spec["base"]), Limits(**spec["limits"])
    keep = [Path(p) for p in spec["keep"]]
    connection_file = Path(command[command.index("-f") + 1])
    os.chown(connection_file, uid, uid)
    for group in spec["cgroups"]:
        Path(group, "cgroup.procs").write_text(str(os.getpid()))
    _call("unshare", CLONE_NEWNS | CLONE_NEWNET)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # Opened before anything is hidden: the way back to what must stay visible.
    fds = {path: os.open(path, os.O_PATH) for path in [base, *keep]}
    targets = sorted({Path("/tmp"), Path("/dev/shm"), *map(Path, spec["hide"]),
                      *_blocked_ancestors(keep)}, key=lambda p: len(p.parts))
    brought_back = set()
    for target in targets:
        if target.is_dir():  # not hidden already by a folder above it
            world = target in (Path("/tmp"), Path("/dev/shm"))
            brought_back.update(_cover(target, [base, *keep], fds, "1777" if world else "0755"))
    for path in brought_back - {base}:  # read only, whatever the files' modes
        _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    for name, value in [("RLIMIT_DATA", limits.memory), ("RLIMIT_NPROC", limits.processes),
                        ("RLIMIT_FSIZE", limits.file_size), ("RLIMIT_CORE", 0),
                        ("RLIMIT_NOFILE", limits.open_files)]:
        resource.setrlimit(getattr(resource, name), (value, value))
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    _call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # no setuid programs: no way back
    _call("prctl", PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # cleared by setuid: set now
    home = base / "home"
    os.environ.update(HOME=str(home), TMPDIR="/tmp", MPLCONFIGDIR=str(home / ".matplotlib"),
                      IPYTHONDIR=str(home / ".ipython"), USER=str(uid), LOGNAME=str(uid))
    os.chdir(base / "work")
    os.execvp(command[0], command)


def main(argv: list[str]) -> None:
    if argv == ["--probe"]:
        _probe()
        return
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: python -m grader.sandbox SPEC_JSON -- KERNEL COMMAND...")
    enter(json.loads(Path(argv[0]).read_text()), argv[2:])


if __name__ == "__main__":
    main(sys.argv[1:])
