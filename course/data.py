"""Data sets of the course: truth tables, 2-D toy sets and scikit-learn's digits.

The optional MNIST download lives in `course.mnist`.

Every function that draws random numbers takes an explicit ``rng: np.random.Generator``
(make one with ``course.set_seed(seed)`` or ``np.random.default_rng(seed)``), so that a
notebook gives the same data on every run and on every machine.
"""

import gzip
import importlib.util
import itertools
import numbers
from collections.abc import Callable
from math import ceil
from pathlib import Path

import numpy as np


def _and(*x: int) -> bool:
    return all(x)


def _or(*x: int) -> bool:
    return any(x)


def _nand(*x: int) -> bool:
    return not all(x)


def _nor(*x: int) -> bool:
    return not any(x)


def _xor(*x: int) -> bool:
    # With n inputs XOR is the parity: true when an odd number of inputs is 1.
    return sum(x) % 2 == 1


def _xnor(*x: int) -> bool:
    return sum(x) % 2 == 0


BOOLEAN_FUNCTIONS: dict[str, Callable[..., bool]] = {
    "AND": _and,
    "OR": _or,
    "NAND": _nand,
    "NOR": _nor,
    "XOR": _xor,
    "XNOR": _xnor,
}
"""Boolean functions by name; each takes its inputs as separate 0/1 ints, any number of them."""


def boolean_inputs(num_inputs: int) -> np.ndarray:
    """All combinations of `num_inputs` binary inputs, in counting order.

    Parameters
    ----------
    num_inputs : int
        Number of inputs n >= 1.

    Returns
    -------
    X : (2**n, n) float64 array
        Row i holds the binary digits of i, most significant first:
        for n = 2 the rows are [0, 0], [0, 1], [1, 0], [1, 1].
    """
    if num_inputs < 1:
        raise ValueError(f"num_inputs must be at least 1, got {num_inputs}")
    return np.array(list(itertools.product((0.0, 1.0), repeat=num_inputs)), dtype=np.float64)


def truth_table(fn: str | Callable[..., object], num_inputs: int = 2):
    """Inputs and outputs of a boolean function.

    Parameters
    ----------
    fn : str or callable
        A name from `BOOLEAN_FUNCTIONS` (case-insensitive, e.g. ``"xor"``), or a callable
        that takes the n inputs as separate ints 0/1 and returns something truthy.
    num_inputs : int
        Number of inputs n.

    Returns
    -------
    X : (2**n, n) float64 array
        All input combinations, as in `boolean_inputs`.
    y : (2**n,) int64 array
        The output 0 or 1 for each row of X.
    """
    if isinstance(fn, str):
        try:
            fn = BOOLEAN_FUNCTIONS[fn.upper()]
        except KeyError:
            known = ", ".join(BOOLEAN_FUNCTIONS)
            raise ValueError(f"unknown boolean function {fn!r}; known: {known}") from None
    X = boolean_inputs(num_inputs)
    y = np.array([1 if fn(*(int(v) for v in row)) else 0 for row in X], dtype=np.int64)
    return X, y


