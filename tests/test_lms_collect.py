"""collect reads Canvas's and Moodle's "Download all submissions" zips as they come, maps
their identities to student ids through the roster, lists the identities it cannot map,
and keeps the newest of a student's resubmissions. Fast: no notebook runs.

The zips are the synthetic LMS class of grader.pipeline.synthetic (ada, blank, hal who hands in
twice, dan 26 h late, eve 8 days late, and a stranger who is on no roster)."""

from __future__ import annotations

import csv
import datetime as dt
import zipfile

import pytest
from conftest import MINI

from grader.errors import GraderError
from grader.lms import formats as lms
from grader.lms.roster import load_roster, name_key, parse_roster
from grader.pipeline import synthetic
from grader.pipeline.collect import LINK, collect, scan

NB = f"{MINI}.ipynb"
DUE = synthetic.DEADLINE.replace(tzinfo=dt.UTC)
ON_ROSTER = ["ada", "blank", "dan", "eve", "hal"]


@pytest.fixture
def course(copied_grading):
    copied_grading.duedates = {MINI: f"{synthetic.DEADLINE:%Y-%m-%d %H:%M:%S} UTC"}
    return copied_grading


@pytest.fixture
def roster(tmp_path):
    return load_roster(synthetic.write_roster(tmp_path / "roster.csv"))


def stamp(course, student):
    text = (course.root / "submitted" / student / MINI / "timestamp.txt").read_text()
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f %Z").replace(tzinfo=dt.UTC)


def notebook(course, student):
    return (course.root / "submitted" / student / MINI / NB).read_bytes()


def right_and_blank(course):
    entries = synthetic.lms_class(course, MINI)
    return entries[0][1], entries[1][1]  # ada's solutions, blank's release notebook


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def make_zip(path, entries):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data, when in entries:
            archive.writestr(zipfile.ZipInfo(name, date_time=when.timetuple()[:6]), data)
    return path


def test_canvas_download_is_collected_by_user_id_and_late_marker(course, roster, tmp_path):
    archive = synthetic.make_lms_class(course, [MINI], tmp_path / "canvas.zip", "canvas")
    names = zipfile.ZipFile(archive).namelist()
    assert "lovelaceada_1001_5001_01_perceptron.ipynb" in names  # as Canvas writes them
    assert "scottdana_LATE_1004_5005_01_perceptron.ipynb" in names
    assert "abelsonhal_1008_5004_01_perceptron-1.ipynb" in names  # the renamed resubmission

    result = collect(course, archive, roster=roster)
    assert sorted(s for s, _, _ in result.collected) == ON_ROSTER
    right, blank = right_and_blank(course)
    # hal: both files dated when Canvas built the zip; the higher attachment id is newer
    assert notebook(course, "hal") == right
    assert dict(result.skipped)["abelsonhal_1008_5003_01_perceptron.ipynb"] == (
        "duplicate: abelsonhal_1008_5004_01_perceptron-1.ipynb is later"
    )
    # Canvas's zip dates are its download time: the LATE marker alone decides
    assert stamp(course, "ada") == DUE  # on time, whenever the zip was made
    assert stamp(course, "dan") == DUE + dt.timedelta(seconds=1)
    assert stamp(course, "eve") == DUE + dt.timedelta(seconds=1)  # how late: Canvas says not
    # the stranger is listed, never graded under a guessed id
    assert result.unknown == [
        (
            "strangersam_1099_5007_01_perceptron.ipynb",
            "Canvas user 1099 (strangersam): no roster row has the lms_id 1099",
        )
    ]
    assert sorted(p.name for p in (course.root / "submitted").iterdir()) == ON_ROSTER
    summary = result.summary()
    assert "1 from 1 identity not on the roster" in summary
    assert "not on the roster: Canvas user 1099 (strangersam)" in summary
    assert "2 Canvas file(s) marked LATE" in summary

    reports = course.root / "reports"
    assert read_csv(reports / "unknown-identities.csv") == [
        {
            "identity": "Canvas user 1099 (strangersam)",
            "reason": "no roster row has the lms_id 1099",
            "files": "strangersam_1099_5007_01_perceptron.ipynb",
        }
    ]
    rows = {r["file"]: r for r in read_csv(reports / "collect.csv")}
    assert len(rows) == len(names)
    dan = rows["scottdana_LATE_1004_5005_01_perceptron.ipynb"]
    assert (dan["outcome"], dan["student"], dan["submitted"]) == (
        "collected",
        "dan",
        "2026-11-27 09:00:01.000000 UTC",
    )
    assert dan["reason"].startswith("Canvas marks it LATE but not how late")
    assert rows["strangersam_1099_5007_01_perceptron.ipynb"]["outcome"] == "not on the roster"
    assert rows["abelsonhal_1008_5003_01_perceptron.ipynb"]["outcome"] == "skipped"
    assert (course.root / "roster.csv").read_text() == roster.text


