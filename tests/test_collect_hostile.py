"""collect trusts nothing it reads: links, fifos, huge files, zip entries that are links or
lie about their size, file names naming another student, two places claiming one student,
and links planted in the grading folder. Honest students beside them are collected as
they are. Fast: no notebook runs."""

from __future__ import annotations

import datetime as dt
import os
import stat
import zipfile
import zlib

import pytest
from conftest import MINI

from grader.pipeline.collect import LINK, _read_regular, _Refused, collect

NB = f"{MINI}.ipynb"
WHEN = dt.datetime(2026, 11, 2, 8)
SECRET = b"root:$6$SECRET-HASH-NOT-FOR-STUDENTS:19000:0:99999:7:::\n"


@pytest.fixture
def course(copied_grading):
    return copied_grading


@pytest.fixture
def honest(course):
    """Two honest notebooks, different bytes."""
    data = (course.root / "release" / MINI / NB).read_bytes()
    return {"ann": data, "bob": data.replace(b"\n", b"\n ", 1)}


@pytest.fixture
def outside(prepared_grading, tmp_path):
    """Files outside the grading folder that collect must neither read nor change: a
    secret (mode 0600, like /etc/shadow) and the course's source notebook."""
    repo, _ = prepared_grading
    secret = tmp_path / "shadow"
    secret.write_bytes(SECRET)
    secret.chmod(0o600)
    source = repo.root / "source" / MINI / NB
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (secret, source)}
    yield secret, source
    for path, (data, mtime) in before.items():
        assert path.read_bytes() == data and path.stat().st_mtime_ns == mtime, path


def make_zip(path, entries):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            name, data = entry[:2]
            info = zipfile.ZipInfo(name, date_time=WHEN.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            if len(entry) > 2:
                info.external_attr = entry[2] << 16
            archive.writestr(info, data)
    return path


def submitted(course, student):
    return course.root / "submitted" / student / MINI / NB


def collected(result):
    return sorted(student for student, _, _ in result.collected)


def assert_secret_nowhere(course):
    """No byte of the secret anywhere in the grading folder (notebooks, gradebook, CSVs)."""
    for folder, _, files in os.walk(course.root):
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                with open(path, "rb") as file:
                    assert b"SECRET-HASH" not in file.read(), path


def test_folder_links_and_fifos_are_skipped_and_the_honest_collected(
    course, honest, outside, tmp_path
):
    secret, source = outside
    inbox = tmp_path / "inbox"
    for student, data in honest.items():
        (inbox / student / MINI).mkdir(parents=True)
        (inbox / student / MINI / NB).write_bytes(data)
    (inbox / "bob" / MINI / "timestamp.txt").symlink_to(secret)  # not read: mtime instead
    (inbox / "eve" / MINI).mkdir(parents=True)
    (inbox / "eve" / MINI / NB).symlink_to(secret)
    (inbox / "src" / MINI).mkdir(parents=True)
    (inbox / "src" / MINI / NB).symlink_to(source)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / MINI).mkdir(parents=True)
    (elsewhere / MINI / NB).write_bytes(SECRET)
    (inbox / "mal").symlink_to(elsewhere)  # a student folder that is a link
    (inbox / "dee").mkdir()
    (inbox / "dee" / MINI).symlink_to(elsewhere / MINI)  # an assignment folder that is one
    (inbox / "fay" / MINI).mkdir(parents=True)
    os.mkfifo(inbox / "fay" / MINI / NB)  # reading it would block forever
    given = tmp_path / "given"
    given.symlink_to(inbox)  # PATH itself may be the instructor's link

    result = collect(course, given)
    assert collected(result) == ["ann", "bob"]
    reasons = dict(result.skipped)
    for origin in [
        f"eve/{MINI}/{NB}",
        f"src/{MINI}/{NB}",
        "mal",
        f"dee/{MINI}",
        f"bob/{MINI}/timestamp.txt",
    ]:
        assert reasons[origin] == LINK, origin
        assert reasons[origin].startswith("a symbolic link: not collected")
    assert reasons[f"fay/{MINI}/{NB}"].startswith("not a regular file (a fifo)")
    for student, data in honest.items():
        assert submitted(course, student).read_bytes() == data
    mtime = (inbox / "bob" / MINI / NB).stat().st_mtime
    stamp = (submitted(course, "bob").parent / "timestamp.txt").read_text()
    assert stamp.startswith(f"{dt.datetime.fromtimestamp(mtime, dt.UTC):%Y-%m-%d %H:%M}")
    assert not (course.root / "submitted" / "eve").exists()
    assert sorted(p.name for p in (course.root / "submitted").iterdir()) == ["ann", "bob"]
    assert_secret_nowhere(course)


