"""`python -m grader demo`: build the course, then grade a demo class of two students.

`solved` hands in the solution notebooks, `blank` the untouched release notebooks. The
gradebook and every intermediate file stay in the work folder (default grading/demo/,
git-ignored) for a look afterwards.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import defaultdict
from pathlib import Path

from grader import gradebook
from grader.build import build
from grader.course_config import CourseConfig
from grader.validate import source_assignments

STUDENTS = {"solved": "solutions", "blank": "release"}


def default_workdir(course: CourseConfig) -> Path:
    return Path(os.environ.get("GRADER_WORKDIR", course.root / "grading"))


def run_demo(course: CourseConfig, workdir: str | Path | None = None) -> list[gradebook.Grade]:
    start = time.perf_counter()
    print("Building release/ and solutions/ from source/ ...", flush=True)
    build(course)
    workdir = Path(workdir) if workdir else default_workdir(course) / "demo"
    if workdir.exists():
        shutil.rmtree(workdir)
    assignments = source_assignments(course)
    print(f"Grading a demo class in {workdir} ...", flush=True)
    graded = gradebook.prepare(course, workdir, assignments)
    for assignment in assignments:
        for student, folder in STUDENTS.items():
            notebook = course.root / folder / assignment / f"{assignment}.ipynb"
            gradebook.submit(graded, student, assignment, notebook)
            print(f"  autograding {student}/{assignment}", flush=True)
            gradebook.autograde(graded, assignment, student)
    rows = gradebook.grades(graded)
    print()
    print(points_table(rows, assignments))
    print(f"\nGradebook: {workdir / 'gradebook.db'}  ({time.perf_counter() - start:.0f} s)")
    return rows


def points_table(rows: list[gradebook.Grade], assignments: list[str]) -> str:
    """Points per student and notebook, and the total, as an aligned text table."""
    points = defaultdict(float)
    maximum = defaultdict(float)
    for row in rows:
        points[row.student, row.assignment] += row.points
        maximum[row.student, row.assignment] += row.max_points
    students = sorted({row.student for row in rows})
    header = ["student", *assignments, "total"]
    lines = []
    for student in students:
        cells = [student]
        for assignment in assignments:
            cells.append(
                f"{points[student, assignment]:g} / {maximum[student, assignment]:g}"
            )
        got = sum(points[student, a] for a in assignments)
        out_of = sum(maximum[student, a] for a in assignments)
        cells.append(f"{got:g} / {out_of:g}")
        lines.append(cells)
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*cells) for cells in lines]
    return "\n".join(out)
