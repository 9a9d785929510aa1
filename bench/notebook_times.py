"""Execution time of every solution notebook: median of 3 runs, as a table.

    make bench                     # all notebooks
    python bench/notebook_times.py 01_perceptron --runs 5

Each run starts a fresh kernel, the way a student's "Restart and run all" does, so the
time includes the kernel start and the imports. Budgets come from DESIGN.md: 60 s per
notebook on 2 CPU cores (20 s for 01_perceptron).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from grader.config import REPO_ROOT, load_config
from grader.execution.execute import execute
from grader.notebooks.validate import source_assignments
from grader.pipeline.build import solution_notebook
from grader.process import setup_process

BUDGET_S = {"01_perceptron": 20.0}
DEFAULT_BUDGET_S = 60.0


def time_notebook(assignment: str, runs: int) -> list[float]:
    source = REPO_ROOT / "source" / assignment / f"{assignment}.ipynb"
    times = []
    for _ in range(runs):
        nb = solution_notebook(source)
        start = time.perf_counter()
        execute(nb, cwd=source.parent)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    setup_process()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="default: every assignment in source/")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    assignments = args.assignments or source_assignments(load_config(REPO_ROOT))
    print(f"{os.cpu_count()} CPU cores, {args.runs} runs per notebook\n")
    header = f"{'notebook':<20} {'median s':>9} {'min s':>7} {'max s':>7} {'budget s':>9}  ok"
    print(header)
    print("-" * len(header))
    over = 0
    for assignment in assignments:
        times = time_notebook(assignment, args.runs)
        median = statistics.median(times)
        budget = BUDGET_S.get(assignment, DEFAULT_BUDGET_S)
        over += median > budget
        print(
            f"{assignment:<20} {median:>9.1f} {min(times):>7.1f} {max(times):>7.1f}"
            f" {budget:>9.0f}  {'yes' if median <= budget else 'NO'}",
            flush=True,
        )
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
