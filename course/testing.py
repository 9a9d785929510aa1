"""Assertions for exercise tests, with messages a student understands in one sentence.

Each helper raises AssertionError when the check fails and returns None otherwise.
`what` names the student's result in the message; the expression that produced it
reads best, e.g. ``assert_close(perceptron(X, w, b), [0, 1], "perceptron(X, w, b)")``
fails with "perceptron(X, w, b) is not close to the expected value at index [1]: ...".
Arrays may be numpy arrays, torch tensors (compared as numpy arrays) or lists.
"""

import numpy as np

from course._convert import to_numpy

_KIND_NAMES = {
    "b": "booleans",
    "i": "signed integers",
    "u": "unsigned integers",
    "f": "floating-point numbers",
    "c": "complex numbers",
}


def _numbers(actual, what: str) -> np.ndarray:
    # The student's result as a numeric array, or an AssertionError that says why not.
    if actual is None:
        raise AssertionError(f"{what} returned None; did you forget a return statement?")
    try:
        array = to_numpy(actual)
    except Exception:
        array = None
    if array is None or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise AssertionError(
            f"{what} should be a number or an array of numbers, "
            f"but is {type(actual).__name__} {_short(actual)}"
        )
    return array


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _format_index(index: tuple) -> str:
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def _format_value(value) -> str:
    if isinstance(value, np.bool_ | bool):
        return str(bool(value))
    if isinstance(value, np.integer | int):
        return str(int(value))
    return f"{complex(value):.8g}" if np.iscomplexobj(value) else f"{float(value):.8g}"


def _shape_matches(actual: tuple, expected: tuple) -> bool:
    return len(actual) == len(expected) and all(
        e is None or a == e for a, e in zip(actual, expected, strict=True)
    )


def assert_shape(actual, expected_shape, what: str) -> None:
    """Check the shape of an array.

    Parameters
    ----------
    actual : array, tensor or nested list
    expected_shape : tuple of int or None
        None matches any size along that axis, e.g. ``(None, 3)``.
    what : str
        Name of `actual` in the message.
    """
    array = _numbers(actual, what)
    expected = tuple(expected_shape)
    if not _shape_matches(array.shape, expected):
        wanted = "(" + ", ".join("any" if e is None else str(e) for e in expected) + ")"
        if len(expected) == 1:
            wanted = wanted[:-1] + ",)"
        raise AssertionError(f"{what} should have shape {wanted} but has shape {array.shape}")


