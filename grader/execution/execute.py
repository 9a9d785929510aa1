"""Executing notebooks the same way everywhere: the build, the benchmark, the tests."""

from __future__ import annotations

import os
from pathlib import Path

import nbclient
from nbclient.util import run_sync
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute

# Set in every kernel the course starts: no progress bars (they would write timings to
# stderr and into the committed solutions), and no debugger warning about frozen modules on
# stderr at the kernel's start.
QUIET_ENVIRONMENT = {"TQDM_DISABLE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


# One torch/BLAS thread per kernel unless the caller says otherwise: on a 2-core machine
# that runs anything else at the same time, torch's spinning threads make training several
# times slower (measured: a CNN epoch loop 4.5 s with one thread, 35 s with two under load).
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def kernel_environment() -> dict[str, str]:
    """The environment of a kernel the course starts here: this process's, with
    QUIET_ENVIRONMENT, THREADS unless this process sets them, and no MPLBACKEND (the inline
    backend is what a student sees; an inherited Agg would hide the plots). Read when the
    kernel starts, so that what nbgrader sets around its runs (NBGRADER_EXECUTION) passes."""
    env = {**os.environ, **QUIET_ENVIRONMENT}
    for key, value in THREADS.items():
        env.setdefault(key, value)
    env.pop("MPLBACKEND", None)
    return env


class CourseExecute(Execute):
    """nbgrader's Execute preprocessor, its kernels started in `kernel_environment()`: for
    nbgrader's own Validator and Autograde, which start their kernels themselves."""

    async def async_start_new_kernel(self, **kwargs) -> None:
        kwargs.setdefault("env", kernel_environment())
        await super().async_start_new_kernel(**kwargs)

    # nbclient binds the synchronous twin to its own coroutine, not to this override.
    start_new_kernel = run_sync(async_start_new_kernel)


def in_course_environment(preprocessors: list) -> list:
    """An nbgrader application's list of preprocessors with Execute as CourseExecute."""
    return [
        CourseExecute if preprocessor is Execute else preprocessor for preprocessor in preprocessors
    ]


def execute(nb: NotebookNode, cwd: Path, timeout: int = 600) -> NotebookNode:
    """Run every cell in a fresh python3 kernel started in `cwd`; raise on the first error."""
    client = nbclient.NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
        record_timing=False,  # timestamps would change the solutions on every build
        store_widget_state=False,
    )
    client.execute(env=kernel_environment())
    return nb
