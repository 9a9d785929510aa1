"""A gradebook on PostgreSQL (the session's own server, tests/postgres.py): the same class
graded on it and on SQLite gets the same scores and reports; nbgrader's own API and
commands read it; a bad URL, an unreachable server or another course's gradebook stops
with one line that names the fix and never shows the password.

The class: ada (all right, 3 points), blank (the release, 0), cat (square right, cube wrong: 2).
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import sqlalchemy
from conftest import MINI, build_class_course
from nbgrader.api import Base, Gradebook
from postgres import _free_port

from grader import cli
from grader.config import load_config
from grader.pipeline.autograde import autograde
from grader.pipeline.collect import collect
from grader.pipeline.report import write_report
from grader.pipeline.synthetic import WRONG_ANSWER, _replace_solution, as_handed_in
from grader.workdir import folder, gradebook

SECRET = "s3cret-Pw"
EXPECTED = {"ada": (2, 1), "blank": (0, 0), "cat": (2, 0)}  # test_square, test_cube
REPORTS = ("totals.csv", "questions.csv", "submissions.csv")


def grader(*args, cwd):
    """`python -m grader` on the course at `cwd`."""
    return subprocess.run(
        [sys.executable, "-m", "grader", "--root", str(cwd), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def main(capsys, *args) -> tuple[int, str, str]:
    """The same command line in this process (quicker: no imports to repeat)."""
    code = cli.main([*args])
    out, err = capsys.readouterr()
    assert SECRET not in out + err, "the password was printed"
    return code, out, err


def ok(result):
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert SECRET not in result.stdout + result.stderr, "the password was printed"
    return result.stdout


def one_line_error(result) -> str:
    out = result.stdout + result.stderr
    assert result.returncode == 2, out[-3000:]
    assert "Traceback" not in out and SECRET not in out, out
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def write_inbox(repo, folder: Path) -> Path:
    """nbgrader's layout <student>/<assignment>/<notebook>.ipynb, one notebook each."""
    source = nbformat.read(str(repo.root / "source" / MINI / f"{MINI}.ipynb"), 4)
    right = as_handed_in(source)
    blank = nbformat.read(str(repo.root / "release" / MINI / f"{MINI}.ipynb"), 4)
    [cube] = [c for c in source.cells if "def cube" in c.source]
    cube.source = _replace_solution(cube.source, WRONG_ANSWER)
    cat = as_handed_in(source)
    for student, nb in [("ada", right), ("blank", blank), ("cat", cat)]:
        path = folder / student / MINI / f"{MINI}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, str(path))
    return folder