def assert_close(actual, expected, what: str, *, rtol: float = 1e-7, atol: float = 0.0) -> None:
    """Check that numbers agree: ``|actual - expected| <= atol + rtol * |expected|``.

    Parameters
    ----------
    actual : number, array, tensor or nested list
    expected : number, array, tensor or nested list
        Of the same shape as `actual`, or a single number that every entry should equal.
    what : str
        Name of `actual` in the message.
    rtol, atol : float
        Relative and absolute tolerance, as in `numpy.testing.assert_allclose`.
        NaN matches NaN.

    Notes
    -----
    The message names the entry with the largest difference, with its expected and
    actual value, and how many entries differ.
    """
    a = _numbers(actual, what)
    e = to_numpy(expected)
    if a.shape != e.shape:
        if e.shape != ():
            raise AssertionError(f"{what} should have shape {e.shape} but has shape {a.shape}")
        e = np.broadcast_to(e, a.shape)
    complex_kind = np.iscomplexobj(a) or np.iscomplexobj(e)
    a = a.astype(np.complex128 if complex_kind else np.float64)
    e = e.astype(np.complex128 if complex_kind else np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        difference = np.abs(a - e)
        good = (a == e) | (difference <= atol + rtol * np.abs(e)) | (np.isnan(a) & np.isnan(e))
    if np.all(good):
        return
    # NaN where a number was expected is the worst difference there is.
    badness = np.where(good, -1.0, np.nan_to_num(difference, nan=np.inf))
    index = np.unravel_index(np.argmax(badness), a.shape)
    where = f" at index {_format_index(index)}" if a.ndim else ""
    count = f"; {np.count_nonzero(~good)} of {a.size} entries differ" if a.size > 1 else ""
    raise AssertionError(
        f"{what} is not close to the expected value{where}: expected {_format_value(e[index])}, "
        f"got {_format_value(a[index])} (difference {_format_value(difference[index])}, "
        f"tolerance rtol={rtol:g}, atol={atol:g}){count}."
    )


def assert_equal(actual, expected, what: str) -> None:
    """Check exact equality: of numbers and arrays entry by entry, of anything else with ``==``.

    Parameters
    ----------
    actual : any
    expected : any
        A number, bool, array, tensor or list of numbers is compared as an array of the
        same shape (NaN matches NaN); other values (strings, tuples of strings, ...) with
        ``==``.
    what : str
        Name of `actual` in the message.
    """
    try:
        e = to_numpy(expected)
        numeric = np.issubdtype(e.dtype, np.number) or e.dtype == bool
    except Exception:
        numeric = False
    if not numeric:
        if actual is None and expected is not None:
            raise AssertionError(f"{what} returned None; did you forget a return statement?")
        try:
            equal = bool(actual == expected)
        except Exception:  # e.g. an array compared with a string
            equal = False
        if not equal:
            raise AssertionError(f"{what} should be {_short(expected)} but is {_short(actual)}")
        return
    a = _numbers(actual, what)
    if a.shape != e.shape:
        raise AssertionError(f"{what} should have shape {e.shape} but has shape {a.shape}")
    with np.errstate(invalid="ignore"):
        same = (a == e) | (_isnan(a) & _isnan(e))
    if np.all(same):
        return
    index = tuple(np.argwhere(~same)[0])
    where = f" at index {_format_index(index)}" if a.ndim else ""
    count = f"; {np.count_nonzero(~same)} of {a.size} entries differ" if a.size > 1 else ""
    raise AssertionError(
        f"{what} is not the expected value{where}: expected {_format_value(e[index])}, "
        f"got {_format_value(a[index])}{count}."
    )


def _isnan(array: np.ndarray) -> np.ndarray:
    if np.issubdtype(array.dtype, np.inexact):
        return np.isnan(array)
    return np.zeros(array.shape, dtype=bool)


def _dtype_kind(actual) -> tuple[str, str]:
    # (numpy kind character, dtype name); torch tensors without a numpy twin (bfloat16)
    # are classified by torch's own predicates.
    dtype = getattr(actual, "dtype", None)
    if dtype is not None and hasattr(actual, "detach"):
        name = str(dtype).removeprefix("torch.")
        if actual.is_complex():
            return "c", name
        if actual.is_floating_point():
            return "f", name
        if name == "bool":
            return "b", name
        return ("u" if name.startswith("uint") else "i"), name
    array = np.asarray(actual)
    return array.dtype.kind, str(array.dtype)


def assert_dtype_kind(actual, kinds: str, what: str) -> None:
    """Check the kind of numbers in an array: floating point, integer, boolean, ...

    Parameters
    ----------
    actual : array or tensor
    kinds : str
        Accepted numpy dtype kinds, one character each: "f" floating point, "i" signed
        integer, "u" unsigned integer, "b" boolean, "c" complex; e.g. "iu" for any integer.
    what : str
        Name of `actual` in the message.
    """
    if actual is None:
        raise AssertionError(f"{what} returned None; did you forget a return statement?")
    kind, name = _dtype_kind(actual)
    if kind not in kinds:
        wanted = " or ".join(_KIND_NAMES.get(k, repr(k)) for k in kinds)
        raise AssertionError(f"{what} should contain {wanted}, but has dtype {name}")


def assert_implemented(fn, *args, **kwargs):
    """Call ``fn(*args, **kwargs)`` and return its result, failing clearly on a stub.

    Parameters
    ----------
    fn : callable
        A function the student was asked to complete.
    *args, **kwargs
        Its arguments.

    Returns
    -------
    Whatever `fn` returns.
    """
    name = getattr(fn, "__name__", repr(fn))
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise AssertionError(
            f"{name} is not implemented yet: replace `raise NotImplementedError()` with your code"
        ) from None
