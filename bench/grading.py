"""Parallel grading against plain nbgrader: the same synthetic class graded three times.

    make bench-grading
    python bench/grading.py 01_perceptron 02_networks --jobs 2

1. `python -m grader autograde --jobs N` (workers execute, one process writes the gradebook);
2. `python -m grader autograde --cluster ADDRESS` on a Dask LocalCluster of N worker
   processes of one thread each (started here);
3. `nbgrader autograde ASSIGNMENT` for each assignment, nbgrader's own sequential command;

then prints the wall times, their ratios, and whether every score matched. The class is
grader.pipeline.synthetic's demo class without `leo`, whose kernel dies: nbgrader gives such a
notebook 0 everywhere, while the grader keeps the points earned before (on purpose).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.config import REPO_ROOT, load_config
from grader.execution.execute import QUIET_ENVIRONMENT
from grader.pipeline.build import build
from grader.pipeline.collect import collect
from grader.pipeline.synthetic import make_class
from grader.process import setup_process
from grader.workdir import folder, gradebook

DEFAULT_ASSIGNMENTS = ["01_perceptron", "02_networks"]


def grading_folder(repo, root: Path, zip_path: Path, assignments):
    course = folder.prepare(repo, root, assignments)
    collect(course, zip_path)
    shutil.copy(repo.config_file, root / "nbgrader_config.py")  # for the nbgrader command
    return course


def autograde_seconds(course, assignments: list[str], timeout: int, *where: str) -> float:
    """Wall seconds of `python -m grader autograde` on `course`, `where` saying on what
    (`--jobs N` or `--cluster ADDRESS`)."""
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "--workdir",
            str(course.root),
            "autograde",
            *assignments,
            *where,
            "--timeout",
            str(timeout),
        ],
        check=True,
        cwd=REPO_ROOT,
    )
    return time.perf_counter() - start


def main() -> int:
    setup_process()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", default=DEFAULT_ASSIGNMENTS)
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--timeout", type=int, default=30, help="per-cell timeout, both runs")
    args = parser.parse_args()
    repo = load_config(REPO_ROOT)
    build(repo, args.assignments, solutions=False)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        zip_path = make_class(repo, args.assignments, tmp / "class.zip", exclude=("leo",))
        ours = grading_folder(repo, tmp / "parallel", zip_path, args.assignments)
        on_dask = grading_folder(repo, tmp / "dask", zip_path, args.assignments)
        theirs = grading_folder(repo, tmp / "nbgrader", zip_path, args.assignments)
        count = len(list((ours.root / "submitted").glob("*/*")))

        parallel_s = autograde_seconds(
            ours, args.assignments, args.timeout, "--jobs", str(args.jobs)
        )

        from distributed import LocalCluster

        with LocalCluster(
            n_workers=args.jobs, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster:
            dask_s = autograde_seconds(
                on_dask, args.assignments, args.timeout, "--cluster", cluster.scheduler_address
            )

        env = {**os.environ, **QUIET_ENVIRONMENT}
        env.pop("MPLBACKEND", None)
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        start = time.perf_counter()
        for assignment in args.assignments:
            # nbgrader exits non-zero when a submission fails (kim's is not JSON): expected
            subprocess.run(
                [
                    str(Path(sys.executable).parent / "nbgrader"),  # this venv's, not PATH's
                    "autograde",
                    assignment,
                    f"--Execute.timeout={args.timeout}",
                    "--log-level=ERROR",
                ],
                cwd=theirs.root,
                env=env,
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        sequential_s = time.perf_counter() - start

        a = {(g.student, g.assignment, g.grade_id): g.points for g in gradebook.grades(ours)}
        b = {(g.student, g.assignment, g.grade_id): g.points for g in gradebook.grades(theirs)}
        d = {(g.student, g.assignment, g.grade_id): g.points for g in gradebook.grades(on_dask)}
        differ = sorted(
            k
            for k in a.keys() | b.keys() | d.keys()
            if not a.get(k, 0.0) == b.get(k, 0.0) == d.get(k, 0.0)
        )

    print(
        f"\n{count} submissions of {', '.join(args.assignments)}, "
        f"{os.cpu_count()} cores, per-cell timeout {args.timeout} s\n"
    )
    print(f"{'run':<44} {'wall s':>8}")
    print("-" * 53)
    print(f"{f'python -m grader autograde --jobs {args.jobs}':<44} {parallel_s:>8.1f}")
    print(f"{f'... --cluster (LocalCluster, {args.jobs} processes)':<44} {dask_s:>8.1f}")
    print(f"{'nbgrader autograde (sequential)':<44} {sequential_s:>8.1f}")
    print(f"{'speed-up, local jobs':<44} {sequential_s / parallel_s:>7.2f}x")
    print(f"{'speed-up, Dask':<44} {sequential_s / dask_s:>7.2f}x")
    print(f"{'Dask against local jobs':<44} {dask_s / parallel_s - 1:>+7.0%}")
    print(f"{'grades compared':<44} {len(a | b):>8}")
    print(f"{'every score equal':<44} {'yes' if not differ else 'NO':>8}")
    for key in differ:
        print(f"  differs: {key}: grader {a.get(key)}, Dask {d.get(key)}, nbgrader {b.get(key)}")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
