"""Validate a student's notebook the way the grader scores it, and say it in a few lines.

    python -m courselab.check NOTEBOOK [--config nbgrader_config.py] [--json]

nbgrader's Validator runs the notebook from the top in a fresh kernel with the course's
configuration (Execute's timeout and kernel options), and then, as the grader does before it
scores, removes the stderr noise of the course's IgnorePattern (library warnings, progress
bars): a warning in a test cell fails neither here nor in the grader. What it reports is a
summary, "N of M tests pass, P of Q points", and the first failing sentence of each exercise
(an error's message), not every failing cell's source and traceback.

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

# "### Exercise 1.2: The perceptron (2 points)", as grader/notebooks/validate.py checks it in
# source/.
EXERCISE_HEADING = re.compile(
    r"^#+\s*(?P<title>Exercise\s+[\d.]+\s*:.*?)\s*\((?P<points>\d+(?:\.\d+)?)\s+points?\)\s*$",
    re.MULTILINE,
)
MAX_LINES, MAX_CHARS = 3, 300  # of one failure message
WIDTH = 80  # of the dialog's lines
HIDDEN_NOTE = "The grader also runs hidden tests: make your code right for every input."


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
    errors: list[str] = field(default_factory=list)  # in notebook order

    @property
    def message(self) -> str | None:
        """The first failing sentence, where a test of the exercise fails."""
        if self.passed == self.tests:
            return None
        return self.errors[0] if self.errors else "a test fails without a message"


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
        if cell.cell_type == "markdown":
            match = EXERCISE_HEADING.search(cell.source)
            if match:
                current = Exercise(match.group("title"))
                exercises.append(current)
            continue
        if cell.cell_type != "code":
            continue
        if current is None:  # a graded cell before any exercise heading
            current = Exercise("Tests")
            exercises.append(current)
        if utils.is_grade(cell) and not utils.is_solution(cell):
            score, max_score = utils.determine_grade(cell)
            current.tests += 1
            current.points += score
            current.max_points += max_score
            if score >= max_score:
                current.passed += 1
            else:
                current.errors.append(failure(cell) or "partial credit only")
        elif utils.is_solution(cell) and (problem := failure(cell)):
            current.errors.append(problem)  # the answer itself failed: say that first
    exercises = [e for e in exercises if e.tests]
    return {
        "tests": sum(e.tests for e in exercises),
        "passed": sum(e.passed for e in exercises),
        "points": sum(e.points for e in exercises),
        "max_points": sum(e.max_points for e in exercises),
        "exercises": [{**asdict(e), "message": e.message} for e in exercises],
    }


def points(value: float) -> str:
    return f"{value:g} point" + ("" if value == 1 else "s")


def headline(summary: dict) -> str:
    """'N of M tests pass, P of Q points.'"""
    return (
        f"{summary['passed']} of {summary['tests']} tests pass, "
        f"{summary['points']:g} of {points(summary['max_points'])}."
    )


def exercise_line(exercise: dict) -> str:
    return (
        f"{exercise['title']} ({exercise['points']:g} of "
        f"{points(exercise['max_points'])}): {exercise['message']}"
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
        lines.append(
            f"{exercise['title']} ({exercise['points']:g} of {points(exercise['max_points'])})"
        )
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
    summary = results.get("summary")
    passed = bool(
        summary
        and summary["passed"] == summary["tests"]
        and not (results.get("changed") or results.get("type_changed"))
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
