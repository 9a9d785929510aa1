"""Seeding and device selection."""

import random

import numpy as np


def set_seed(seed: int) -> np.random.Generator:
    """Seed every random number generator a notebook may use.

    Seeds Python's `random`, numpy's legacy global generator (`np.random.rand` and
    friends) and torch's global generator (weight initialisation, dropout, shuffling
    without an explicit generator).

    Parameters
    ----------
    seed : int
        Any non-negative integer.

    Returns
    -------
    np.random.Generator
        A fresh ``np.random.default_rng(seed)``, to pass as ``rng`` to the data helpers.
    """
    random.seed(seed)
    np.random.seed(seed)
    # Imported here so that `import course` does not pay torch's start-up time.
    import torch

    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def device():
    """The fastest torch device available: CUDA, then Apple's MPS, then the CPU.

    Returns
    -------
    torch.device
    """
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