def test_moodle_download_is_collected_by_name_with_its_dates(course, roster, tmp_path):
    archive = synthetic.make_lms_class(course, [MINI], tmp_path / "moodle.zip", "moodle")
    names = zipfile.ZipFile(archive).namelist()
    assert "Ada Lovelace_601001_assignsubmission_file/01_perceptron.ipynb" in names
    assert "Hal Abelson_601008_assignsubmission_file/01_perceptron (1).ipynb" in names

    result = collect(course, archive, roster=roster)
    assert sorted(s for s, _, _ in result.collected) == ON_ROSTER
    right, _ = right_and_blank(course)
    assert notebook(course, "hal") == right  # the later upload, Moodle's renamed copy
    assert stamp(course, "ada") == DUE - dt.timedelta(days=1)
    assert stamp(course, "dan") == DUE + dt.timedelta(hours=26)
    assert stamp(course, "eve") == DUE + dt.timedelta(days=8)
    assert [who for who in result.identities] == ["Moodle participant 601099 (Sam Stranger)"]
    assert "no roster row is named 'Sam Stranger'" in result.summary()
    assert not (course.root / "submitted" / "Sam Stranger").exists()


def test_moodle_flat_names_older_folders_and_names_in_any_order(course, tmp_path):
    right, blank = right_and_blank(course)
    when = synthetic.DEADLINE - dt.timedelta(hours=2)
    roster = parse_roster(
        "student_id,name,email,lms_id\n"
        "s1,Jane O'Neil,jane@x.org,\n"
        "s2,Lee Chan,lee@x.org,\n"
        "s3,Chan Lee,chan@x.org,\n"
        "s4,Ann Smith,ann@x.org,\n"
    )
    archive = make_zip(
        tmp_path / "moodle.zip",
        [
            # Moodle drops "'" from names in file names; 3.x folders end in "_"
            (f"Jane ONeil_7001_assignsubmission_file_/{NB}", right, when),
            # two roster rows read as "Lee Chan": ambiguous, listed, not guessed
            (f"Lee Chan_7002_assignsubmission_file/{NB}", right, when),
            # without folders; the name in the other order (a site's fullname format)
            (f"Smith Ann_7004_assignsubmission_file_{NB}", blank, when),
            ("Smith Ann_7004_assignsubmission_file_notes.txt", b"notes", when),
            ("Smith Ann_7004_assignsubmission_onlinetext_/onlinetext.html", b"<p>", when),
        ],
    )
    result = collect(course, archive, roster=roster)
    assert sorted(s for s, _, _ in result.collected) == ["s1", "s4"]
    assert notebook(course, "s4") == blank
    assert name_key("Jane O'Neil") == name_key("jane  oneil")
    reason = dict(result.unknown)[f"Lee Chan_7002_assignsubmission_file/{NB}"]
    assert "several students named 'Lee Chan' (s2, s3)" in reason
    skipped = dict(result.skipped)
    assert skipped["Smith Ann_7004_assignsubmission_file_notes.txt"] == "not a notebook"


def test_an_lms_download_without_a_roster_is_refused_before_anything_is_written(
    prepared_grading, tmp_path
):
    repo, _ = prepared_grading
    archive = synthetic.make_lms_class(repo, [MINI], tmp_path / "canvas.zip", "canvas")
    with pytest.raises(GraderError) as error:
        scan(repo, archive)
    message = str(error.value)
    assert "\n" not in message and "is a Canvas download" in message and "--roster" in message
    assert not (tmp_path / "grading").exists()


def test_with_a_roster_every_student_id_must_be_on_it(course, roster, tmp_path):
    right, _ = right_and_blank(course)
    when = synthetic.DEADLINE
    archive = make_zip(
        tmp_path / "course.zip", [(f"ada_{NB}", right, when), (f"mallory_{NB}", right, when)]
    )
    result = collect(course, archive, roster=roster)
    assert [s for s, _, _ in result.collected] == ["ada"]
    assert result.unknown == [(f"mallory_{NB}", "student id mallory: not on the roster")]
    inbox = tmp_path / "inbox"
    (inbox / "mallory" / MINI).mkdir(parents=True)
    (inbox / "mallory" / MINI / NB).write_bytes(right)
    result = collect(course, inbox, roster=roster)
    assert result.collected == [] and list(result.identities) == ["student id mallory"]


def test_anonymous_and_unknown_canvas_identities_are_listed_once_each(course, roster, tmp_path):
    right, _ = right_and_blank(course)
    when = synthetic.DOWNLOADED
    archive = make_zip(
        tmp_path / "canvas.zip",
        [
            (f"LATE_anon_x7Kq2_9001_{NB}", right, when),
            (f"anon_P3z9a_9002_{NB}", right, when),
            (f"doejohn_2001_9003_{NB}", right, when),
            (f"doejohn_2001_9004_{MINI}-1.ipynb", right, when),
            (f"lovelaceada_1001_9005_{NB}", right, when),
        ],
    )
    result = collect(course, archive, roster=roster)
    assert [s for s, _, _ in result.collected] == ["ada"]
    assert list(result.identities) == [
        "Canvas user anon_x7Kq2 (no name)",
        "Canvas user anon_P3z9a (no name)",
        "Canvas user 2001 (doejohn)",
    ]
    assert result.identities["Canvas user 2001 (doejohn)"].origins == [
        f"doejohn_2001_9003_{NB}",
        f"doejohn_2001_9004_{MINI}-1.ipynb",
    ]
    assert "anonymous grading" in result.identities["Canvas user anon_x7Kq2 (no name)"].reason


