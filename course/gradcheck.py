"""Numerical gradients and their comparison with analytic ones.

Back-propagation is computed by hand in the notebooks; these helpers only check it.
Work in float64: with float32 the rounding error of a central difference is about as
large as the differences one is looking for.
"""

import numpy as np

from course._convert import to_numpy


def _scalar(value) -> float:
    value = to_numpy(value)
    if value.size != 1:
        raise ValueError(f"f must return a single number, got an array of shape {value.shape}")
    return float(value.reshape(()))


def numerical_gradient(f, x, eps: float = 1e-6) -> np.ndarray:
    """Gradient of a scalar function by central differences.

    For every entry x_i: ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``, with an error
    of order eps**2 plus the rounding error of f divided by eps.

    Parameters
    ----------
    f : callable
        Maps the array `x` (the very object, changed in place) to a number; typically
        a closure that computes a loss from `x` and fixed data.
    x : float64 array of any shape, or a float64 CPU torch tensor
        The point at which to differentiate. Each entry is changed in turn and restored,
        so `x` has its original value when the function returns.
    eps : float
        Step size.

    Returns
    -------
    grad : float64 array of the shape of x
        ``grad[i] ~ df/dx[i]``.
    """
    # A view of x that shares its memory: changing it changes what f sees.
    values = x.detach().numpy() if hasattr(x, "detach") else x
    if not isinstance(values, np.ndarray) or not np.issubdtype(values.dtype, np.floating):
        raise TypeError("x must be a float array (float64 for accurate results), changed in place")
    grad = np.zeros(values.shape, dtype=np.float64)
    for index in np.ndindex(values.shape):
        original = values[index]
        try:
            values[index] = original + eps
            f_plus = _scalar(f(x))
            values[index] = original - eps
            f_minus = _scalar(f(x))
        finally:
            values[index] = original
        grad[index] = (f_plus - f_minus) / (2 * eps)
    return grad


def rel_error(a, b) -> float:
    """Relative difference of two arrays: ``max |a - b| / max(|a| + |b|)``.

    Parameters
    ----------
    a, b : float arrays of the same shape (numpy or torch)

    Returns
    -------
    float
        0 for identical arrays; about 1e-8 or less for a correct gradient against a
        float64 numerical gradient; near 1 when they have nothing in common.

    Notes
    -----
    Both maxima run over all entries, so entries near zero (where a per-entry ratio
    would blow up rounding noise) do not dominate.
    """
    a = to_numpy(a).astype(np.float64)
    b = to_numpy(b).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare arrays of shapes {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(a) + np.abs(b))), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(a - b)) / scale)


def gradient_table(analytic: dict, numeric: dict) -> list[dict]:
    """Compare gradients parameter by parameter.

    Parameters
    ----------
    analytic : dict of str to array
        Gradients by parameter name, e.g. ``{"W1": dW1, "b1": db1}``.
    numeric : dict of str to array
        The same names, e.g. from `numerical_gradient`.

    Returns
    -------
    list of dict
        One row per parameter, in the order of `analytic`, with keys "parameter",
        "shape", "max_abs_diff" and "rel_error" (see `rel_error`).
    """
    missing = [name for name in analytic if name not in numeric]
    if missing:
        raise KeyError(f"no numerical gradient for {', '.join(missing)}")
    rows = []
    for name, grad in analytic.items():
        a = to_numpy(grad).astype(np.float64)
        n = to_numpy(numeric[name]).astype(np.float64)
        if a.shape != n.shape:
            raise ValueError(f"gradient of {name} has shape {a.shape}, numerical {n.shape}")
        rows.append(
            {
                "parameter": name,
                "shape": a.shape,
                "max_abs_diff": float(np.max(np.abs(a - n))) if a.size else 0.0,
                "rel_error": rel_error(a, n),
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    """Rows of dicts as a text table with aligned columns, e.g. for `gradient_table`.

    Parameters
    ----------
    rows : list of dict
        All with the same keys, which become the column headers.

    Returns
    -------
    str
        A header line, a rule, and one line per row; floats in scientific notation.
    """
    if not rows:
        return "(no rows)"
    columns = list(rows[0])

    def cell(value) -> str:
        if isinstance(value, float | np.floating):
            return f"{value:.2e}"
        if isinstance(value, tuple):
            return "(" + ", ".join(str(v) for v in value) + ("," if len(value) == 1 else "") + ")"
        return str(value)

    cells = [[cell(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(column), *(len(r[i]) for r in cells)) for i, column in enumerate(columns)]

    def line(values) -> str:
        # Text to the left, numbers to the right, as in a printed table.
        parts = []
        for value, width, column in zip(values, widths, columns, strict=True):
            numeric = isinstance(rows[0].get(column), int | float | np.number)
            parts.append(value.rjust(width) if numeric else value.ljust(width))
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(columns), rule, *(line(r) for r in cells)])
