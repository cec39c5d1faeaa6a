"""Where the shipped data lives: roles/, playbooks/ and templates/ of the repository, installed as
the packages sovereign_roles, sovereign_playbooks and sovereign_templates (pyproject.toml)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def asset_dir(name: str) -> Path:
    """`roles`, `playbooks` or `templates`: from the installed package (wheel or editable), else —
    a source checkout put on PYTHONPATH without installing it — from the checkout itself."""
    try:
        return Path(str(resources.files(f"sovereign_{name}")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / name
