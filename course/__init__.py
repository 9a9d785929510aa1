"""Helpers shared by the notebooks of "Introduction to Deep Learning".

`import course` stays quick: it does not import torch or matplotlib. The submodules
``course.data``, ``course.plotting``, ``course.testing``, ``course.training`` and
``course.gradcheck`` are imported on first use, so ``course.data.blobs(...)`` works
right after ``import course``.

Imported in a notebook's kernel, it also installs ``course.messages``: a failed test shows
its sentence first and short, an unanswered exercise one line naming it, and a warning one
plain line on stdout instead of stderr (where nbgrader would count it as a failure).
"""

import importlib

from course import messages as _messages
from course.reproducibility import device, set_seed

_messages.install()  # only inside IPython; nothing happens in a plain Python process

__all__ = ["data", "device", "gradcheck", "plotting", "set_seed", "testing", "training"]

_SUBMODULES = {"data", "gradcheck", "plotting", "testing", "training"}


def __getattr__(name):
    # Lazy submodules (PEP 562): torch and matplotlib load only when a notebook needs them.
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES)
