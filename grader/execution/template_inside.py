"""The template process: runs inside a grading sandbox, forks one kernel per submission.

This file is not imported by the grader. grader.execution.template_kernel hands its text to a Python
started in a bubblewrap sandbox (on its stdin), so it uses the standard library only and
nothing of the `grader` package, which the sandbox does not contain. It never runs a line
of student code itself; it imports the modules every grading kernel imports, then serves
one request at a time on a listening Unix socket it was given (a file descriptor: no path
of it exists inside any sandbox).

A request (JSON, with the submission's files as file descriptors) becomes three processes:

1. a child of the template enters new user, mount, PID, network, IPC and UTS namespaces
   (its user namespace maps the sandbox's uid to itself, nothing else, and may create no
   further user namespace), forks, drops its capabilities and waits;
2. that fork is PID 1 of the new PID namespace, the submission's init: it tells the worker
   it is there (the worker reads its pid from the socket's credentials and moves it into
   the submission's cgroups), waits for the go, enters a new cgroup namespace, mounts a
   fresh /proc, fresh size-limited tmpfs on /submission, /tmp and /dev/shm, binds the
   submission's own connection folder over /ipc, copies the files in, sets the limits, and
   forks the kernel; then it drops every capability and only reaps, exiting with the
   kernel (which takes the namespace, and every process in it, down);
3. the kernel (PID 2): a new session, no capability (effective, permitted, inheritable,
   ambient and bounding sets empty), no new privileges, checked in /proc/self/status;
   reseeded random generators; no file descriptor but 0, 1 and 2 (/dev/null); then
   ipykernel's IPKernelApp in this very process, with the argv the kernel spec would give.
"""

import contextlib
import ctypes
import gc
import importlib
import json
import os
import random
import resource
import select
import signal
import socket
import stat
import sys
import warnings
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 4, 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
CAPABILITY_VERSION_3 = 0x20080522
MAX_MESSAGE = 1 << 20
MAX_FDS = 253  # SCM_MAX_FD
REAP_S = 0.02  # how often the template reaps its exited children while it waits
HOME_LIMIT = 64 << 20  # bytes of the template's HOME copied into each kernel's
STATUS_FIELDS = (
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
    "Uid",
    "Gid",
    "Groups",
    "Threads",
)

_libc = ctypes.CDLL(None, use_errno=True)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source, target: str, fstype, flags: int, data=None) -> None:
    _check(
        _libc.mount(
            source and source.encode(),
            target.encode(),
            fstype and fstype.encode(),
            ctypes.c_ulong(flags),
            data and data.encode(),
        ),
        f"mount {target}",
    )


def _prctl(option: int, *args: int) -> None:
    c_args = [ctypes.c_ulong(a) for a in (*args, 0, 0, 0, 0)[:4]]
    _check(_libc.prctl(option, *c_args), f"prctl {option}")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def open_fds() -> list[int]:
    names = os.listdir("/proc/self/fd")  # with the folder's own, closed again after it
    return sorted(int(name) for name in names if os.path.lexists(f"/proc/self/fd/{name}"))


def status() -> dict[str, str]:
    """The fields of /proc/self/status that say who this process is and what it may do."""
    with open("/proc/self/status") as f:
        lines = dict(line.rstrip("\n").split(":", 1) for line in f if ":" in line)
    return {key: lines.get(key, "").strip() for key in STATUS_FIELDS}


def _send(conn: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):
        conn.send(json.dumps(message).encode())


def _error(error: BaseException) -> dict:
    return {"error": f"{type(error).__name__}: {error}"}


# --- the template ---------------------------------------------------------------------


