"""`python -m grader.execution --config nbgrader_config.py [...]`: a grading worker
(grader.execution.worker) in a process set up before the worker's imports, which read
notebooks: after them, setup_process could no longer keep rfc3987_syntax out (2.8 s of CPU
per worker, see grader.process)."""

from grader.process import setup_process

setup_process()

from grader.execution.worker import main  # noqa: E402

raise SystemExit(main())
