"""python -m courselab [--root DIR] [JupyterLab options]: the student's JupyterLab.

JupyterLab on the course folder (the repository, or the unpacked student bundle) with the
course's lab configuration (courselab/jupyter/) first on JUPYTER_CONFIG_PATH: Validate with
the course's settings, none of nbgrader's instructor tools. Nothing is written into the
course folder by opening it; JupyterLab's own state stays in the user's Jupyter folders.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from courselab import skip_rfc3987_syntax

CONFIG = Path(__file__).resolve().parent / "jupyter"


def lab_argv(root: Path, extra: list[str]) -> list[str]:
    return [f"--ServerApp.root_dir={root}", *extra]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m courselab",
        description=__doc__,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Other options go to JupyterLab, e.g. --port 8899, --no-browser.",
    )
    parser.add_argument(
        "--root", default=".", help="the course folder, which holds release/ (default: this one)"
    )
    args, extra = parser.parse_known_args(argv)
    root = Path(args.root).resolve()
    if not (root / "release").is_dir():
        print(
            f"error: {root} holds no release/ folder; run this in the course folder "
            "(the repository, or the unpacked bundle), or give --root",
            file=sys.stderr,
        )
        return 2
    os.environ["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        [str(CONFIG)]
        + [p for p in os.environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p]
    )
    skip_rfc3987_syntax()  # the server reads notebooks: 2.8 s of CPU less at each start
    from jupyterlab.labapp import LabApp

    LabApp.launch_instance(argv=lab_argv(root, extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
