"""Executing notebooks the same way everywhere: the build, the benchmark, the tests."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import nbclient
from nbformat import NotebookNode

# Set in every kernel the course starts: no progress bars (they would write timings to
# stderr and into the committed solutions) and a plotting backend without a screen.
QUIET_ENVIRONMENT = {"TQDM_DISABLE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


# One torch/BLAS thread per kernel unless the caller says otherwise: on a 2-core machine
# that runs anything else at the same time, torch's spinning threads make training several
# times slower (measured: a CNN epoch loop 4.5 s with one thread, 35 s with two under load).
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@contextmanager
def quiet_environment():
    """Temporarily set QUIET_ENVIRONMENT (and THREADS, unless set); kernels inherit them."""
    saved = {key: os.environ.get(key) for key in [*QUIET_ENVIRONMENT, *THREADS]}
    os.environ.update(QUIET_ENVIRONMENT)
    for key, value in THREADS.items():
        os.environ.setdefault(key, value)
    # The inline backend is what a student sees; an inherited Agg would hide the plots.
    backend = os.environ.pop("MPLBACKEND", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if backend is not None:
            os.environ["MPLBACKEND"] = backend


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
    with quiet_environment():
        client.execute()
    return nb
