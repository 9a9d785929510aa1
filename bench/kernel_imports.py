"""What a grading kernel pays before its first cell: CPU and wall time of imports.

    python bench/kernel_imports.py            # 5 fresh processes per row, median
    python bench/kernel_imports.py --repeat 9

Each row runs its statement in a fresh ``python -c`` and times only that statement inside the
child (``time.process_time`` for CPU, ``time.perf_counter`` for wall), so the interpreter's own
start is left out. The first rows are the big imports, for context; the last two load the
digits as a notebook does, through scikit-learn (what ``course.data.load_digits`` did before)
and through ``course.data.load_digits`` as it is now, and say whether scikit-learn got imported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_OLD_LOAD_DIGITS = """
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
digits = load_digits()
X = (digits.data / 16.0).astype(np.float32)
y = digits.target.astype(np.int64)
train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
"""

CASES = [
    ("import numpy", "import numpy"),
    ("import torch", "import torch"),
    ("import matplotlib.pyplot", "import matplotlib.pyplot"),
    ("import sklearn", "import sklearn"),
    ("import ipykernel.kernelapp", "import ipykernel.kernelapp"),
    ("import course", "import course"),
    ("digits via scikit-learn (before)", _OLD_LOAD_DIGITS),
    ("import course; course.data.load_digits()", "import course; course.data.load_digits()"),
]

_CHILD = """
import sys, time, json
c0, w0 = time.process_time(), time.perf_counter()
exec(compile({code!r}, "<case>", "exec"))
c1, w1 = time.process_time(), time.perf_counter()
print(json.dumps({{"cpu": c1 - c0, "wall": w1 - w0, "sklearn": "sklearn" in sys.modules}}))
"""


def measure(code: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    out = subprocess.run(
        [sys.executable, "-c", _CHILD.format(code=code)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per row")
    args = parser.parse_args()
    print(f"{'statement (fresh process)':44} {'CPU s':>7} {'wall s':>7}  sklearn loaded")
    for label, code in CASES:
        runs = [measure(code) for _ in range(args.repeat)]
        cpu = statistics.median(r["cpu"] for r in runs)
        wall = statistics.median(r["wall"] for r in runs)
        loaded = "yes" if runs[0]["sklearn"] else "no"
        print(f"{label:44} {cpu:7.3f} {wall:7.3f}  {loaded}")


if __name__ == "__main__":
    main()