def _balanced_labels(num_points: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    # Equal class sizes (up to one point), in random order so that a minibatch taken
    # from the front of the data is not all one class.
    return rng.permutation(np.arange(num_points) % num_classes).astype(np.int64)


def blobs(num_points: int, rng: np.random.Generator, *, margin: float = 0.5, spread: float = 1.0):
    """Two linearly separable clusters in the plane.

    A random line is drawn first; each class is a Gaussian cloud on its own side of the
    line, and points that land closer than `margin` to the line are drawn again. So the
    two classes are separable, with every point at least `margin` away from that line.

    Parameters
    ----------
    num_points : int
        Number of points n; the classes differ in size by at most one.
    rng : np.random.Generator
    margin : float
        Smallest distance of any point from the separating line.
    spread : float
        Standard deviation of each cloud along each axis.

    Returns
    -------
    X : (n, 2) float64 array
    y : (n,) int64 array of 0/1
    """
    if margin < 0 or spread <= 0:
        raise ValueError("margin must be >= 0 and spread > 0")
    angle = rng.uniform(0, 2 * np.pi)
    normal = np.array([np.cos(angle), np.sin(angle)])
    anchor = rng.uniform(-1, 1, size=2)  # a point on the line, so it need not pass through 0
    # Centres 2 standard deviations beyond the margin: few points need redrawing.
    offset = margin + 2 * spread
    y = _balanced_labels(num_points, 2, rng)
    sign = np.where(y == 1, 1.0, -1.0)
    X = np.empty((num_points, 2))
    todo = np.arange(num_points)
    while todo.size:
        centres = anchor + (sign[todo] * offset)[:, None] * normal
        X[todo] = centres + spread * rng.standard_normal((todo.size, 2))
        signed_distance = (X[todo] - anchor) @ normal
        todo = todo[sign[todo] * signed_distance < margin]
    return X, y


def xor_points(num_points: int, rng: np.random.Generator, *, noise: float = 0.15):
    """Noisy points around the corners of the unit square, labelled by XOR.

    Parameters
    ----------
    num_points : int
        Number of points n; the four corners get equally many points (up to one).
    rng : np.random.Generator
    noise : float
        Standard deviation of the Gaussian noise added to each coordinate.

    Returns
    -------
    X : (n, 2) float64 array
        Points near (0, 0), (0, 1), (1, 0), (1, 1).
    y : (n,) int64 array
        1 near (0, 1) and (1, 0), 0 near (0, 0) and (1, 1).
    """
    corner = rng.permutation(np.arange(num_points) % 4)
    bits = boolean_inputs(2)[corner]
    X = bits + noise * rng.standard_normal((num_points, 2))
    y = (bits[:, 0] != bits[:, 1]).astype(np.int64)
    return X, y


def spiral(num_points: int, rng: np.random.Generator, *, noise: float = 0.1, turns: float = 1.5):
    """Two interleaved spiral arms, one per class.

    Each arm winds `turns` times around the origin, from near the centre out to
    radius 1; the second arm is the first rotated by half a turn. No straight line
    separates the classes, while a small multi-layer network can.

    Parameters
    ----------
    num_points : int
        Number of points n; half of them (up to one) in each class.
    rng : np.random.Generator
    noise : float
        Standard deviation of the Gaussian noise added to each coordinate, as a fraction
        of the distance between neighbouring arms (which is 1 / (2 * turns + 1 / 2)).
        At 0.1 the arms are clean; at 0.5 points of both classes mix.
    turns : float
        How many times each arm winds around the origin.

    Returns
    -------
    X : (n, 2) float32 array
        Points roughly inside [-1, 1]^2.
    y : (n,) int64 array of 0/1
    """
    if turns <= 0:
        raise ValueError(f"turns must be positive, got {turns}")
    y = _balanced_labels(num_points, 2, rng)
    # The arms start at radius r0 on opposite sides of the origin, 2 * r0 apart, which is
    # also the radial gap between the arms further out: the classes never touch.
    gap = 1 / (2 * turns + 0.5)
    r0 = gap / 2
    # sqrt makes the points about evenly spaced along the arm instead of crowding the centre.
    t = np.sqrt(rng.uniform(0, 1, size=num_points))
    radius = r0 + (1 - r0) * t
    angle = 2 * np.pi * turns * t + np.pi * y
    X = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    X += noise * gap * rng.standard_normal((num_points, 2))
    return X.astype(np.float32), y


def _digits_csv() -> Path:
    # scikit-learn's own copy of the digits, found without importing scikit-learn:
    # find_spec of a top-level package only locates it.
    spec = importlib.util.find_spec("sklearn")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    raise FileNotFoundError(
        "the digits come with scikit-learn (sklearn/datasets/data/digits.csv.gz), "
        "which is not installed here: pip install scikit-learn"
    )


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng) -> np.ndarray:
    # A copy of sklearn.utils.extmath._approximate_mode (scikit-learn, BSD-3-Clause):
    # how many of `n_draws` to take from each class, ties broken by `rng`.
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        values = np.sort(np.unique(remainder))[::-1]
        for value in values:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            inds = rng.choice(inds, size=add_now, replace=False)
            floored[inds] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def _stratified_split(y: np.ndarray, test_size, seed):
    """Indices (train, test) exactly as ``sklearn.model_selection.train_test_split(...,
    test_size=test_size, random_state=seed, stratify=y)`` chooses them.

    Mirrors scikit-learn 1.x (BSD-3-Clause): ``_validate_shuffle_split`` for the sizes,
    ``check_random_state`` for the generator and ``StratifiedShuffleSplit._iter_indices``
    for the draws, call for call on the same ``np.random.RandomState``; the tests compare
    the result with scikit-learn's own for many seeds and sizes.
    """
    n_samples = len(y)
    kind = np.asarray(test_size).dtype.kind
    if (kind == "i" and not 0 < test_size < n_samples) or (kind == "f" and not 0 < test_size < 1):
        raise ValueError(
            f"test_size={test_size} should be either positive and smaller than the number "
            f"of samples {n_samples} or a float in the (0, 1) range"
        )
    if kind not in ("i", "f"):
        raise ValueError(f"Invalid value for test_size: {test_size}")
    n_test = ceil(test_size * n_samples) if kind == "f" else int(test_size)
    n_train = n_samples - n_test

    if seed is None or seed is np.random:
        rng = np.random.mtrand._rand
    elif isinstance(seed, numbers.Integral):
        rng = np.random.RandomState(int(seed))
    elif isinstance(seed, np.random.RandomState):
        rng = seed
    else:
        raise ValueError(f"{seed!r} cannot be used to seed a numpy.random.RandomState instance")

    classes, y_indices, class_counts = np.unique(y, return_inverse=True, return_counts=True)
    n_classes = classes.shape[0]
    if np.min(class_counts) < 2:
        raise ValueError("every class needs at least 2 members for a stratified split")
    for name, n in (("train_size", n_train), ("test_size", n_test)):
        if n < n_classes:
            raise ValueError(
                f"The {name} = {n} should be greater or equal to the number of "
                f"classes = {n_classes}"
            )
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])

    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for i in range(n_classes):
        permutation = rng.permutation(class_counts[i])
        perm_indices_class_i = class_indices[i].take(permutation, mode="clip")
        train.extend(perm_indices_class_i[: n_i[i]])
        test.extend(perm_indices_class_i[n_i[i] : n_i[i] + t_i[i]])
    return rng.permutation(train), rng.permutation(test)


