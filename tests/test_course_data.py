"""Tests of course/data.py. None of them uses the network."""

import subprocess
import sys

import numpy as np
import pytest

from course import data
from course.data import (
    BOOLEAN_FUNCTIONS,
    blobs,
    boolean_inputs,
    load_digits,
    one_hot,
    spiral,
    truth_table,
    xor_points,
)

SEEDS = [0, 1, 2, 3, 4]


def test_boolean_inputs_in_counting_order():
    np.testing.assert_array_equal(boolean_inputs(1), [[0], [1]])
    np.testing.assert_array_equal(boolean_inputs(2), [[0, 0], [0, 1], [1, 0], [1, 1]])
    X = boolean_inputs(4)
    assert X.shape == (16, 4) and X.dtype == np.float64
    # Row i read as a binary number, most significant digit first, is i.
    np.testing.assert_array_equal(X @ [8, 4, 2, 1], np.arange(16))
    with pytest.raises(ValueError, match="at least 1, got 0"):
        boolean_inputs(0)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("AND", [0, 0, 0, 1]),
        ("OR", [0, 1, 1, 1]),
        ("NAND", [1, 1, 1, 0]),
        ("NOR", [1, 0, 0, 0]),
        ("XOR", [0, 1, 1, 0]),
        ("XNOR", [1, 0, 0, 1]),
    ],
)
def test_truth_tables_of_two_inputs(name, expected):
    X, y = truth_table(name)
    np.testing.assert_array_equal(X, boolean_inputs(2))
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(truth_table(name.lower())[1], expected)
    assert BOOLEAN_FUNCTIONS[name](0, 1) == bool(expected[1])


def test_truth_tables_of_three_inputs_and_of_a_callable():
    X, y = truth_table("and", 3)
    assert X.shape == (8, 3)
    np.testing.assert_array_equal(y, [0] * 7 + [1])
    np.testing.assert_array_equal(truth_table("OR", 3)[1], [0] + [1] * 7)
    np.testing.assert_array_equal(truth_table("XOR", 3)[1], X.sum(axis=1) % 2)
    np.testing.assert_array_equal(truth_table("XNOR", 3)[1], 1 - X.sum(axis=1) % 2)
    # x1 AND NOT x2, given as a function of ints
    _, y = truth_table(lambda a, b: a and not b)
    np.testing.assert_array_equal(y, [0, 0, 1, 0])
    _, y = truth_table(lambda a, b, c: a + b + c >= 2, num_inputs=3)
    np.testing.assert_array_equal(y, [0, 0, 0, 1, 0, 1, 1, 1])


def test_truth_table_of_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="IMPLIES.*AND, OR, NAND, NOR, XOR, XNOR"):
        truth_table("IMPLIES")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("margin", [0.1, 0.5, 1.0])
def test_blobs_are_separable_with_the_margin(seed, margin):
    X, y = blobs(201, np.random.default_rng(seed), margin=margin)
    assert X.shape == (201, 2) and X.dtype == np.float64
    assert y.dtype == np.int64 and set(np.unique(y)) == {0, 1}
    assert abs(np.sum(y == 1) - np.sum(y == 0)) <= 1
    # A hard-margin linear SVM finds the widest margin; it is at least the promised one.
    from sklearn.svm import SVC  # here: scikit-learn's import costs each pytest process 1.5 s

    svm = SVC(kernel="linear", C=1e8).fit(X, y)
    assert svm.score(X, y) == 1.0
    assert 1 / np.linalg.norm(svm.coef_) >= margin * (1 - 1e-3)
    # Labels come in random order, not sorted by class.
    assert 0 < np.argmax(y != y[0]) < 20


def test_blobs_are_reproducible_and_spread():
    X1, y1 = blobs(100, np.random.default_rng(7), spread=0.2)
    X2, y2 = blobs(100, np.random.default_rng(7), spread=0.2)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, blobs(100, np.random.default_rng(8), spread=0.2)[0])
    # Each cloud's standard deviation is about `spread` (slightly less: close points are redrawn).
    assert 0.1 < X1[y1 == 0].std(axis=0).mean() < 0.25


def test_xor_points():
    X, y = xor_points(400, np.random.default_rng(0), noise=0.1)
    assert X.shape == (400, 2) and X.dtype == np.float64 and y.dtype == np.int64
    corners = np.round(np.clip(X, 0, 1))
    np.testing.assert_array_equal(y, corners[:, 0] != corners[:, 1])
    for corner in boolean_inputs(2):
        assert np.sum(np.all(corners == corner, axis=1)) == 100
    X0, _ = xor_points(10, np.random.default_rng(0), noise=0.0)
    assert set(np.unique(X0)) <= {0.0, 1.0}


@pytest.mark.parametrize("seed", SEEDS)
def test_spiral_shape_balance_range_and_not_linearly_separable(seed):
    rng = np.random.default_rng(seed)
    X, y = spiral(1001, rng)
    assert X.shape == (1001, 2) and X.dtype == np.float32 and y.dtype == np.int64
    assert sorted(np.bincount(y)) == [500, 501]
    assert np.abs(X).max() < 1.2
    from sklearn.linear_model import LogisticRegression

    linear = LogisticRegression().fit(X, y)
    assert linear.score(X, y) < 0.8