class Template:
    def __init__(self, config: dict):
        self.config = config
        self.home = config["home"]
        # OpenBLAS libraries whose threads start in each kernel (threadpoolctl's controllers,
        # untyped), and how many
        self.blas: list[Any] = []
        self.blas_threads = 1
        with open("/proc/sys/kernel/cap_last_cap") as f:
            self.last_cap = int(f.read())
        self.preload()
        self.home_files = self.snapshot(self.home, self.config.get("runtime", []))
        gc.collect()

    def preload(self) -> None:
        """Import what every kernel imports: ipykernel, then the libraries. OpenBLAS starts
        its threads when it is loaded, and a process with threads must not fork: it is
        loaded with one thread, and each kernel starts the number its environment asks
        for (what it would have started)."""
        wanted = _blas_threads(os.environ)
        saved = os.environ.get("OPENBLAS_NUM_THREADS")
        if wanted > 1:
            os.environ["OPENBLAS_NUM_THREADS"] = "1"
        try:
            for name in self.config["kernel_modules"]:
                importlib.import_module(name)
            filters = list(warnings.filters)
            for name in self.config["libraries"]:
                importlib.import_module(name)
            # The warnings filters the libraries added: each kernel puts them first again.
            self.filters = [f for f in warnings.filters if f not in filters]
            self.warm_tracebacks()
        finally:
            if saved is None:
                os.environ.pop("OPENBLAS_NUM_THREADS", None)
            else:
                os.environ["OPENBLAS_NUM_THREADS"] = saved
        if wanted > 1:
            from threadpoolctl import ThreadpoolController

            self.blas = ThreadpoolController().select(internal_api="openblas").lib_controllers
            self.blas_threads = wanted

    @staticmethod
    def warm_tracebacks() -> None:
        """Format one traceback as a kernel's shell does (its mode and colours). Each kernel's
        first error would otherwise pay for what stays: pygments compiles its Python lexer
        and styles, and inspect.getmodule maps the file of every module imported (a realpath
        each, a few thousand with torch), 50-100 ms of CPU per kernel. Only caches change:
        the kernel formats its errors as before (a test compares them)."""
        from ipykernel.zmqshell import ZMQInteractiveShell
        from IPython.core.ultratb import AutoFormattedTB

        traits = ZMQInteractiveShell.class_traits()
        formatter = AutoFormattedTB(
            mode=traits["xmode"].default(), theme_name=traits["colors"].default()
        )
        try:
            json.loads("{")
        except ValueError as error:
            formatter.structured_traceback(type(error), error, error.__traceback__)

    @staticmethod
    def snapshot(home: str, runtime: list[str]) -> list[tuple[str, int, bytes | None]]:
        """What the imports left in HOME (matplotlib's font list, its folders): (path,
        mode, content or None for a folder), for each kernel's fresh HOME. Not the runtime
        paths bound inside it (a clone under /tmp), nor the folders that lead to them:
        `mounts` binds those again."""
        entries: list[tuple[str, int, bytes | None]] = []
        size = 0
        for folder, names, files in os.walk(home):
            names[:] = [
                name
                for name in names
                if not any(
                    os.path.commonpath([os.path.join(folder, name), path])
                    == os.path.join(folder, name)
                    for path in runtime
                )
            ]
            for name in sorted(names):
                path = os.path.join(folder, name)
                entries.append((path, stat.S_IMODE(os.lstat(path).st_mode), None))
            for name in sorted(files):
                path = os.path.join(folder, name)
                info = os.lstat(path)
                if stat.S_ISREG(info.st_mode) and size + info.st_size <= HOME_LIMIT:
                    with open(path, "rb") as f:
                        entries.append((path, stat.S_IMODE(info.st_mode), f.read()))
                    size += info.st_size
        return entries

    def serve(self, listener: socket.socket, lifeline: int) -> None:
        while True:
            # As PID 1 of its namespace the template reaps what is left to it (a kernel's
            # init whose parent the worker killed), also while it waits: every REAP_S, since
            # the worker's clean-up waits until the killed processes are gone, zombies too
            # (with a 1 s wait that was 0.4 s of an idle grading slot per submission).
            # With no child left there is nothing to reap until the next request forks one
            # (orphans come only from descendants): an idle template sleeps until then.
            children = self.reap()
            watched = [listener.fileno(), lifeline]
            ready = select.select(watched, [], [], REAP_S if children else None)[0]
            if lifeline in ready:  # the worker is gone: so is everything in this namespace
                os._exit(0)
            if not ready:
                continue
            conn, _ = listener.accept()
            try:
                data, fds, _, _ = socket.recv_fds(conn, MAX_MESSAGE, MAX_FDS)
                request = json.loads(data)
            except (OSError, ValueError):
                conn.close()
                continue
            if threads() != 1:  # a fork now would copy locks that other threads hold
                _send(
                    conn,
                    {"error": f"the template has {threads()} threads; it must have one to fork"},
                )
                sys.exit(3)
            # The template's objects out of the collector's reach: a collection in the
            # kernel would otherwise write to (and so copy) every page of them.
            gc.freeze()
            pid = os.fork()
            if pid == 0:
                self.child(listener, conn, request, fds)  # returns only as the kernel exits
                raise SystemExit(0)
            for fd in fds:
                os.close(fd)
            conn.close()
            # It waits for the submission's init, which ends with the kernel (or is killed
            # by the worker); the next request comes after that.
            self.wait_for(pid, lifeline)

    @staticmethod
    def wait_for(pid: int, lifeline: int) -> None:
        """Reap the child `pid` as soon as it ends, through a pidfd: the worker's clean-up
        waits until the processes it killed are gone, zombies too (polled every 0.5 s, that
        was 0.25 s of an idle grading slot per submission). Exits when the worker is gone."""
        try:
            pidfd: int | None = os.pidfd_open(pid)
        except OSError:  # before Linux 5.3: look every REAP_S
            pidfd = None
        watched = [lifeline] if pidfd is None else [lifeline, pidfd]
        try:
            while not os.waitpid(pid, os.WNOHANG)[0]:
                ready = select.select(watched, [], [], REAP_S if pidfd is None else None)[0]
                if lifeline in ready:
                    os._exit(0)
        finally:
            if pidfd is not None:
                os.close(pidfd)

    @staticmethod
    def reap() -> bool:
        """Reap the children that have exited; whether any child is left."""
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            return False
        return True

    # --- a submission -------------------------------------------------------------------

    def child(self, listener, conn, request, fds) -> None:
        """In the template's child: new namespaces, then fork the submission's init and wait
        for it, with no capability left (each process's parent reaps it: nothing is left
        to bwrap's or this machine's init)."""
        try:
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.close(devnull)
            uid, gid = os.getuid(), os.getgid()
            _check(
                _libc.unshare(
                    CLONE_NEWUSER
                    | CLONE_NEWNS
                    | CLONE_NEWPID
                    | CLONE_NEWNET
                    | CLONE_NEWIPC
                    | CLONE_NEWUTS
                ),
                "unshare",
            )
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1")
            _write("/proc/self/gid_map", f"{gid} {gid} 1")
            # No user namespace may be made in this one: what bwrap's --disable-userns does.
            _write("/proc/sys/user/max_user_namespaces", "0")
            pid = os.fork()
        except BaseException as error:
            _send(conn, _error(error))
            os._exit(1)
        if pid == 0:
            self.init(listener, conn, request, fds)
            return
        try:
            os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
            _prctl(PR_SET_DUMPABLE, 0)
            self.drop_privileges()
            os.waitpid(pid, 0)
        finally:
            os._exit(0)

    def init(self, listener, conn, request, fds) -> None:
        """PID 1 of the submission's namespaces."""
        try:
            _send(conn, {"state": "ready"})  # the worker moves us into the cgroups
            if json.loads(conn.recv(MAX_MESSAGE) or b"{}").get("go") is not True:
                os._exit(1)
            with contextlib.suppress(OSError):  # as bwrap's --unshare-cgroup-try
                _check(_libc.unshare(CLONE_NEWCGROUP), "unshare cgroup")
            self.mounts(request)
            self.populate(request, fds)
            for fd in fds:
                os.close(fd)
            os.chdir(self.config["workdir"])
            self.limit(request["limits"])
            _prctl(PR_SET_DUMPABLE, 0)  # the kernel may not ptrace its init
            kernel = os.fork()
        except BaseException as error:
            _send(conn, _error(error))
            os._exit(1)
        if kernel == 0:
            _prctl(PR_SET_DUMPABLE, 1)
            self.kernel(listener, conn, request)
            return
        try:
            os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # PID 1: signals from inside drop
            self.drop_privileges()
        except BaseException:
            os.kill(kernel, signal.SIGKILL)
            os._exit(1)
        while True:  # reap orphans; leave with the kernel (the namespace goes with us)
            pid, code = os.waitpid(-1, 0)
            if pid == kernel:
                os._exit(os.waitstatus_to_exitcode(code) & 0xFF)

    def mounts(self, request) -> None:
        disk = int(request["disk"])
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        fresh = (self.config["workdir"], self.home, "/dev/shm")  # noqa: S108 (the sandbox's own)
        # Python, the venv or the course inside one of those folders (a clone under /tmp):
        # held open now, bound again over the fresh tmpfs, read-only, as bwrap does for
        # the template.
        hidden = [
            (path, os.open(path, os.O_PATH | os.O_DIRECTORY))
            for path in self.config.get("runtime", [])
            if any(os.path.commonpath([path, f]) == f for f in fresh)
        ]
        # The folders down to them, with the modes the template sees (bwrap made those).
        folders = {}
        for path, _ in hidden:
            while path not in fresh and path != "/":
                folders[path] = stat.S_IMODE(os.stat(path).st_mode)
                path = os.path.dirname(path)
        for folder in fresh:
            _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, f"size={disk},mode=0755")
        for folder in sorted(folders):
            if not os.path.isdir(folder):
                os.mkdir(folder)
                os.chmod(folder, folders[folder])
        for path, fd in hidden:
            _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
            _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
            os.close(fd)
        name = request["ipc"]
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"not a folder name: {name!r}")
        ipc = self.config["ipc"]
        _mount(f"{ipc}/{name}", ipc, None, MS_BIND)

    def populate(self, request, fds) -> None:
        """The fresh HOME gets what the imports left in the template's; the working folder
        the submission's files, each as bwrap's --file would make it (0644)."""
        for path, mode, content in self.home_files:
            if content is None:
                os.mkdir(path)
                os.chmod(path, mode)
            else:
                _write_file(path, content, mode)
        files = request["files"]
        if len(files) != len(fds):
            raise ValueError(f"{len(files)} file names for {len(fds)} files")
        workdir = self.config["workdir"]
        for inside, fd in zip(files, fds, strict=True):
            path = os.path.normpath(inside)
            if os.path.commonpath([path, workdir]) != workdir or path == workdir:
                raise ValueError(f"a file outside {workdir}: {inside!r}")
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            try:
                os.fchmod(out, 0o644)
                while os.sendfile(out, fd, None, 1 << 20):
                    pass
            finally:
                os.close(out)

    @staticmethod
    def limit(limits: dict) -> None:
        """The launcher's rlimits (grader.execution.sandbox): counted in this user namespace."""
        for name in ("DATA", "NPROC", "FSIZE", "CORE", "NOFILE"):
            value = int(limits[name])
            resource.setrlimit(getattr(resource, "RLIMIT_" + name), (value, value))

    def drop_privileges(self) -> None:
        """No capability in any set, none to gain: bounding set, ambient, capset, and
        no_new_privs (the uid is not 0 and 0 is not mapped: no root to become)."""
        for cap in range(self.last_cap + 1):
            _prctl(PR_CAPBSET_DROP, cap)
        _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
        header = _CapHeader(CAPABILITY_VERSION_3, 0)
        data = (_CapData * 2)()
        _check(_libc.capset(ctypes.byref(header), data), "capset")
        _prctl(PR_SET_NO_NEW_PRIVS, 1)

    def kernel(self, listener, conn, request) -> None:
        """PID 2: the kernel, in this process."""
        try:
            os.setsid()
            self.drop_privileges()
            seen = status()
            if (
                any(int(seen[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"))
                or seen["NoNewPrivs"] != "1"
            ):
                raise RuntimeError(f"privileges left: {seen}")
            self.reseed()
            for library in self.blas:
                library.set_num_threads(self.blas_threads)
            argv = [str(a) for a in request["argv"]]
            if request.get("probe"):
                _send(
                    conn,
                    {
                        "state": "probed",
                        "status": seen,
                        "userns": _userns_blocked(),
                        "mount": _mount_blocked(),
                        "pid": os.getpid(),
                    },
                )
                os._exit(0)
            _send(conn, {"state": "started"})
            for sock in (conn, listener):
                os.close(sock.detach())
            os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
            launcher = self.config["launcher"]
            # What `python -m ipykernel_launcher ARGS` would have made of the interpreter.
            sys.argv = [launcher, *argv]
            sys.orig_argv = [sys.executable, "-m", "ipykernel_launcher", *argv]
            del sys.path[0]  # the -c's "", which ipykernel_launcher removes
        except BaseException as error:
            _send(conn, _error(error))
            os._exit(1)
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()  # as launch_new_instance(), with one step between
        app.initialize()
        # IPython formats each error a second time, in full, for the history that only its
        # %notebook magic exports: half the CPU of a failing cell (every twin of a test cell
        # fails) for nothing a grading kernel is asked for. The error's name and value stay.
        shell = app.shell
        if shell is not None and hasattr(shell, "_format_exception_for_storage"):
            shell._format_exception_for_storage = _error_for_history
        # The libraries' warnings filters go before IPython's, as when a notebook imports
        # them in a kernel of its own (the first filter that matches decides).
        # typeshed types warnings.filters a Sequence: it is the list the module reads, and
        # _filters_mutated (private, in no stub) drops the caches made with the old one.
        filters = self.filters + [f for f in warnings.filters if f not in self.filters]
        warnings.filters[:] = filters  # type: ignore[index]
        warnings._filters_mutated()  # type: ignore[attr-defined]
        app.start()

    @staticmethod
    def reseed() -> None:
        """What a fork would make the same in every kernel: the random generators seeded
        when the template imported them (numpy's global RandomState, torch's default
        generator; Python's `random` reseeds itself after a fork, once more does no harm),
        multiprocessing's authentication key, tempfile's name sequence."""
        random.seed()
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed()
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.seed()
        process = sys.modules.get("multiprocessing.process")
        if process is not None:
            process.current_process().authkey = os.urandom(32)
        tempfile = sys.modules.get("tempfile")
        if tempfile is not None:
            tempfile._name_sequence = None  # type: ignore[attr-defined]  # private, in no stub


def _error_for_history(exception: BaseException, *args: Any, **kwargs: Any) -> dict:
    """What IPython's InteractiveShell._format_exception_for_storage stores, without the
    traceback."""
    return {"ename": type(exception).__name__, "evalue": str(exception), "traceback": []}


def _write_file(path: str, content: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _blas_threads(environ) -> int:
    """The threads OpenBLAS starts when it is loaded: the first of OPENBLAS_NUM_THREADS,
    GOTO_NUM_THREADS and OMP_NUM_THREADS that is set, else the number of CPUs, at most that."""
    cpus = len(os.sched_getaffinity(0))
    for name in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"):
        try:
            value = int(environ.get(name, ""))
        except ValueError:
            continue
        if value > 0:
            return min(value, cpus)
    return cpus


def _link(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


def _userns_blocked() -> str:
    try:
        _check(_libc.unshare(CLONE_NEWUSER), "unshare user")
    except OSError as error:
        return _reason(error)
    return ""


def _mount_blocked() -> str:
    try:
        _mount("tmpfs", "/tmp", "tmpfs", 0, "size=4096")  # noqa: S108 (a probe, in a namespace)
    except OSError as error:
        return _reason(error)
    return ""


def _reason(error: OSError) -> str:
    """The errno's words (_check always gives one; the message, should anything else raise)."""
    return os.strerror(error.errno) if error.errno is not None else str(error)


def main(config: dict) -> None:
    listener_fd, lifeline = int(config["listener"]), int(config["lifeline"])
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # this program came on stdin
    os.close(devnull)
    # Nothing of bwrap's or the worker's but the socket to serve and the pipe whose end
    # tells the worker ended (the font caches bwrap copied in came as descriptors, and are
    # files of HOME now).
    for fd in set(open_fds()) - {0, 1, 2, listener_fd, lifeline}:
        os.close(fd)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    template = Template(config)
    if threads() != 1:
        raise SystemExit(f"the template has {threads()} threads after its imports")
    unexpected = set(open_fds()) - {0, 1, 2, listener_fd, lifeline}
    if unexpected:
        links = {fd: _link(fd) for fd in sorted(unexpected)}
        raise SystemExit(f"the template's imports left file descriptors open: {links}")
    template.serve(socket.socket(fileno=listener_fd), lifeline)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
