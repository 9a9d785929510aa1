"""Where the grading folder is when no --workdir says (grader.config.default_workdir): grading/
in the course root, or $GRADER_WORKDIR; every verb that needs it agrees, the bundle included."""

from __future__ import annotations

import re
import zipfile

import pytest

from grader.cli import main
from grader.config import (
    WORKDIR_ENV,
    CourseConfig,
    GradingFolder,
    default_workdir,
    load_config,
)
from grader.errors import GraderError
from grader.pipeline.bundle import BUNDLE_NAME, FILES, TOP, make_bundle
from grader.workdir.folder import open_workdir

CONFIG = """\
c = get_config()  # noqa: F821
ASSIGNMENTS = ["a1"]
c.CourseDirectory.course_id = "tiny"
"""


@pytest.fixture
def course(tmp_path, monkeypatch) -> CourseConfig:
    """A course root with what the bundle packs: a release notebook, the set-up files, and
    the two packages (one file each)."""
    monkeypatch.delenv(WORKDIR_ENV, raising=False)
    root = tmp_path / "course"
    (root / "release" / "a1").mkdir(parents=True)
    (root / "release" / "a1" / "a1.ipynb").write_text("{}")
    for package in ("course", "courselab"):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text("")
    for name in FILES:
        (root / name).write_text("")
    (root / "nbgrader_config.py").write_text(CONFIG)
    return load_config(root)


def test_grading_in_the_course_root_by_default(course):
    assert default_workdir(course) == course.root / "grading"


def test_the_environment_names_another_folder(course, tmp_path, monkeypatch):
    monkeypatch.setenv(WORKDIR_ENV, str(tmp_path / "elsewhere"))
    assert default_workdir(course) == tmp_path / "elsewhere"


def test_the_bundle_goes_into_the_default_grading_folder(course):
    path = make_bundle(course)
    assert path == course.root / "grading" / BUNDLE_NAME
    with zipfile.ZipFile(path) as archive:
        assert f"{TOP}/release/a1/a1.ipynb" in archive.namelist()


def test_the_bundle_follows_the_environment(course, tmp_path, monkeypatch):
    monkeypatch.setenv(WORKDIR_ENV, str(tmp_path / "elsewhere"))
    assert make_bundle(course) == tmp_path / "elsewhere" / BUNDLE_NAME
    assert not (course.root / "grading").exists()


def test_the_bundle_command_follows_the_environment_and_workdir(course, tmp_path, monkeypatch):
    monkeypatch.setenv(WORKDIR_ENV, str(tmp_path / "elsewhere"))
    assert main(["--root", str(course.root), "bundle"]) == 0
    assert (tmp_path / "elsewhere" / BUNDLE_NAME).is_file()
    assert main(["--root", str(course.root), "--workdir", str(tmp_path / "w"), "bundle"]) == 0
    assert (tmp_path / "w" / BUNDLE_NAME).is_file()
    assert not (course.root / "grading").exists()


def test_open_workdir_without_a_folder_looks_where_the_environment_says(
    course, tmp_path, monkeypatch
):
    monkeypatch.setenv(WORKDIR_ENV, str(tmp_path / "elsewhere"))
    where = re.escape(f"no grading folder at {tmp_path / 'elsewhere'} ")
    with pytest.raises(GraderError, match=where):
        open_workdir(course, None)


def test_a_grading_folder_is_the_course_moved_not_shared(course, tmp_path):
    folder = GradingFolder.at(course, tmp_path / "g")
    assert isinstance(folder, GradingFolder)
    assert folder.root == tmp_path / "g" and folder.assignments == course.assignments
    assert folder.config.CourseDirectory.root == str(tmp_path / "g")
    assert course.config.CourseDirectory.root == str(course.root), "the course keeps its root"
