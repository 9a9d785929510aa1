"""Tests of course/testing.py: pass on correct input, fail with a message that helps."""

import re

import numpy as np
import pytest
import torch

from course.testing import (
    assert_close,
    assert_dtype_kind,
    assert_equal,
    assert_implemented,
    assert_shape,
)


def fails(match):
    """Expect an AssertionError whose message contains `match` (a literal string)."""
    return pytest.raises(AssertionError, match=re.escape(match))


def test_assert_shape():
    assert_shape(np.zeros((4, 3)), (4, 3), "h")
    assert_shape(torch.zeros(4, 3), (None, 3), "h")
    assert_shape([[1, 2, 3]], (1, 3), "h")
    assert_shape(np.float64(2.0), (), "loss")
    with fails("h should have shape (4, 3) but has shape (3, 4)"):
        assert_shape(np.zeros((3, 4)), (4, 3), "h")
    with fails("h should have shape (any, 3) but has shape (4,)"):
        assert_shape(np.zeros(4), (None, 3), "h")
    with fails("h should have shape (4,) but has shape (4, 1)"):
        assert_shape(np.zeros((4, 1)), (4,), "h")
    with fails("forward(X) returned None; did you forget a return statement?"):
        assert_shape(None, (4,), "forward(X)")


def test_assert_close_passes_within_tolerance():
    assert_close(np.array([1.0, 2.0]), [1.0, 2.0 + 1e-12], "f(x)")
    assert_close(torch.tensor([1.0, 2.0], requires_grad=True) * 1, np.array([1.0, 2.0]), "f(x)")
    assert_close(0.1 + 0.2, 0.3, "sum")
    assert_close(np.full((2, 2), 0.5), 0.5, "sigmoid(0)")
    assert_close([np.nan, 1.0], [np.nan, 1.0], "f")
    assert_close([np.inf], [np.inf], "f")
    assert_close(1.05, 1.0, "f", rtol=0.1)
    assert_close(1e-3, 0.0, "f", atol=1e-2)
    assert_close(np.array([True, False]), [1, 0], "mask")


def test_assert_close_names_the_largest_difference():
    actual = np.array([[1.0, 2.0], [3.0, 4.5]])
    expected = np.array([[1.0, 2.1], [3.0, 4.0]])
    with fails("W is not close to the expected value at index [1, 1]: expected 4, got 4.5") as e:
        assert_close(actual, expected, "W")
    assert "2 of 4 entries differ" in str(e.value)
    with fails("loss is not close to the expected value: expected 0.25, got 0.5"):
        assert_close(0.5, 0.25, "loss")
    with fails("at index [0]: expected 1, got nan"):
        assert_close([np.nan, 2.0], [1.0, 1.0], "f")
    with fails("f should have shape (2,) but has shape (3,)"):
        assert_close(np.zeros(3), np.zeros(2), "f")
    with fails("f should have shape (3, 1) but has shape (3,)"):
        assert_close(np.zeros(3), np.zeros((3, 1)), "f")


def test_assert_close_on_none_and_non_numbers():
    with fails("step(a) returned None; did you forget a return statement?"):
        assert_close(None, [0, 1], "step(a)")
    with fails("step(a) should be a number or an array of numbers, but is str 'abc'"):
        assert_close("abc", [0, 1], "step(a)")
    with fails("should be a number or an array of numbers, but is dict"):
        assert_close({"a": 1}, 1, "f")


def test_assert_equal():
    assert_equal(np.array([1, 0, 1]), [1, 0, 1], "y_hat")
    assert_equal(torch.tensor([1, 0]), np.array([1, 0]), "y_hat")
    assert_equal(3, 3.0, "count")
    assert_equal((2, 3), (2, 3), "shape")
    assert_equal("relu", "relu", "name")
    assert_equal([np.nan], [np.nan], "f")
    with fails("y_hat is not the expected value at index [1]: expected 0, got 1; 2 of 3 entries"):
        assert_equal(np.array([1, 1, 0]), [1, 0, 1], "y_hat")
    with fails("count is not the expected value: expected 3, got 4"):
        assert_equal(4, 3, "count")
    with fails("name should be 'relu' but is 'tanh'"):
        assert_equal("tanh", "relu", "name")
    with fails("name should be 'relu' but is array([1])"):
        assert_equal(np.array([1]), "relu", "name")
    with fails("y_hat should have shape (3,) but has shape (3, 1)"):
        assert_equal(np.zeros((3, 1)), np.zeros(3), "y_hat")
    with fails("predict(X) returned None"):
        assert_equal(None, [1, 2], "predict(X)")
    with fails("predict(X) returned None"):
        assert_equal(None, "x", "predict(X)")


def test_assert_dtype_kind():
    assert_dtype_kind(np.zeros(2), "f", "h")
    assert_dtype_kind(np.zeros(2, dtype=np.int32), "iu", "labels")
    assert_dtype_kind(torch.zeros(2, dtype=torch.bfloat16), "f", "h")
    assert_dtype_kind(torch.zeros(2, dtype=torch.long), "i", "labels")
    assert_dtype_kind(torch.zeros(2, dtype=torch.uint8), "u", "image")
    assert_dtype_kind(torch.zeros(2, dtype=torch.bool), "b", "mask")
    assert_dtype_kind([1.5, 2.5], "f", "list")
    with fails("h should contain floating-point numbers, but has dtype int64"):
        assert_dtype_kind(np.zeros(2, dtype=np.int64), "f", "h")
    with fails("labels should contain signed integers or unsigned integers, but has dtype float32"):
        assert_dtype_kind(torch.zeros(2), "iu", "labels")
    with fails("mask should contain booleans, but has dtype int64"):
        assert_dtype_kind(torch.zeros(2, dtype=torch.long), "b", "mask")
    with fails("h returned None"):
        assert_dtype_kind(None, "f", "h")


def test_assert_implemented():
    def square(x):
        return x * x

    def stub(x):
        raise NotImplementedError()

    assert assert_implemented(square, 3) == 9
    assert assert_implemented(square, x=4) == 16
    with fails("stub is not implemented yet: replace `raise NotImplementedError()` with your code"):
        assert_implemented(stub, 1)
    # Other errors are the student's to see, unchanged.
    with pytest.raises(TypeError):
        assert_implemented(square, "a")
