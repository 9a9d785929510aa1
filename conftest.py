"""pytest set-up shared by tests/ and the nbval run on solutions/ (`make test`).

nbval starts one kernel per notebook, and two pytest workers start theirs at the same
moment. jupyter_client picks a kernel's TCP ports by binding and releasing them, so two
kernels started at once can pick the same port, and one of them dies before it answers
("Kernel died before replying to kernel_info"). A kernel that dies while starting is
started again, up to three times; a notebook that kills its kernel later still fails.
"""

from __future__ import annotations

import logging

import nbval.kernel

_start_new_kernel = nbval.kernel.start_new_kernel
ATTEMPTS = 3


def _start_new_kernel_again_if_it_died(*args, **kwargs):
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _start_new_kernel(*args, **kwargs)
        except RuntimeError as error:
            if "died before replying" not in str(error) or attempt == ATTEMPTS:
                raise
            logging.getLogger("nbval").warning("kernel died while starting; starting again")
    raise AssertionError("unreachable")


nbval.kernel.start_new_kernel = _start_new_kernel_again_if_it_died
