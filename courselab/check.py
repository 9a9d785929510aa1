"""Validate a student's notebook the way the grader scores it, and say it in a few lines.

    python -m courselab.check NOTEBOOK [--config nbgrader_config.py] [--json]

nbgrader's Validator runs the notebook from the top in a fresh kernel with the course's
configuration (Execute's timeout and kernel options), and then, as the grader does before it
scores, removes the stderr noise of the course's IgnorePattern (library warnings, progress
bars): a warning in a test cell fails neither here nor in the grader. What it reports is a
summary, "N of M tests pass, P of Q points", and the first failing sentence of each exercise
(an error's message), not every failing cell's source and traceback. Written answers (a
"Question" heading), which a person grades, count in neither number: the summary gives their
points apart, and names each one still as it was handed out.

The lab's Validate button (courselab.validate) runs this in a process of its own.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path

from courselab import skip_rfc3987_syntax

# At import, because it must come before nbgrader's import below: seconds of CPU on every
# Validate otherwise.
skip_rfc3987_syntax()

from nbgrader import utils  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    CheckCellMetadata,
    ClearOutput,
    Execute,
    IgnorePattern,
)
from nbgrader.validator import Validator  # noqa: E402
from traitlets import List  # noqa: E402
from traitlets.config import Config, PyFileConfigLoader  # noqa: E402

CONFIG_FILE = "nbgrader_config.py"

# "### Exercise 1.2: The perceptron (2 points)" and, over a written answer, "### Question
# 1.6: Why XOR defeats one perceptron (2 points)", as grader/notebooks/validate.py checks
# them in source/.
EXERCISE_HEADING = re.compile(
    r"^#+\s*(?P<title>(?:Exercise|Question)\s+[\d.]+\s*:.*?)\s*"
    r"\((?P<points>\d+(?:\.\d+)?)\s+points?\)\s*$",
    re.MULTILINE,
)
MAX_LINES, MAX_CHARS = 3, 300  # of one failure message
WIDTH = 80  # of the dialog's lines
HIDDEN_NOTE = "The grader also runs hidden tests: make your code right for every input."
UNWRITTEN = "not answered yet: write your answer in the cell under the question"


def load_config(path: Path | str) -> Config:
    """The traitlets configuration of an nbgrader_config.py (the course's, or the bundle's)."""
    path = Path(path).resolve()
    return PyFileConfigLoader(path.name, str(path.parent)).load_config()


class CourseValidator(Validator):
    """nbgrader's Validator plus the grader's IgnorePattern after executing, keeping the
    executed notebook for the summary. (Validator.preprocessors is not configurable.)"""

    preprocessors = List([CheckCellMetadata, ClearOutput, Execute, IgnorePattern])
    executed = None

    def _preprocess(self, nb):
        # Where nbgrader 0.9's Validator.validate runs the preprocessors (pinned <0.10).
        self.executed = super()._preprocess(nb)
        return self.executed


@dataclass
class Exercise:
    title: str
    tests: int = 0
    passed: int = 0
    points: float = 0.0
    max_points: float = 0.0
    written: float = 0.0  # the points of its written answers, which a person grades
    unwritten: int = 0  # its written answers still as they were handed out
    errors: list[str] = field(default_factory=list)  # in notebook order

    @property
    def message(self) -> str | None:
        """The first failing sentence, where a test of the exercise fails; else what is
        missing, where a written answer is not written yet."""
        if self.passed < self.tests:
            return self.errors[0] if self.errors else "a test fails without a message"
        return UNWRITTEN if self.unwritten else None


def short(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    text = "\n".join(lines[:MAX_LINES]) + ("\n..." if len(lines) > MAX_LINES else "")
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 3] + "..."


def failure(cell) -> str | None:
    """What went wrong in a cell, in one sentence: its error's message, or its stderr."""
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            ename, evalue = output.get("ename", "Error"), str(output.get("evalue", "")).strip()
            if ename == "NotImplementedError" and not evalue:
                return "not answered yet: replace `raise NotImplementedError()` with your code"
            # A test's assertion and the stub speak to the student; other errors are named.
            if ename in ("AssertionError", "NotImplementedError") and evalue:
                return short(evalue)
            return short(f"{ename}: {evalue}" if evalue else ename)
    for output in cell.get("outputs", []):
        if output.output_type == "stream" and output.name == "stderr":
            return short(f"wrote to stderr: {output.text}")
    return None


