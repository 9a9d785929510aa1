"""Where student code runs: the sandbox, the kernel template, the grading workers and their pool."""
