"""Run a grading kernel as untrusted code, in a bubblewrap sandbox built from an allowlist.

A kernel starts in an empty root file system (`bwrap`, Debian's `bubblewrap`) that gets,
and nothing else:

- read only: the system's /usr (with the /bin, /lib, /lib64, /sbin links of a merged-/usr
  system), the Python installation, the virtual environment, the `course` package, and
  the /etc entries a Python kernel reads (named one by one in ETC_ENTRIES), plus a
  passwd and group file that name its user;
- writable, size-limited tmpfs mounts: its working folder /submission (holding copies of
  the assignment's files), a private /tmp (its HOME) and /dev/shm;
- a fresh /proc and a minimal /dev; its connection folder /ipc (the kernel's Unix
  sockets and connection file).

It runs in new user, PID, IPC, network, UTS, cgroup and mount namespaces, with no
capabilities, no new privileges and no nested user namespaces (`--disable-userns`), with
a cleared environment (ENVIRONMENT names what passes), no inherited file descriptor
(stdin, stdout and stderr go to /dev/null) and resource limits (`Limits`, set by prlimit
inside the sandbox, so that the process limit counts this sandbox's processes only).
When the kernel ends or is killed, the kernel takes the namespaces down with everything
in them: processes (PID namespace), System V IPC and POSIX shared memory (IPC
namespace), files (the tmpfs mounts). `Sandbox.clean` then checks that nothing survived.

No root is needed: bubblewrap works with unprivileged user namespaces, so an instructor
grades sandboxed on a laptop. Run as root, the grader adds two things: each sandbox runs
as an unprivileged uid of its own (claimed machine-wide, see `claim_uid`), and each
kernel gets a fresh cgroup (v1 or v2) capping memory, processes and CPU for all its
processes together, removed afterwards.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:  # jupyter_client is imported where a kernel starts, not with this module
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import KernelManager

# Sandboxes of a root grader run as uids from this range, one per grading worker: above
# the usual system, user and subordinate-uid ranges.
UID_BASE = 1_500_000
UID_COUNT = 1000
# Machine-wide, whatever TMPDIR says: two graders at once must never claim the same uid.
UID_LOCKS = Path("/run/grader-sandbox")
INSIDE_UID = 1000  # who the kernel is inside its user namespace ("student")
WORKDIR = "/submission"  # the kernel's working folder, inside
IPC = "/ipc"  # its connection folder, inside
INSIDE_CONNECTION = "kernel-inside.json"
IPC_SIZE = 1 << 20  # bytes of the connection folder (root only: a tmpfs)
# The kernel's home and shared memory, inside: each a private tmpfs (not the machine's).
HOME = "/tmp"  # noqa: S108
SHM = "/dev/shm"  # noqa: S108
# Where a grader running as root finds mount(8) and umount(8): never through PATH.
SYSTEM_BIN = "/usr/bin:/bin"
# /etc entries a Python kernel reads: the dynamic linker's cache, the time zone, fonts
# (fontconfig complains on stderr without them), name-service rules. passwd and group are
# written by the sandbox: the kernel's user and nobody else.
ETC_ENTRIES = (
    "ld.so.cache",
    "localtime",
    "fonts",
    "nsswitch.conf",
    "host.conf",
    "hosts",
    "mime.types",
)
# The environment a kernel gets: these names pass from the grader's, PATH and HOME are
# set by the sandbox; nothing else (tokens, paths, the grader's own settings) reaches it.
ENVIRONMENT = (
    "LANG",
    "LC_ALL",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MPLBACKEND",
    "PYTHONWARNINGS",
    "TQDM_DISABLE",
    "PYDEVD_DISABLE_FILE_VALIDATION",
)
# How long processes may take to disappear after SIGKILL before clean() calls it a failure.
KILL_WAIT_S = 10
# Empty cgroups of dead workers younger than this are left to a later sweep (sweep_leftovers).
CGROUP_SWEEP_AGE_S = 300


@dataclass(frozen=True)
class Limits:
    """What one submission may use."""

    memory: int = 4 << 30  # bytes of data per process (RLIMIT_DATA: a MemoryError), and
    # of all the kernel's processes together where a cgroup can be made
    processes: int = 256  # processes and threads of the sandbox
    file_size: int = 64 << 20  # bytes per file written
    disk: int = 256 << 20  # bytes of each writable tmpfs: /submission, /tmp, /dev/shm
    open_files: int = 1024
    cpus: float = 1.0  # CPU share of all the kernel's processes, in cores (cgroups only)


class SandboxError(RuntimeError):
    """The sandbox cannot be set up, or did not come down; the message says what."""


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def missing_pieces() -> list[str]:
    """What this machine lacks for the sandbox, in words; empty when it can sandbox."""
    if not sys.platform.startswith("linux"):
        return [f"Linux namespaces (this is {sys.platform})"]
    if bwrap_path() is None:
        return [
            "bubblewrap (the `bwrap` command): install it with "
            "`apt-get install bubblewrap` (Debian, Ubuntu), `dnf install bubblewrap` "
            "(Fedora) or your distribution's package"
        ]
    sandbox = Sandbox(Limits(), probe=True)
    try:
        sandbox.prepare(None)
        result = subprocess.run(
            sandbox.command(["/usr/bin/true"]),
            capture_output=True,
            text=True,
            timeout=60,
            pass_fds=sandbox.fds,
        )
    finally:
        sandbox.clean()
        sandbox.close()
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        return [
            f"user namespaces for bubblewrap ({last}); on Ubuntu 24.04 and later allow "
            "them with an AppArmor profile for bwrap, elsewhere set "
            "kernel.unprivileged_userns_clone=1"
        ]
    return []


class Sandbox:
    """What one grading worker needs to run its kernels sandboxed, one at a time.

    `prepare()` makes a fresh sandbox for the next kernel, `kernel_manager()` starts the
    kernel in it, `clean()` kills it and checks that nothing is left; `close()` gives the
    uid back when the worker ends.
    """

    def __init__(self, limits: Limits | None = None, *, probe: bool = False):
        self.limits = limits or Limits()
        bwrap = bwrap_path()
        if bwrap is None:
            raise SandboxError(missing_pieces()[0])
        self.bwrap: str = bwrap
        self.root = os.geteuid() == 0
        # A root grader drops to an unprivileged uid of its own; probing needs none.
        self.uid, self._lock = (None, None)
        if self.root:
            self.uid, self._lock = (65534, None) if probe else claim_uid()
        self.run_dir: Path | None = None
        self.ipc_mounted = False
        if self.root and not probe:
            sweep_leftovers()
        self.fds: list[int] = []
        # (fd, path inside) of what is copied into the sandbox: the system's and the kernel's
        self.etc_files: list[tuple[int, str]] = []
        self.files: list[tuple[int, str]] = []
        self.cgroups: list[Path] = []
        self.process: psutil.Process | None = None  # bwrap's outer process, once started

    # --- per kernel ----------------------------------------------------------------

    def prepare(self, files: Path | None) -> Path:
        """A fresh sandbox whose working folder holds the non-notebook files of `files`;
        the host folder to start the kernel from (its connection folder's parent)."""
        self.clean()
        # 0700 and ours; root's in its own folder in /run, where nobody else may write.
        parent = _private_folder(UID_LOCKS) if self.root else None
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"grader-sandbox-{os.getpid()}-", dir=parent))
        self.ipc_mounted = self._make_ipc(self.run_dir / "ipc")
        self._open_system_files()
        self.files += self._open_submission_files(files)
        if self.root:
            self.cgroups = make_cgroups(self.limits)
        return self.run_dir

    def prepared_dir(self) -> Path:
        """The host folder prepare() made for the next kernel (its connection folder's parent)."""
        if self.run_dir is None:
            raise SandboxError("the sandbox is used before prepare() made its folder")
        return self.run_dir

    def start(self, files: Path | None, kernel_name: str):
        """prepare() and kernel_manager(): the folder to start the kernel from, and the
        kernel's manager."""
        return self.prepare(files), self.kernel_manager(kernel_name)

    def lasting_pids(self) -> set[int]:
        """Processes of this sandbox that outlive a kernel (none here; see
        grader.execution.template_kernel), which the worker must not kill with a kernel."""
        return set()

    def _make_ipc(self, ipc: Path) -> bool:
        """Make a connection folder, the kernel's; whether it is a tmpfs of its own."""
        ipc.mkdir(mode=0o700)
        if self.uid is None:
            return False
        os.chown(ipc, self.uid, self.uid)
        # The kernel must create its sockets there, so it may write there: a tmpfs of
        # a few files keeps it from filling this machine's /run through it.
        return (
            subprocess.run(
                [
                    _system("mount"),
                    "-t",
                    "tmpfs",
                    "-o",
                    f"size={IPC_SIZE},nr_inodes=64,mode=0700,"
                    f"uid={self.uid},gid={self.uid},nosuid,nodev,noexec",
                    "grader-ipc",
                    str(ipc),
                ],
                capture_output=True,
            ).returncode
            == 0
        )

    def _open_system_files(self) -> None:
        self.etc_files, self.files = system_files()
        self.fds += [fd for fd, _ in [*self.etc_files, *self.files]]

    def _open_submission_files(self, files: Path | None) -> list[tuple[int, str]]:
        """(fd, path inside) of the non-notebook files of `files`: regular files only."""
        opened = []
        if files is not None:
            for path in sorted(files.rglob("*")):
                relative = path.relative_to(files)
                if path.is_file() and not path.is_symlink() and path.suffix != ".ipynb":
                    opened.append((self._open_file(path), f"{WORKDIR}/{relative}"))
        return opened

    def command(self, kernel: list[str]) -> list[str]:
        """The command that runs `kernel` in this sandbox (after prepare()).

        Run by an unprivileged grader: one bwrap does it all. Run by root: an outer bwrap
        (root) builds the file system from paths only root may reach (/root/.pyenv, say)
        and the PID, IPC, network, UTS and cgroup namespaces; it drops to the sandbox's uid
        and an inner bwrap adds the user namespace, the private folders and the cleared
        environment, as an unprivileged grader's bwrap would."""
        outer_only, system, private, ipc, seal = self._parts(
            self.prepared_dir() / "ipc", self.etc_files, self.files
        )
        launch = [
            "--",
            sys.executable,
            "-I",
            "-S",
            "-c",
            _LAUNCHER,
            *map(
                str,
                [
                    self.limits.memory,
                    self.limits.processes,
                    self.limits.file_size,
                    self.limits.open_files,
                ],
            ),
            *kernel,
        ]
        if self.uid is None:
            return [self.bwrap, *outer_only, *system, *private, *ipc, *seal, *launch]
        command = [
            self.bwrap,
            *outer_only,
            *system,
            *ipc,
            *seal,
            "--",
            "/usr/bin/setpriv",
            f"--reuid={self.uid}",
            f"--regid={self.uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
            self.bwrap,
            "--dev-bind",
            "/",
            "/",
            *private,
            *seal,
            *launch,
        ]
        if self.cgroups:  # enter the cgroups first, so that every process is in them
            procs = [str(group / "cgroup.procs") for group in self.cgroups]
            command = [
                "/bin/sh",
                "-c",
                'while [ "$1" != -- ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@"',
                "sh",
                *procs,
                "--",
                *command,
            ]
        return command

    def one_bwrap(self, ipc: Path, etc_files, files, *, nested_userns: bool = False) -> list[str]:
        """bwrap's options (before `--` and the command) for this sandbox built by a single
        bwrap run as the sandbox's user, as an unprivileged grader runs it, with `ipc` as
        its connection folder and `etc_files`, `files` ((fd, path inside), see
        system_files) copied in; `nested_userns`: let it make user namespaces (the template
        of grader.execution.template_kernel, which gives each kernel one that may make none)."""
        outer_only, system, private, ipc_args, seal = self._parts(ipc, etc_files, files)
        if nested_userns:
            private.remove("--disable-userns")
        return [*outer_only, *system, *private, *ipc_args, *seal]

    def _parts(self, ipc: Path, etc_files, files) -> tuple[list[str], ...]:
        """bwrap's options, in five parts: namespaces a root grader's outer bwrap makes, the
        system's files, the private part (user namespace, writable folders, files,
        environment), the connection folder, the read-only root."""
        outer_only = [
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "sandbox",
            "--die-with-parent",
        ]
        system = ["--ro-bind", "/usr", "/usr"]
        for link in ("bin", "lib", "lib64", "sbin"):
            target = Path("/", link)
            if target.is_symlink():
                system += ["--symlink", os.readlink(target), f"/{link}"]
            elif target.is_dir():
                system += ["--ro-bind", str(target), f"/{link}"]
        read_only = [str(p) for p in _runtime_paths()]
        read_only += [f"/etc/{name}" for name in ETC_ENTRIES if Path("/etc", name).exists()]
        mount_points = [*read_only, *(inside for _, inside in etc_files)]
        # Their folders, open to the kernel's user (bwrap would make them 0700, root's).
        for folder in sorted({str(f) for m in mount_points for f in Path(m).parents} - {"/"}):
            system += ["--perms", "0755", "--dir", folder]
        for path in read_only:
            system += ["--ro-bind", path, path]
        for fd, inside in etc_files:
            system += ["--perms", "0644", "--file", str(fd), inside]
        # Mount points for the inner bwrap, which may not create them in root's folders.
        system += ["--proc", "/proc", "--dev", "/dev", "--dir", HOME, "--dir", WORKDIR]
        # The connection folder: the kernel's sockets and its connection file.
        ipc_args = ["--bind", str(ipc), IPC]
        private = [
            "--unshare-user",
            "--disable-userns",
            "--uid",
            str(INSIDE_UID),
            "--gid",
            str(INSIDE_UID),
            "--cap-drop",
            "ALL",
            "--new-session",
            "--die-with-parent",
        ]
        for tmpfs in (HOME, WORKDIR, SHM):
            private += ["--size", str(self.limits.disk), "--tmpfs", tmpfs]
        # A repository or venv under /tmp (a clone in a temporary folder) is hidden by the
        # private /tmp: bind it again over it (bwrap takes sources from the outer view).
        for path in read_only:
            if any(Path(t) in Path(path).parents for t in (HOME, WORKDIR, SHM)):
                private += ["--ro-bind", path, path]
        made = {HOME, WORKDIR}
        for fd, inside in files:
            for parent in reversed(Path(inside).parents):
                if str(parent) not in made and str(parent) != "/":
                    private += ["--dir", str(parent)]
                    made.add(str(parent))
            private += ["--perms", "0644", "--file", str(fd), inside]
        private += ["--chdir", WORKDIR, "--clearenv"]
        environment = {name: os.environ[name] for name in ENVIRONMENT if name in os.environ}
        environment.update(
            HOME=HOME,
            LANG=environment.get("LANG", "C.UTF-8"),
            USER="student",
            PATH=os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        )
        for name, value in sorted(environment.items()):
            private += ["--setenv", name, value]
        # Last: the root itself read only (bwrap's tmpfs, which the kernel's user would own).
        seal = ["--remount-ro", "/"]
        return outer_only, system, private, ipc_args, seal

    def kernel_manager(self, kernel_name: str):
        """A kernel manager whose kernel starts inside this sandbox, over Unix sockets."""
        from jupyter_client.manager import AsyncKernelManager

        sandbox = self

        class SandboxedKernelManager(AsyncKernelManager):
            def format_kernel_cmd(self, extra_arguments=None):
                command = super().format_kernel_cmd(extra_arguments)
                command[command.index(self.connection_file)] = f"{IPC}/{INSIDE_CONNECTION}"
                return sandbox.command(command)

            async def _async_launch_kernel(self, kernel_cmd, **kw):
                # The kernel's own copy of the connection file: its sockets at the inside
                # path of the connection folder, which no path of this machine's names.
                info = json.loads(Path(self.connection_file).read_text())
                info["ip"] = f"{IPC}/kernel"
                inside = sandbox.prepared_dir() / "ipc" / INSIDE_CONNECTION
                inside.write_text(json.dumps(info))
                inside.chmod(0o600)
                if sandbox.uid is not None:  # written by us: the kernel must read it
                    os.chown(inside, sandbox.uid, sandbox.uid)
                # Nothing of the worker's: no stdin, stdout, stderr (the worker's log), no
                # environment beyond what bwrap sets, only the file descriptors bwrap uses.
                kw.update(
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    pass_fds=sandbox.fds,
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                )
                await super()._async_launch_kernel(kernel_cmd, **kw)
                sandbox.process = psutil.Process(launched_process(self).pid)

        ipc = self.prepared_dir() / "ipc"
        manager = SandboxedKernelManager(
            kernel_name=kernel_name,
            transport="ipc",
            ip=str(ipc / "kernel"),
            connection_file=str(ipc / "kernel.json"),
        )
        # An interrupt as a message: a signal to bwrap's process group would kill the
        # sandbox (bwrap does not pass signals on), ipykernel interrupts itself instead.
        kernel_spec(manager).interrupt_mode = "message"
        return manager

    def clean(self) -> None:
        """Kill every process of the sandbox and drop its folder and cgroups; a process
        that survives is an error, never silently left running."""
        survivors = []
        if self.process is not None:
            survivors = self._kill_tree(self.process)
            self.process = None
        for group in self.cgroups:
            survivors += _empty_cgroup(group)
        if survivors:
            raise SandboxError(f"sandbox processes survived SIGKILL: {sorted(survivors)}")
        self.cgroups = []
        for fd in self.fds:
            os.close(fd)
        self.fds, self.files, self.etc_files = [], [], []
        if self.run_dir is not None:
            if self.ipc_mounted:
                _unmount(self.run_dir / "ipc")
                self.ipc_mounted = False
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None

    def close(self) -> None:
        """Give the uid back (when the worker ends)."""
        self.clean()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    # --- helpers ---------------------------------------------------------------------

    def _open_file(self, path: Path) -> int:
        fd = open_file(path)
        self.fds.append(fd)
        return fd

    @staticmethod
    def _kill_tree(process: psutil.Process) -> list[int]:
        """SIGKILL bwrap and everything under it; the pids still there after KILL_WAIT_S.

        Every process of the sandbox descends from bwrap's inner process, the init of its
        PID namespace (orphans are re-parented to it, not to us), and when that init dies
        Linux kills all the others: killing the tree kills the sandbox."""
        try:
            tree = [process, *process.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        for member in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        _, alive = psutil.wait_procs(tree, timeout=KILL_WAIT_S)
        return [p.pid for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


# The kernel's first process: the rlimits (set inside the user namespace, so that the
# process limit counts this sandbox's processes only), no file descriptor but 0, 1 and 2
# (bwrap's own are gone), then the kernel.
_LAUNCHER = """\
import os, resource, sys
memory, processes, file_size, files = map(int, sys.argv[1:5])
for name, value in [("DATA", memory), ("NPROC", processes), ("FSIZE", file_size),
                    ("CORE", 0), ("NOFILE", files)]:
    resource.setrlimit(getattr(resource, "RLIMIT_" + name), (value, value))
os.closerange(3, 65536)
os.execv(sys.argv[5], sys.argv[5:])
"""
_PASSWD = "student:x:{uid}:{uid}:student:{home}:/usr/sbin/nologin\n"  # noqa: S105 (no password)
_GROUP = "student:x:{uid}:\n"


def kernel_spec(manager: KernelManager) -> KernelSpec:
    """The spec of `manager`'s kernel, which jupyter_client looks up by its name."""
    spec = manager.kernel_spec
    if spec is None:  # jupyter_client's answer for an empty kernel name only
        raise SandboxError(f"no kernel spec for the kernel name {manager.kernel_name!r}")
    return spec


def launched_process(manager: KernelManager) -> subprocess.Popen:
    """The process `manager` launched its kernel as (after it launched it)."""
    from jupyter_client.provisioning import LocalProvisioner

    provisioner = manager.provisioner
    if not isinstance(provisioner, LocalProvisioner):
        raise SandboxError(f"a kernel launched by {type(provisioner).__name__}, not locally")
    process = provisioner.process
    if process is None:
        raise SandboxError("the kernel has no process: it was not launched")
    return process


def open_file(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)


def open_data(text: str) -> int:
    fd = os.memfd_create("sandbox-file", os.MFD_CLOEXEC)
    os.write(fd, text.encode())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def system_files() -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(fd, path inside) of a sandbox's passwd and group, and of matplotlib's font list for
    its HOME; the caller closes the descriptors."""
    etc_files = [
        (open_data(_PASSWD.format(uid=INSIDE_UID, home=HOME)), "/etc/passwd"),
        (open_data(_GROUP.format(uid=INSIDE_UID)), "/etc/group"),
    ]
    files = [
        (open_file(cache), f"{HOME}/.cache/matplotlib/{cache.name}") for cache in _font_caches()
    ]
    return etc_files, files


def _runtime_paths() -> list[Path]:
    """What a kernel must read besides /usr: Python, the virtual environment, `course`."""
    import course

    paths = {
        Path(sys.base_prefix).resolve(),
        Path(sys.prefix).resolve(),
        Path(course.__file__).resolve().parent,
    }
    # Inside one another (a venv inside the repository): the outer one holds the inner.
    return sorted(
        p
        for p in paths
        if not any(q in p.parents for q in paths) and not str(p).startswith("/usr/")
    )


def _font_caches() -> list[Path]:
    """Matplotlib's font list, so that each kernel need not rebuild it (a second or two)."""
    home = Path.home()
    for folder in [
        os.environ.get("MPLCONFIGDIR"),
        home / ".cache" / "matplotlib",
        home / ".matplotlib",
    ]:
        if folder and Path(folder).is_dir():
            return sorted(Path(folder).glob("fontlist-*.json"))
    return []


# --- identities and cgroups (root only) --------------------------------------------------


def _private_folder(path: Path) -> Path:
    """`path` as a folder only root can write, made if missing; refuse anything else there
    (a link, another owner, a mode that lets others in)."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise SandboxError(f"{path} is not a folder that only root may write; remove it")
    return path


def claim_uid() -> tuple[int, int]:
    """An unprivileged uid no other sandbox on this machine holds, and the lock that holds
    it (released when the worker ends, however it ends)."""
    folder = _private_folder(UID_LOCKS)
    for uid in range(UID_BASE, UID_BASE + UID_COUNT):
        fd = os.open(
            folder / str(uid), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return uid, fd
    raise SandboxError(f"all {UID_COUNT} sandbox uids from {UID_BASE} are in use")


def _unmount(path: Path) -> None:
    subprocess.run([_system("umount"), "--lazy", str(path)], capture_output=True)


def _system(command: str) -> str:
    """The system's own `command` (util-linux), wherever this distribution keeps it."""
    return shutil.which(command, path=SYSTEM_BIN) or f"/usr/bin/{command}"


def sweep_leftovers() -> None:
    """Remove the connection folders and empty cgroups of grading workers that were
    killed before they could clean up (their pid is in the name, and gone)."""

    def dead(name: str) -> bool:
        parts = name.split("-")
        pid = next((int(p) for p in parts if p.isdigit()), None)
        return pid is not None and not psutil.pid_exists(pid)

    if UID_LOCKS.is_dir():
        for folder in UID_LOCKS.glob("grader-sandbox-*"):
            if dead(folder.name.removeprefix("grader-sandbox-")):
                _unmount(folder / "ipc")
                shutil.rmtree(folder, ignore_errors=True)
    # A cgroup is empty between its mkdir and its kernel moving in: a worker whose pid this
    # process cannot see (another PID namespace) would lose it then. Its name holds its
    # birth on the monotonic clock, which all namespaces share; only old ones are swept.
    now = time.monotonic_ns()
    for parent in [Path("/sys/fs/cgroup/grader"), *Path("/sys/fs/cgroup").glob("*/")]:
        for group in parent.glob("**/grader-*-*") if parent.is_dir() else []:
            born = group.name.rpartition("-")[2]
            young = born.isdigit() and now - int(born) < CGROUP_SWEEP_AGE_S * 10**9
            if not young and dead(group.name.removeprefix("grader-")):
                with contextlib.suppress(OSError):  # only if empty: a live process keeps it
                    group.rmdir()


def make_cgroups(limits: Limits) -> list[Path]:
    """Fresh cgroups for one kernel (v2, else v1 controllers) capping memory, processes and
    CPU of all its processes together; [] where this machine lets us make none (the
    rlimits still hold)."""
    name = f"grader-{os.getpid()}-{time.monotonic_ns()}"
    unified = Path("/sys/fs/cgroup")
    if (unified / "cgroup.controllers").exists():
        return _cgroup_v2(unified / "grader", name, limits)
    return _cgroups_v1(name, limits)


def _cgroup_v2(parent: Path, name: str, limits: Limits) -> list[Path]:
    period = 100_000
    settings = {
        "memory.max": limits.memory,
        "memory.swap.max": 0,
        "pids.max": limits.processes,
        "cpu.max": f"{int(period * limits.cpus)} {period}",
    }
    try:
        parent.mkdir(exist_ok=True)
        (parent / "cgroup.subtree_control").write_text("+memory +pids +cpu")
        group = parent / name
        group.mkdir()
    except OSError:
        return []
    for key, value in settings.items():
        with contextlib.suppress(OSError):  # e.g. no swap accounting: the others still hold
            (group / key).write_text(str(value))
    return [group]


def _cgroups_v1(name: str, limits: Limits) -> list[Path]:
    period = 100_000
    settings = {
        "memory": {"memory.limit_in_bytes": limits.memory},
        "cpu": {"cpu.cfs_period_us": period, "cpu.cfs_quota_us": int(period * limits.cpus)},
        "pids": {"pids.max": limits.processes},
    }
    groups = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in set(controllers.split(",")) & settings.keys():
            group = Path("/sys/fs/cgroup", controller + path) / name
            try:
                group.mkdir()
                for key, value in settings[controller].items():
                    (group / key).write_text(str(value))
            except OSError:
                if group.is_dir():
                    group.rmdir()
                continue  # this controller is not ours to use: the rlimits still hold
            groups.append(group)
    return groups


def _empty_cgroup(group: Path) -> list[int]:
    """Kill what is left in a cgroup and remove it; the pids that would not die."""
    deadline = time.monotonic() + KILL_WAIT_S
    while True:
        try:
            pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        except FileNotFoundError:
            return []
        if not pids:
            with contextlib.suppress(OSError):
                group.rmdir()
            return []
        if time.monotonic() > deadline:
            return pids
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)