def test_a_file_swapped_after_the_listing_is_refused_on_the_open_fd(tmp_path, outside):
    """What the listing saw does not matter: the opened file itself must be regular."""
    secret, _ = outside
    (tmp_path / "link.ipynb").symlink_to(secret)
    os.mkfifo(tmp_path / "fifo.ipynb")
    (tmp_path / "fine.ipynb").write_bytes(b"{}")
    folder = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(_Refused, match="^a symbolic link: not collected"):
            _read_regular("link.ipynb", folder, 100)
        with pytest.raises(_Refused, match=r"^not a regular file \(a fifo\)"):
            _read_regular("fifo.ipynb", folder, 100)
        with pytest.raises(_Refused, match="^2 bytes, over the 1 bytes limit"):
            _read_regular("fine.ipynb", folder, 1)
        assert _read_regular("fine.ipynb", folder, 2)[0] == b"{}"
    finally:
        os.close(folder)


def test_oversized_files_are_skipped_with_their_size(course, honest, tmp_path):
    inbox = tmp_path / "inbox"
    for student in ["ann", "big"]:
        (inbox / student / MINI).mkdir(parents=True)
    (inbox / "ann" / MINI / NB).write_bytes(honest["ann"])
    with open(inbox / "big" / MINI / NB, "wb") as file:
        file.truncate(23_100_000)  # sparse: nothing to write, and nothing should be read
    result = collect(course, inbox)
    assert collected(result) == ["ann"]
    assert dict(result.skipped)[f"big/{MINI}/{NB}"] == (
        "23.1 MB, over the 20 MB limit; raise it with --max-size"
    )
    # the limit is a parameter (the CLI's --max-size)
    size = len(honest["ann"])
    result = collect(course, inbox, max_size=size - 1)
    assert collected(result) == []
    assert dict(result.skipped)[f"ann/{MINI}/{NB}"] == (
        f"{size} bytes, over the {size - 1} bytes limit; raise it with --max-size"
    )


def claim_size(archive, name: str, size: int, crc: bytes | None = None):
    """Make the zip's headers of `name` claim `size` bytes (and the CRC `crc`)."""
    raw, name = bytearray(archive.read_bytes()), name.encode()
    start = 0
    while (at := raw.find(name, start)) >= 0:
        start = at + 1
        if raw[at - 30 : at - 26] == b"PK\x03\x04":  # local header: crc at 14, size at 22
            raw[at - 8 : at - 4] = size.to_bytes(4, "little")
            raw[at - 16 : at - 12] = crc or raw[at - 16 : at - 12]
        elif raw[at - 46 : at - 42] == b"PK\x01\x02":  # central: crc at 16, size at 24
            raw[at - 22 : at - 18] = size.to_bytes(4, "little")
            raw[at - 30 : at - 26] = crc or raw[at - 30 : at - 26]
    archive.write_bytes(bytes(raw))
    assert zipfile.ZipFile(archive).getinfo(name.decode()).file_size == size


def test_oversized_and_lying_zip_entries_are_skipped(course, honest, tmp_path):
    huge = bytes(25_000_000)  # deflates to ~25 kB: a small zip bomb
    archive = make_zip(
        tmp_path / "lms.zip",
        [
            (f"ann_{NB}", honest["ann"]),
            (f"big_{NB}", huge[:21_000_000]),
            (f"liar_{NB}", huge),
            (f"mute_{NB}", huge),
        ],
    )
    # Two entries whose headers claim 1000 bytes: one with the CRC of its first 1000.
    claim_size(archive, f"liar_{NB}", 1000, zlib.crc32(huge[:1000]).to_bytes(4, "little"))
    claim_size(archive, f"mute_{NB}", 1000)

    result = collect(course, archive, max_size=10_000)
    reasons = dict(result.skipped)
    assert reasons[f"big_{NB}"] == "21.0 MB, over the 10000 bytes limit; raise it with --max-size"
    # nothing past what the header claims is decompressed: 1000 bytes, or a CRC error
    assert collected(result) == ["ann", "liar"]
    assert submitted(course, "liar").read_bytes() == huge[:1000]
    assert reasons[f"mute_{NB}"].startswith("cannot be read from the zip (Bad CRC-32")
    assert reasons[f"mute_{NB}"].endswith("not collected; download the zip again")
    assert submitted(course, "ann").read_bytes() == honest["ann"]

    result = collect(course, make_zip(tmp_path / "2.zip", [(f"cat_{NB}", huge[:21_000_000])]))
    assert dict(result.skipped)[f"cat_{NB}"] == (
        "21.0 MB, over the 20 MB limit; raise it with --max-size"
    )