def load_digits(seed: int = 0, test_fraction: float = 0.25):
    """scikit-learn's bundled 8x8 handwritten digits, split into training and test sets.

    1797 images of the digits 0-9 (no download needed). With the default split there are
    1347 training and 450 test images, each class in the same proportion in both.

    The arrays are exactly those of ``sklearn.datasets.load_digits`` followed by
    ``sklearn.model_selection.train_test_split(X, y, test_size=test_fraction,
    random_state=seed, stratify=y)``, but scikit-learn itself is not imported: that would
    cost every kernel about a second of CPU. The file is read from the installed
    scikit-learn package and the split is a copy of scikit-learn's.

    Parameters
    ----------
    seed : int
        `random_state` of the stratified split.
    test_fraction : float
        Fraction of the images in the test set.

    Returns
    -------
    X_train : (n_train, 64) float32 array
        Pixel intensities in [0, 1]; row k is image k flattened row by row.
    X_test : (n_test, 64) float32 array
    y_train : (n_train,) int64 array of digits 0-9
    y_test : (n_test,) int64 array
    """
    # Read as sklearn.datasets.load_digits does: 64 pixel columns, then the digit.
    with gzip.open(_digits_csv(), mode="rt", encoding="utf-8") as f:
        table = np.loadtxt(f, delimiter=",")
    # The raw pixels count ink from 0 to 16.
    X = (table[:, :-1] / 16.0).astype(np.float32)
    y = table[:, -1].astype(int, copy=False).astype(np.int64)
    train, test = _stratified_split(y, test_fraction, seed)
    return (
        np.take(X, train, axis=0),
        np.take(X, test, axis=0),
        np.take(y, train, axis=0),
        np.take(y, test, axis=0),
    )


def one_hot(y, num_classes: int, dtype=np.float64) -> np.ndarray:
    """One-hot encoding of class labels.

    Parameters
    ----------
    y : (n,) int array
        Labels in 0 .. num_classes - 1.
    num_classes : int
    dtype : numpy dtype
        Type of the result.

    Returns
    -------
    Y : (n, num_classes) array
        ``Y[i, y[i]] = 1``, all other entries 0.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D array of labels, got shape {y.shape}")
    if y.size and (not np.all(y == np.round(y)) or y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must be integers in 0 .. {num_classes - 1}")
    Y = np.zeros((y.size, num_classes), dtype=dtype)
    Y[np.arange(y.size), y.astype(np.int64)] = 1
    return Y