def summarize(nb) -> dict:
    """Tests, points and the first failing sentence per exercise of an executed notebook."""
    exercises: list[Exercise] = []
    current = None
    for cell in nb.cells:
        if cell.cell_type == "markdown" and (match := EXERCISE_HEADING.search(cell.source)):
            current = Exercise(match.group("title"))
            exercises.append(current)
            continue
        graded, answer = utils.is_grade(cell), utils.is_solution(cell)
        if cell.cell_type not in ("code", "markdown") or not (graded or answer):
            continue
        if current is None:  # a graded cell or an answer before any heading
            current = Exercise("Tests")
            exercises.append(current)
        if graded and answer:
            # A written answer (or code a person grades): nbgrader scores it 0 while its
            # checksum is the one it was handed out with, and leaves it to a person after.
            score, max_score = utils.determine_grade(cell)
            current.written += max_score
            current.unwritten += int(score == 0)
        elif graded and cell.cell_type == "code":
            score, max_score = utils.determine_grade(cell)
            current.tests += 1
            current.points += score
            current.max_points += max_score
            if score >= max_score:
                current.passed += 1
            else:
                current.errors.append(failure(cell) or "partial credit only")
        elif answer and (problem := failure(cell)):
            current.errors.append(problem)  # the answer itself failed: say that first
    exercises = [e for e in exercises if e.tests or e.written]
    return {
        "tests": sum(e.tests for e in exercises),
        "passed": sum(e.passed for e in exercises),
        "points": sum(e.points for e in exercises),
        "max_points": sum(e.max_points for e in exercises),
        "written": sum(e.written for e in exercises),
        "unwritten": sum(e.unwritten for e in exercises),
        "exercises": [{**asdict(e), "message": e.message} for e in exercises],
    }


def points(value: float) -> str:
    return f"{value:g} point" + ("" if value == 1 else "s")


def headline(summary: dict) -> str:
    """'N of M tests pass, P of Q points.', and the written answers' points apart."""
    line = (
        f"{summary['passed']} of {summary['tests']} tests pass, "
        f"{summary['points']:g} of {points(summary['max_points'])}."
    )
    if summary.get("written"):
        line += f" Written answers ({points(summary['written'])}) are graded by hand."
    return line


def scored(exercise: dict) -> str:
    """'1 of 3 points', '2 points, graded by hand', or both."""
    parts = []
    if exercise["tests"]:
        parts.append(f"{exercise['points']:g} of {points(exercise['max_points'])}")
    if exercise.get("written"):
        parts.append(f"{points(exercise['written'])}, graded by hand")
    return "; ".join(parts)


def exercise_line(exercise: dict) -> str:
    return f"{exercise['title']} ({scored(exercise)}): {exercise['message']}"


def ready(results: dict) -> bool:
    """Whether every test passes, every written answer is written and no cell was changed."""
    summary = results.get("summary")
    return bool(
        summary
        and summary["passed"] == summary["tests"]
        and not summary.get("unwritten")
        and not (results.get("changed") or results.get("type_changed"))
    )


def dialog(results: dict) -> dict:
    """What nbgrader's Validate dialog shows. Its own messages for cells whose type or test
    changed, and nothing (its "Success!") when every test passes. Else one entry, which the
    dialog shows under its fixed "The following cell failed:": as the cell's source, each
    failing exercise with its first failing sentence; as the error (HTML), the totals."""
    if results.get("type_changed") or results.get("changed"):
        return {key: results[key] for key in ("type_changed", "changed") if results.get(key)}
    summary = results.get("summary") or {}
    failing = [e for e in summary.get("exercises", []) if e["message"]]
    if not failing:
        return {}
    lines = []
    for exercise in failing:
        lines.append(f"{exercise['title']} ({scored(exercise)})")
        # Wrapped: the dialog's boxes do not wrap, and scroll a long line out of sight.
        lines += [
            textwrap.fill(line, WIDTH, initial_indent="    ", subsequent_indent="    ")
            for line in exercise["message"].splitlines()
        ]
    totals = f"<b>{html.escape(headline(summary))}</b>\n{html.escape(HIDDEN_NOTE)}"
    return {"failed": [{"source": "\n".join(lines), "error": totals}]}


def validate(notebook: Path | str, config: Config) -> dict:
    """nbgrader's validation results ('changed', 'type_changed', 'failed'), and 'summary'."""
    validator = CourseValidator(config=config)
    results = validator.validate(str(notebook))
    for failed in results.get("failed", []):
        failed.pop("error", None)  # nbgrader's HTML of raw_error; the summary says it shorter
    if validator.executed is not None:
        results["summary"] = summarize(validator.executed)
    return results


def text(results: dict) -> str:
    """The results as a student reads them in a terminal."""
    if results.get("type_changed"):
        return "Some cells changed their type; undo that (Edit > Undo) or start from a fresh copy."
    if results.get("changed"):
        return "Test cells were edited; the grader runs the original ones. Changed:\n" + "\n".join(
            f"  {c['source'].splitlines()[0]}" for c in results["changed"]
        )
    summary = results["summary"]
    lines = [headline(summary)]
    lines += [f"  {exercise_line(e)}" for e in summary["exercises"] if e["message"]]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m courselab.check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("notebook")
    parser.add_argument(
        "--config",
        default=CONFIG_FILE,
        help="the course's nbgrader_config.py (default: the one here)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if not Path(args.config).is_file():
        print(
            f"error: {args.config} is missing; run this in the course folder, or give --config",
            file=sys.stderr,
        )
        return 2
    results = validate(Path(args.notebook).resolve(), load_config(args.config))
    print(json.dumps({**results, "dialog": dialog(results)}) if args.json else text(results))
    return 0 if ready(results) else 1


if __name__ == "__main__":
    sys.exit(main())
