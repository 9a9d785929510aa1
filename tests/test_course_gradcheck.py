"""Tests of course/gradcheck.py: numerical gradients against known derivatives."""

import numpy as np
import pytest
import torch

from course.gradcheck import format_table, gradient_table, numerical_gradient, rel_error


def test_numerical_gradient_of_known_functions():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    A = rng.standard_normal((4, 4))
    x_before = x.copy()
    # d/dx sum(sin(x) * x) = cos(x) * x + sin(x)
    grad = numerical_gradient(lambda v: np.sum(np.sin(v) * v), x)
    assert grad.shape == x.shape and grad.dtype == np.float64
    np.testing.assert_allclose(grad, np.cos(x) * x + np.sin(x), rtol=1e-7, atol=1e-8)
    # d/dx sum((x A)^2) = 2 (x A) A^T
    grad = numerical_gradient(lambda v: np.sum((v @ A) ** 2), x)
    np.testing.assert_allclose(grad, 2 * (x @ A) @ A.T, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(x, x_before)


def test_numerical_gradient_of_a_scalar_and_a_torch_tensor():
    assert numerical_gradient(lambda v: v**3, np.array(2.0)) == pytest.approx(12.0, rel=1e-8)
    w = torch.randn(5, dtype=torch.float64, requires_grad=True)
    torch.logsumexp(w, 0).backward()
    grad = numerical_gradient(lambda v: torch.logsumexp(v, 0), w)
    np.testing.assert_allclose(grad, w.grad.numpy(), rtol=1e-7, atol=1e-9)


def test_numerical_gradient_restores_x_when_f_fails_and_rejects_bad_input():
    x = np.array([1.0, 2.0])

    def broken(v):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        numerical_gradient(broken, x)
    np.testing.assert_array_equal(x, [1.0, 2.0])
    with pytest.raises(TypeError, match="float"):
        numerical_gradient(np.sum, np.array([1, 2]))
    with pytest.raises(ValueError, match="single number"):
        numerical_gradient(lambda v: v * 2, x)


def test_rel_error():
    a = np.array([1.0, -2.0, 0.0])
    assert rel_error(a, a) == 0.0
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    # max |a - b| = 1e-9, max(|a| + |b|) = 4 (at the entry -2)
    assert rel_error(a, a + 1e-9) == pytest.approx(1e-9 / 4.0)
    assert rel_error(a, -a) == pytest.approx(1.0)
    assert rel_error(torch.tensor([1.0]), np.array([3.0])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shapes"):
        rel_error(np.zeros(2), np.zeros(3))


def test_gradient_table_and_format_table():
    analytic = {"W1": np.ones((2, 3)), "b1": np.array([0.5])}
    numeric = {"W1": np.ones((2, 3)) + 1e-9, "b1": np.array([0.25]), "unused": np.zeros(1)}
    rows = gradient_table(analytic, numeric)
    assert [row["parameter"] for row in rows] == ["W1", "b1"]
    assert rows[0]["shape"] == (2, 3)
    assert rows[0]["max_abs_diff"] == pytest.approx(1e-9)
    assert rows[0]["rel_error"] == pytest.approx(0.5e-9)
    assert rows[1]["max_abs_diff"] == pytest.approx(0.25)
    assert rows[1]["rel_error"] == pytest.approx(1 / 3)

    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["parameter", "shape", "max_abs_diff", "rel_error"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split()[0] == "W1" and "1.00e-09" in lines[2]
    assert "(1,)" in lines[3] and "3.33e-01" in lines[3]
    # Columns line up: every column ends at the same place on every line.
    assert len({len(line) for line in lines[2:]}) == 1
    assert format_table([]) == "(no rows)"

    with pytest.raises(KeyError, match="b1"):
        gradient_table(analytic, {"W1": numeric["W1"]})
    with pytest.raises(ValueError, match="shape"):
        gradient_table({"W1": np.ones(3)}, {"W1": np.ones(4)})
