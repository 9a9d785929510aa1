"""Conversion of array-likes (numpy, torch, lists) to numpy, shared by the helpers."""

import numpy as np


def to_numpy(x) -> np.ndarray:
    """Return `x` as a numpy array; torch tensors are detached and moved to the CPU.

    Does not import torch: a tensor is recognised by its `detach` method.
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
        # numpy has no bfloat16 type: widen it to float32.
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        return x.numpy()
    return np.asarray(x)