def test_spiral_arms_do_not_mix_and_wind_around_the_centre():
    X, y = spiral(2000, np.random.default_rng(0), turns=2.0)
    # Nearest neighbours almost always share the class: the arms are clean.
    distances = np.linalg.norm(X[:, None] - X[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    assert np.mean(y[distances.argmin(axis=1)] == y) > 0.99
    # Each arm covers every direction around the origin.
    for label in (0, 1):
        angles = np.arctan2(X[y == label, 1], X[y == label, 0])
        assert np.histogram(angles, bins=8, range=(-np.pi, np.pi))[0].min() > 0
    noisy_X, noisy_y = spiral(2000, np.random.default_rng(0), turns=2.0, noise=1.0)
    distances = np.linalg.norm(noisy_X[:, None] - noisy_X[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    assert np.mean(noisy_y[distances.argmin(axis=1)] == noisy_y) < 0.95


def test_load_digits():
    X_train, X_test, y_train, y_test = load_digits()
    assert X_train.shape == (1347, 64) and X_test.shape == (450, 64)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    # Stratified: every digit in the same proportion in both sets.
    np.testing.assert_allclose(np.bincount(y_train) / 1347, np.bincount(y_test) / 450, atol=0.01)
    again = load_digits()
    np.testing.assert_array_equal(X_train, again[0])
    other = load_digits(seed=1, test_fraction=0.5)
    assert len(other[1]) == 899 and not np.array_equal(other[3], y_test[:899])


# Seeds 0..30, the notebooks' seed (0), and a few far apart.
DIGITS_SEEDS = [*range(31), 42, 1234, 2**31 - 1]


@pytest.fixture(scope="module")
def digits_reference():
    """The arrays before the split, made the way load_digits made them with scikit-learn."""
    from sklearn.datasets import load_digits as sklearn_load_digits

    digits = sklearn_load_digits()
    return (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64)


def _assert_identical(actual, expected):
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    assert actual.tobytes() == expected.tobytes()


@pytest.mark.parametrize("test_fraction", [0.25, 0.2, 0.5, 0.1, 0.3333, 100])
def test_load_digits_equals_scikit_learn_bit_for_bit(digits_reference, test_fraction):
    from sklearn.model_selection import train_test_split

    X, y = digits_reference
    for seed in DIGITS_SEEDS:
        expected = train_test_split(X, y, test_size=test_fraction, random_state=seed, stratify=y)
        actual = load_digits(seed=seed, test_fraction=test_fraction)
        for a, e in zip(actual, expected, strict=True):
            _assert_identical(a, e)


@pytest.mark.parametrize(
    "y",
    [
        np.repeat([0, 1, 2], [5, 5, 5]),
        np.repeat([3, 7, 9, 11], [2, 9, 4, 4]),
        np.array(list("abcabcabcaabbd" + "d")),
        np.random.default_rng(0).integers(0, 6, size=97),
    ],
    ids=["equal", "ties", "strings", "random"],
)
def test_stratified_split_equals_scikit_learn(y):
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(y))
    for test_size in (0.25, 0.5, 0.4, 7):
        for seed in range(20):
            expected = train_test_split(indices, test_size=test_size, random_state=seed, stratify=y)
            actual = data._stratified_split(y, test_size, seed)
            for a, e in zip(actual, expected, strict=True):
                np.testing.assert_array_equal(a, e, strict=True)


@pytest.mark.parametrize("test_fraction", [0.0, 1.0, 0.001, 0.999, 1797, "half"])
def test_load_digits_rejects_what_scikit_learn_rejects(digits_reference, test_fraction):
    from sklearn.model_selection import train_test_split

    X, y = digits_reference
    # Any ValueError: the point is to reject what scikit-learn rejects, each in its own words.
    with pytest.raises(ValueError):  # noqa: PT011
        train_test_split(X, y, test_size=test_fraction, random_state=0, stratify=y)
    with pytest.raises(ValueError):  # noqa: PT011
        load_digits(test_fraction=test_fraction)


def test_load_digits_does_not_import_scikit_learn():
    code = (
        "import sys, course\n"
        "X_train, X_test, y_train, y_test = course.data.load_digits()\n"
        "assert X_train.shape == (1347, 64), X_train.shape\n"
        "print(sorted(m for m in sys.modules if m == 'sklearn' or m.startswith('sklearn.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_one_hot():
    Y = one_hot(np.array([2, 0, 1]), 4)
    np.testing.assert_array_equal(Y, [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]])
    assert Y.dtype == np.float64
    assert one_hot([1], 2, dtype=np.float32).dtype == np.float32
    assert one_hot(np.array([], dtype=int), 3).shape == (0, 3)
    for bad in ([3], [-1], [0.5]):
        with pytest.raises(ValueError, match="0 .. 2"):
            one_hot(bad, 3)
    with pytest.raises(ValueError, match="1-D"):
        one_hot([[1]], 3)
