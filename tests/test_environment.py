"""The set-up files agree with each other."""

from __future__ import annotations

import re
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from grader.config import REPO_ROOT


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


CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def environment():
    return yaml.safe_load((REPO_ROOT / "environment.yml").read_text())


def pip_lines():
    return next(d["pip"] for d in environment()["dependencies"] if isinstance(d, dict))


def test_environment_yml_parses_and_agrees_on_python():
    env = environment()
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    version = Version(python.split("=")[-1])
    assert version in SpecifierSet(pyproject()["project"]["requires-python"]), (
        f"environment.yml asks for Python {version}, which pyproject.toml's requires-python "
        "does not allow"
    )
    pip_lines = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-c constraints.txt" in pip_lines and "-e ." in pip_lines


def test_environment_yml_installs_the_pins_of_constraints_and_pyproject():
    """Conda's route installs what CI tests: this repository (pyproject.toml's dependencies)
    under constraints.txt's pins; a version it names itself is the same pin."""
    lines = pip_lines()
    assert "-c constraints.txt" in lines and "-e ." in lines
    pinned = pins()
    named = [d for d in environment()["dependencies"] if isinstance(d, str)] + [
        line for line in lines if not line.startswith("-")
    ]
    for text in named:
        name, _, version = re.match(r"([\w.-]+)\s*(==?)?\s*([\w.*+-]*)", text).groups()
        name = re.sub(r"[-_.]+", "-", name).lower()
        if name in ("python", "pip") or not version:
            continue
        assert pinned.get(name) == version, (
            f"environment.yml asks for {name} {version}, constraints.txt pins {pinned.get(name)}"
        )


def test_environment_yml_takes_torch_from_the_cpu_index():
    """On Linux, PyPI's torch is the CUDA build (gigabytes). PyTorch's CPU index is an extra
    index (PyPI stays for everything else); its 2.13.0+cpu satisfies the pin and ranks
    above PyPI's 2.13.0."""
    lines = pip_lines()
    assert f"--extra-index-url {CPU_INDEX}" in lines
    assert not [line for line in lines if line.startswith(("--index-url", "-i "))]
    assert Version(f"{pins()['torch']}+cpu") > Version(pins()["torch"])
    assert Version(f"{pins()['torch']}+cpu") in SpecifierSet(f"=={pins()['torch']}")
    text = (REPO_ROOT / "environment.yml").read_text()
    assert "Intel Mac" in text and "conda-forge" in text  # what Mac users do


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
