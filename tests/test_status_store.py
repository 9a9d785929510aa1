"""The status store of a grading folder (grader.workdir.status): what autograde writes is
what the report reads, and "graded at its current timestamp" follows timestamp.txt."""

from __future__ import annotations

from pathlib import Path

import pytest
from traitlets.config import Config

from grader.config import GradingFolder
from grader.workdir.status import (
    Outcome,
    is_current,
    read_status,
    status_path,
    submissions,
    write_status,
)


@pytest.fixture
def folder(tmp_path) -> GradingFolder:
    return GradingFolder(
        root=tmp_path, assignments=["a1", "a2"], config=Config(), config_file=Path("none.py")
    )


def hand_in(folder: GradingFolder, student: str, assignment: str, stamp: str | None) -> None:
    place = folder.root / "submitted" / student / assignment
    place.mkdir(parents=True, exist_ok=True)
    if stamp is not None:
        (place / "timestamp.txt").write_text(f"{stamp}\n")


def test_an_outcome_reads_back_as_written(folder):
    outcome = Outcome("ann", "a1", "timeout", "cell 3 ran past 10 s", "2026-11-27 09:00:00", False)
    write_status(folder, outcome)
    assert read_status(folder, "ann", "a1") == outcome
    assert status_path(folder, "ann", "a1").is_file()
    assert not list(status_path(folder, "ann", "a1").parent.glob("*.tmp")), "no leftover"
    assert read_status(folder, "ann", "a2") is None


def test_a_second_outcome_replaces_the_first(folder):
    write_status(folder, Outcome("ann", "a1", "crashed", "the kernel died"))
    write_status(folder, Outcome("ann", "a1", "graded", timestamp="t2"))
    assert read_status(folder, "ann", "a1") == Outcome("ann", "a1", "graded", timestamp="t2")


def test_current_only_when_graded_at_the_submitted_timestamp(folder):
    hand_in(folder, "ann", "a1", "2026-11-27 09:00:00")
    assert not is_current(folder, "ann", "a1"), "never graded"
    write_status(folder, Outcome("ann", "a1", "graded", timestamp="2026-11-27 09:00:00"))
    assert is_current(folder, "ann", "a1")
    hand_in(folder, "ann", "a1", "2026-11-28 10:00:00")  # a resubmission
    assert not is_current(folder, "ann", "a1")


def test_without_timestamps_a_graded_submission_is_current(folder):
    hand_in(folder, "bob", "a2", None)
    write_status(folder, Outcome("bob", "a2", "invalid", "not a notebook"))
    assert is_current(folder, "bob", "a2")
    hand_in(folder, "bob", "a2", "2026-11-27 09:00:00")  # a timestamp where there was none
    assert not is_current(folder, "bob", "a2")


def test_submissions_lists_the_named_assignments_folders(folder):
    hand_in(folder, "bob", "a2", None)
    hand_in(folder, "ann", "a1", None)
    hand_in(folder, "ann", "other", None)
    (folder.root / "submitted" / "stray.txt").write_text("not a student")
    assert submissions(folder, ["a1", "a2"]) == [("ann", "a1"), ("bob", "a2")]
