"""The order autograde hands submissions out in (grader.pipeline.order): longest first, as
measured in the run."""

from __future__ import annotations

import pytest

from grader.pipeline.order import LongestFirst


def handed_out(order: LongestFirst[str], count: int) -> list[str]:
    return [order.next()[1] for _ in range(count)]


def test_unmeasured_assignments_go_first_in_the_order_given():
    order = LongestFirst([("02", "ada"), ("02", "bob"), ("01", "ada"), ("01", "bob")])
    assert handed_out(order, 2) == ["ada", "ada"]  # one of each: the first measures it
    assert order.next() == ("02", "bob")  # neither measured yet: the order given
    order.ran("02", 1.0)
    assert order.next() == ("01", "bob")  # 01 may take longer: not measured yet


def test_the_assignment_whose_notebooks_ran_longest_goes_first():
    order = LongestFirst([("02", f"{s}2") for s in "abc"] + [("01", f"{s}1") for s in "abc"])
    assert handed_out(order, 2) == ["a2", "a1"]
    order.ran("02", 1.4)
    order.ran("01", 2.6)
    assert handed_out(order, 3) == ["b1", "c1", "b2"]  # within one: the order given
    assert order.next() == ("02", "c2")
    assert not order
    with pytest.raises(IndexError):
        order.next()


def test_the_median_decides_and_a_notebook_that_never_ran_does_not_count():
    order = LongestFirst([("01", "x"), ("02", "y"), ("01", "z"), ("02", "w")])
    handed_out(order, 2)
    for seconds in (1.0, 1.2, 30.0):  # one looping notebook does not make 01 the long one
        order.ran("01", seconds)
    for seconds in (2.0, 0.0, 0.0):  # 0: crashed before a worker took it
        order.ran("02", seconds)
    assert order.expected("01") == 1.2 and order.expected("02") == 2.0
    assert order.next() == ("02", "w")
