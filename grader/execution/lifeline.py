"""A grading worker dies with the grader: the one place that sets up the parent-death signal.

Linux sends the signal when the *thread* that started the process ends, not the process:
grader.execution.executors closes its workers before the threads that started them end.
The kernels inside a sandbox are tied to their worker by bubblewrap's own --die-with-parent
(grader.execution.sandbox) and the kernel template by its lifeline pipe
(grader.execution.template_kernel).
"""

from __future__ import annotations

import contextlib
import ctypes
import signal

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies, even by SIGKILL: a worker left
    behind would go on grading into a folder that a new run is using."""
    # Not Linux (no prctl): the grader still ends its workers on a normal exit.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
