"""Which layer of a torch model cannot take its input, in one sentence.

A layer of the wrong size fails deep inside PyTorch with "mat1 and mat2 shapes cannot be
multiplied (5x1024 and 256x10)", which names neither the layer nor the fix. `explain`
runs the model again with forward hooks (torch's own API, removed afterwards) that record
each layer's input, and says which layer failed on what.
"""

import math


def _shape(value) -> tuple[int, ...] | None:
    shape = getattr(value, "shape", None)
    return tuple(int(n) for n in shape) if shape is not None else None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _leaves(model):
    """(name, module) of the modules that hold no other modules, in registration order."""
    return [
        (name, module)
        for name, module in model.named_modules()
        if next(module.children(), None) is None and module is not model
    ]


def _why(module, shape: tuple[int, ...] | None, dtype, error: BaseException, first: bool) -> str:
    """What is wrong with an input of `shape` and `dtype` for `module` (the model's first?)."""
    import torch.nn as nn

    source = "the model's input" if first else "the layer before it"
    got_kind = str(dtype).removeprefix("torch.") if dtype is not None else None
    other = {
        f"{name} of dtype {str(p.dtype).removeprefix('torch.')}"
        for name, p in module.named_parameters(recurse=False)
        if got_kind and p.is_floating_point() and str(p.dtype) != str(dtype)
    }
    if other:
        default = " (PyTorch's default)" if got_kind == "float32" else ""
        return (
            f"holds a {' and a '.join(sorted(other))} but gets a {got_kind} input; "
            f"make its parameters {got_kind}{default} too"
        )
    if isinstance(module, nn.Linear) and shape and shape[-1] != module.in_features:
        if len(shape) > 2 and math.prod(shape[1:]) == module.in_features:
            return (
                f"expects {module.in_features} input features but gets an input of shape "
                f"{shape}; put an nn.Flatten() before it"
            )
        return f"expects {module.in_features} input features but gets {shape[-1]} from {source}"
    convolutions = {nn.Conv1d: 2, nn.Conv2d: 3, nn.Conv3d: 4}
    for kind, axis in convolutions.items():
        if (
            isinstance(module, kind)
            and shape
            and len(shape) >= axis
            and shape[-axis] != module.in_channels
        ):
            return (
                f"expects {module.in_channels} input channels but gets {shape[-axis]} from {source}"
            )
    got = f"an input of shape {shape}" if shape is not None else "its input"
    return f"cannot take {got}: {_first_line(error)}"


def explain(model, X, error: BaseException) -> str | None:
    """Where `model(X)`, which raised `error`, fails: a sentence, or None if no layer did.

    Runs the model once more, without gradients, with hooks before and after every leaf
    module.
    """
    import torch

    leaves = _leaves(model)
    if not leaves:
        return None
    # (module, input) before a layer runs, (module, input, output shape) after
    calls: list[tuple] = []

    def before(module, args):
        calls.append((module, args[0] if args else None))

    def after(module, args, output):
        calls.append((module, args[0] if args else None, _shape(output)))

    handles = []
    try:
        for _, module in leaves:
            handles.append(module.register_forward_pre_hook(before))
            handles.append(module.register_forward_hook(after))
        with torch.no_grad():
            try:
                model(X)
            except Exception as again:  # noqa: BLE001 (the same failure, now observed)
                error = again
            else:
                return None
    finally:
        for handle in handles:
            handle.remove()
    names = {id(module): name for name, module in leaves}
    if not calls:
        return None
    last = calls[-1]
    name = names.get(id(last[0]), "?")
    if len(last) == 2:  # it failed inside this layer
        why = _why(
            last[0], _shape(last[1]), getattr(last[1], "dtype", None), error, first=len(calls) == 1
        )
        return f"layer {name} of the model, {last[0]!r}, {why}"
    return (
        f"the model fails after layer {name}, {last[0]!r}, whose output has shape "
        f"{last[2]}: {_first_line(error)}"
    )
