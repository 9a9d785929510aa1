"""Command line of the instructor's tools: `python -m grader <verb>`."""

from __future__ import annotations

import argparse
import logging
import sys

from grader.course_config import REPO_ROOT, load_config
from grader.validate import SourceError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    parser.add_argument("--root", default=str(REPO_ROOT), help="course root (default: this repo)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step")
    verbs = parser.add_subparsers(dest="verb", required=True)

    build = verbs.add_parser("build", help="regenerate release/ and solutions/ from source/")
    build.add_argument("assignments", nargs="*", help="only these (default: all in source/)")
    build.add_argument("--no-execute", action="store_true", help="do not execute solutions")
    build.add_argument("--check", action="store_true", help="only check source/, write nothing")

    demo = verbs.add_parser("demo", help="build, then grade a demo class with nbgrader")
    demo.add_argument("--workdir", default=None, help="grading folder (default: grading/)")

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        course = load_config(args.root)
        if args.verb == "build":
            from grader.build import build as run_build
            from grader.validate import check_course

            if args.check:
                problems = check_course(course)
                if problems:
                    raise SourceError(problems)
                print("source/ is fine.")
                return 0
            run_build(course, args.assignments or None, execute_solutions=not args.no_execute)
            print("Built release/ and solutions/ from source/.")
        elif args.verb == "demo":
            from grader.demo import run_demo

            run_demo(course, workdir=args.workdir)
    except SourceError as error:
        print(f"source/ has problems; nothing was built:\n{error}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
