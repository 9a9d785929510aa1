"""Grading kernels forked from a template process that has already imported the heavy
modules, each in a sandbox of its own with every property of grader.execution.sandbox's.

A fresh sandboxed kernel pays for ipykernel's imports and the course's libraries before its
first line runs (torch about 2.5 s of CPU, matplotlib.pyplot 0.9 s, ipykernel 0.4 s, plus
bwrap and the interpreter): a third of what grading a notebook costs. Here each grading
worker keeps one long-lived template process that imports them once, and forks every
submission's kernel from it. It imports ipykernel's modules and, of numpy, torch and
matplotlib (the libraries known to fork safely), those that the graded assignments' release
notebooks import, directly or through the course's own package (grader.execution.preload:
autograde names them in every Job; a template imports what its worker's first job names,
all three for a job line without a preload). A course without torch does not pay for it in
every worker; a kernel whose notebook uses what its template lacks imports it itself.

The template runs in a bwrap sandbox built by grader.execution.sandbox from the same allowlist as a
kernel's (read-only system and Python, an empty read-only root, a cleared environment, no
capability, fresh tmpfs folders, new user, PID, IPC, network, UTS and cgroup namespaces),
with one difference: it may make user namespaces (no `--disable-userns`). It never runs
student code, and holds no capability (not even in its own user namespace); a root grader
starts it as the worker's claimed uid (setpriv, from an outer bwrap that only makes the
Python installation reachable for that uid, as tests/unprivileged.py does), so that bwrap
builds it unprivileged. grader/execution/template_inside.py is what runs in it: per submission it
forks a child that makes new user, mount, PID, network, IPC and UTS namespaces, whose user
namespace may make no further user namespace (max_user_namespaces 0 in it: what
`--disable-userns` does), and whose init process enters a new cgroup namespace (once in
its cgroups), mounts a fresh /proc and fresh tmpfs
/submission, /tmp and /dev/shm, binds the submission's own connection folder over /ipc,
copies the files in, and forks the kernel, which drops every capability, sets
no_new_privs and the launcher's rlimits, closes every other file descriptor, reseeds what
the fork copied (numpy's and torch's global generators, Python's `random`,
multiprocessing's key), and starts ipykernel in-process. The worker talks to it over the
kernel's Unix sockets exactly as to a kernel of grader.execution.sandbox.

Why a user namespace per kernel, rather than one shared by the template and its kernels
(a template with CAP_SYS_ADMIN in its own, forking kernels that drop it): what the kernel
keeps per user namespace stays per submission, as with a kernel of its own bwrap (the user
and persistent keyrings, which one submission could otherwise leave for the next; the
process counts of RLIMIT_NPROC); the template needs no capability at all; and the
kernel's mounts of the template's file system are locked (a less privileged namespace
cannot unmount what hides what lies below them).

Per submission, the worker: makes a fresh connection folder inside the template's and fresh
cgroups (root); sends the request and the files (as descriptors) over the template's
socket; reads the pid of the submission's init from the socket's credentials (the kernel
translates it into the worker's PID namespace), moves it into the cgroups and only then
lets it go on, so that every process of the submission is in them; gets "started" from the
kernel. `Sandbox.clean()` kills that init's process tree (the PID namespace goes with it)
and empties the cgroups, and fails loudly if anything survives, as for any kernel.

The template must be single-threaded when it forks (it checks /proc/self/task before every
fork): numpy's OpenBLAS starts its threads when loaded, so it is loaded with one thread
and each kernel starts the number its environment asks for; matplotlib is preloaded only
where the kernels get a fixed backend (MPLBACKEND, Agg when grading), and the course's
own package not at all (its `import course` installs IPython hooks that need the kernel).
If the template cannot start, dies, or fails to start a kernel, it is started again; after
FAILURES failures in a row, and for a kernel spec other than python3's ipykernel, kernels
are started as before (grader.execution.sandbox), and the worker's log says so once.
GRADER_KERNEL_TEMPLATE=0 in the grader's environment turns the template off. The template
is PID 1 of its PID namespace and reaps what is left to it; it ends when the worker's end
of a pipe closes, however the worker ends (a parent-death signal would not reach it
through setpriv's change of uid), and each process above it is then reaped by its parent.

What differs from a kernel of its own: the kernel shares the template's memory layout
(address-space randomisation is per template, not per kernel) and its str hash seed;
/proc/self/cmdline shows the template's command; the modules above are imported already.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner

from grader.execution.sandbox import (
    HOME,
    INSIDE_CONNECTION,
    IPC,
    KILL_WAIT_S,
    UID_LOCKS,
    WORKDIR,
    Limits,
    Sandbox,
    SandboxError,
    _private_folder,
    _runtime_paths,
    _unmount,
    kernel_spec,
    make_cgroups,
    open_data,
    system_files,
)

SWITCH = "GRADER_KERNEL_TEMPLATE"  # "0": no template, a fresh kernel for each submission
# What the template imports: what every kernel imports before its first cell, then those of
# the libraries it may preload that the graded notebooks use (grader.execution.preload; all
# of them for a job that does not say): matplotlib's only where MPLBACKEND fixes the
# backend, as when grading.
KERNEL_MODULES = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    # What IPKernelApp.initialize() imports besides (ipykernel 7, IPython 9): pdb, the
    # history's sqlite3 and the rest, once in the template. Not its debugger (debugpy, 60 ms
    # per kernel): pydevd makes a Thread at import, and the kernel's threads would be named
    # otherwise than in a kernel of its own.
    "IPython.core.completerlib",
    "IPython.extensions.storemagic",
    "faulthandler",
    "psutil",
    "sqlite3",
    "tornado.platform.asyncio",
    "tornado.queues",
    # What formats a failing cell's traceback, which every graded notebook has (each test
    # cell's twin fails): the template formats one (template_inside's warm_tracebacks).
    "IPython.core.ultratb",
    "pygments.formatters.terminal256",
    "stack_data",
)
LIBRARIES = ("numpy", "torch")
LIBRARIES_WITH_BACKEND = ("matplotlib", "matplotlib.pyplot")
START_S = 300  # the template's imports, on a machine busy grading
HANDSHAKE_S = 60
FAILURES = 2  # template failures after which a worker starts kernels as before
MAX_MESSAGE = 1 << 16
_LOADER = "import sys; exec(compile(sys.stdin.read(), 'grader-template', 'exec'))"


def enabled() -> bool:
    return os.environ.get(SWITCH, "1") != "0"


def template_modules(preload: tuple[str, ...] | None) -> list[str]:
    """The library modules a template imports for a job's `preload` (None: all of them)."""
    modules = list(LIBRARIES)
    if "MPLBACKEND" in os.environ:  # what the kernel's environment will say
        modules += LIBRARIES_WITH_BACKEND
    return [m for m in modules if preload is None or m.split(".")[0] in preload]


