"""Canvas and Moodle as they are: the file names of their submission downloads, and the
grade files their gradebooks import.

Downloads ("Download all submissions", a zip):

- Canvas names every file `<name>[_LATE]_<user id>_<attachment id>_<file name>`, flat, as
  lib/content_zipper.rb (instructure/canvas-lms) writes it: `<name>` is the student's
  sortable name ("Doe, Jane") lower-cased with everything but letters, digits and '_'
  removed (`doejane`), `LATE` where Canvas found the submission late, the user id, or
  `anon_<id>` under anonymous grading, the attachment's id, then the file name as the
  student uploaded it. A file uploaded again under the same name is renamed by Canvas with
  `-1`, `-2` (community threads, instructure/canvas-lms issue #2310). The zip holds each
  student's current submission only, and every entry is dated when Canvas built the zip
  (rubyzip's default; content_zipper passes no time), so the LATE marker is the only
  lateness it carries. Example: `doejane_LATE_12345_67890_01_perceptron-1.ipynb`.
- Moodle (mod/assign, classes/downloader.php; locallib.php before 4.1) prefixes the full
  name, with '_' replaced by ' ' and clean_filename applied, and the participant id
  (`get_uniqueid_for_user`: an id per assignment and user, the same as "Participant N"
  under blind marking): `<full name>_<participant id>_assignsubmission_file_<file name>`,
  or, with "download submissions in folders" (the default since 3.1), a folder per student
  `<full name>_<participant id>_assignsubmission_file/` (3.x: with a trailing '_') holding the
  files. A file uploaded again under the same name gets " (1)". Moodle 4.1 and later
  (classes/downloader.php) date the entries when the zip is built (core_files' zip_writer,
  given no time); earlier ones (zip_packer: stored_file::archive_file, addFile of the
  stored copy) take the date of Moodle's stored copy of the file. Example:
  `Jane Doe_12345_assignsubmission_file/01_perceptron.ipynb`.

The participant id changes from one assignment to the next, so Moodle identities are
matched by name against the roster; Canvas identities by user id (the roster's lms_id).

nbgrader itself leaves LMS formats to plugins (`zip_collect` and its FileNameCollectorPlugin,
jupyter/nbgrader#526; LMS import/export formats asked for in #796 and Canvas grade passback in
#530, both open); it keeps an `lms_user_id` per student (#1035), which collect fills from the
roster. Issue #797 was not among the stored threads; the formats above come from the LMS
sources named.

Grade files (grader.pipeline.report writes them from the roster):

- Canvas's gradebook import (app/models/gradebook_importer.rb; the "Import" of the Grades
  page takes the format of its "Export"): a header `Student,ID,SIS User ID,SIS Login ID,
  Section` then one column per assignment, named `<title> (<Canvas assignment id>)` (an
  unknown title makes a new assignment), a "Points Possible" row, then a row per student,
  found by the ID column (the Canvas user id) first. A blank cell changes nothing.
- Moodle's "Import grades: CSV file" (grade/import/csv): any header; the user is found by
  the column chosen under "Map from", matched to Email address or ID number ("Map to"), and
  each grade column is mapped to a grade item.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

CANVAS = "canvas"
MOODLE = "moodle"
LABEL = {CANVAS: "Canvas", MOODLE: "Moodle"}

# After `<name>_`: [LATE_]<user id or anon_id>_<attachment id>_<file>. A name never holds
# `_<digits>_` (content_zipper's sanitize_user_name removes it) but may end in `_<digits>`.
_CANVAS_REST = re.compile(
    r"^(?:(?P<late>LATE)_)?(?P<user>\d+|anon_[A-Za-z0-9]+)_(?P<attachment>\d+)_(?P<file>.+)$"
)
_MOODLE_FOLDER = re.compile(r"^(?P<name>[^_/]+)_(?P<user>\d+)_assignsubmission_file_?$")
_MOODLE_FILE = re.compile(r"^(?P<name>[^_/]+)_(?P<user>\d+)_assignsubmission_file_(?P<file>.+)$")
_CANVAS_COPY = re.compile(r"^(?P<stem>.+?)-(?P<n>\d+)$")  # 01_perceptron-2
_MOODLE_COPY = re.compile(r"^(?P<stem>.+?) \((?P<n>\d+)\)$")  # 01_perceptron (1)


@dataclass(frozen=True)
class LmsFile:
    """What an LMS's file name says about a file."""

    lms: str  # CANVAS or MOODLE
    name: str  # the student's name as the file name writes it
    lms_id: str  # Canvas user id (or anon_...), Moodle participant id
    filename: str  # the file name the student uploaded, as the LMS kept it
    notebook: str | None  # the assignment's notebook it is, None if none
    late: bool | None  # Canvas's LATE marker; None where the LMS writes none
    order: tuple[int, ...]  # among one student's files, higher is newer
    place: str  # where the identity is written (a Moodle folder, or the file names)

    @property
    def anonymous(self) -> bool:
        return self.lms == CANVAS and self.lms_id.startswith("anon_")

    def describe(self) -> str:
        what = "user" if self.lms == CANVAS else "participant"
        return f"{LABEL[self.lms]} {what} {self.lms_id} ({self.name or 'no name'})"


