"""`python -m grader collect PATH`: place submissions where nbgrader grades them.

Two layouts are understood:

- a folder laid out <student_id>/<assignment>/<notebook>.ipynb (nbgrader's own);
- a zip (an LMS download) whose file names carry the student id, matched by a regular
  expression with the groups `student_id` and `notebook`; the default reads
  `<student_id>_<notebook>.ipynb`, anywhere in the zip.

Each notebook is copied to submitted/<student>/<assignment>/<assignment>.ipynb with a
timestamp.txt (from timestamp.txt beside it, the zip entry's date, or the file's mtime).
A later submission replaces an earlier one; an older one is skipped. Files that cannot be
placed are listed with the reason and skipped; the rest is collected.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from nbgrader.api import Gradebook
from nbgrader.utils import parse_utc

from grader.course_config import CourseConfig
from grader.errors import GraderError
from grader.gradebook import db_url

STUDENT_ID = r"[A-Za-z0-9][A-Za-z0-9._-]*"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"


def default_pattern(notebooks: list[str]) -> str:
    names = "|".join(re.escape(n) for n in notebooks)
    return rf"^(?P<student_id>{STUDENT_ID})_(?P<notebook>{names})\.ipynb$"


@dataclass
class Candidate:
    """A file that looks like a submission."""

    origin: str  # where it came from, for messages
    student: str
    assignment: str
    timestamp: dt.datetime
    data: bytes


@dataclass
class CollectResult:
    # (student, assignment, origin) and (origin, reason)
    collected: list[tuple[str, str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"Collected {len(self.collected)} submission(s), skipped {len(self.skipped)}."]
        lines += [f"  skipped {origin}: {reason}" for origin, reason in self.skipped]
        return "\n".join(lines)


def collect(course: CourseConfig, path: Path | str, pattern: str | None = None) -> CollectResult:
    """Collect every submission under `path` (a folder or a zip) into the grading folder."""
    candidates, result = scan(course, path, pattern)
    return place(course, candidates, result)


def scan(course: CourseConfig, path: Path | str, pattern: str | None = None):
    """Read every submission under `path`, writing nothing: (candidates, result so far).

    Everything that can be wrong with the input as a whole (missing, corrupt, empty) is
    found here, before the grading folder is touched.
    """
    path = Path(path)
    result = CollectResult()
    if not path.exists():
        raise GraderError(f"{path} does not exist; give a folder of submissions or an LMS zip")
    if path.is_dir():
        candidates = _from_folder(course, path, result)
    elif zipfile.is_zipfile(path):
        regex = _compile(pattern or default_pattern(course.assignments))
        candidates = _from_zip(course, path, regex, result)
    else:
        raise GraderError(
            f"{path} is neither a folder nor a readable zip file; download the submissions "
            "again or unpack them into a folder"
        )
    if not candidates and not result.skipped:
        raise GraderError(f"{path} holds no submissions; is it the right folder or zip?")
    return candidates, result


def place(course: CourseConfig, candidates: list[Candidate], result: CollectResult):
    """Copy the latest file of every student and assignment into submitted/."""
    latest = _keep_latest(candidates, result)
    with Gradebook(db_url(course), course.course_id) as gb:
        for candidate in latest:
            if _place(course, candidate, result):
                gb.update_or_create_student(candidate.student)
    return result


def _compile(pattern: str) -> re.Pattern:
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise GraderError(f"the file name pattern {pattern!r} is not a regex: {error}") from None
    if {"student_id", "notebook"} - set(regex.groupindex):
        raise GraderError(
            f"the file name pattern {pattern!r} needs the groups (?P<student_id>...) and "
            "(?P<notebook>...)"
        )
    return regex


def _from_folder(course: CourseConfig, root: Path, result: CollectResult) -> list[Candidate]:
    candidates = []
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or file.name == "timestamp.txt":
            continue
        if file.suffix != ".ipynb":
            result.skipped.append((str(rel), "not a notebook"))
            continue
        if len(rel.parts) != 3:
            result.skipped.append(
                (str(rel), "no student id: expected <student_id>/<assignment>/<notebook>.ipynb")
            )
            continue
        student, assignment, _ = rel.parts
        reason = _check(course, student, assignment, file.stem)
        if reason:
            result.skipped.append((str(rel), reason))
            continue
        stamp = _folder_timestamp(file)
        candidates.append(Candidate(str(rel), student, assignment, stamp, file.read_bytes()))
    return candidates


def _from_zip(course, path: Path, regex: re.Pattern, result: CollectResult) -> list[Candidate]:
    candidates = []
    try:
        archive = zipfile.ZipFile(path)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise GraderError(f"{path} is a corrupt zip ({error}); download it again") from None
    for info in infos:
        if info.is_dir():
            continue
        name = PurePosixPath(info.filename).name
        if name.startswith(".") or "__MACOSX" in info.filename:
            continue
        if not name.endswith(".ipynb"):
            result.skipped.append((info.filename, "not a notebook"))
            continue
        match = regex.search(name)
        if not match:
            loose = re.match(r"^(?P<student_id>[^_]+)_(?P<notebook>.+)\.ipynb$", name)
            if PurePosixPath(name).stem in course.assignments:
                reason = "no student id: the file name is only the notebook's"
            elif loose and re.fullmatch(STUDENT_ID, loose.group("student_id")):
                reason = f"unknown notebook {loose.group('notebook')!r}"
            else:
                reason = f"no student id: the name does not match {regex.pattern!r}"
            result.skipped.append((info.filename, reason))
            continue
        student, notebook = match.group("student_id"), match.group("notebook")
        reason = _check(course, student, notebook, notebook)
        if reason:
            result.skipped.append((info.filename, reason))
            continue
        stamp = dt.datetime(*info.date_time, tzinfo=dt.UTC)
        try:
            data = archive.read(info)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise GraderError(f"{path} is a corrupt zip ({error}); download it again") from None
        candidates.append(Candidate(info.filename, student, notebook, stamp, data))
    return candidates


def _check(course: CourseConfig, student: str, assignment: str, notebook: str) -> str | None:
    """Why a file cannot be placed, or None."""
    if not re.fullmatch(STUDENT_ID, student):
        return f"no student id: {student!r} is not a valid id"
    if assignment not in course.assignments:
        return f"unknown assignment {assignment!r}"
    if notebook != assignment:
        return f"unknown notebook {notebook!r}: assignment {assignment} has {assignment}.ipynb"
    return None


def _folder_timestamp(file: Path) -> dt.datetime:
    stamp_file = file.parent / "timestamp.txt"
    if stamp_file.exists():
        try:
            return parse_utc(stamp_file.read_text().strip())
        except ValueError:
            pass
    return dt.datetime.fromtimestamp(file.stat().st_mtime, tz=dt.UTC)


def _keep_latest(candidates: list[Candidate], result: CollectResult) -> list[Candidate]:
    """One file per student and assignment: the latest; the others are duplicates."""
    best: dict[tuple[str, str], Candidate] = {}
    for candidate in candidates:
        key = (candidate.student, candidate.assignment)
        other = best.get(key)
        if other is None:
            best[key] = candidate
            continue
        newer, older = (candidate, other) if candidate.timestamp > other.timestamp else (
            other, candidate)
        best[key] = newer
        result.skipped.append((older.origin, f"duplicate: {newer.origin} is later"))
    return list(best.values())


def _place(course: CourseConfig, candidate: Candidate, result: CollectResult) -> bool:
    folder = course.root / "submitted" / candidate.student / candidate.assignment
    stamp_file = folder / "timestamp.txt"
    if stamp_file.exists():
        try:
            existing = parse_utc(stamp_file.read_text().strip())
        except ValueError:
            existing = None
        if existing is not None and _utc(existing) >= _utc(candidate.timestamp):
            result.skipped.append(
                (candidate.origin, f"duplicate: the submission collected before is as late "
                 f"({existing:%Y-%m-%d %H:%M})")
            )
            return False
    data = candidate.data
    folder.mkdir(parents=True, exist_ok=True)
    # Write the notebook before its timestamp: an interrupted collect is redone next time.
    (folder / f"{candidate.assignment}.ipynb").write_bytes(data)
    stamp_file.write_text(_utc(candidate.timestamp).strftime(TIMESTAMP_FORMAT))
    result.collected.append((candidate.student, candidate.assignment, candidate.origin))
    return True


def _utc(stamp: dt.datetime) -> dt.datetime:
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(dt.UTC)
