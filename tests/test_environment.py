"""The set-up files agree with each other."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import sys
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from grader.config import REPO_ROOT
from grader.pipeline.bundle import FOLDERS


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


def test_the_installed_torch_is_the_pinned_one():
    """The tests run on constraints.txt's torch (a CPU build, `+cpu` on some indexes), not on
    whatever a venv made before the pin changed holds."""
    installed = Version(importlib.metadata.version("torch"))
    assert installed.public == Version(pins()["torch"]).public, (
        f"torch {installed} is installed, constraints.txt pins {pins()['torch']}: run `make venv`"
    )


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_dependency_is_pinned_and_the_pin_satisfies_the_range():
    project = pyproject()["project"]
    requirements = project["dependencies"] + [
        text for extra in project["optional-dependencies"].values() for text in extra
    ]
    pinned = pins()
    for text in requirements:
        requirement = Requirement(text)
        name = normalized(requirement.name)
        if name == normalized(project["name"]):  # an extra of this project (dev's [grader])
            continue
        assert name in pinned, f"{name} is a dependency but constraints.txt does not pin it"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {name}=={pinned[name]}, outside pyproject's {requirement}"
        )


def test_dev_installs_the_grader_extra():
    """`make` installs .[dev] and the tests grade: dev must bring the grader's dependencies."""
    project = pyproject()["project"]
    extras = project["optional-dependencies"]
    assert extras["grader"], "pyproject.toml has no `grader` extra"
    mine = [
        Requirement(text)
        for text in extras["dev"]
        if normalized(Requirement(text).name) == normalized(project["name"])
    ]
    assert any("grader" in requirement.extras for requirement in mine), (
        f"dev does not include {project['name']}[grader]"
    )


def test_console_scripts_point_into_what_the_bundle_ships():
    """A student installs the bundle, which has no grader/: a console script into grader/
    would be installed there and fail (the grader's entry point is `python -m grader`)."""
    for name, target in pyproject()["project"].get("scripts", {}).items():
        package = target.split(":")[0].split(".")[0]
        assert package in FOLDERS, f"console script {name} = {target}: the bundle lacks {package}"


def installed_closure(requirements: list[str]) -> set[str]:
    """The distributions that installing `requirements` installs, as far as this venv says."""
    seen: set[str] = set()
    todo = [Requirement(text) for text in requirements]
    while todo:
        requirement = todo.pop()
        name = normalized(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            needs = importlib.metadata.requires(requirement.name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        extras = requirement.extras | {""}
        for text in needs:
            need = Requirement(text)
            if need.marker is None or any(need.marker.evaluate({"extra": e}) for e in extras):
                todo.append(need)
    return seen


def student_sources():
    """(name, Python source) of what a student runs: the bundle's packages and the code
    cells of the release notebooks."""
    for folder in ("course", "courselab"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            yield path.relative_to(REPO_ROOT).as_posix(), path.read_text()
    for path in sorted((REPO_ROOT / "release").rglob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                yield path.relative_to(REPO_ROOT).as_posix(), "".join(cell["source"])


def test_what_students_run_imports_only_the_base_dependencies():
    """A student installs pyproject's base dependencies alone (the bundle's `pip install -e
    .`): course/, courselab/ and the notebooks import nothing that only the `grader` extra or
    dev bring."""
    installed = installed_closure(pyproject()["project"]["dependencies"])
    providers = importlib.metadata.packages_distributions()
    local = set(FOLDERS)
    checked = 0
    for name, source in student_sources():
        try:
            tree = ast.parse(source)
        except SyntaxError:  # a cell with IPython magics
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in local:
                    continue
                checked += 1
                distributions = {normalized(d) for d in providers.get(top, [])}
                assert distributions & installed, (
                    f"{name} imports {top} ({', '.join(sorted(distributions)) or 'not installed'}"
                    "), which the student's install lacks: add it to pyproject's dependencies"
                )
    assert checked, "found no third-party import to check"


def test_nbgrader_config_lists_the_five_assignments(repo_course):
    assert repo_course.assignments == [
        "01_perceptron",
        "02_networks",
        "03_deep_networks",
        "04_learning",
        "05_convolution",
    ]