class TemplateUnavailable(Exception):
    """The template could not start a kernel; nothing of the submission ran."""


class TemplateSandbox(Sandbox):
    """A grader.execution.sandbox.Sandbox whose python3 kernels come from a template process."""

    def __init__(self, limits: Limits | None = None, log=None):
        super().__init__(limits)
        self.log = log if log is not None else sys.stderr
        self.template: Template | None = None
        self.kernel: ForkedKernel | None = None
        self.failures = 0
        self.off: str | None = None  # why this worker's kernels do not come from a template
        self.said: set[str] = set()
        # The first job's, for every template of this worker: a later job that uses more
        # still gets a forked kernel, which imports the rest itself.
        self.preload: tuple[str, ...] | None = None
        self.preload_chosen = False

    def choose_preload(self, preload: tuple[str, ...] | None) -> None:
        """What the template imports (a Job's preload), if no template was started yet;
        the template starts now, importing while the worker prepares the job."""
        if self.preload_chosen:
            return
        self.preload, self.preload_chosen = preload, True
        if self.template is None and self.off is None:
            self._start_template()

    # --- per kernel ----------------------------------------------------------------

    def start(self, files: Path | None, kernel_name: str):
        if kernel_name != "python3":
            self._say(
                f"a notebook for the kernel {kernel_name!r} gets a kernel of its own: "
                "the template makes python3 kernels only"
            )
            return super().start(files, kernel_name)
        template = self._ready_template()
        if template is None:
            return super().start(files, kernel_name)
        self.clean()
        self.run_dir = Path(tempfile.mkdtemp(prefix="s-", dir=template.ipc))
        if self.uid is not None:
            os.chown(self.run_dir, self.uid, self.uid)
        km = TemplateKernelManager(
            kernel_name=kernel_name,
            transport="ipc",
            ip=str(self.run_dir / "kernel"),
            connection_file=str(self.run_dir / "kernel.json"),
        )
        spec = kernel_spec(km)
        argv = spec.argv
        if argv[1:] != ["-m", "ipykernel_launcher", "-f", "{connection_file}"]:
            self._give_up(f"the python3 kernel spec is not ipykernel's ({argv})")
            return super().start(files, kernel_name)
        km.sandbox = self
        # An interrupt as a message, as for grader.execution.sandbox's kernels.
        spec.interrupt_mode = "message"
        self.files = self._open_submission_files(files)
        if self.root:
            self.cgroups = make_cgroups(self.limits)
        return self.run_dir, km

    def spawn(self, argv: list[str]) -> ForkedKernel:
        """Fork this submission's kernel from the template (after start())."""
        if self.template is None:
            raise TemplateUnavailable("the template is gone")
        self.kernel = self.template.spawn(
            self.prepared_dir().name, argv, self.files, self.limits, self.cgroups
        )
        self.process = psutil.Process(self.kernel.pid)  # what clean() kills
        self.failures = 0  # FAILURES in a row make the worker give the template up
        return self.kernel

    def template_failed(self, error: Exception) -> None:
        """The template failed to start a kernel (the worker grades the submission again)."""
        self._stop_template()
        self.failures += 1
        if self.failures >= FAILURES:
            self._give_up(str(error))
        else:
            self._say(f"the kernel template failed ({error}); starting a new one")

    def lasting_pids(self) -> set[int]:
        return self.template.pids() if self.template is not None else set()

    def clean(self) -> None:
        try:
            super().clean()
        finally:
            if self.kernel is not None:
                self.kernel.close()
                self.kernel = None

    def close(self) -> None:
        try:
            self.clean()
        finally:
            self._stop_template()
            super().close()

    # --- the template --------------------------------------------------------------

    def _start_template(self) -> None:
        self.preload_chosen = True  # too late for another preload: this one is imported
        try:
            self.template = Template(self)
        except (OSError, SandboxError, subprocess.SubprocessError) as error:
            self._give_up(f"it could not be started: {error}")

    def _ready_template(self) -> Template | None:
        while self.off is None:
            if self.template is not None and not self.template.alive():
                error = TemplateUnavailable(f"it ended: {self.template.log_tail()}")
                self._stop_template()
                self.template_failed(error)
                continue
            if self.template is None:
                self._start_template()
                continue
            try:
                self.template.wait_ready()
                return self.template
            except TemplateUnavailable as error:
                self.template_failed(error)
        return None

    def _stop_template(self) -> None:
        if self.template is not None:
            template, self.template = self.template, None
            template.stop()

    def _give_up(self, reason: str) -> None:
        self._stop_template()
        self.off = reason
        self._say(f"kernels are started one by one, not from a template: {reason}")

    def _say(self, message: str) -> None:
        if message not in self.said:
            self.said.add(message)
            print(f"grader.execution.worker: {message}", file=self.log, flush=True)


class TemplateKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel is forked by the template (see TemplateSandbox)."""

    sandbox: TemplateSandbox | None = None

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        sandbox = self.sandbox
        if sandbox is None:
            raise SandboxError("a template kernel manager without its sandbox (see start())")
        command = list(kernel_cmd)
        if command[1:3] != ["-m", "ipykernel_launcher"]:
            raise TemplateUnavailable(f"not an ipykernel command: {command[:3]}")
        argv = [
            f"{IPC}/{INSIDE_CONNECTION}" if arg == self.connection_file else arg
            for arg in command[3:]
        ]
        # The kernel's copy of the connection file, as grader.execution.sandbox writes it.
        info = json.loads(Path(self.connection_file).read_text())
        info["ip"] = f"{IPC}/kernel"
        inside = sandbox.prepared_dir() / INSIDE_CONNECTION
        inside.write_text(json.dumps(info))
        inside.chmod(0o600)
        if sandbox.uid is not None:
            os.chown(inside, sandbox.uid, sandbox.uid)
        process = sandbox.spawn(argv)
        provisioner = self.provisioner
        if not isinstance(provisioner, LocalProvisioner):
            raise SandboxError(f"a kernel launched by {type(provisioner).__name__}, not locally")
        # ForkedKernel has what the provisioner uses of a Popen, which is what jupyter_client
        # types the attribute as.
        provisioner.process = process  # type: ignore[assignment]
        provisioner.pid, provisioner.pgid = process.pid, None
        self._reconcile_connection_info(provisioner.connection_info)


class ForkedKernel:
    """What jupyter_client's provisioner needs of a Popen, for the submission's init: a
    process this worker did not start (the template did), watched through a pidfd."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, pidfd: int):
        self.pid, self.pidfd = pid, pidfd
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and (
            self.pidfd < 0 or select.select([self.pidfd], [], [], 0)[0]
        ):
            self.returncode = -signal.SIGKILL  # its exit status is its parent's to read
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        start = time.monotonic()
        while (returncode := self.poll()) is None:
            remaining = None
            if timeout is not None:
                remaining = timeout - (time.monotonic() - start)
                if remaining <= 0:
                    raise subprocess.TimeoutExpired(str(self.pid), timeout)
            select.select([self.pidfd], [], [], remaining)
        return returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def close(self) -> None:
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1


