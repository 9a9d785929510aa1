"""collect places submissions from a folder or an LMS zip, and says why it skips a file."""

from __future__ import annotations

import datetime as dt
import zipfile

import pytest
from conftest import MINI

from grader.errors import GraderError
from grader.pipeline.collect import collect, scan
from grader.workdir import gradebook

NB = f"{MINI}.ipynb"


@pytest.fixture
def course(copied_grading):
    return copied_grading


def notebook_bytes(course):
    return (course.root / "release" / MINI / NB).read_bytes()


def make_zip(path, entries):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data, when in entries:
            archive.writestr(zipfile.ZipInfo(name, date_time=when.timetuple()[:6]), data)
    return path


def submitted(course, student):
    return course.root / "submitted" / student / MINI


def students_in_gradebook(course):
    from nbgrader.api import Gradebook

    with Gradebook(gradebook.db_url(course), course.course_id) as gb:
        return sorted(s.id for s in gb.students)


def test_folder_layout(course, tmp_path):
    data = notebook_bytes(course)
    root = tmp_path / "inbox"
    for student in ["ann", "bob"]:
        (root / student / MINI).mkdir(parents=True)
        (root / student / MINI / NB).write_bytes(data)
    (root / "bob" / MINI / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC")
    (root / "bob" / MINI / "notes.txt").write_text("hi")
    (root / "cid" / "99_other").mkdir(parents=True)
    (root / "cid" / "99_other" / "99_other.ipynb").write_bytes(data)
    (root / "dee" / MINI).mkdir(parents=True)
    (root / "dee" / MINI / "wrong_name.ipynb").write_bytes(data)
    (root / "loose.ipynb").write_bytes(data)
    result = collect(course, root)
    assert sorted(s for s, _, _ in result.collected) == ["ann", "bob"]
    reasons = dict(result.skipped)
    assert reasons["bob/01_perceptron/notes.txt"] == "not a notebook"
    assert reasons["cid/99_other/99_other.ipynb"] == "unknown assignment '99_other'"
    assert reasons["dee/01_perceptron/wrong_name.ipynb"].startswith("unknown notebook")
    assert reasons["loose.ipynb"].startswith("no student id")
    assert (submitted(course, "ann") / NB).read_bytes() == data
    assert (submitted(course, "bob") / "timestamp.txt").read_text().startswith("2026-11-20 10:00")
    assert students_in_gradebook(course) == ["ann", "bob"]


def test_lms_zip_with_every_reason_to_skip(course, tmp_path):
    data = notebook_bytes(course)
    early, late = dt.datetime(2026, 11, 1, 8), dt.datetime(2026, 11, 2, 8)
    archive = make_zip(
        tmp_path / "lms.zip",
        [
            (f"a/ann_{NB}", b"early", early),
            (f"b/ann_{NB}", data, late),
            (f"bob_{NB}", data, early),
            ("bob_02_networks_draft.ipynb", data, early),
            ("readme.pdf", b"%PDF", early),
            (f"{NB}", data, early),
        ],
    )
    result = collect(course, archive)
    assert sorted((s, origin) for s, _, origin in result.collected) == [
        ("ann", f"b/ann_{NB}"),
        ("bob", f"bob_{NB}"),
    ]
    reasons = dict(result.skipped)
    assert reasons[f"a/ann_{NB}"] == f"duplicate: b/ann_{NB} is later"
    assert reasons["bob_02_networks_draft.ipynb"] == "unknown notebook '02_networks_draft'"
    assert reasons["readme.pdf"] == "not a notebook"
    assert reasons[NB].startswith("no student id")
    assert (submitted(course, "ann") / NB).read_bytes() == data
    assert (submitted(course, "ann") / "timestamp.txt").read_text().startswith("2026-11-02 08:00")


def test_custom_pattern(course, tmp_path):
    data = notebook_bytes(course)
    archive = make_zip(
        tmp_path / "lms.zip",
        [
            (f"Smith, Ann (s1234)/{NB}", data, dt.datetime(2026, 11, 1)),
        ],
    )
    pattern = r"\((?P<student_id>s\d+)\)/(?P<notebook>\w+)\.ipynb$"
    # the pattern is matched against the file name only; here the id is in the folder
    result = collect(course, archive, pattern)
    assert result.collected == []
    archive = make_zip(
        tmp_path / "lms2.zip",
        [
            (f"s1234--{NB}", data, dt.datetime(2026, 11, 1)),
        ],
    )
    result = collect(course, archive, r"^(?P<student_id>s\d+)--(?P<notebook>\w+)\.ipynb$")
    assert [s for s, _, _ in result.collected] == ["s1234"]


def test_a_later_collect_replaces_an_earlier_submission_and_not_the_reverse(course, tmp_path):
    data = notebook_bytes(course)
    first = make_zip(tmp_path / "1.zip", [(f"ann_{NB}", data, dt.datetime(2026, 11, 1))])
    second = make_zip(tmp_path / "2.zip", [(f"ann_{NB}", b"newer", dt.datetime(2026, 11, 3))])
    collect(course, first)
    assert len(collect(course, second).collected) == 1
    assert (submitted(course, "ann") / NB).read_bytes() == b"newer"
    result = collect(course, first)
    assert result.collected == [] and "duplicate" in result.skipped[0][1]
    assert (submitted(course, "ann") / NB).read_bytes() == b"newer"


@pytest.mark.parametrize("kind", ["missing", "corrupt", "empty", "empty-zip"])
def test_bad_input_stops_with_one_clear_line_and_writes_nothing(prepared_grading, tmp_path, kind):
    class_course, _ = prepared_grading
    path = tmp_path / "input"
    if kind == "corrupt":
        path = tmp_path / "broken.zip"
        path.write_bytes(b"PK\x03\x04 this is not really a zip")
    elif kind == "empty":
        path.mkdir()
    elif kind == "empty-zip":
        path = make_zip(tmp_path / "empty.zip", [])
    with pytest.raises(GraderError) as error:
        scan(class_course, path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    assert not (tmp_path / "grading").exists()
