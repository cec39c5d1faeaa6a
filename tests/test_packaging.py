"""The wheel's package list (pyproject.toml) names every code package, and the data packages resolve."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from setuptools import find_packages

REPO = Path(__file__).resolve().parent.parent


def test_every_code_package_is_listed():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    code = set(find_packages(REPO, include=["cli*", "lab*", "nodeconfig*", "report*", "stacks*", "toolchain*"]))
    assert code <= listed, f"add to pyproject.toml [tool.setuptools] packages: {sorted(code - listed)}"


def test_data_packages_resolve_to_the_top_level_directories():
    for package, directory in (("sovereign_roles", "roles"), ("sovereign_playbooks", "playbooks"),
                               ("sovereign_templates", "templates")):
        assert Path(str(resources.files(package))).resolve() == (REPO / directory).resolve()
