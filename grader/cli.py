"""Command line of the instructor's tools: `python -m grader <verb>`.

build      release/ + solutions/ from source/
bundle     the student bundle, a zip
collect    a folder or an LMS zip of submissions into the grading folder
autograde  every submission, N at a time
feedback   one HTML page per student and notebook, without hidden tests
report     totals.csv, questions.csv, submissions.csv, scores.png and a table
formgrader nbgrader's formgrader (JupyterLab) on the grading folder, for manual review
similarity pairs of submissions whose answers are alike: leads to read, not verdicts
demo       all of it on a synthetic class
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from grader.config import REPO_ROOT, WORKDIR_ENV, WORKDIR_NAME, default_workdir, load_config
from grader.errors import GraderError
from grader.execution.timeouts import DEMO_CELL_TIMEOUT_S, NOTEBOOK_TIMEOUT_S
from grader.pipeline.bundle import BUNDLE_NAME
from grader.process import setup_process


def parse(argv):
    parser = argparse.ArgumentParser(
        prog="python -m grader", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--root", default=str(REPO_ROOT), help="course root (default: this repo)")
    parser.add_argument(
        "--workdir",
        default=None,
        help=f"grading folder (default: ${WORKDIR_ENV} or {WORKDIR_NAME}/ in the course root)",
    )
    parser.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="the gradebook: sqlite:////path/gradebook.db, or a shared one on PostgreSQL,\n"
        "postgresql+psycopg://user[:password]@host[:port]/dbname (password best in\n"
        "~/.pgpass or PGPASSWORD) (default: c.CourseDirectory.db_url of\n"
        "nbgrader_config.py if set, else gradebook.db in the grading folder)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step")
    # --workdir and --db are accepted before or after the verb.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workdir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--db", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    verbs = parser.add_subparsers(dest="verb", required=True)

    def verb(name: str, **kwargs) -> argparse.ArgumentParser:
        return verbs.add_parser(name, parents=[common], **kwargs)

    build = verb("build", help="regenerate release/ and solutions/ from source/")
    build.add_argument("assignments", nargs="*", help="only these (default: all in source/)")
    build.add_argument("--no-execute", action="store_true", help="do not execute solutions")
    build.add_argument("--check", action="store_true", help="only check source/, write nothing")

    bundle = verb("bundle", help="the student bundle, a zip")
    bundle.add_argument(
        "--out", default=None, help=f"zip to write (default: {BUNDLE_NAME} in the grading folder)"
    )

    collect = verb("collect", help="a folder or an LMS zip of submissions")
    collect.add_argument("path")
    collect.add_argument(
        "--pattern",
        default=None,
        help="regex for file names in a zip, with groups student_id and notebook "
        "(default: <student_id>_<notebook>.ipynb)",
    )
    collect.add_argument(
        "--max-size",
        type=float,
        default=20,
        metavar="MB",
        help="skip files bigger than this (default: 20 MB)",
    )
    collect.add_argument(
        "--roster",
        default=None,
        metavar="CSV",
        help="the class: student_id,name,email,lms_id[,section]; maps Canvas and Moodle\n"
        "identities to student ids (default: roster.csv in the grading folder, if any)",
    )

    autograde = verb("autograde", help="grade submissions in parallel")
    autograde.add_argument("assignments", nargs="*", help="default: all")
    autograde.add_argument("--jobs", type=int, default=None, help="default: number of cores")
    autograde.add_argument(
        "--cluster",
        default=None,
        metavar="ADDRESS",
        help="grade on this Dask scheduler (tcp://host:8786) instead of this machine",
    )
    autograde.add_argument(
        "--scheduler-file",
        default=None,
        help="grade on the Dask cluster this scheduler file describes",
    )
    autograde.add_argument(
        "--cpus",
        type=float,
        default=None,
        help="CPU share of each kernel in cores, enforced where cgroups can be made "
        "(default: cores / jobs)",
    )
    autograde.add_argument(
        "--timeout", type=int, default=None, help="per-cell timeout in s (default: config)"
    )
    autograde.add_argument(
        "--notebook-timeout",
        type=int,
        default=NOTEBOOK_TIMEOUT_S,
        help=f"per-notebook wall time in s (default: {NOTEBOOK_TIMEOUT_S})",
    )
    autograde.add_argument(
        "--force", action="store_true", help="grade graded ones again (changed grades are listed)"
    )
    autograde.add_argument(
        "--student",
        action="append",
        default=None,
        metavar="ID",
        help="only this student's submissions (repeatable)",
    )
    autograde.add_argument(
        "--unsafe",
        action="store_true",
        help="grade without the sandbox where the machine has none (the report marks it)",
    )

    feedback = verb("feedback", help="HTML feedback per student and notebook")
    feedback.add_argument("assignments", nargs="*", help="default: all")

    report = verb("report", help="CSV files, a table and a plot of the grades")
    report.add_argument("--out", default=None, help="folder (default: <workdir>/reports)")
    report.add_argument(
        "--roster",
        default=None,
        metavar="CSV",
        help="write canvas-grades.csv and moodle-grades.csv for it (default: roster.csv in\n"
        "the grading folder, which collect --roster keeps)",
    )

    formgrader = verb(
        "formgrader", help="nbgrader's formgrader on the grading folder (manual review)"
    )
    formgrader.add_argument(
        "lab_args",
        nargs=argparse.REMAINDER,
        metavar="-- OPTIONS",
        help="options for JupyterLab after --, e.g. -- --port 8899",
    )

    similar = verb(
        "similarity", help="pairs of submissions whose answers are alike (leads, not verdicts)"
    )
    similar.add_argument("assignment")
    similar.add_argument(
        "--min-score",
        type=float,
        default=None,
        metavar="S",
        help="list pairs scoring at least this, 0 to 1 (default: MIN_SCORE in "
        "grader/pipeline/similarity.py)",
    )
    similar.add_argument(
        "--top",
        type=int,
        default=None,
        metavar="N",
        help="list at most N pairs (default: TOP in grader/pipeline/similarity.py)",
    )
    similar.add_argument(
        "--out", default=None, help="folder (default: <workdir>/reports/similarity/ASSIGNMENT)"
    )

    demo = verb("demo", help="the whole cycle on a synthetic class")
    demo.add_argument("assignments", nargs="*", help="default: all in source/")
    demo.add_argument("--jobs", type=int, default=None)
    demo.add_argument(
        "--timeout",
        type=int,
        default=DEMO_CELL_TIMEOUT_S,
        help=f"per-cell timeout in s (default: {DEMO_CELL_TIMEOUT_S})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    setup_process()
    # Not imported with this module: it reads notebooks, and nbformat must come after
    # setup_process (the commands' modules are imported where they run, for the same reason).
    from grader.notebooks.validate import SourceError

    args = parse(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # nbgrader logs through "traitlets"; its warnings (e.g. a changed checksum of a
    # restored test cell, which is expected) would drown the grader's own output.
    logging.getLogger("traitlets").setLevel(logging.INFO if args.verbose else logging.ERROR)
    try:
        return run(args)
    except SourceError as error:
        print(f"source/ has problems; nothing was built:\n{error}", file=sys.stderr)
        return 2
    except (GraderError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        from sqlalchemy.exc import OperationalError

        if not isinstance(error, OperationalError):
            raise
        # The gradebook's server went away during the run (its URL was checked at the start).
        from grader.workdir.gradebook import one_line

        print(
            f"error: the gradebook failed during the run ({one_line(error, args.db or '')}); "
            "run the command again once it answers (a run completes what the last one left)",
            file=sys.stderr,
        )
        return 2


def run(args) -> int:
    from grader.workdir.folder import open_workdir, prepare

    repo = load_config(args.root, db=args.db)
    workdir = Path(args.workdir) if args.workdir else default_workdir(repo)
    if args.verb == "build":
        from grader.notebooks.validate import SourceError, check_course
        from grader.pipeline.build import build, require_in_source

        require_in_source(repo, args.assignments)
        if args.check:
            problems = check_course(repo, args.assignments or None)
            if problems:
                raise SourceError(problems)
            print("source/ is fine.")
            return 0
        build(repo, args.assignments or None, execute_solutions=not args.no_execute)
        print("Built release/ and solutions/ from source/.")
    elif args.verb == "bundle":
        from grader.pipeline.bundle import make_bundle

        print(f"Wrote {make_bundle(repo, args.out or workdir / BUNDLE_NAME)}")
    elif args.verb == "collect":
        from grader.pipeline.collect import place, scan

        # Refuses bad input as a whole first, before the grading folder is touched.
        candidates, result = scan(
            repo,
            args.path,
            args.pattern,
            max_size=int(args.max_size * 10**6),
            roster=_roster(repo, args.roster, workdir),
        )
        course = prepare(repo, workdir)
        print(place(course, candidates, result).summary())
    elif args.verb == "autograde":
        from grader.pipeline.autograde import autograde

        course = open_workdir(repo, workdir)
        autograde(
            course,
            args.assignments,
            jobs=args.jobs,
            cell_timeout=args.timeout,
            notebook_timeout=args.notebook_timeout,
            force=args.force,
            unsafe=args.unsafe,
            cpus=args.cpus,
            cluster=args.cluster,
            scheduler_file=args.scheduler_file,
            students=args.student,
        )
    elif args.verb == "feedback":
        from grader.pipeline.feedback import generate_feedback

        course = open_workdir(repo, workdir)
        pages = generate_feedback(course, args.assignments)
        print(f"Wrote {len(pages)} feedback page(s) to {course.root / 'feedback'}")
    elif args.verb == "report":
        from grader.pipeline.report import table, write_report

        course = open_workdir(repo, workdir)
        report, out = write_report(course, args.out, roster=_roster(repo, args.roster, workdir))
        print(table(report))
        print(
            f"\nReports in {out}: totals.csv, questions.csv, submissions.csv, scores.png, "
            "class-report.html"
        )
        if report.uploads:
            print(f"LMS uploads from the roster: {', '.join(report.uploads)}")
        if report.pending:
            print(
                f"{len(report.pending)} written answer(s) of "
                f"{len({(s, a) for s, a, _ in report.pending})} submission(s) wait to be "
                "graded by hand (python -m grader formgrader); until then they are pending "
                "and count in no score."
            )
        if report.held:
            print(
                f"Left blank in the uploads until their written answers are graded by hand "
                f"(python -m grader formgrader): "
                f"{', '.join(f'{s} {a}' for s, a in report.held)}"
            )
        if report.not_on_roster:
            print(f"Not on the roster, so in no upload: {', '.join(report.not_on_roster)}")
        if report.no_canvas_id:
            print(
                "No lms_id on the roster, so not in canvas-grades.csv: "
                f"{', '.join(report.no_canvas_id)}"
            )
    elif args.verb == "formgrader":
        from grader.pipeline.formgrader import formgrader

        return formgrader(open_workdir(repo, workdir), args.lab_args)
    elif args.verb == "similarity":
        from grader.pipeline.similarity import LEAD, MIN_SCORE, TOP, write_similarity
        from grader.pipeline.similarity import table as pairs_table

        course = open_workdir(repo, workdir)
        min_score = MIN_SCORE if args.min_score is None else args.min_score
        top = TOP if args.top is None else args.top
        result, index = write_similarity(
            course, args.assignment, args.out, min_score=min_score, top=top
        )
        print(pairs_table(result, min_score, top))
        print(f"\nPages in {index}. {LEAD}")
    elif args.verb == "demo":
        from grader.pipeline.demo import run_demo

        run_demo(
            repo,
            args.workdir and Path(args.workdir),
            args.assignments or None,
            jobs=args.jobs,
            cell_timeout=args.timeout,
        )
    return 0


def _roster(repo, given: str | None, workdir: Path):
    """The roster named on the command line, else the one collect kept in the grading folder."""
    from grader.lms.roster import load_roster

    path = Path(given) if given else workdir / "roster.csv"
    if given or path.is_file():
        return load_roster(path, repo.assignments)
    return None
