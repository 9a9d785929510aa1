"""`python -m grader collect PATH`: place submissions where nbgrader grades them.

Two layouts are understood:

- a folder laid out <student_id>/<assignment>/<notebook>.ipynb (nbgrader's own);
- a zip (an LMS download). Canvas's and Moodle's "Download all submissions" are read as
  they come (grader.lms.formats: their file names, with sources): their identities (a Canvas user
  id, a Moodle full name) are mapped to student ids by the roster (grader.lms.roster), and an
  identity the roster does not have, or has twice, is listed and not collected. Where the
  LMS puts each student's files in a folder named by the student id (`ada/01_perceptron.ipynb`,
  `ada/ada_01_perceptron.ipynb`, `all/ada/...`), that folder is the student id and a file
  name naming another student is a conflict. A zip without such folders is read by its
  file names: a regular expression with the groups `student_id` and `notebook`, by default
  `<student_id>_<notebook>.ipynb`, anywhere in the zip. With a roster, every student id
  must be on it.

Each notebook is copied to submitted/<student>/<assignment>/<assignment>.ipynb with a
timestamp.txt, the submission time: from timestamp.txt beside it or the file's mtime (a
folder), or the zip entry's date. Canvas dates every entry when it builds the zip, so for
its files the LATE marker decides: one without it counts as handed in no later than the
due date, one with it as late by the least it can be, 1 s (the due date is the one of
nbgrader_config.py's DUEDATES or the gradebook). Of a student's files for one notebook the
newest counts (the latest time, then the highest Canvas attachment id or LMS copy number);
a later collect replaces an earlier submission, never with an older one. Files that cannot
be placed are listed with the reason and skipped; the rest is collected. Each collect lists
every file with what became of it in reports/collect.csv, and the identities that are not
on the roster in reports/unknown-identities.csv; the roster is kept as roster.csv.

Nothing read is trusted (the grader may run as root): no symbolic link is followed and
only regular files are read, each at most `max_size` bytes; two files claiming one
student's notebook from different places are both listed as a conflict and neither is
placed; nothing is written outside the grading folder or through a link inside it.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import errno
import io
import os
import re
import secrets
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.utils import parse_utc

from grader.config import CourseConfig, GradingFolder
from grader.errors import GraderError
from grader.lms import formats as lms
from grader.lms.roster import Roster
from grader.workdir.gradebook import db_url
from grader.workdir.late import duedates, sync_duedates

STUDENT_ID = r"[A-Za-z0-9][A-Za-z0-9._-]*"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"
DEFAULT_MAX_SIZE = 20 * 10**6  # bytes per notebook; `collect --max-size MB`
STAMP_MAX_SIZE = 1000  # a timestamp.txt is one line
LAYOUT = "<student_id>/<assignment>/<notebook>.ipynb"

LINK = "a symbolic link: not collected (collect follows no links); put the file itself there"
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_WRITE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_LOOP = {errno.ELOOP, errno.EMLINK}  # what O_NOFOLLOW gives for a link (Linux, BSD)


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
    # Where the student id came from: one student folder, or the LMS's file names. Two
    # files for one notebook from different places are a conflict, not a duplicate.
    place: str = ""
    lms: lms.LmsFile | None = None  # what a Canvas or Moodle file name said

    @property
    def order(self) -> tuple:
        """Newer is larger: the time, then the LMS's attachment id or copy number."""
        return (_utc(self.timestamp), self.lms.order if self.lms else ())


@dataclass
class UnknownIdentity:
    """An LMS identity, or a student id, that the roster does not map to one student."""

    who: str
    reason: str
    origins: list[str] = field(default_factory=list)


