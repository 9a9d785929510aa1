"""What passes between the grader and a grading worker: a `Job` in, an `ExecutionResult` out.

Across the process boundary each is one JSON line (grader.execution.pool writes jobs and
reads results, grader.execution.worker the reverse; a Dask task returns the result's JSON
object). Past it, on either side, only these dataclasses travel. Reading a result checks
it field by field: a worker's answer that is not one is a `ProtocolError`, never a score.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

# How an execution ended. The status store's grader.workdir.status.Status has these and
# `missing` (a submission without a notebook, which never reaches a worker); autograde
# stores this one as it is.
ExecutionStatus = Literal["graded", "timeout", "crashed", "invalid"]
EXECUTION_STATUSES: tuple[ExecutionStatus, ...] = get_args(ExecutionStatus)


class ProtocolError(ValueError):
    """A line or object that is not a job or a result."""


@dataclass(frozen=True)
class Job:
    """One sanitized notebook to execute and score in its own folder (which holds the
    assignment's files too), with its per-cell and per-notebook timeouts in seconds, and the
    libraries its worker's kernel template is to import (grader.execution.preload; None: all
    it may import, what a job line without them gets)."""

    notebook: Path
    cell_timeout: int
    notebook_timeout: int
    preload: tuple[str, ...] | None = None

    def to_line(self) -> str:
        data: dict[str, Any] = {
            "notebook": str(self.notebook),
            "cell_timeout": self.cell_timeout,
            "notebook_timeout": self.notebook_timeout,
        }
        if self.preload is not None:
            data["preload"] = list(self.preload)
        return json.dumps(data) + "\n"

    @classmethod
    def from_line(cls, line: str) -> Job:
        data = _object(line)
        notebook = data.get("notebook")
        if not isinstance(notebook, str) or not notebook:
            raise ProtocolError(f"a job without a notebook: {line[:200]!r}")
        preload = data.get("preload")
        if "preload" in data and (
            not isinstance(preload, list)
            or not all(isinstance(name, str) and name for name in preload)
        ):
            raise ProtocolError(
                f"a job's preload is not a list of module names: {str(preload)[:200]!r}"
            )
        return cls(
            Path(notebook),
            _seconds(data, "cell_timeout"),
            _seconds(data, "notebook_timeout"),
            None if preload is None else tuple(preload),
        )


@dataclass(frozen=True)
class Score:
    """A graded cell's score as nbgrader computes it (grader.notebooks.scoring.scores)."""

    points: float | None  # None: a written answer that waits for a person's grade
    max_points: float


@dataclass(frozen=True)
class ExecutionResult:
    """How a submission's execution ended, what the worker has to say about it, the
    score of every graded cell (grade id -> Score; none where it never ran), and how many
    seconds the worker spent on it (0: it never reached one)."""

    status: ExecutionStatus
    message: str = ""
    scores: dict[str, Score] = field(default_factory=dict)
    seconds: float = 0.0

    @classmethod
    def crashed(cls, message: str) -> ExecutionResult:
        return cls("crashed", message)

    def passed(self, grade_id: str) -> bool:
        """Whether the cell scored any points (the worker's all-or-nothing verdict)."""
        score = self.scores.get(grade_id)
        return score is not None and (score.points or 0) > 0

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "scores": {
                grade_id: [score.points, score.max_points]
                for grade_id, score in self.scores.items()
            },
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: object) -> ExecutionResult:
        if not isinstance(data, dict):
            raise ProtocolError(f"a result is a JSON object, not {type(data).__name__}")
        status = data.get("status")
        if status not in EXECUTION_STATUSES:
            raise ProtocolError(f"unknown status {str(status)[:60]!r}")
        message = data.get("message", "")
        if not isinstance(message, str):
            raise ProtocolError("a result's message is not text")
        scores = data.get("scores", {})
        if not isinstance(scores, dict):
            raise ProtocolError("a result's scores are not an object")
        seconds = data.get("seconds", 0.0)
        if not _number(seconds) or seconds < 0:
            raise ProtocolError(f"a result's seconds are not a duration: {str(seconds)[:60]!r}")
        return cls(
            cast(ExecutionStatus, status),
            message,
            {str(grade_id): _score(grade_id, value) for grade_id, value in scores.items()},
            float(seconds),
        )

    def to_line(self) -> str:
        return json.dumps(self.to_json()) + "\n"

    @classmethod
    def from_line(cls, line: str) -> ExecutionResult:
        return cls.from_json(_object(line))


def _object(line: str) -> dict:
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as error:  # garbage, or nesting deep enough to hurt
        raise ProtocolError(f"not JSON: {line[:200]!r}") from error
    if not isinstance(data, dict):
        raise ProtocolError(f"not a JSON object: {line[:200]!r}")
    return data


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _seconds(data: dict, key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError(f"a job's {key} is not a number of seconds: {value!r}")
    return value


def _score(grade_id: object, value: object) -> Score:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not (value[0] is None or _number(value[0]))
        or not _number(value[1])
    ):
        raise ProtocolError(f"the score of {str(grade_id)[:60]!r} is not [points, max points]")
    points, max_points = value
    return Score(None if points is None else float(points), float(max_points))
