"""pytest's first step in this repository, before any other conftest or test module is imported:
the test session is an entry point of its own, and sets its process up first (grader.process:
before anything imports nbformat, or notebooks are read with rfc3987_syntax, 1.5 s of CPU in
every pytest process). nbval's pytest plugin, which imports nbformat before any conftest,
is not loaded (pyproject.toml): no test runs nbval itself (tests/test_solutions_run.py makes
its checks on the round trip's run)."""

from grader.process import setup_process

setup_process()
