"""The class roster: who the student ids are, as the LMS knows them.

A CSV file with a header row and one row per student:

    student_id,name,email,lms_id[,section]
    ada,Ada Lovelace,ada@example.edu,1001,Lab A

student_id  the course's id (the grading folder's submitted/<student_id>/); required
name        the student's name as the LMS shows it (Moodle's downloads name students by it)
email       Moodle's grade import identifies users by it (or by ID number)
lms_id      the Canvas user id (the number in Canvas's file names and its gradebook's ID column)
section     optional, the Canvas gradebook's Section column

Identities are matched exactly: a Canvas user id by lms_id, a Moodle full name by name
(ignoring case, word order and the characters Moodle drops from file names), a course id
by student_id. What matches no row, or several, is reported and never guessed.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError

COLUMNS = ("student_id", "name", "email", "lms_id", "section")
REQUIRED = ("student_id", "name")
STUDENT_ID = r"[A-Za-z0-9][A-Za-z0-9._-]*"  # as grader.pipeline.collect accepts them
MAX_SIZE = 10 * 10**6
# What Moodle's clean_filename (clean_param PARAM_FILE) removes from a name in a file name.
_MOODLE_DROPS = re.compile(r"[\x00-\x1f\x7f&<>\"`|':\\/]")
# Headers as spreadsheets and LMS exports write them.
ALIASES = {
    "e_mail": "email",
    "email_address": "email",
    "full_name": "name",
    "lms_user_id": "lms_id",
    "canvas_user_id": "lms_id",
}


@dataclass(frozen=True)
class Student:
    student_id: str
    name: str
    email: str = ""
    lms_id: str = ""
    section: str = ""


def name_key(name: str) -> tuple[str, ...]:
    """A name as Moodle's download writes it, compared without case, word order or commas
    ("Lovelace, Ada" is "Ada Lovelace"): Moodle replaces '_' by ' ' and drops the
    characters clean_filename removes."""
    cleaned = _MOODLE_DROPS.sub("", name.replace("_", " ")).replace(",", " ")
    return tuple(sorted(cleaned.casefold().split()))


class Roster:
    """The rows of a roster file and the lookups collect and report need."""

    def __init__(self, students: list[Student], text: str, path: Path | None = None):
        self.students = students
        self.text = text  # the file as read, kept in the grading folder as roster.csv
        self.path = path
        self.by_id = {s.student_id: s for s in students}
        self.by_lms_id = {s.lms_id: s for s in students if s.lms_id}
        self._by_name: dict[tuple[str, ...], list[Student]] = {}
        for student in students:
            self._by_name.setdefault(name_key(student.name), []).append(student)

    def by_name(self, name: str) -> list[Student]:
        """Every student whose name is `name` (several: ambiguous, none: unknown)."""
        key = name_key(name)
        return list(self._by_name.get(key, [])) if key else []

    def __contains__(self, student_id: str) -> bool:
        return student_id in self.by_id


def load_roster(path: Path | str, assignments: Collection[str] = ()) -> Roster:
    """Read and check a roster file; a GraderError names the line and the fix."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GraderError(
            f"the roster {path} does not exist; give the class list as a CSV "
            f"file with the columns {','.join(COLUMNS[:4])}"
        ) from None
    except OSError as error:
        raise GraderError(f"the roster {path} cannot be read ({error.strerror})") from None
    if len(data) > MAX_SIZE:
        raise GraderError(
            f"the roster {path} is over {MAX_SIZE // 10**6} MB; is it the class list?"
        )
    try:
        text = data.decode("utf-8-sig")  # a spreadsheet's UTF-8 export starts with a BOM
    except UnicodeDecodeError:
        raise GraderError(f"the roster {path} is not UTF-8 text; save it as CSV UTF-8") from None
    return parse_roster(text, path, assignments)


def parse_roster(
    text: str, path: Path | str = "roster", assignments: Collection[str] = ()
) -> Roster:
    rows = list(csv.reader(io.StringIO(text)))
    while rows and not any(cell.strip() for cell in rows[0]):
        rows.pop(0)
    if not rows:
        raise GraderError(
            f"the roster {path} is empty; it needs a header row "
            f"{','.join(COLUMNS[:4])} and a row per student"
        )
    header = [re.sub(r"[\s-]+", "_", cell.strip().casefold()) for cell in rows[0]]
    header = [ALIASES.get(cell, cell) for cell in header]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise GraderError(
            f"the roster {path} has no column {missing[0]!r} in its header {rows[0]}; the "
            f"header names the columns {','.join(COLUMNS[:4])} (section optional)"
        )
    doubled = sorted({c for c in header if c in COLUMNS and header.count(c) > 1})
    if doubled:
        raise GraderError(f"the roster {path} has the column {doubled[0]!r} twice")
    index = {c: header.index(c) for c in COLUMNS if c in header}
    students: list[Student] = []
    seen: dict[str, dict[str, int]] = {"student_id": {}, "email": {}, "lms_id": {}}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        values = {c: (row[i].strip() if i < len(row) else "") for c, i in index.items()}
        where = f"the roster {path}, line {line}"
        student_id = values["student_id"]
        if not re.fullmatch(STUDENT_ID, student_id):
            raise GraderError(
                f"{where}: {student_id!r} is not a student id (letters, digits, '.', '_', "
                "'-', starting with a letter or digit)"
            )
        if student_id in assignments:
            raise GraderError(f"{where}: the student id {student_id!r} is an assignment's name")
        if not values["name"]:
            raise GraderError(f"{where}: no name for {student_id}")
        values["email"] = values.get("email", "").lower()
        for column in seen:
            value = values.get(column, "")
            if value and value in seen[column]:
                raise GraderError(
                    f"{where}: the {column} {value!r} is already on line "
                    f"{seen[column][value]}; each student's {column} must be their own"
                )
            if value:
                seen[column][value] = line
        students.append(Student(**{c: values.get(c, "") for c in COLUMNS}))
    if not students:
        raise GraderError(f"the roster {path} has a header but no students")
    return Roster(students, text, Path(path))
