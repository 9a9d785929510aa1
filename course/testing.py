"""Assertions for exercise tests, with messages a student understands in one sentence.

Each helper raises AssertionError when the check fails and returns None otherwise (but
`assert_implemented` and `assert_forward`, which return what they ran). Its message is
the whole story, first and short: no tolerances unless they decide, no arrays, no frames
of numpy (the kernel shows an AssertionError as its message alone, see course.messages).
`what` names the student's result in the message; the expression that produced it
reads best, e.g. ``assert_close(perceptron(X, w, b), [0, 1], "perceptron(X, w, b)")``
fails with "perceptron(X, w, b) is not close to the expected value at index [1]: ...".
`hint`, where a helper takes one, is the sentence written for the student and comes
first: ``assert_equal(step(a), [0, 0, 1], "step(a)", hint="step(0) should be 0")`` fails
with "step(0) should be 0: step(a) is 1 at index [1], expected 0.".
Arrays may be numpy arrays, torch tensors (compared as numpy arrays) or lists.
"""

from typing import NoReturn

import numpy as np

from course._convert import to_numpy

_KIND_NAMES = {
    "b": "booleans",
    "i": "signed integers",
    "u": "unsigned integers",
    "f": "floating-point numbers",
    "c": "complex numbers",
}


def _numbers(actual, what: str, hint: str = "") -> np.ndarray:
    # The student's result as a numeric array, or an AssertionError that says why not.
    if actual is None:
        _fail(f"{what} returned None; did you forget a return statement?", hint)
    try:
        array = to_numpy(actual)
    except Exception:
        array = None
    if array is None or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        _fail(
            f"{what} should be a number or an array of numbers, "
            f"but is {type(actual).__name__} {_short(actual)}",
            hint,
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


def assert_shape(actual, expected_shape, what: str, *, hint: str = "") -> None:
    """Check the shape of an array.

    Parameters
    ----------
    actual : array, tensor or nested list
    expected_shape : tuple of int or None
        None matches any size along that axis, e.g. ``(None, 3)``.
    what : str
        Name of `actual` in the message.
    hint : str, optional
        A sentence for the student, said first.
    """
    array = _numbers(actual, what, hint)
    expected = tuple(expected_shape)
    if not _shape_matches(array.shape, expected):
        wanted = "(" + ", ".join("any" if e is None else str(e) for e in expected) + ")"
        if len(expected) == 1:
            wanted = wanted[:-1] + ",)"
        _fail(f"{what} should have shape {wanted} but has shape {array.shape}", hint)


def _fail(message: str, hint: str = "") -> NoReturn:
    """Raise the AssertionError of a failed check: the hint first, then what was found."""
    if hint:
        message = f"{hint.rstrip().rstrip('.')}: {message}"
    raise AssertionError(message if message.endswith((".", "?", "!")) else message + ".")


def _differs(
    what: str, hint: str, expected, actual, index: tuple, ndim: int, how: str | None, count: str
) -> str:
    # "W is not close to the expected value at index [1, 1]: expected 4, got 4.5", or with a
    # hint "step(0) should be 0: step(a) is 1 at index [1], expected 0".
    where = f" at index {_format_index(index)}" if ndim else ""
    e, a = _format_value(expected), _format_value(actual)
    verb = "not close to" if how is not None else "not"  # how is None: an exact comparison
    how = how or ""
    if hint:
        return f"{hint.rstrip().rstrip('.')}: {what} is {a}{where}, expected {e}{how}{count}"
    return f"{what} is {verb} the expected value{where}: expected {e}, got {a}{how}{count}"


def assert_close(
    actual, expected, what: str, *, rtol: float = 1e-7, atol: float = 0.0, hint: str = ""
) -> None:
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
    hint : str, optional
        A sentence for the student, said first.

    Notes
    -----
    The message names the entry with the largest difference, with its expected and
    actual value, and how many entries differ. The tolerance is named only for a near
    miss (the values agree to three digits), where it is what decides.
    """
    a = _numbers(actual, what, hint)
    e = to_numpy(expected)
    if a.shape != e.shape:
        if e.shape != ():
            _fail(f"{what} should have shape {e.shape} but has shape {a.shape}", hint)
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
    count = f"; {np.count_nonzero(~good)} of {a.size} entries differ" if a.size > 1 else ""
    how = ""
    with np.errstate(invalid="ignore", over="ignore"):
        near = difference[index] <= 1e-3 * max(abs(e[index]), abs(a[index]))
    if near:
        how = (
            f" (a difference of {_format_value(difference[index])}, more than the test "
            f"allows: rtol={rtol:g}, atol={atol:g})"
        )
    _fail(_differs(what, hint, e[index], a[index], index, a.ndim, how, count))


def assert_equal(actual, expected, what: str, *, hint: str = "") -> None:
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
    hint : str, optional
        A sentence for the student, said first.
    """
    try:
        e = to_numpy(expected)
        numeric = np.issubdtype(e.dtype, np.number) or e.dtype == bool
    except Exception:
        numeric = False
    if not numeric:
        if actual is None and expected is not None:
            _fail(f"{what} returned None; did you forget a return statement?", hint)
        try:
            equal = bool(actual == expected)
        except Exception:  # e.g. an array compared with a string
            equal = False
        if not equal:
            _fail(f"{what} should be {_short(expected)} but is {_short(actual)}", hint)
        return
    a = _numbers(actual, what, hint)
    if a.shape != e.shape:
        _fail(f"{what} should have shape {e.shape} but has shape {a.shape}", hint)
    with np.errstate(invalid="ignore"):
        same = (a == e) | (_isnan(a) & _isnan(e))
    if np.all(same):
        return
    index = tuple(np.argwhere(~same)[0])
    count = f"; {np.count_nonzero(~same)} of {a.size} entries differ" if a.size > 1 else ""
    _fail(_differs(what, hint, e[index], a[index], index, a.ndim, None, count))


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
        _fail(f"{what} returned None; did you forget a return statement?")
    kind, name = _dtype_kind(actual)
    if kind not in kinds:
        wanted = " or ".join(_KIND_NAMES.get(k, repr(k)) for k in kinds)
        _fail(f"{what} should contain {wanted}, but has dtype {name}")


def assert_implemented(fn, *args, **kwargs):
    """Call ``fn(*args, **kwargs)`` and return its result, failing clearly on a stub.

    The stub of the course's release, ``raise NotImplementedError("Exercise 1.2
    (`perceptron`) is not answered yet")``, already says which exercise is missing and
    passes through unchanged; a bare ``raise NotImplementedError()`` becomes an
    AssertionError that names `fn`.

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
    except NotImplementedError as error:
        if str(error).strip():
            raise
        raise AssertionError(
            f"{name} is not answered yet: write your code in place of "
            "`raise NotImplementedError()`."
        ) from None


def assert_forward(model, X, what: str):
    """Return ``model(X)``, or fail with a sentence naming the layer that cannot take its input.

    PyTorch reports a layer of the wrong size as "mat1 and mat2 shapes cannot be multiplied
    (5x1024 and 256x10)"; this says which layer of the student's model it is, what it
    expects and what it gets.

    Parameters
    ----------
    model : torch.nn.Module (or any callable)
    X : torch.Tensor
        A batch of inputs.
    what : str
        Name of the model in the message, e.g. "make_cnn()".

    Returns
    -------
    Whatever ``model(X)`` returns.
    """
    from course._layers import explain

    shape = tuple(getattr(X, "shape", ()))
    try:
        return model(X)
    except NotImplementedError:
        raise
    except Exception as error:  # noqa: BLE001 (any error of the student's model)
        where = explain(model, X, error) if hasattr(model, "named_modules") else None
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise AssertionError(
            f"{what} cannot take a batch of shape {shape}: "
            f"{where or f'{type(error).__name__}: {first}'}."
        ) from None


def assert_returns(result, names: str, what: str):
    """Check that a function returned a tuple (or list) of the values `names`; return it.

    Parameters
    ----------
    result : any
        What the student's function returned.
    names : str
        The values it should return, comma-separated, e.g. "theta, state".
    what : str
        The call in the message, e.g. "sgd_step(theta, grad, None)".

    Returns
    -------
    `result`, to unpack: ``theta, state = assert_returns(sgd_step(...), "theta, state", ...)``.
    """
    count = len(names.split(","))
    if isinstance(result, tuple | list) and len(result) == count:
        return result
    if result is None:
        got = "None: did you forget a return statement?"
    elif isinstance(result, tuple | list):
        got = f"{len(result)} values"
    else:
        got = f"a single {type(result).__name__}"
    _fail(f"{what} should return {count} values ({names}) but returns {got}")
