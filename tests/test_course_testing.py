"""Tests of course/testing.py: pass on correct input, fail with a message that helps."""

import re

import numpy as np
import pytest
import torch

from course.testing import (
    assert_close,
    assert_dtype_kind,
    assert_equal,
    assert_forward,
    assert_implemented,
    assert_returns,
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

    def release_stub(x):
        raise NotImplementedError("Exercise 1.2 (`release_stub`) is not answered yet")

    assert assert_implemented(square, 3) == 9
    assert assert_implemented(square, x=4) == 16
    with fails("stub is not answered yet: write your code in place of `raise NotImplementedError"):
        assert_implemented(stub, 1)
    # The release's stub names its exercise already: it passes through, as it is.
    with pytest.raises(NotImplementedError, match=re.escape("Exercise 1.2 (`release_stub`)")):
        assert_implemented(release_stub, 1)
    # Other errors are the student's to see, unchanged.
    with pytest.raises(TypeError):
        assert_implemented(square, "a")


def test_a_hint_comes_first_and_every_message_is_one_sentence():
    with pytest.raises(AssertionError) as error:
        assert_equal(
            [0, 0, 1, 1, 1],
            [0, 0, 0, 1, 1],
            "step(a)",
            hint="step should be 0 for a <= 0 (a = 0 included).",
        )
    assert str(error.value) == (
        "step should be 0 for a <= 0 (a = 0 included): step(a) is 1 at index [2], expected 0; "
        "1 of 5 entries differ."
    )
    with pytest.raises(AssertionError) as error:
        assert_close(0.5, 0.75, "loss", hint="L is the mean of half the squared errors")
    assert str(error.value) == (
        "L is the mean of half the squared errors: loss is 0.5, expected 0.75."
    )
    with fails("keep the shape: h should have shape (3,) but has shape (2,)."):
        assert_shape([1, 2], (3,), "h", hint="keep the shape")
    with fails("A hint: f returned None; did you forget a return statement?"):
        assert_close(None, 1.0, "f", hint="A hint")
    for check in (
        lambda: assert_close([1.0, 2.0], [1.0, 3.0], "f"),
        lambda: assert_equal(4, 3, "count"),
        lambda: assert_shape(np.zeros(2), (3,), "h"),
        lambda: assert_dtype_kind(np.zeros(2), "i", "labels"),
    ):
        with pytest.raises(AssertionError) as error:
            check()
        message = str(error.value)
        assert "\n" not in message and message.endswith("."), message
        assert "ACTUAL" not in message and "DESIRED" not in message, message


def test_assert_close_names_the_tolerance_only_for_a_near_miss():
    with pytest.raises(AssertionError) as error:
        assert_close([1.0, 2.0], [1.0, 3.0], "f")
    assert "tolerance" not in str(error.value) and "rtol" not in str(error.value)
    with fails(
        "f is not close to the expected value: expected 0.5, got 0.5000001 (a difference "
        "of 1e-07, more than the test allows: rtol=1e-10, atol=0)."
    ):
        assert_close(0.5000001, 0.5, "f", rtol=1e-10)


def test_assert_returns():
    assert assert_returns((1, 2), "theta, state", "step()") == (1, 2)
    assert assert_returns([1, 2, 3], "w, b, mistakes", "train()") == [1, 2, 3]
    with fails("step() should return 2 values (theta, state) but returns None: did you forget"):
        assert_returns(None, "theta, state", "step()")
    with fails("step() should return 2 values (theta, state) but returns a single ndarray."):
        assert_returns(np.zeros(2), "theta, state", "step()")
    with fails("train() should return 3 values (w, b, mistakes) but returns 2 values."):
        assert_returns((1, 2), "w, b, mistakes", "train()")


def test_assert_forward_names_the_layer_that_cannot_take_its_input():
    from torch import nn

    cnn = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 8 * 8, 10),
    )
    with fails(
        "make_cnn() cannot take a batch of shape (5, 1, 8, 8): layer 4 of the model, "
        "Linear(in_features=1024, out_features=10, bias=True), expects 1024 input "
        "features but gets 256 from the layer before it."
    ):
        assert_forward(cnn, torch.zeros(5, 1, 8, 8), "make_cnn()")
    no_flatten = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.MaxPool2d(2), nn.Linear(256, 10))
    with fails("gets an input of shape (5, 16, 4, 4); put an nn.Flatten() before it."):
        assert_forward(no_flatten, torch.zeros(5, 1, 8, 8), "make_cnn()")
    with fails(
        "layer 0 of the model, Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1)), expects "
        "3 input channels but gets 1 from the model's input."
    ):
        assert_forward(nn.Sequential(nn.Conv2d(3, 16, 3)), torch.zeros(5, 1, 8, 8), "net")
    mlp = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(32, 1))
    with fails(
        "layer 2 of the model, Linear(in_features=32, out_features=1, bias=True), "
        "expects 32 input features but gets 64 from the layer before it."
    ):
        assert_forward(mlp, torch.zeros(5, 2), "make_good_model()")
    double = nn.Sequential(nn.Linear(2, 3))
    double[0].weight = nn.Parameter(torch.zeros(3, 2, dtype=torch.float64))
    with fails("holds a weight of dtype float64 but gets a float32 input"):
        assert_forward(double, torch.zeros(4, 2), "to_sequential(layers)")
    good = nn.Sequential(nn.Linear(2, 3))
    assert assert_forward(good, torch.zeros(4, 2), "net").shape == (4, 3)
    with fails("f cannot take a batch of shape (2,): AttributeError:"):
        assert_forward(lambda x: x.no_such_method(), torch.zeros(2), "f")
