"""The order in which autograde hands submissions to its workers: longest first, as measured.

With N workers, a long notebook handed out last runs alone while N-1 workers idle, so the
submissions expected to run longest go first. What is expected of a submission is what its
assignment's notebooks have taken so far in this run (the median of the seconds its workers
reported). An assignment none of whose notebooks was handed out yet goes before all others,
its first notebook measuring it; one whose first notebook is still running goes before those
measured; equals go in the order given, and so do the submissions of one assignment.

The number of code cells, the guess before this, put 02_networks (25 cells, 1.4 s a
notebook) before 01_perceptron (23 cells, 2.6 s).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class LongestFirst(Generic[T]):
    """(assignment, item) pairs, handed out one at a time."""

    def __init__(self, items: Iterable[tuple[str, T]]):
        self.waiting: dict[str, deque[T]] = {}
        for assignment, item in items:
            self.waiting.setdefault(assignment, deque()).append(item)
        self.seconds: dict[str, list[float]] = {assignment: [] for assignment in self.waiting}
        self.handed_out: set[str] = set()

    def __bool__(self) -> bool:
        return any(self.waiting.values())

    def expected(self, assignment: str) -> float:
        """Seconds a notebook of `assignment` is expected to take (not measured: infinity)."""
        measured = self.seconds.get(assignment)
        return statistics.median(measured) if measured else math.inf

    def next(self) -> tuple[str, T]:
        """The next item to hand out, with its assignment (IndexError when none is left)."""
        candidates = [assignment for assignment, items in self.waiting.items() if items]
        if not candidates:
            raise IndexError("no submission left to hand out")
        # max() keeps the first of equals: the order given
        assignment = max(candidates, key=lambda a: (a not in self.handed_out, self.expected(a)))
        self.handed_out.add(assignment)
        return assignment, self.waiting[assignment].popleft()

    def ran(self, assignment: str, seconds: float) -> None:
        """A notebook of `assignment` took `seconds` (0: it never reached a worker)."""
        if seconds > 0:
            self.seconds.setdefault(assignment, []).append(seconds)
