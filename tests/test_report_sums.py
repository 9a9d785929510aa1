"""Report's sums (grader.pipeline.report) on a hand-made class: points, late penalties and
pending answers per student and assignment, without a gradebook."""

from __future__ import annotations

import pytest

from grader.pipeline.report import NOTHING_SUBMITTED, Lateness, Report

MAXIMUM = {("a1", "q1"): 2.0, ("a1", "q2"): 3.0, ("a2", "q1"): 5.0, ("a2", "essay"): 4.0}


def hand_made() -> Report:
    points = {
        ("ann", "a1", "q1"): 2.0,
        ("ann", "a1", "q2"): 1.5,
        ("ann", "a2", "q1"): 5.0,
        ("ann", "a2", "essay"): 0.0,  # pending below
        ("bob", "a1", "q1"): 0.0,
        ("bob", "a1", "q2"): 3.0,
        ("bob", "a2", "q1"): 0.0,
        ("bob", "a2", "essay"): 0.0,
    }
    statuses = {
        ("ann", "a1"): ("graded", ""),
        ("ann", "a2"): ("graded", ""),
        ("bob", "a1"): ("graded", ""),
        ("bob", "a2"): ("missing", NOTHING_SUBMITTED),
    }
    late = {("ann", "a1"): Lateness(None, None, 3600.0, 0.5)}
    return Report(
        assignments=["a1", "a2"],
        students=["ann", "bob", "cid"],
        points=points,
        maximum=MAXIMUM,
        statuses=statuses,
        late=late,
        pending={("ann", "a2", "essay")},
    )


@pytest.mark.parametrize(
    ("student", "assignment", "total", "penalty", "pending"),
    [
        ("ann", "a1", 3.5, 0.5, 0.0),
        ("ann", "a2", 5.0, 0.0, 4.0),
        ("ann", None, 8.5, 0.5, 4.0),
        ("bob", "a1", 3.0, 0.0, 0.0),
        ("bob", "a2", 0.0, 0.0, 0.0),
        ("bob", None, 3.0, 0.0, 0.0),
        ("cid", None, 0.0, 0.0, 0.0),  # in the gradebook, without a graded cell
        ("ann", "a3", 0.0, 0.0, 0.0),  # an assignment no one handed in
    ],
)
def test_sums_per_student_and_assignment(student, assignment, total, penalty, pending):
    report = hand_made()
    assert report.total(student, assignment) == total
    assert report.penalty(student, assignment) == penalty
    assert report.final(student, assignment) == total - penalty
    assert report.pending_points(student, assignment) == pending


def test_looking_up_a_student_changes_no_sum():
    report = hand_made()
    before = [report.total(s) for s in report.students]
    for student in ["dan", "eve"]:
        assert report.total(student) == report.final(student, "a1") == 0
    assert [report.total(s) for s in report.students] == before
    assert report.max_total() == 14 and report.max_total("a2") == 9


def test_upload_score_holds_pending_work_and_scores_nothing_submitted_0():
    report = hand_made()
    assert report.upload_score("ann", "a1") == 3.0
    assert report.upload_score("ann", "a2") is None, "a written answer is still pending"
    assert report.upload_score("bob", "a2") == 0.0


@pytest.mark.timeout(5)
def test_a_large_class_sums_in_linear_time():
    """3000 students of 20 graded cells: one pass over the scores, not one per student."""
    students = [f"s{i:04}" for i in range(3000)]
    cells = [(f"a{k % 4}", f"q{k}") for k in range(20)]
    points = {(s, a, g): float(k % 3) for s in students for k, (a, g) in enumerate(cells)}
    report = Report(
        assignments=sorted({a for a, _ in cells}),
        students=students,
        points=points,
        maximum=dict.fromkeys(cells, 2.0),
        statuses={},
    )
    expected = sum(k % 3 for k in range(20))
    totals = [report.final(s, a) for s in students for a in [None, *report.assignments]]
    assert totals[0] == expected and len(set(totals[:: len(report.assignments) + 1])) == 1
