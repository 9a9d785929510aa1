"""What `make venv` compiles for sandboxed kernels (grader.execution.bytecode): the packages the
kernel template imports, whole, and not the rest of the venv."""

from __future__ import annotations

from grader.execution.bytecode import kernel_packages


def test_the_packages_kernels_import_and_only_those():
    names = {path.name.removesuffix(".py") for path in kernel_packages()}
    # the template's own imports, and what they import in turn
    assert {"ipykernel", "IPython", "numpy", "torch", "matplotlib", "zmq", "pygments"} <= names
    assert "debugpy" in names  # a kernel's start imports it, its template does not
    # the grader's and the lab's, never imported by a kernel: compiled by their first import
    assert not names & {"nbgrader", "jupyterlab", "sqlalchemy", "distributed", "grader"}, names