class Template:
    """One template process, its folder (on the host) and the socket it serves on."""

    def __init__(self, sandbox: TemplateSandbox):
        self.sandbox = sandbox
        parent = _private_folder(UID_LOCKS) if sandbox.root else None
        # Named as grader.execution.sandbox names its folders: sweep_leftovers removes it if the
        # worker is killed.
        self.dir = Path(
            tempfile.mkdtemp(prefix=f"grader-sandbox-{os.getpid()}-template-", dir=parent)
        )
        self.ipc = self.dir / "ipc"
        self.ipc_mounted = False
        self.process: subprocess.Popen | None = None
        self.ready = False
        self._pids: set[int] = set()
        self.pid: int | None = None  # the template's own, once ready
        self.expected_uid = sandbox.uid if sandbox.uid is not None else os.getuid()
        self.lifeline = -1
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fds: list[int] = []
        # The template ends when this end closes, however the worker ends (a parent-death
        # signal would not reach it: the uid changes on the way, and bwrap as root keeps no
        # capability to signal another uid).
        lifeline, self.lifeline = os.pipe()
        fds.append(lifeline)
        try:
            self.ipc_mounted = sandbox._make_ipc(self.ipc)
            listener.bind(str(self.dir / "template.sock"))
            listener.listen(8)
            etc_files, files = system_files()
            fds += [fd for fd, _ in [*etc_files, *files]]
            code = open_data(Path(__file__).with_name("template_inside.py").read_text())
            fds.append(code)
            with open(self.dir / "template.log", "wb") as log:
                # A session of its own: a kill of the worker's process group (grader.execution.pool)
                # leaves it to end by the lifeline, each process reaped by its parent.
                self.process = subprocess.Popen(
                    self._command(listener.fileno(), lifeline, etc_files, files),
                    stdin=code,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    pass_fds=[listener.fileno(), *fds],
                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                    start_new_session=True,
                )
        except BaseException:
            self.stop()
            raise
        finally:
            listener.close()  # the template's copy is the one it serves on
            for fd in fds:
                os.close(fd)

    def _command(self, listener: int, lifeline: int, etc_files, files) -> list[str]:
        sandbox = self.sandbox
        spec = importlib.util.find_spec("ipykernel_launcher")
        config = {
            "listener": listener,
            "lifeline": lifeline,
            "kernel_modules": list(KERNEL_MODULES),
            "libraries": template_modules(sandbox.preload),
            "home": HOME,
            "workdir": WORKDIR,
            "ipc": IPC,
            "runtime": [str(p) for p in _runtime_paths()],
            "launcher": spec.origin if spec else "ipykernel_launcher",
        }
        # The template is PID 1 of its namespace (no bwrap init above it: bwrap's parent
        # process reaps it, and it reaps what is left to it).
        command = [
            sandbox.bwrap,
            *sandbox.one_bwrap(self.ipc, etc_files, files, nested_userns=True),
            "--as-pid-1",
            "--",
            sys.executable,
            "-c",
            _LOADER,
            json.dumps(config),
        ]
        if sandbox.uid is None:
            return command
        # Root: bwrap runs as the sandbox's uid, unprivileged, as for a grader without
        # root; an outer bwrap only makes what it binds reachable for that uid. (No
        # --die-with-parent: the lifeline ends the template, and then each bwrap in turn.)
        return [
            sandbox.bwrap,
            "--dev-bind",
            "/",
            "/",
            *_reachable([*_runtime_paths(), self.ipc]),
            "--",
            "/usr/bin/setpriv",
            f"--reuid={sandbox.uid}",
            f"--regid={sandbox.uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
            *command,
        ]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _running(self) -> subprocess.Popen:
        """The template's outermost process (bwrap's), until stop()."""
        if self.process is None:
            raise TemplateUnavailable("it was stopped")
        return self.process

    def pids(self) -> set[int]:
        """The template's processes (bwrap's and its own): the worker must spare them."""
        if self.ready or self.process is None:
            return set(self._pids)
        return _tree(self.process.pid)  # no kernel was forked yet: all of it is the template

    def log_tail(self) -> str:
        try:
            lines = (self.dir / "template.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        return (lines or ["no message"])[-1][-300:]

    def wait_ready(self) -> None:
        """Wait for the imports, then fork a kernel that only checks what it got."""
        if self.ready:
            return
        process = self.spawn(".probe", [], [], self.sandbox.limits, [], probe=True, timeout=START_S)
        try:
            process.wait(HANDSHAKE_S)
        except subprocess.TimeoutExpired as error:
            raise TemplateUnavailable("its check did not end") from error
        finally:
            process.close()
        self.pid = self._find()
        if self.pid is None:
            raise TemplateUnavailable("its process was not found")
        self._pids = {self.pid, *(set(_ancestors(self.pid)) & _tree(self._running().pid))}
        self.ready = True

    def _find(self) -> int | None:
        """The template's pid: PID 1 of the first PID namespace below the worker's (bwrap's
        processes are above it)."""
        depth = len(_ns_pids(os.getpid()))
        tree = _tree(self._running().pid)
        return next((pid for pid in tree if _ns_pids(pid)[depth:] == [1]), None)

    def spawn(
        self,
        name: str,
        argv: list[str],
        files,
        limits: Limits,
        cgroups,
        *,
        probe: bool = False,
        timeout: float = HANDSHAKE_S,
    ) -> ForkedKernel:
        """Have the template fork a kernel whose connection folder is `name` (in its /ipc),
        with the launcher's limits; move its init into `cgroups` before it goes on."""
        deadline = time.monotonic() + timeout
        if probe:
            (self.ipc / name).mkdir(mode=0o700, exist_ok=True)
            if self.sandbox.uid is not None:
                os.chown(self.ipc / name, self.sandbox.uid, self.sandbox.uid)
        request = {
            "ipc": name,
            "argv": argv,
            "files": [inside for _, inside in files],
            "disk": limits.disk,
            "probe": probe,
            "limits": {
                "DATA": limits.memory,
                "NPROC": limits.processes,
                "FSIZE": limits.file_size,
                "CORE": 0,
                "NOFILE": limits.open_files,
            },
        }
        kernel = None
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
                conn.connect(str(self.dir / "template.sock"))
                data = json.dumps(request).encode()
                if files:
                    socket.send_fds(conn, [data], [fd for fd, _ in files])
                else:
                    conn.send(data)
                answer, pid, uid = self._receive(conn, deadline)
                if answer.get("state") != "ready" or pid is None:
                    raise TemplateUnavailable(answer.get("error") or f"it answered {answer}")
                if uid != self.expected_uid or self._running().pid not in _ancestors(pid):
                    raise TemplateUnavailable(f"process {pid} (uid {uid}) is not the template's")
                kernel = ForkedKernel(pid, os.pidfd_open(pid))
                for group in cgroups:  # before it goes on: all its processes are in them
                    (group / "cgroup.procs").write_text(str(pid))
                conn.send(json.dumps({"go": True}).encode())
                answer, _, _ = self._receive(conn, deadline)
                if answer.get("state") != ("probed" if probe else "started"):
                    raise TemplateUnavailable(answer.get("error") or f"it answered {answer}")
                if probe:
                    _check_probe(answer)
        except (OSError, ValueError) as error:
            self._abandon(kernel)
            raise TemplateUnavailable(f"{type(error).__name__}: {error}") from error
        except BaseException:
            self._abandon(kernel)
            raise
        finally:
            if probe:
                _remove(self.ipc / name)
        return kernel

    def _receive(self, conn: socket.socket, deadline: float):
        """One message, and the pid and uid of the process that sent it."""
        size = socket.CMSG_SPACE(struct.calcsize("3i"))
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TemplateUnavailable("no answer in time")
            if not select.select([conn], [], [], min(remaining, 0.5))[0]:
                if not self.alive():
                    raise TemplateUnavailable(f"it ended: {self.log_tail()}")
                continue
            try:
                data, ancillary, _, _ = conn.recvmsg(MAX_MESSAGE, size)
            except ConnectionResetError:
                data = b""
            if not data:  # the template or its child ended: why, if the template did
                try:
                    self._running().wait(5)
                except subprocess.TimeoutExpired:
                    raise TemplateUnavailable("it closed the connection") from None
                raise TemplateUnavailable(f"it ended: {self.log_tail()}")
            pid = uid = None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid, uid, _ = struct.unpack("3i", payload[: struct.calcsize("3i")])
            return json.loads(data), pid, uid

    @staticmethod
    def _abandon(kernel: ForkedKernel | None) -> None:
        if kernel is not None:
            kernel.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                kernel.wait(10)
            kernel.close()

    def stop(self) -> None:
        """Kill the template and everything under it; remove its folder."""
        survivors = []
        if self.process is not None:
            template = self.pid or self._find()
            if template is not None:
                # From the inside out: bwrap's processes end with the template, each reaped
                # by its parent (killed at once, they would be left to this machine's init).
                try:
                    psutil.Process(template).kill()
                    self.process.wait(KILL_WAIT_S)
                except (psutil.NoSuchProcess, subprocess.TimeoutExpired):
                    pass
            with contextlib.suppress(psutil.NoSuchProcess):
                survivors = Sandbox._kill_tree(psutil.Process(self.process.pid))
            self.process.wait()
            self.process = None
        if self.lifeline >= 0:
            os.close(self.lifeline)
            self.lifeline = -1
        if self.ipc_mounted:
            _unmount(self.ipc)
            self.ipc_mounted = False
        _remove(self.dir)
        if survivors:
            raise SandboxError(f"template processes survived SIGKILL: {sorted(survivors)}")


def _check_probe(answer: dict) -> None:
    """What the kernel of the first fork saw of itself: nothing it may not have."""
    seen = answer.get("status", {})
    caps = {k: seen.get(k) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    if any(int(v or "1", 16) for v in caps.values()) or seen.get("NoNewPrivs") != "1":
        raise TemplateUnavailable(f"its kernels keep privileges: {seen}")
    if not answer.get("userns") or not answer.get("mount"):
        raise TemplateUnavailable("its kernels can make user namespaces or mount")
    if answer.get("pid") != 2:
        raise TemplateUnavailable(f"its kernel is process {answer.get('pid')}, not 2")


def _reachable(paths: list[Path]) -> list[str]:
    """Options of a bwrap run as root that let another user reach `paths`: each folder on
    the way that others may not enter becomes an empty tmpfs with the paths bound back."""
    blocked = sorted(
        {
            folder
            for path in paths
            for folder in path.parents
            if not os.stat(folder).st_mode & stat.S_IXOTH
        },
        key=lambda folder: len(folder.parts),
    )
    args = []
    for folder in blocked:
        args += ["--perms", "0755", "--tmpfs", str(folder)]
        for path in paths:
            if folder in path.parents:
                for parent in reversed(path.parents):
                    if folder in parent.parents:
                        args += ["--perms", "0755", "--dir", str(parent)]
                args += ["--bind", str(path), str(path)]
    return args


def _tree(pid: int) -> set[int]:
    """`pid` and its descendants but zombies (none if `pid` is gone)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return set()
    tree = {pid}
    for child in children:
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                tree.add(child.pid)
        except psutil.Error:  # gone meanwhile
            pass
    return tree


def _ancestors(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).parents()]
    except psutil.Error:
        return []


def _ns_pids(pid: int) -> list[int]:
    """The pids of a process in its PID namespace and those above it, innermost last."""
    try:
        with open(f"/proc/{pid}/status") as f:
            line = next((line for line in f if line.startswith("NSpid:")), "NSpid:")
    except OSError:
        return []
    return [int(n) for n in line.split()[1:]]


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
