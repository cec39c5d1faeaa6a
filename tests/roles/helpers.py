"""Helpers for the role tests: the repository, its roles and the venv's Ansible tools."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROLES_DIR = REPO / "nodeconfig" / "roles"
ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if (p / "meta" / "main.yml").is_file())
# The interpreter's own bin directory first: ansible-lint and molecule call ansible-* by name.
VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """Absolute path of a venv tool; a missing tool is a broken install, not a reason to skip."""
    found = shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed (pip install -e '.[test]' into the venv)", pytrace=False)
    return found


def tool_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_ROLES_PATH"] = str(ROLES_DIR)
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env
