"""Compile the bytecode of what sandboxed kernels import, once, where the venv is writable.

    python -m grader.execution.bytecode

A grading kernel (and its template) sees Python and the venv read-only, so it cannot cache
what it compiles: without .pyc files every kernel compiles torch's and numpy's sources again
(a fresh clone's `make test` took twice as long). Every other process of the grader writes
the .pyc files of what it imports itself, on first import.

What kernels import is what the kernel template imports (grader.execution.template_kernel:
ipykernel, the libraries, matplotlib with a backend) and whatever notebooks import of the
same packages later: this compiles, whole, every installed package that importing the
template's modules loads, in a fresh interpreter. It compiles a fifth of the venv, where
compiling all of it (uv's --compile-bytecode, pip's default) took 42 of the venv's 59 s.
"""

from __future__ import annotations

import compileall
import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from grader.execution.template_kernel import (
    KERNEL_MODULES,
    LIBRARIES,
    LIBRARIES_WITH_BACKEND,
)

# Run in a fresh interpreter: the packages whose modules importing `names` loads.
_LOADED = """\
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
"""


# What a kernel's start imports that the template does not (template_kernel says why).
KERNEL_START = ("ipykernel.debugger",)


def kernel_packages() -> list[Path]:
    """The folders (or single-file modules) of the installed packages a kernel imports."""
    modules = [*KERNEL_MODULES, *KERNEL_START, *LIBRARIES, *LIBRARIES_WITH_BACKEND]
    loaded = subprocess.run(
        [sys.executable, "-c", _LOADED, *modules],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MPLBACKEND": "agg"},
    )
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    found = []
    for name in json.loads(loaded.stdout):
        for candidate in (site / name, site / f"{name}.py"):
            if candidate.exists():
                found.append(candidate)
    return found


def main() -> int:
    start = time.perf_counter()
    packages = kernel_packages()
    # Files that do not compile (a package's templates or test data written for another
    # Python) are left out silently, as pip and uv leave them: nothing imports them.
    for package in packages:
        if package.is_dir():
            compileall.compile_dir(package, quiet=2, workers=0)
        else:
            compileall.compile_file(package, quiet=2)
    print(
        f"Compiled the bytecode of the {len(packages)} packages that grading kernels import "
        f"in {time.perf_counter() - start:.0f} s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
