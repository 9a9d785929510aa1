"""Running a command as an unprivileged user from a root test run (CI runs as root).

An instructor's laptop has Python, the virtual environment and the repository where the
instructor can read them. On a root machine they may sit under /root (pyenv's Python
here), which other users may not enter; so the command runs in a mount namespace of its
own (bubblewrap, as root) in which those folders are reachable, then drops to `nobody`
with no groups and no capabilities. Nothing else changes: the same files, read only
where root's are.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

from grader.config import REPO_ROOT

NOBODY = 65534


def _blocked(paths: list[Path]) -> list[Path]:
    """Folders on the way to `paths` that other users may not enter."""
    blocked = set()
    for path in paths:
        for folder in path.parents:
            if not os.stat(folder).st_mode & stat.S_IXOTH:
                blocked.add(folder)
    return sorted(blocked, key=lambda p: len(p.parts))


def as_unprivileged(command: list[str], home: Path) -> list[str]:
    """`command`, run as `nobody` with `home` as its HOME and TMPDIR."""
    needed = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), REPO_ROOT, home]
    args = [shutil.which("bwrap"), "--dev-bind", "/", "/"]
    for folder in _blocked(needed):  # open the way: an empty folder, the needed paths back
        args += ["--perms", "0755", "--tmpfs", str(folder)]
        for path in needed:
            if folder in path.parents:
                for parent in reversed(path.parents):  # bwrap would make them root's, 0700
                    if folder in parent.parents:
                        args += ["--perms", "0755", "--dir", str(parent)]
                args += ["--dev-bind", str(path), str(path)]
    environment = {
        "HOME": str(home),
        "TMPDIR": str(home),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        **{
            k: v
            for k, v in os.environ.items()
            if k in ("LANG", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MPLBACKEND")
        },
    }
    return [
        *args,
        "--",
        "/usr/bin/setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
        "/usr/bin/env",
        "-i",
        *(f"{k}={v}" for k, v in environment.items()),
        *command,
    ]


@contextlib.contextmanager
def unprivileged_folder():
    """A folder `nobody` owns, outside /tmp's private areas; removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="grader-unprivileged-", dir="/var/tmp"))
    os.chown(folder, NOBODY, NOBODY)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