def test_lms_names_get_the_same_hardening(course, roster, tmp_path):
    """Links, names with '..', a file placed by Canvas's names and by a student folder."""
    right, _ = right_and_blank(course)
    path = tmp_path / "canvas.zip"
    with zipfile.ZipFile(path, "w") as archive:
        link = zipfile.ZipInfo(f"lovelaceada_1001_9001_{NB}")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/shadow")
        archive.writestr(f"../scottdana_1004_9002_{NB}", right)
        archive.writestr(f"Eve Cohen_7005_assignsubmission_file/../{NB}", right)
        archive.writestr(f"cohenEve_1005_9003_{NB}", b"one")  # Canvas's names: eve
        archive.writestr(f"eve/{NB}", b"two")  # a student folder: eve too
    result = collect(course, path, roster=roster)
    assert result.collected == []
    skipped = dict(result.skipped)
    assert skipped[f"lovelaceada_1001_9001_{NB}"] == LINK
    assert skipped[f"../scottdana_1004_9002_{NB}"].startswith("an absolute name or one with '..'")
    assert skipped[f"Eve Cohen_7005_assignsubmission_file/../{NB}"].startswith("an absolute")
    conflicts = dict(result.conflicts)
    assert conflicts[f"cohenEve_1005_9003_{NB}"].startswith(f"conflict: eve/{NB} also claims")
    assert not (course.root / "submitted").exists() or not any(
        (course.root / "submitted").iterdir()
    )


def test_a_canvas_late_marker_without_a_due_date_is_reported(copied_grading, roster, tmp_path):
    archive = synthetic.make_lms_class(copied_grading, [MINI], tmp_path / "c.zip", "canvas")
    result = collect(copied_grading, archive, roster=roster)
    assert stamp(copied_grading, "dan") == synthetic.DOWNLOADED.replace(tzinfo=dt.UTC)
    assert "no due date is set (DUEDATES in nbgrader_config.py): no late penalty" in (
        result.summary()
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,email\nAda,a@x\n", "no column 'student_id'"),
        (
            "student_id,name\nada,Ada\nada,Ada Two\n",
            "line 3: the student_id 'ada' is already on line 2",
        ),
        ("student_id,name,lms_id\nada,Ada,7\nbob,Bob,7\n", "line 3: the lms_id '7' is already"),
        ("student_id,name\nbad id,Ada\n", "line 2: 'bad id' is not a student id"),
        ("student_id,name\n01_perceptron,Ada\n", "is an assignment's name"),
        ("student_id,name\nada,\n", "line 2: no name for ada"),
        ("student_id,name\n", "has a header but no students"),
        ("", "is empty"),
    ],
)
def test_a_bad_roster_stops_with_one_line_naming_the_row(text, message, tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text(text)
    with pytest.raises(GraderError, match=message) as error:
        load_roster(path, [MINI])
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_a_roster_from_a_spreadsheet_reads(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_bytes(
        "\ufeffStudent ID,Name,E-Mail,LMS ID,Section\r\n"
        'ada,"Lovelace, Ada",ADA@x.org,1001,Lab A\r\n\r\n'.encode()
    )
    roster = load_roster(path)
    (ada,) = roster.students
    assert (ada.student_id, ada.name, ada.email, ada.lms_id, ada.section) == (
        "ada",
        "Lovelace, Ada",
        "ada@x.org",
        "1001",
        "Lab A",
    )
    assert roster.by_name("Ada Lovelace") == [ada]  # Moodle's "First Last"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("doejane_LATE_12345_67890_01_perceptron-1.ipynb", ("doejane", "12345", True, (67890, 1))),
        ("doejane_12345_67890_01_perceptron.ipynb", ("doejane", "12345", False, (67890, 0))),
        ("LATE_anon_x7Kq2_67890_01_perceptron.ipynb", ("", "anon_x7Kq2", True, (67890, 0))),
        # a name may end in _<digits> (Canvas removes only _<digits>_): the notebook decides
        ("smith_2_12345_67890_01_perceptron.ipynb", ("smith_2", "12345", False, (67890, 0))),
    ],
)
def test_canvas_file_names(name, expected):
    file = lms.parse([name], [MINI])
    assert (file.lms, file.notebook) == (lms.CANVAS, MINI)
    assert (file.name, file.lms_id, file.late, file.order) == expected


def test_course_names_with_numeric_ids_stay_course_names(course, tmp_path):
    right, _ = right_and_blank(course)
    archive = make_zip(tmp_path / "ids.zip", [(f"123456_{NB}", right, synthetic.DEADLINE)])
    assert [s for s, _, _ in collect(course, archive).collected] == ["123456"]
