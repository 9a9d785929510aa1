"""The set-up files agree with each other."""

from __future__ import annotations

import re
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from grader.course_config import REPO_ROOT


def pyproject():
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def pins():
    """Package name -> pinned version, from constraints.txt."""
    pinned = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pinned[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pinned


def test_environment_yml_parses_and_agrees_on_python():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    version = Version(python.split("=")[-1])
    assert version in SpecifierSet(pyproject()["project"]["requires-python"]), (
        f"environment.yml asks for Python {version}, which pyproject.toml's requires-python "
        "does not allow"
    )
    pip_lines = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-c constraints.txt" in pip_lines and "-e ." in pip_lines


def test_constraints_pin_torch_to_the_local_cpu_build():
    assert pins()["torch"] == "2.13.0"


def test_every_dependency_is_pinned_and_the_pin_satisfies_the_range():
    project = pyproject()["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    pinned = pins()
    for text in requirements:
        requirement = Requirement(text)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pinned, f"{name} is a dependency but constraints.txt does not pin it"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {name}=={pinned[name]}, outside pyproject's {requirement}"
        )


def test_nbgrader_config_lists_the_five_assignments(repo_course):
    assert repo_course.assignments == [
        "01_perceptron",
        "02_networks",
        "03_deep_networks",
        "04_learning",
        "05_convolution",
    ]
