"""Which of the libraries a kernel template may preload the graded assignments use.

A template that imports torch for a course that never does costs every grading worker
2.5 s of CPU and the fork of a larger process for every submission. So autograde asks, once
per run, what the release notebooks of the assignments it grades import, directly (an
`import` or `from ... import` anywhere in a code cell) or through a package of the course's
own repository (`course`, whose modules import torch inside functions: every .py file of
it counts), and names only those libraries in each Job. The release notebooks and the
course's packages are the instructor's: trusted. A library imported late costs only time,
never a grade: a kernel imports what its template lacks itself.
"""

from __future__ import annotations

import ast
import importlib.util
import site
import sys
from collections.abc import Iterable
from pathlib import Path

import nbformat

from grader.execution.template_kernel import LIBRARIES, LIBRARIES_WITH_BACKEND

# The libraries known to fork safely (the template's thread and seed handling covers them),
# in the order the template imports them.
PRELOADABLE = tuple(dict.fromkeys(m.split(".")[0] for m in (*LIBRARIES, *LIBRARIES_WITH_BACKEND)))


def preload_for(notebooks: Iterable[Path], course_root: Path) -> tuple[str, ...]:
    """The libraries of PRELOADABLE that `notebooks` import, directly or through the
    packages under `course_root` they import, in PRELOADABLE's order. A notebook that cannot
    be read (its submissions cannot be graded either) and a cell or file that does not parse
    add nothing."""
    imported: set[str] = set()
    for path in notebooks:
        try:
            nb = nbformat.read(str(path), as_version=4)
        except Exception:  # noqa: S112 (nbformat raises several kinds for unreadable files)
            continue
        for cell in nb.cells:
            if cell.cell_type == "code":
                imported |= imported_names(cell.source)
    root = Path(course_root).resolve()
    pending, scanned = sorted(imported), set()
    while pending:
        name = pending.pop()
        if name in scanned:
            continue
        scanned.add(name)
        for file in _course_files(name, root):
            try:
                found = imported_names(file.read_text(encoding="utf-8"))
            except (OSError, ValueError):  # unreadable or not UTF-8: nothing to learn
                continue
            pending += sorted(found - imported)
            imported |= found
    return tuple(name for name in PRELOADABLE if name in imported)


def imported_names(source: str) -> set[str]:
    """The top-level names of the absolute imports in `source` (`import numpy.linalg`:
    numpy); none if it does not parse (an IPython magic, a student's typo)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # ValueError: a null byte
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _course_files(name: str, root: Path) -> list[Path]:
    """The .py files of the module or package `name` as this interpreter finds it (as the
    kernels do), if it lies under `root` and is not installed into the interpreter (a venv
    inside the course's folder holds numpy and torch, not the course's packages)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    installed = [
        Path(folder).resolve()
        for folder in {
            sys.prefix,
            sys.exec_prefix,
            sys.base_prefix,
            sys.base_exec_prefix,
            *site.getsitepackages(),
            site.getusersitepackages(),
        }
    ]

    def of_the_course(path: Path) -> bool:
        return path.is_relative_to(root) and not any(path.is_relative_to(i) for i in installed)

    if spec.submodule_search_locations:
        folders = [Path(folder).resolve() for folder in spec.submodule_search_locations]
        return sorted(
            file
            for folder in folders
            if of_the_course(folder)
            for file in folder.rglob("*.py")
            if file.is_file()
        )
    if spec.origin and spec.origin.endswith(".py") and of_the_course(Path(spec.origin).resolve()):
        return [Path(spec.origin)]
    return []
