"""Tests of course/__init__.py and course/reproducibility.py."""

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import course


def test_set_seed_seeds_every_generator_and_returns_a_fresh_rng():
    rng = course.set_seed(123)
    first = (random.random(), np.random.rand(), torch.rand(1).item(), rng.random())
    rng = course.set_seed(123)
    second = (random.random(), np.random.rand(), torch.rand(1).item(), rng.random())
    assert first == second
    assert isinstance(rng, np.random.Generator)
    assert course.set_seed(123).random() == np.random.default_rng(123).random()
    course.set_seed(124)
    assert random.random() != first[0]


def test_device_is_usable():
    device = course.device()
    assert isinstance(device, torch.device)
    assert device.type in {"cuda", "mps", "cpu"}
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert device.type == "cpu"
    assert (torch.ones(2, device=device) * 2).sum().item() == 4


def test_submodules_are_attributes_of_the_package():
    for name in ["data", "plotting", "testing", "training", "gradcheck"]:
        assert getattr(course, name).__name__ == f"course.{name}"
        assert name in dir(course)
    with pytest.raises(AttributeError, match="no_such_module"):
        course.no_such_module  # noqa: B018


def test_import_course_and_set_seed_do_not_import_torch_or_matplotlib():
    # A numpy-only notebook (01) must not pay torch's 3 s start-up in every kernel.
    code = (
        "import sys, course; course.set_seed(0); "
        "print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    )
    # Run from the repository root, where `import course` finds this package.
    root = Path(course.__file__).parent.parent
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert result.stdout.split() == ["False", "False"]
