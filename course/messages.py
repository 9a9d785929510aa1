"""What a notebook's kernel shows for a failed test, an unanswered exercise and a warning.

IPython ends an exception in a traceback of every frame it went through, with the
sentence written for the student at the very end (after numpy's internals, for numpy's
assertion helpers), and Python prints warnings on stderr, which nbgrader's Validate and
autograde count as a failed test. Installed in an IPython kernel, this module makes it show

- an AssertionError that carries a message (every check of the course's tests does) as
  that message, on the first line: ``AssertionError: step(a) should be 0 ...``;
- an exercise that is not answered yet, the stub ``raise NotImplementedError("Exercise 1.2
  (`perceptron`) is not answered yet")`` that the build writes, as one line naming it and
  saying what to do;
- a warning as one plain line on stdout (``RuntimeWarning: overflow encountered in exp
  (at `return 1 / (1 + np.exp(-a))`)``): still visible, never a failure.

Everything else keeps IPython's full traceback, and errors stay errors: the kernel's error
message keeps the exception's name and value, so nbgrader, its Validate and the grader
score the cell 0 exactly as before; only the lines of the traceback are shorter.

It is installed by ``import course`` in a notebook (every notebook of the course imports it
in its first cell), and by the kernel's start options as an IPython extension:
``--InteractiveShellApp.extensions=course.messages`` (see ``c.Execute.extra_arguments`` in
nbgrader_config.py) or ``%load_ext course.messages``. Outside IPython it does nothing.
"""

import contextlib
import linecache
import re
import sys
import sysconfig
import warnings

# The message of the stub the build writes into every solution region (grader/notebooks/stubs.py).
UNANSWERED = re.compile(r"Exercise \d[\d.]*\b.* is not answered yet\Z", re.DOTALL)
BARE_STUB = "raise NotImplementedError()"
RED, RESET = "\x1b[0;31m", "\x1b[0m"  # as IPython colours an exception's name

_LIBRARIES = tuple(
    {sysconfig.get_paths()[key] for key in ("stdlib", "purelib", "platlib")}
    | {sys.prefix, sys.base_prefix, sys.exec_prefix}
)


def short_traceback(etype, value, tb) -> list[str] | None:
    """The lines the kernel shows for an exception, or None for IPython's full traceback."""
    if issubclass(etype, AssertionError):
        message = str(value).strip()
        if message:  # a bare `assert x` keeps the traceback: it is all there is to go on
            return [f"{RED}{etype.__name__}{RESET}: {message}"]
        return None
    if issubclass(etype, NotImplementedError):
        message = str(value).strip()
        if UNANSWERED.match(message):
            return [
                f"{RED}{message}{RESET}: write your code in place of "
                "`raise NotImplementedError(...)`."
            ]
        if not message and tb is not None:
            frame = _innermost(tb)
            if frame is not None and not _in_library(frame.f_code.co_filename):
                what = frame.f_code.co_name
                what = "This exercise" if what.startswith("<") else f"`{what}`"
                return [
                    f"{RED}{what} is not answered yet{RESET}: write your code in place "
                    f"of `{BARE_STUB}`."
                ]
    return None


def _innermost(tb):
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame


def _in_library(filename: str) -> bool:
    return filename.startswith(_LIBRARIES) or filename.startswith("<frozen")


def _handler(shell, etype, value, tb, tb_offset=None):
    """IPython's custom exception handler: show the short lines, or the usual traceback."""
    lines = short_traceback(etype, value, tb)
    if lines is None:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        return None
    # What showtraceback would record, so that %debug and %tb still find the exception.
    sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
    sys.last_exc = value  # type: ignore[attr-defined]  # Python 3.12's name; 3.11 has none
    shell._showtraceback(etype, value, lines)  # the kernel's one place that sends an error
    return None


def show_warning(message, category, filename, lineno, file=None, line=None):
    """`warnings.showwarning` for notebooks: one plain line on stdout.

    nbgrader counts any stderr output of a test cell as a failure; a warning is not one.
    A warning written to another file than stderr goes there, as Python would write it.
    """
    if file is not None and file is not sys.stderr:
        _ORIGINAL_SHOWWARNING(message, category, filename, lineno, file, line)
        return
    text = f"{category.__name__}: {message}"
    if not _in_library(str(filename)):  # the student's code: show the line that warned
        code = (line if line is not None else linecache.getline(filename, lineno)).strip()
        if code:
            text += f" (at `{code}`)"
    # No usable stdout: a warning never breaks the code.
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stdout, flush=True)


_ORIGINAL_SHOWWARNING = warnings.showwarning


def install(shell=None) -> bool:
    """Install both in `shell` (by default the running IPython, if any); True if installed.

    Idempotent. Replaces IPython's custom exception handler (set_custom_exc) and
    `warnings.showwarning`.
    """
    if shell is None:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return False
    shell.set_custom_exc((AssertionError, NotImplementedError), _handler)
    warnings.showwarning = show_warning
    return True


def load_ipython_extension(shell) -> None:
    """`%load_ext course.messages`, or ``--InteractiveShellApp.extensions=course.messages``."""
    install(shell)


def unload_ipython_extension(shell) -> None:
    shell.set_custom_exc((), None)
    if warnings.showwarning is show_warning:
        warnings.showwarning = _ORIGINAL_SHOWWARNING