def snapshot(url: str) -> dict:
    """Every row of every nbgrader table, in order."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as db:
            return {
                t.name: sorted(map(repr, db.execute(t.select())))
                for t in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def grade_class(repo, inbox: Path, workdir: Path, workers):
    course = folder.prepare(repo, workdir)
    collect(course, inbox)
    # Only the main process writes the gradebook, whichever workers grade: the run's
    # shared ones (shared_workers.py).
    autograde(course, cell_timeout=30, progress=False, executor=workers(course))
    write_report(course)
    return course


@pytest.fixture(scope="module")
def graded(tmp_path_factory, postgres, workers):
    """The class graded on SQLite and on PostgreSQL, by the same calls."""
    root = tmp_path_factory.mktemp("shared")
    repo = build_class_course(root / "course")
    inbox = write_inbox(repo, root / "inbox")
    sqlite = grade_class(repo, inbox, root / "sqlite", workers)
    url = postgres.new_database(password=SECRET)
    shared = grade_class(load_config(repo.root, db=url), inbox, root / "postgres", workers)
    return repo, sqlite, shared, url


@pytest.mark.slow
@pytest.mark.sandbox
def test_scores_and_reports_equal_those_on_sqlite(graded):
    _, sqlite, shared, _ = graded
    assert gradebook.db_url(shared).startswith("postgresql+psycopg://")
    assert not (shared.root / gradebook.DB_NAME).exists(), "no SQLite file beside a server"
    ours = sorted(gradebook.grades(shared))
    assert ours == sorted(gradebook.grades(sqlite))
    points = {(g.student, g.grade_id): g.points for g in ours}
    for student, (square, cube) in EXPECTED.items():
        assert (points[student, "test_square"], points[student, "test_cube"]) == (square, cube)
    for name in REPORTS:
        assert (shared.root / "reports" / name).read_text() == (
            sqlite.root / "reports" / name
        ).read_text(), name
    with open(shared.root / "reports" / "submissions.csv") as f:
        assert {r["status"] for r in csv.DictReader(f)} == {"graded"}


@pytest.mark.slow
@pytest.mark.sandbox
def test_autograding_again_changes_nothing_and_reports_the_same(graded, tmp_path, capsys):
    repo, sqlite, shared, url = graded
    before = snapshot(url)
    assert before["grade"] and before["submitted_assignment"]
    code, out, _ = main(
        capsys, "--root", str(repo.root), "autograde", "--db", url, "--workdir", str(shared.root)
    )
    assert code == 0 and "nothing to do" in out and "3 already graded" in out
    assert snapshot(url) == before
    code, out, _ = main(
        capsys,
        "--root",
        str(repo.root),
        "--db",
        url,
        "--workdir",
        str(shared.root),
        "report",
        "--out",
        str(tmp_path),
    )
    assert code == 0 and "ada" in out
    for name in REPORTS:
        assert (tmp_path / name).read_text() == (sqlite.root / "reports" / name).read_text()


@pytest.mark.slow
@pytest.mark.sandbox
def test_a_second_machine_gets_a_folder_of_its_own_and_the_same_grades(graded, tmp_path):
    """Its work folder is new, the shared gradebook knows the assignment: source/ and
    release/ are made there, the gradebook is left as it is."""
    repo, _, shared, url = graded
    before = snapshot(url)
    other = folder.prepare(load_config(repo.root, db=url), tmp_path / "other")
    assert (other.root / "release" / MINI / f"{MINI}.ipynb").read_text() == (
        shared.root / "release" / MINI / f"{MINI}.ipynb"
    ).read_text()
    assert snapshot(url) == before
    assert sorted(gradebook.grades(other)) == sorted(gradebook.grades(shared))


@pytest.mark.slow
@pytest.mark.sandbox
def test_feedback_on_the_shared_gradebook(graded):
    repo, _, shared, url = graded
    out = ok(grader("--db", url, "feedback", "--workdir", str(shared.root), cwd=repo.root))
    assert "3 feedback page(s)" in out
    for student, (square, cube) in EXPECTED.items():
        page = (shared.root / "feedback" / student / MINI / f"{MINI}.html").read_text()
        assert f"Score: {float(square + cube)} / 3.0" in page, student
        assert "square(-2) == 4" not in page


@pytest.mark.slow
@pytest.mark.sandbox
def test_nbgraders_api_and_export_read_the_same_grades(graded, tmp_path):
    repo, _, shared, url = graded
    with Gradebook(url, shared.course_id) as gb:
        scores = {s.student.id: s.score for s in gb.assignment_submissions(MINI)}
    assert scores == {s: float(sum(p)) for s, p in EXPECTED.items()}
    out = tmp_path / "grades.csv"
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", "--db", url, "--to", str(out)],
        cwd=repo.root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out) as f:
        exported = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)}
    assert exported == scores


BAD_URLS = {  # kind: (URL, what the line says), {port} is the live server's
    "unreachable": (
        f"postgresql+psycopg://grader:{SECRET}@127.0.0.1:{{closed}}/gb",
        "cannot open the gradebook postgresql+psycopg://grader:***@127.0.0.1:",
    ),
    "no database": (
        f"postgresql+psycopg://grader:{SECRET}@127.0.0.1:{{port}}/nowhere",
        'database "nowhere" does not exist',
    ),
    "not a url": (f"grader:{SECRET}@127.0.0.1/gb", "'grader:***@127.0.0.1/gb' is not a database"),
    "no driver": (
        f"postgresql+psycopg2://grader:{SECRET}@127.0.0.1:{{port}}/postgres",
        "no database driver for postgresql+psycopg2://grader:***@127.0.0.1",
    ),
    "not sql": (
        f"mongodb://grader:{SECRET}@127.0.0.1/gb",
        "neither an SQLite file nor a PostgreSQL database",
    ),
}


@pytest.mark.parametrize("kind", ["unreachable", "no database", "not a url"])
def test_a_bad_url_stops_with_one_line_and_no_password(kind, postgres, class_course, tmp_path):
    url, says = BAD_URLS[kind]
    url = url.format(port=postgres.port, closed=_free_port())
    work = tmp_path / "grading"
    line = one_line_error(
        grader("--db", url, "--workdir", str(work), "report", cwd=class_course.root)
    )
    assert says in line, line
    assert "--db" in line and "postgresql+psycopg://user:password@host" in line, line  # the fix
    assert not work.exists()


@pytest.mark.parametrize("kind", ["no driver", "not sql"])
def test_other_bad_urls_in_process(kind, postgres, class_course, tmp_path, capsys):
    url, says = BAD_URLS[kind]
    code, _, err = main(
        capsys,
        "--root",
        str(class_course.root),
        "--db",
        url.format(port=postgres.port),
        "--workdir",
        str(tmp_path),
        "report",
    )
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err


def test_a_gradebook_of_another_course_is_refused(postgres, class_course, tmp_path, capsys):
    url = postgres.new_database(password=SECRET)
    with Gradebook(url, "another-course"):
        pass
    before = snapshot(url)
    inbox = write_inbox(class_course, tmp_path / "inbox")
    work = tmp_path / "grading"
    line = one_line_error(
        grader("--db", url, "--workdir", str(work), "collect", str(inbox), cwd=class_course.root)
    )
    assert "belongs to course 'another-course'" in line and "--db" in line, line
    code, _, err = main(
        capsys, "--root", str(class_course.root), "--workdir", str(work), "report", "--db", url
    )
    assert code == 2 and "another-course" in err, err
    assert not work.exists() and snapshot(url) == before


def test_an_empty_server_gradebook_is_no_grading_folder(postgres, class_course, tmp_path, capsys):
    url = postgres.new_database()
    code, _, err = main(
        capsys, "--root", str(class_course.root), "--db", url, "--workdir", str(tmp_path), "report"
    )
    assert code == 2 and "no grading folder" in err and "is empty" in err, err
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as db:
        assert sqlalchemy.inspect(db).get_table_names() == [], "a refused run wrote tables"
    engine.dispose()


def test_nbgrader_config_chooses_the_gradebook(postgres, class_course):
    url = postgres.new_database()
    config = class_course.root / "nbgrader_config.py"
    text = config.read_text()
    config.write_text(text + f"\nc.CourseDirectory.db_url = {url!r}\n")
    assert load_config(class_course.root).db == url
    assert load_config(class_course.root, db="sqlite:////x.db").db == "sqlite:////x.db"
    config.write_text(text + "\nc.CourseDirectory.db_url = 'sqlite:///gradebook.db'\n")
    assert load_config(class_course.root).db is None, "nbgrader's default is the folder's"


@pytest.mark.slow
@pytest.mark.sandbox
def test_the_demo_refuses_a_gradebook_that_holds_grades(graded, tmp_path):
    """The demo starts from an empty gradebook: never into one that holds a class."""
    repo, _, _, url = graded
    line = one_line_error(
        grader("demo", "--db", url, "--workdir", str(tmp_path / "demo"), cwd=repo.root)
    )
    assert "starts from an empty gradebook" in line and "127.0.0.1" in line, line
    assert not (tmp_path / "demo").exists()