def test_zip_entries_that_are_links_or_special_are_skipped(course, honest, outside, tmp_path):
    secret, _ = outside
    archive = make_zip(
        tmp_path / "lms.zip",
        [
            (f"ann/ann_{NB}", honest["ann"], stat.S_IFREG | 0o644),
            (f"eve/eve_{NB}", str(secret).encode(), stat.S_IFLNK | 0o777),
            (f"fay_{NB}", b"{}", stat.S_IFIFO | 0o644),
            (f"../../etc/bob_{NB}", honest["bob"]),
            (f"/abs/bob_{NB}", honest["bob"]),
            (f"bob/bob\n_{NB}", honest["bob"]),
        ],
    )
    result = collect(course, archive)
    assert collected(result) == ["ann"]
    reasons = dict(result.skipped)
    assert reasons[f"eve/eve_{NB}"] == LINK
    assert reasons[f"fay_{NB}"].startswith("not a regular file (a fifo)")
    assert reasons[f"../../etc/bob_{NB}"].startswith("an absolute name or one with '..'")
    assert reasons[f"/abs/bob_{NB}"].startswith("an absolute name or one with '..'")
    assert f"bob/bob\\n_{NB}" in reasons  # shown escaped, on one line
    assert "\n" not in "".join(reason for _, reason in result.skipped)
    assert submitted(course, "ann").read_bytes() == honest["ann"]
    assert sorted(p.name for p in (course.root / "submitted").iterdir()) == ["ann"]
    assert not (tmp_path / "etc").exists() and not (course.root / "abs").exists()


@pytest.mark.parametrize("wrapper", ["", "Course 101 - assignment 1/"])
def test_a_file_in_one_students_folder_naming_another_is_a_conflict(
    course, honest, tmp_path, wrapper
):
    archive = make_zip(
        tmp_path / "lms.zip",
        [
            (f"{wrapper}ada/bob_{NB}", b"ada's work, handed in as bob's"),
            (f"{wrapper}bob/bob_{NB}", honest["bob"]),
            (f"{wrapper}ann/{NB}", honest["ann"]),
            (f"{wrapper}cid/cid_{NB}", honest["ann"]),
        ],
    )
    result = collect(course, archive)
    assert collected(result) == ["ann", "bob", "cid"]
    conflicts = dict(result.conflicts)
    assert conflicts[f"{wrapper}ada/bob_{NB}"] == (
        f"conflict: the file is in the student folder {wrapper}ada/ but its name says bob; "
        "collected for neither: ask who handed it in"
    )
    assert submitted(course, "bob").read_bytes() == honest["bob"]
    assert submitted(course, "ann").read_bytes() == honest["ann"]
    assert not (course.root / "submitted" / "ada").exists()
    assert "in conflict" in result.summary() and "but its name says bob" in result.summary()


def test_two_places_claiming_one_student_are_both_listed_and_neither_placed(
    course, honest, tmp_path
):
    archive = make_zip(
        tmp_path / "lms.zip",
        [
            (f"ada_{NB}", b"one"),
            (f"ada/{NB}", b"two"),
            (f"bob/{NB}", honest["bob"]),
        ],
    )
    result = collect(course, archive)
    assert collected(result) == ["bob"]
    conflicts = dict(result.conflicts)
    assert conflicts[f"ada_{NB}"].startswith(f"conflict: ada/{NB} also claims ada's {MINI};")
    assert conflicts[f"ada/{NB}"].startswith(f"conflict: ada_{NB} also claims ada's {MINI};")
    assert not (course.root / "submitted" / "ada").exists()
    assert submitted(course, "bob").read_bytes() == honest["bob"]
    summary = result.summary()
    assert "1 submission(s), skipped 0, 2 in conflict" in summary
    assert summary.count("also claims ada's") == 2


def test_links_planted_in_the_grading_folder_are_never_written_through(
    course, honest, outside, tmp_path
):
    secret, _ = outside
    victim = tmp_path / "victim"
    victim.write_bytes(b"victim")
    victim.chmod(0o600)
    away = tmp_path / "away"
    away.mkdir()
    planted = course.root / "submitted" / "ann" / MINI
    planted.mkdir(parents=True)
    (planted / NB).symlink_to(victim)
    (planted / "timestamp.txt").symlink_to(secret)
    (course.root / "submitted" / "bob").symlink_to(away)
    (course.root / "submitted" / "cid").mkdir()
    (course.root / "submitted" / "cid" / MINI).symlink_to(away)
    archive = make_zip(
        tmp_path / "lms.zip",
        [
            (f"ann_{NB}", honest["ann"]),
            (f"bob_{NB}", honest["bob"]),
            (f"cid_{NB}", b"cid"),
        ],
    )
    result = collect(course, archive)
    assert collected(result) == ["ann"]
    reasons = dict(result.skipped)
    assert reasons[f"bob_{NB}"].startswith(
        "submitted/bob in the grading folder is a symbolic link: nothing is written through"
    )
    assert reasons[f"cid_{NB}"].startswith(f"submitted/cid/{MINI} in the grading folder is a")
    # the planted links were replaced, not written through
    for name in [NB, "timestamp.txt"]:
        mode = os.lstat(planted / name).st_mode
        assert stat.S_ISREG(mode) and not mode & 0o022, name
    assert (planted / NB).read_bytes() == honest["ann"]
    assert (planted / "timestamp.txt").read_text().startswith("2026-11-02 08:00")
    assert victim.read_bytes() == b"victim" and list(away.iterdir()) == []
    assert not any(p.name.endswith(".tmp") for p in planted.iterdir())
    assert_secret_nowhere(course)