@dataclass
class CollectResult:
    # (student, assignment, origin); (origin, reason); (origin, "conflict: ...")
    collected: list[tuple[str, str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    # (origin, reason): files of identities the roster does not map to one student
    unknown: list[tuple[str, str]] = field(default_factory=list)
    identities: dict[str, UnknownIdentity] = field(default_factory=dict)
    roster: Roster | None = None
    stamps: dict[str, dt.datetime] = field(default_factory=dict)  # origin -> time used
    notes: dict[str, str] = field(default_factory=dict)  # origin -> how its time was taken
    late_without_duedate: set[str] = field(default_factory=set)  # assignments

    def summary(self) -> str:
        line = f"Collected {len(self.collected)} submission(s), skipped {len(self.skipped)}"
        if self.conflicts:
            line += f", {len(self.conflicts)} in conflict (not collected)"
        if self.unknown:
            line += (
                f", {len(self.unknown)} from {len(self.identities)} identit"
                f"{'y' if len(self.identities) == 1 else 'ies'} not on the roster "
                "(not collected)"
            )
        lines = [line + "."]
        lines += [f"  skipped {origin}: {reason}" for origin, reason in self.skipped]
        lines += [f"  skipped {origin}: {reason}" for origin, reason in self.conflicts]
        lines += [
            f"  not on the roster: {who}: {identity.reason}; "
            f"{', '.join(identity.origins[:3])}"
            + (f" and {len(identity.origins) - 3} more" if len(identity.origins) > 3 else "")
            for who, identity in self.identities.items()
        ]
        late = sum(1 for note in self.notes.values() if note.startswith(CANVAS_LATE))
        if late:
            lines.append(
                f"  {late} Canvas file(s) marked LATE: {CANVAS_LATE} (counted 1 s "
                "late: the late policy's first day)"
            )
        if self.late_without_duedate:
            lines.append(
                f"  Canvas marks files of {', '.join(sorted(self.late_without_duedate))}"
                " LATE, but no due date is set (DUEDATES in nbgrader_config.py): no "
                "late penalty"
            )
        if self.unknown:
            lines.append(
                "  The identities not on the roster are in "
                "reports/unknown-identities.csv: add them to the roster (or fix "
                "their row) and collect again."
            )
        return "\n".join(lines)

    def unknown_identity(self, who: str, reason: str, origin: str) -> None:
        identity = self.identities.setdefault(who, UnknownIdentity(who, reason))
        identity.origins.append(origin)
        self.unknown.append((origin, f"{who}: {reason}"))


CANVAS_LATE = "Canvas marks it LATE but not how late (its zip dates are when it was made)"
CANVAS_ON_TIME = (
    "Canvas found it on time; counted at the due date (its zip dates are when it was made)"
)


class _Refused(Exception):
    """A file that is not read or not written; the message is the reason."""


def collect(
    course: GradingFolder,
    path: Path | str,
    pattern: str | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    roster: Roster | None = None,
) -> CollectResult:
    """Collect every submission under `path` (a folder or a zip) into the grading folder."""
    candidates, result = scan(course, path, pattern, max_size, roster)
    return place(course, candidates, result)


def scan(
    course: CourseConfig,
    path: Path | str,
    pattern: str | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    roster: Roster | None = None,
):
    """Read every submission under `path`, writing nothing: (candidates, result so far).

    Everything that can be wrong with the input as a whole (missing, corrupt, empty, an
    LMS download without a roster) is found here, before the grading folder is touched.
    `path` itself may be a link (the instructor's); nothing under it is followed.
    """
    path = Path(path)
    result = CollectResult(roster=roster)
    duedates(course)  # DUEDATES of nbgrader_config.py must read before anything is written
    if max_size < 1:
        raise GraderError(f"the size limit must be positive, not {max_size} bytes")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise GraderError(
            f"{path} does not exist; give a folder of submissions or an LMS zip"
        ) from None
    except OSError as error:
        raise GraderError(f"{path} cannot be read ({error.strerror})") from None
    mode = os.fstat(fd).st_mode
    if stat.S_ISDIR(mode):
        try:
            candidates = _from_folder(course, fd, result, max_size)
        finally:
            os.close(fd)
    elif stat.S_ISREG(mode):
        with os.fdopen(fd, "rb") as file:
            if not zipfile.is_zipfile(file):
                raise _not_a_zip(path)
            regex = _compile(pattern or default_pattern(course.assignments))
            candidates = _from_zip(
                course, file, path, regex, result, max_size, explicit=pattern is not None
            )
    else:
        os.close(fd)
        raise _not_a_zip(path)
    if not candidates and not result.skipped and not result.conflicts and not result.unknown:
        raise GraderError(f"{path} holds no submissions; is it the right folder or zip?")
    return _without_conflicts(candidates, result), result


def place(course: GradingFolder, candidates: list[Candidate], result: CollectResult):
    """Copy the latest file of every student and assignment into submitted/, then list
    what became of every file in reports/ and keep the roster as roster.csv."""
    with Gradebook(db_url(course), course.course_id) as gb:
        duedates = sync_duedates(course, gb)
        for candidate in candidates:
            _submission_time(candidate, duedates.get(candidate.assignment), result)
        latest = _keep_latest(candidates, result)
        for candidate in latest:
            if _place(course, candidate, result):
                gb.update_or_create_student(candidate.student)
                student = result.roster and result.roster.by_id.get(candidate.student)
                if student:
                    first, _, last = student.name.rpartition(" ")
                    gb.update_or_create_student(
                        candidate.student,
                        first_name=first or None,
                        last_name=last or None,
                        email=student.email or None,
                        lms_user_id=student.lms_id or None,
                    )
    _write_lists(course, result)
    return result


def _submission_time(candidate: Candidate, due: dt.datetime | None, result: CollectResult) -> None:
    """A Canvas file's time from its LATE marker (see the module's docstring)."""
    if candidate.lms is None or candidate.lms.lms != lms.CANVAS:
        return
    if due is None:
        if candidate.lms.late:
            result.late_without_duedate.add(candidate.assignment)
        return
    due = due.replace(tzinfo=dt.UTC)
    if candidate.lms.late:
        candidate.timestamp = due + dt.timedelta(seconds=1)
        result.notes[candidate.origin] = CANVAS_LATE
    elif _utc(candidate.timestamp) > due:
        candidate.timestamp = due
        result.notes[candidate.origin] = CANVAS_ON_TIME


def _not_a_zip(path: Path) -> GraderError:
    return GraderError(
        f"{path} is neither a folder nor a readable zip file; download the submissions "
        "again or unpack them into a folder"
    )


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


# --- reading -----------------------------------------------------------------------------


def _shown(name: str, limit: int = 200) -> str:
    """A name as messages show it: control characters escaped, long ones cut."""
    text = name if name.isprintable() else ascii(name)[1:-1]
    return text if len(text) <= limit else text[:limit] + "..."


def _size(size: int) -> str:
    return f"{size / 10**6:.1f} MB" if size >= 10**5 else f"{size} bytes"


def _limit(max_size: int) -> str:
    return f"{max_size / 10**6:g} MB" if max_size >= 10**5 else f"{max_size} bytes"


def _too_big(size: int | None, max_size: int) -> str:
    what = "larger" if size is None else _size(size)
    return f"{what}, over the {_limit(max_size)} limit; raise it with --max-size"


def _not_regular(mode: int) -> str:
    kinds = [
        (stat.S_ISFIFO, "a fifo"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a folder"),
    ]
    kind = next((name for test, name in kinds if test(mode)), "something else")
    return f"not a regular file ({kind}): not collected"


def _read_regular(name: str, dir_fd: int, max_size: int) -> tuple[bytes, os.stat_result]:
    """The bytes of the regular file `name` in the folder `dir_fd`, read through no link,
    at most `max_size` of them; else _Refused with the reason.

    The type is checked on the opened file: one swapped for a link, a fifo or a device
    after the folder was listed is refused too (O_NONBLOCK: a fifo does not block).
    """
    try:
        fd = os.open(name, _READ, dir_fd=dir_fd)
    except OSError as error:
        if error.errno in _LOOP:
            raise _Refused(LINK) from None
        raise _Refused(f"cannot be opened ({error.strerror}): not collected") from None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise _Refused(_not_regular(status.st_mode))
        if status.st_size > max_size:
            raise _Refused(_too_big(status.st_size, max_size))
        chunks, total = [], 0
        while total <= max_size:  # the file may grow after fstat: read max_size + 1 at most
            chunk = os.read(fd, min(1 << 20, max_size + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_size:
            raise _Refused(_too_big(None, max_size))
        return b"".join(chunks), status
    except OSError as error:
        raise _Refused(f"cannot be read ({error.strerror}): not collected") from None
    finally:
        os.close(fd)


def _from_folder(
    course: CourseConfig, root_fd: int, result: CollectResult, max_size: int
) -> list[Candidate]:
    """<student_id>/<assignment>/<notebook>.ipynb under the folder `root_fd`; the folders
    are opened one by one relative to their parent, never through a link."""
    candidates: list[Candidate] = []

    def visit(dir_fd: int, rel: tuple[str, ...]) -> None:
        with os.scandir(dir_fd) as entries:
            names = sorted(entry.name for entry in entries)
        for name in names:
            parts = (*rel, name)
            origin = _shown("/".join(parts))
            if name.startswith("."):
                continue
            try:
                mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
            except OSError:
                continue  # gone since the listing
            if stat.S_ISLNK(mode):
                result.skipped.append((origin, LINK))
            elif stat.S_ISDIR(mode):
                if len(parts) >= 3:
                    result.skipped.append(
                        (
                            origin,
                            (
                                f"a folder inside <student_id>/<assignment>/: not read; collect "
                                f"expects {LAYOUT}"
                            ),
                        )
                    )
                    continue
                try:
                    sub = os.open(name, _DIR, dir_fd=dir_fd)
                except OSError as error:
                    reason = (
                        LINK
                        if error.errno in _LOOP
                        else (f"cannot be opened ({error.strerror}): not collected")
                    )
                    result.skipped.append((origin, reason))
                    continue
                try:
                    visit(sub, parts)
                finally:
                    os.close(sub)
            elif not stat.S_ISREG(mode):
                result.skipped.append((origin, _not_regular(mode)))
            elif name != "timestamp.txt":
                candidate = _folder_file(course, dir_fd, parts, origin, result, max_size)
                if candidate:
                    candidates.append(candidate)

    visit(root_fd, ())
    return candidates


def _folder_file(
    course, dir_fd: int, parts: tuple[str, ...], origin: str, result: CollectResult, max_size: int
) -> Candidate | None:
    name = parts[-1]
    if not name.endswith(".ipynb"):
        result.skipped.append((origin, "not a notebook"))
        return None
    if len(parts) != 3:
        result.skipped.append((origin, f"no student id: expected {LAYOUT}"))
        return None
    student, assignment, _ = parts
    reason = _check(course, student, assignment, name[: -len(".ipynb")])
    if reason:
        result.skipped.append((origin, reason))
        return None
    if result.roster is not None and student not in result.roster:
        result.unknown_identity(f"student id {student}", "not on the roster", origin)
        return None
    try:
        data, status = _read_regular(name, dir_fd, max_size)
    except _Refused as refusal:
        result.skipped.append((origin, str(refusal)))
        return None
    stamp = _read_stamp(dir_fd) or dt.datetime.fromtimestamp(status.st_mtime, tz=dt.UTC)
    return Candidate(origin, student, assignment, stamp, data, f"{student}/{assignment}/")


def _read_stamp(dir_fd: int) -> dt.datetime | None:
    """timestamp.txt in the folder `dir_fd`, if it is a regular file holding a date."""
    try:
        data, _ = _read_regular("timestamp.txt", dir_fd, STAMP_MAX_SIZE)
        return parse_utc(data.decode().strip())
    except (_Refused, ValueError, OverflowError, TypeError):
        return None


@dataclass
class _Entry:
    """A notebook in a zip, as its name reads; names are parsed, never used as paths."""

    info: zipfile.ZipInfo
    origin: str
    folders: list[str]
    named: str | None  # the student id in the file name, if it carries one
    notebook: str
    lms: lms.LmsFile | None = None  # a Canvas or Moodle file: its identity, not a student id


def _from_zip(
    course,
    file,
    path: Path,
    regex: re.Pattern,
    result: CollectResult,
    max_size: int,
    explicit: bool = False,
) -> list[Candidate]:
    try:
        archive = zipfile.ZipFile(file)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise GraderError(f"{path} is a corrupt zip ({error}); download it again") from None
    entries = [
        e for info in infos if (e := _zip_entry(course, info, regex, result, max_size, explicit))
    ]
    lms_files = [(e.origin, e.lms) for e in entries if e.lms]
    if lms_files and result.roster is None:
        origin, first = lms_files[0]
        raise GraderError(
            f"{path} is a {lms.LABEL[first.lms]} download ({origin}): its files "
            f"name {lms.LABEL[first.lms]}'s identities, not student ids; give the class "
            "roster with --roster FILE (CSV: student_id,name,email,lms_id)"
        )
    levels = _student_levels([e for e in entries if not e.lms])
    candidates = []
    for entry in entries:
        level = min((n for n in levels if n < len(entry.folders)), default=None)
        if entry.lms:
            if result.roster is None:  # refused above, before any file
                raise GraderError(f"{entry.origin}: an LMS file, and no roster to identify it")
            student, reason = _identify(entry.lms, result.roster)
            if student is None:
                result.unknown_identity(entry.lms.describe(), reason, entry.origin)
                continue
            where = entry.lms.place
        elif level is None:
            if entry.named is None:
                result.skipped.append(
                    (entry.origin, "no student id: the file name is only the notebook's")
                )
                continue
            student, where = entry.named, ""  # the LMS's file names
        else:
            student = entry.folders[level]
            where = "/".join(entry.folders[: level + 1]) + "/"
            if entry.named is not None and entry.named != student:
                result.conflicts.append(
                    (
                        entry.origin,
                        (
                            f"conflict: the file is in the student folder {_shown(where)} but its "
                            f"name says {entry.named}; collected for neither: ask who handed it in"
                        ),
                    )
                )
                continue
        refused = _check(course, student, entry.notebook, entry.notebook)
        if refused:
            result.skipped.append((entry.origin, refused))
            continue
        if not entry.lms and result.roster is not None and student not in result.roster:
            result.unknown_identity(f"student id {student}", "not on the roster", entry.origin)
            continue
        try:
            stamp = dt.datetime(*entry.info.date_time, tzinfo=dt.UTC)
        except (ValueError, TypeError):
            result.skipped.append(
                (
                    entry.origin,
                    ("its date in the zip is not a date: not collected; download the zip again"),
                )
            )
            continue
        try:
            with archive.open(entry.info) as member:
                data = member.read(max_size + 1)  # the header's size may lie
        except Exception as error:  # any error of one entry: that entry is skipped
            result.skipped.append(
                (
                    entry.origin,
                    (
                        f"cannot be read from the zip ({_shown(str(error))}): not collected; "
                        "download the zip again"
                    ),
                )
            )
            continue
        if len(data) > max_size:
            result.skipped.append((entry.origin, _too_big(None, max_size)))
            continue
        candidates.append(
            Candidate(entry.origin, student, entry.notebook, stamp, data, where, entry.lms)
        )
    return candidates


def _identify(file: lms.LmsFile, roster: Roster) -> tuple[str | None, str]:
    """The student id of an LMS identity by the roster, or None and why not."""
    if file.lms == lms.CANVAS:
        if file.anonymous:
            return None, (
                "anonymous grading hides who handed it in; download the "
                "submissions again once Canvas shows the students' names"
            )
        student = roster.by_lms_id.get(file.lms_id)
        if student is None:
            return None, f"no roster row has the lms_id {file.lms_id}"
        return student.student_id, ""
    matches = roster.by_name(file.name)
    if len(matches) == 1:
        return matches[0].student_id, ""
    if matches:
        ids = ", ".join(s.student_id for s in matches)
        return None, (
            f"the roster has several students named {file.name!r} ({ids}); "
            "Moodle's download tells them apart only by name"
        )
    return None, f"no roster row is named {file.name!r}"


def _zip_entry(
    course,
    info: zipfile.ZipInfo,
    regex: re.Pattern,
    result: CollectResult,
    max_size: int,
    explicit: bool = False,
) -> _Entry | None:
    """The entry as a notebook to place, or None (skipped with the reason, or ignored)."""
    origin = _shown(info.filename)
    parts = info.filename.split("/")
    mode = info.external_attr >> 16
    if info.is_dir() or stat.S_ISDIR(mode):
        return None
    if parts[0] == "" or any(part in ("", ".", "..") for part in parts):
        result.skipped.append(
            (
                origin,
                (
                    "an absolute name or one with '..' in the zip: not collected; an LMS does not "
                    "write such names"
                ),
            )
        )
        return None
    if any(part.startswith(".") or part == "__MACOSX" for part in parts):
        return None
    if stat.S_ISLNK(mode):
        result.skipped.append((origin, LINK))
        return None
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
        result.skipped.append((origin, _not_regular(mode)))
        return None
    name = parts[-1]
    if not name.endswith(".ipynb"):
        result.skipped.append((origin, "not a notebook"))
        return None
    if info.file_size > max_size:
        result.skipped.append((origin, _too_big(info.file_size, max_size)))
        return None
    folders, stem = parts[:-1], name[: -len(".ipynb")]
    match = regex.search(name)
    if match and explicit:  # the instructor's pattern first
        return _Entry(info, origin, folders, match.group("student_id"), match.group("notebook"))
    file = lms.parse(parts, course.assignments)
    if file is not None and file.notebook is not None:
        return _Entry(info, origin, folders, None, file.notebook, file)
    if match:  # `123456_01_perceptron.ipynb` reads as Canvas's too, without a notebook
        return _Entry(info, origin, folders, match.group("student_id"), match.group("notebook"))
    if file is not None:
        result.skipped.append(
            (
                origin,
                (
                    f"unknown notebook {_shown(file.filename)!r} in a {lms.LABEL[file.lms]} "
                    f"download: expected the assignment's name, e.g. {course.assignments[0]}.ipynb"
                ),
            )
        )
        return None
    if stem in course.assignments:
        return _Entry(info, origin, folders, None, stem)  # the notebook's name only
    loose = re.match(r"^(?P<student_id>[^_]+)_(?P<notebook>.+)\.ipynb$", name)
    if loose and re.fullmatch(STUDENT_ID, loose.group("student_id")):
        reason = f"unknown notebook {_shown(loose.group('notebook'))!r}"
    else:
        reason = f"no student id: the name does not match {regex.pattern!r}"
    result.skipped.append((origin, reason))
    return None


def _student_levels(entries: list[_Entry]) -> set[int]:
    """The folder depths that hold one folder per student, as the LMS writes them.

    A folder is a student's where a notebook in it carries no id (`ada/01_perceptron.ipynb`,
    also `ada/01_perceptron/01_perceptron.ipynb`) or carries the folder's own name
    (`ada/ada_01_perceptron.ipynb`). A student names only files, never folders, so one
    student cannot move these depths; folders at no such depth (`final/ada_...`) are the
    LMS's own grouping and the file names carry the ids.
    """
    levels = set()
    for entry in entries:
        if entry.named is None and entry.folders:
            depth = len(entry.folders) - 1
            if depth > 0 and entry.folders[depth] == entry.notebook:
                depth -= 1
            levels.add(depth)
        elif entry.named is not None:
            levels |= {n for n, folder in enumerate(entry.folders) if folder == entry.named}
    return levels


def _check(course: CourseConfig, student: str, assignment: str, notebook: str) -> str | None:
    """Why a file cannot be placed, or None."""
    if not re.fullmatch(STUDENT_ID, student):
        return f"no student id: {_shown(student)!r} is not a valid id"
    if student in course.assignments:
        return f"no student id: {student!r} is an assignment's name"
    if assignment not in course.assignments:
        return f"unknown assignment {_shown(assignment)!r}"
    if notebook != assignment:
        return (
            f"unknown notebook {_shown(notebook)!r}: assignment {assignment} has {assignment}.ipynb"
        )
    return None


# --- deciding ----------------------------------------------------------------------------


def _without_conflicts(candidates: list[Candidate], result: CollectResult) -> list[Candidate]:
    """Candidates for a student's notebook from two places: all listed, none kept."""
    groups: dict[tuple[str, str], list[Candidate]] = {}
    for candidate in candidates:
        groups.setdefault((candidate.student, candidate.assignment), []).append(candidate)
    kept: set[int] = set()
    for (student, assignment), group in groups.items():
        if len({c.place for c in group}) == 1:
            kept |= {id(c) for c in group}
            continue
        for candidate in group:
            others = sorted({c.origin for c in group if c.place != candidate.place})
            verb = "claims" if len(others) == 1 else "claim"
            result.conflicts.append(
                (
                    candidate.origin,
                    (
                        f"conflict: {', '.join(others)} also {verb} {student}'s {assignment}; "
                        "none is "
                        "collected: remove all but one and collect again"
                    ),
                )
            )
    return [c for c in candidates if id(c) in kept]


def _keep_latest(candidates: list[Candidate], result: CollectResult) -> list[Candidate]:
    """One file per student and assignment: the latest (then the LMS's highest attachment
    id or copy number); the others are duplicates."""
    best: dict[tuple[str, str], Candidate] = {}
    for candidate in candidates:
        key = (candidate.student, candidate.assignment)
        other = best.get(key)
        if other is None:
            best[key] = candidate
            continue
        newer, older = (candidate, other) if candidate.order > other.order else (other, candidate)
        best[key] = newer
        result.skipped.append((older.origin, f"duplicate: {newer.origin} is later"))
    return list(best.values())


# --- writing -----------------------------------------------------------------------------


def _place(course: CourseConfig, candidate: Candidate, result: CollectResult) -> bool:
    target = f"submitted/{candidate.student}/{candidate.assignment}"
    try:
        folder = _open_folder(course.root, ("submitted", candidate.student, candidate.assignment))
    except _Refused as refusal:
        result.skipped.append((candidate.origin, str(refusal)))
        return False
    try:
        existing = _read_stamp(folder)
        if existing is not None and _utc(existing) >= _utc(candidate.timestamp):
            result.skipped.append(
                (
                    candidate.origin,
                    f"duplicate: the submission collected before is as late "
                    f"({existing:%Y-%m-%d %H:%M})",
                )
            )
            return False
        # Write the notebook before its timestamp: an interrupted collect is redone next time.
        _write(folder, f"{candidate.assignment}.ipynb", candidate.data)
        _write(
            folder, "timestamp.txt", _utc(candidate.timestamp).strftime(TIMESTAMP_FORMAT).encode()
        )
    except OSError as error:
        result.skipped.append(
            (
                candidate.origin,
                (
                    f"could not be written to {target}/ ({error.strerror}): not collected; "
                    "check that folder and collect again"
                ),
            )
        )
        return False
    finally:
        os.close(folder)
    result.collected.append((candidate.student, candidate.assignment, candidate.origin))
    result.stamps[candidate.origin] = _utc(candidate.timestamp)
    return True


def _write_lists(course: CourseConfig, result: CollectResult) -> None:
    """reports/collect.csv (every file and what became of it), reports/unknown-identities.csv,
    and the roster as roster.csv; written as submissions are, never through a link."""
    rows = []
    for student, assignment, origin in result.collected:
        stamp = result.stamps[origin].strftime(TIMESTAMP_FORMAT)
        rows.append([origin, "collected", student, assignment, stamp, result.notes.get(origin, "")])
    rows += [[origin, "skipped", "", "", "", reason] for origin, reason in result.skipped]
    rows += [[origin, "conflict", "", "", "", reason] for origin, reason in result.conflicts]
    rows += [[origin, "not on the roster", "", "", "", reason] for origin, reason in result.unknown]
    files = {
        "collect.csv": _csv(
            ["file", "outcome", "student", "assignment", "submitted", "reason"], rows
        ),
        "unknown-identities.csv": _csv(
            ["identity", "reason", "files"],
            [[i.who, i.reason, "; ".join(i.origins)] for i in result.identities.values()],
        ),
    }
    try:
        folder = _open_folder(course.root, ("reports",))
    except _Refused as refusal:
        raise GraderError(f"the lists of this collect were not written: {refusal}") from None
    try:
        for name, text in files.items():
            _write(folder, name, text.encode())
    finally:
        os.close(folder)
    if result.roster is not None:
        root = os.open(course.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _write(root, "roster.csv", result.roster.text.encode())
        finally:
            os.close(root)


def _csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _open_folder(root: Path, parts: tuple[str, ...]) -> int:
    """The folder root/parts..., made where missing, each part checked not to be a link
    (the grading folder `root` itself is the instructor's); else _Refused."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for n, part in enumerate(parts):
            where = "/".join(parts[: n + 1])
            try:
                mode = os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode
            except FileNotFoundError:
                mode = None
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            if mode is not None and stat.S_ISLNK(mode):
                raise _Refused(
                    f"{where} in the grading folder is a symbolic link: nothing is "
                    "written through it; remove the link and collect again"
                )
            if mode is not None and not stat.S_ISDIR(mode):
                raise _Refused(
                    f"{where} in the grading folder is not a folder: not "
                    "collected; remove it and collect again"
                )
            try:
                sub = os.open(part, _DIR, dir_fd=fd)
            except OSError as error:
                raise _Refused(
                    f"{where} in the grading folder cannot be opened as a folder "
                    f"({error.strerror}): not collected; check it and collect "
                    "again"
                ) from None
            os.close(fd)
            fd = sub
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write(dir_fd: int, name: str, data: bytes) -> None:
    """Write `name` in the folder `dir_fd`: a new file, renamed over whatever was there (a
    link planted there is replaced, never written through)."""
    temporary = f".{name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(temporary, _WRITE, 0o644, dir_fd=dir_fd)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=dir_fd)
        raise


def _utc(stamp: dt.datetime) -> dt.datetime:
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(dt.UTC)