def parse(parts: list[str], notebooks: list[str]) -> LmsFile | None:
    """The Canvas or Moodle reading of a zip entry's path `parts`, or None."""
    for depth, folder in enumerate(parts[:-1]):
        match = _MOODLE_FOLDER.match(folder)
        if match:
            name, number = _notebook(parts[-1], notebooks, _MOODLE_COPY)
            return LmsFile(
                MOODLE,
                match["name"],
                match["user"],
                parts[-1],
                name,
                None,
                (number,),
                "/".join(parts[: depth + 1]) + "/",
            )
    basename = parts[-1]
    match = _MOODLE_FILE.match(basename)
    if match:
        name, number = _notebook(match["file"], notebooks, _MOODLE_COPY)
        return LmsFile(
            MOODLE,
            match["name"],
            match["user"],
            match["file"],
            name,
            None,
            (number,),
            "Moodle's file names",
        )
    return _canvas(basename, notebooks)


def _canvas(basename: str, notebooks: list[str]) -> LmsFile | None:
    """Canvas's reading of a file name. A name ending in `_<digits>` reads as an id too;
    of the readings, the one whose file is a notebook wins (a wrong one would need the
    attachment id to be part of the notebook's name), else the first."""
    readings = []
    for cut in [-1, *(i for i, char in enumerate(basename) if char == "_")]:
        name, rest = ("", basename) if cut < 0 else (basename[:cut], basename[cut + 1 :])
        match = _CANVAS_REST.match(rest)
        if not match or not re.fullmatch(r"\w*", name):
            continue
        notebook, number = _notebook(match["file"], notebooks, _CANVAS_COPY)
        # Canvas lower-cases names, so `LATE` before an anonymous id is the marker.
        late = bool(match["late"]) or name == "LATE"
        readings.append(
            LmsFile(
                CANVAS,
                "" if name == "LATE" else name,
                match["user"],
                match["file"],
                notebook,
                late,
                (int(match["attachment"]), number),
                "Canvas's file names",
            )
        )
    return next((r for r in readings if r.notebook), readings[0] if readings else None)


def _notebook(filename: str, notebooks: list[str], copy: re.Pattern) -> tuple[str | None, int]:
    """The notebook a student's file is (its name, or the LMS's renamed copy of it) and the
    copy's number (0 for the name itself)."""
    if not filename.endswith(".ipynb"):
        return None, 0
    stem = filename[: -len(".ipynb")]
    if stem in notebooks:
        return stem, 0
    match = copy.match(stem)
    if match and match["stem"] in notebooks:
        return match["stem"], int(match["n"])
    return None, 0


# --- grade files -------------------------------------------------------------------------


def number(x: float | None) -> str:
    """A score as the gradebooks read it: at most two decimals (Canvas shows two)."""
    if x is None:
        return ""
    text = f"{round(x, 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_HEADER = ["Email address", "ID number"]


def canvas_column(assignment: str, canvas_ids: dict) -> str:
    """An assignment's column as Canvas's export names it: `title (id)`; the title alone
    where the Canvas id is not configured (Canvas then finds it by title, or makes it)."""
    assignment_id = canvas_ids.get(assignment)
    return f"{assignment} ({assignment_id})" if assignment_id not in (None, "") else assignment


def canvas_csv(
    roster, assignments: list[str], maximum: dict, finals: dict, canvas_ids: dict
) -> str:
    """Canvas's gradebook import. `finals`: (student id, assignment) -> score or None
    (blank: no change). Students without a Canvas user id are left out (Canvas would
    match them by name)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*CANVAS_HEADER, *(canvas_column(a, canvas_ids) for a in assignments)])
    writer.writerow(["Points Possible", "", "", "", "", *(number(maximum[a]) for a in assignments)])
    for student in roster.students:
        if not student.lms_id:
            continue
        writer.writerow(
            [
                student.name,
                student.lms_id,
                "",
                "",
                student.section,
                *(number(finals.get((student.student_id, a))) for a in assignments),
            ]
        )
    return out.getvalue()


def moodle_csv(roster, assignments: list[str], finals: dict) -> str:
    """Moodle's grade import: the identifier columns, then a grade column per assignment."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*MOODLE_HEADER, *assignments])
    for student in roster.students:
        writer.writerow(
            [
                student.email,
                student.student_id,
                *(number(finals.get((student.student_id, a))) for a in assignments),
            ]
        )
    return out.getvalue()
